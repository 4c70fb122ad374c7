//! The JSON schemas of v2 (`GET /v2/schemas/...`). Clients validate what they send and receive
//! against them (glanceclient builds its models from `image`), so they describe exactly what
//! glint stores: core attributes with their types and enums, and custom properties as strings.

use serde_json::{json, Value};

use crate::model::{EnabledFormats, Status, Visibility};

/// The pattern of an image id.
const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// The schema called `name`, if there is one; its format enums are the enabled formats.
pub fn schema(name: &str, formats: &EnabledFormats) -> Option<Value> {
    match name {
        "image" => Some(image(formats)),
        "images" => Some(images(formats)),
        "member" => Some(member()),
        "members" => Some(members()),
        _ => None,
    }
}

fn nullable_enum(values: &[String]) -> Value {
    let mut all: Vec<Value> = vec![Value::Null];
    all.extend(values.iter().map(|v| Value::String(v.clone())));
    Value::Array(all)
}

/// The `image` schema.
pub fn image(formats: &EnabledFormats) -> Value {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let visibilities: Vec<&str> = Visibility::ALL.iter().map(|v| v.as_str()).collect();
    let uuid_ref = |description: &str| json!({"type": ["null", "string"], "pattern": UUID_PATTERN, "description": description});
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "properties": {
            "id": {"type": "string", "pattern": UUID_PATTERN,
                   "description": "An identifier for the image"},
            "name": {"type": ["null", "string"], "maxLength": 255,
                     "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "enum": statuses,
                       "description": "Status of the image"},
            "visibility": {"type": "string", "enum": visibilities,
                           "description": "Scope of image accessibility"},
            "protected": {"type": "boolean",
                          "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean",
                          "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32,
                         "description": "md5 hash of image contents."},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "maxLength": 64,
                             "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "maxLength": 128,
                              "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
            "owner": {"type": ["null", "string"], "maxLength": 255,
                      "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": true,
                     "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true,
                             "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "enum": nullable_enum(&formats.container),
                                 "description": "Format of the container"},
            "disk_format": {"type": ["null", "string"], "enum": nullable_enum(&formats.disk),
                            "description": "Format of the disk"},
            "created_at": {"type": "string", "readOnly": true,
                           "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true,
                           "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                     "description": "List of strings related to the image"},
            "direct_url": {"type": "string", "readOnly": true,
                           "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer",
                        "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer",
                         "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true,
                     "description": "An image self url"},
            "file": {"type": "string", "readOnly": true,
                     "description": "An image file url"},
            "stores": {"type": "string", "readOnly": true,
                       "description": "Store in which image data resides."},
            "schema": {"type": "string", "readOnly": true,
                       "description": "An image schema url"},
            "kernel_id": uuid_ref("ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."),
            "ramdisk_id": uuid_ref("ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."),
            "instance_uuid": {"type": "string", "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)"},
            "architecture": {"type": "string", "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
            "os_distro": {"type": "string", "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
            "os_version": {"type": "string", "description": "Operating system version as specified by the distributor."},
            "description": {"type": "string", "description": "A human-readable string describing this image."},
        },
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

fn images(formats: &EnabledFormats) -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image(formats)},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

fn member() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "pattern": UUID_PATTERN,
                         "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                       "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        },
    })
}

fn members() -> Value {
    json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_served_and_the_image_schema_names_every_core_attribute() {
        for name in ["image", "images", "member", "members"] {
            assert_eq!(
                schema(name, &EnabledFormats::default()).unwrap()["name"],
                name
            );
        }
        assert!(schema("other", &EnabledFormats::default()).is_none());
        let image = image(&EnabledFormats::default());
        let encoded = crate::http::image_v2::encode(&crate::model::Image::new(
            uuid::Uuid::nil(),
            Status::Queued,
            crate::timestamp::Timestamp::from_micros(0),
        ));
        for key in encoded.as_object().unwrap().keys() {
            assert!(
                image["properties"].get(key).is_some(),
                "{key} is in the schema"
            );
        }
    }
}
