//! The image as the Images API v2 shows and takes it: one JSON object with the core attributes
//! and the custom properties side by side at the top level. Encoding, the create body, and the
//! application of a JSON patch, all pure. Attribute rules follow Glance: read-only attributes
//! (`status`, `size`, `checksum`, ...) are refused with 403, reserved ones (`location`,
//! `deleted`, ...) too, wrong types and values with 400.

use std::collections::BTreeSet;

use serde_json::Value;

use super::json_out::Object;
use super::json_patch::{Change, Op};
use crate::model::{
    Image, Status, Visibility, CONTAINER_FORMATS, DISK_FORMATS, MAX_MIN_VALUE, MAX_NAME_LEN,
};
use crate::patch::ImagePatch;
use crate::timestamp::Timestamp;

/// Attributes the server manages: a request that sets one is refused (403).
pub const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "stores",
];

/// Attributes no request may name (403).
pub const RESERVED: &[&str] = &[
    "location",
    "locations",
    "deleted",
    "deleted_at",
    "properties",
];

/// Attributes a request may set.
pub const SETTABLE: &[&str] = &[
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "disk_format",
    "container_format",
    "tags",
    "owner",
];

/// Why a v2 request body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Malformed or against the schema (400).
    Invalid(String),
    /// Names a read-only or reserved attribute (403).
    Forbidden(String),
    /// A patch that removes or replaces a custom property that is not there (409).
    Conflict(String),
}

/// `2016-05-10T21:41:41Z`: v2's time format (seconds, UTC, `Z`).
pub fn v2_time(t: Timestamp) -> String {
    V2Time::of(t).as_str().to_owned()
}

/// [`v2_time`] in a stack buffer, for the serializer of every image shown.
struct V2Time {
    text: [u8; 20],
    /// Outside the years 0–9999 (see [`Timestamp::glance_bytes`]): the formatted text.
    other: Option<String>,
}

impl V2Time {
    fn of(t: Timestamp) -> V2Time {
        let mut text = *b"0000-00-00T00:00:00Z";
        match t.glance_bytes() {
            Some(glance) => {
                text[..19].copy_from_slice(&glance[..19]);
                V2Time { text, other: None }
            }
            None => {
                let glance = t.to_string();
                let seconds = glance.split('.').next().unwrap_or(&glance);
                V2Time {
                    text,
                    other: Some(format!("{seconds}Z")),
                }
            }
        }
    }

    fn as_str(&self) -> &str {
        match &self.other {
            Some(other) => other,
            None => std::str::from_utf8(&self.text).unwrap_or_default(),
        }
    }
}

/// Attributes the v2 object always carries; a custom property of the same name (possible through
/// v1) is not shown over them.
const SHOWN: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "min_ram",
    "min_disk",
    "disk_format",
    "container_format",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
];

/// `image` as the v2 JSON object, written straight from the record (no intermediate
/// `serde_json::Value`: lists write 25 of these per page). Custom properties whose value is null
/// (possible through v1) are left out, since v2's schema types them as strings.
pub struct V2Image<'a>(pub &'a Image);

impl V2Image<'_> {
    /// Appends the JSON object to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let image = self.0;
        let mut map = Object::open(out);
        for (k, v) in &image.properties {
            if let Some(v) = v {
                if !SHOWN.contains(&k.as_str()) {
                    map.any_str(k, v);
                }
            }
        }
        let mut id_buffer = uuid::Uuid::encode_buffer();
        let id = &*image.id.hyphenated().encode_lower(&mut id_buffer);
        // An image without data has no size yet (v1 may have declared one, which is kept).
        let no_size = image.size == 0 && matches!(image.status, Status::Queued | Status::Uploading);
        map.str("id", id);
        map.opt_str("name", image.name.as_deref());
        map.word("status", image.status.as_str());
        map.word("visibility", image.visibility.as_str());
        map.bool("protected", image.protected);
        map.bool("os_hidden", image.os_hidden);
        map.opt_str("checksum", image.checksum.as_deref());
        map.opt_str("os_hash_algo", image.os_hash_algo.as_deref());
        map.opt_str("os_hash_value", image.os_hash_value.as_deref());
        map.opt_str("owner", image.owner.as_deref());
        map.opt_u64("size", (!no_size).then_some(image.size));
        map.opt_u64("virtual_size", image.virtual_size);
        map.u64("min_ram", image.min_ram);
        map.u64("min_disk", image.min_disk);
        map.opt_str("disk_format", image.disk_format.as_deref());
        map.opt_str("container_format", image.container_format.as_deref());
        map.str("created_at", V2Time::of(image.created_at).as_str());
        map.str("updated_at", V2Time::of(image.updated_at).as_str());
        map.strs("tags", image.tags.iter().map(String::as_str));
        let mut link = String::with_capacity(64);
        link.push_str("/v2/images/");
        link.push_str(id);
        map.str("self", &link);
        link.push_str("/file");
        map.str("file", &link);
        map.word("schema", "/v2/schemas/image");
        map.close();
    }

    /// The JSON object as bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        out
    }
}

/// The v2 JSON object of `image` as a value (see [`V2Image`]).
pub fn encode(image: &Image) -> Value {
    serde_json::from_slice(&V2Image(image).to_json()).unwrap_or(Value::Null)
}

/// Decodes the body of `POST /v2/images` into a patch for a new image (status `queued`,
/// visibility `shared` unless given). `id` may be given.
pub fn decode_create(body: &[u8]) -> Result<ImagePatch, BodyError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BodyError::Invalid(format!("Malformed JSON in request body: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(BodyError::Invalid(
            "Request body must be a JSON object.".into(),
        ));
    };
    let mut image = Image::new(uuid::Uuid::nil(), Status::Queued, Timestamp::from_micros(0));
    let mut id = None;
    for (attr, value) in obj {
        if attr == "id" {
            let text = value.as_str().unwrap_or_default();
            id = Some(crate::model::parse_image_id(text).ok_or_else(|| {
                BodyError::Invalid(format!(
                    "Provided object does not match schema 'image': {value} is not a valid image id"
                ))
            })?);
            continue;
        }
        check_writable(&attr)?;
        set(&mut image, &attr, value)?;
    }
    Ok(ImagePatch {
        id,
        name: Some(image.name),
        visibility: Some(image.visibility),
        protected: Some(image.protected),
        os_hidden: Some(image.os_hidden),
        min_ram: Some(image.min_ram),
        min_disk: Some(image.min_disk),
        disk_format: Some(image.disk_format),
        container_format: Some(image.container_format),
        tags: Some(image.tags),
        owner: image.owner.map(Some),
        properties: Some(image.properties),
        status: Some(Status::Queued),
        ..Default::default()
    })
}

/// Applies `changes` in order to a copy of `image` and returns the patch that makes the record
/// equal to it (properties as the full set: apply it with `purge_props`).
pub fn apply_changes(image: &Image, changes: &[Change]) -> Result<ImagePatch, BodyError> {
    let mut new = image.clone();
    for change in changes {
        check_writable(&change.attr)?;
        let core = SETTABLE.contains(&change.attr.as_str());
        let present = new.properties.contains_key(&change.attr);
        match change.op {
            Op::Remove if core => {
                return Err(BodyError::Forbidden(format!(
                    "Property {} may not be removed.",
                    change.attr
                )))
            }
            Op::Remove | Op::Replace if !core && !present => {
                return Err(BodyError::Conflict(format!(
                    "Property {} does not exist.",
                    change.attr
                )))
            }
            Op::Remove => {
                new.properties.remove(&change.attr);
            }
            Op::Add | Op::Replace => {
                set(
                    &mut new,
                    &change.attr,
                    change.value.clone().unwrap_or(Value::Null),
                )?;
            }
        }
    }
    Ok(ImagePatch {
        name: Some(new.name),
        visibility: Some(new.visibility),
        protected: Some(new.protected),
        os_hidden: Some(new.os_hidden),
        min_ram: Some(new.min_ram),
        min_disk: Some(new.min_disk),
        disk_format: Some(new.disk_format),
        container_format: Some(new.container_format),
        tags: Some(new.tags),
        owner: Some(new.owner),
        properties: Some(new.properties),
        ..Default::default()
    })
}

fn check_writable(attr: &str) -> Result<(), BodyError> {
    if READ_ONLY.contains(&attr) {
        return Err(BodyError::Forbidden(format!(
            "Attribute '{attr}' is read-only."
        )));
    }
    if RESERVED.contains(&attr) {
        return Err(BodyError::Forbidden(format!(
            "Attribute '{attr}' is reserved."
        )));
    }
    Ok(())
}

fn schema_error(detail: String) -> BodyError {
    BodyError::Invalid(format!(
        "Provided object does not match schema 'image': {detail}"
    ))
}

/// Sets attribute `attr` of `image` to `value`, checking it against the image schema.
fn set(image: &mut Image, attr: &str, value: Value) -> Result<(), BodyError> {
    let nullable_text = |value: &Value, max: usize| -> Result<Option<String>, BodyError> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
            Value::String(s) => Err(schema_error(format!("'{s}' is too long"))),
            other => Err(schema_error(format!(
                "{other} is not of type 'null', 'string'"
            ))),
        }
    };
    let boolean = |value: &Value| {
        value
            .as_bool()
            .ok_or_else(|| schema_error(format!("{value} is not of type 'boolean'")))
    };
    let integer = |value: &Value| match value.as_u64() {
        Some(n) if n <= MAX_MIN_VALUE => Ok(n),
        _ if value.is_i64() || value.is_u64() => Err(schema_error(format!(
            "{value} is out of range: 0 to {MAX_MIN_VALUE}"
        ))),
        _ => Err(schema_error(format!("{value} is not of type 'integer'"))),
    };
    let format = |value: &Value, allowed: &[&str]| -> Result<Option<String>, BodyError> {
        match nullable_text(value, MAX_NAME_LEN)? {
            Some(f) if !allowed.contains(&f.as_str()) => {
                Err(schema_error(format!("'{f}' is not one of {allowed:?}")))
            }
            other => Ok(other),
        }
    };
    match attr {
        "name" => image.name = nullable_text(&value, MAX_NAME_LEN)?,
        "owner" => image.owner = nullable_text(&value, MAX_NAME_LEN)?,
        "visibility" => {
            image.visibility = value.as_str().and_then(Visibility::parse).ok_or_else(|| {
                schema_error(format!(
                    "{value} is not one of ['community', 'public', 'private', 'shared']"
                ))
            })?;
            image.is_public = image.visibility == Visibility::Public;
        }
        "protected" => image.protected = boolean(&value)?,
        "os_hidden" => image.os_hidden = boolean(&value)?,
        "min_ram" => image.min_ram = integer(&value)?,
        "min_disk" => image.min_disk = integer(&value)?,
        "disk_format" => image.disk_format = format(&value, DISK_FORMATS)?,
        "container_format" => image.container_format = format(&value, CONTAINER_FORMATS)?,
        "tags" => {
            let Value::Array(items) = value else {
                return Err(schema_error(format!("{value} is not of type 'array'")));
            };
            let mut tags = BTreeSet::new();
            for item in items {
                match item {
                    Value::String(t) if !t.is_empty() && t.chars().count() <= MAX_NAME_LEN => {
                        tags.insert(t);
                    }
                    other => {
                        return Err(schema_error(format!(
                        "{other} is not a valid tag (a string of 1 to {MAX_NAME_LEN} characters)"
                    )))
                    }
                }
            }
            image.tags = tags;
        }
        _ => match value {
            Value::String(s) => {
                if attr.chars().count() > MAX_NAME_LEN {
                    return Err(schema_error(format!("property name '{attr}' is too long")));
                }
                image.properties.insert(attr.to_string(), Some(s));
            }
            other => {
                return Err(schema_error(format!(
                    "{other} is not of type 'string' (property '{attr}')"
                )))
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_patch;

    fn image() -> Image {
        let mut img = Image::new(
            uuid::Uuid::new_v4(),
            Status::Active,
            Timestamp::from_micros(1_500_000),
        );
        img.properties
            .insert("os_distro".into(), Some("ubuntu".into()));
        img.properties.insert("from_v1".into(), None);
        img
    }

    /// v2 times are whole seconds with `Z`, in and outside the years 0–9999.
    #[test]
    fn v2_times_are_seconds_in_utc() {
        let at = |micros| v2_time(Timestamp::from_micros(micros));
        assert_eq!(at(1_462_916_115_123_456), "2016-05-10T21:35:15Z");
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        let year_10000 = Timestamp::parse("9999-12-31T23:59:59.999999").unwrap();
        assert_eq!(v2_time(year_10000), "9999-12-31T23:59:59Z");
        let later = Timestamp::from_micros(year_10000.as_micros() + 1_000_000);
        assert_eq!(v2_time(later), "10000-01-01T00:00:00Z");
        let json = encode(&image());
        assert_eq!(json["created_at"], "1970-01-01T00:00:01Z");
        assert_eq!(json["id"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn encodes_core_attributes_and_properties_at_the_top_level() {
        let img = image();
        let v = encode(&img);
        assert_eq!(v["os_distro"], "ubuntu");
        assert!(
            v.get("from_v1").is_none(),
            "null v1 properties are left out"
        );
        assert_eq!(v["visibility"], "shared");
        assert_eq!(v["created_at"], "1970-01-01T00:00:01Z");
        assert_eq!(v["self"], format!("/v2/images/{}", img.id));
        assert_eq!(v["tags"], Value::Array(vec![]));
        assert_eq!(v["size"], 0);
        let mut shadow = img.clone();
        shadow
            .properties
            .insert("name".into(), Some("from a v1 property".into()));
        assert_eq!(encode(&shadow)["name"], Value::Null, "core attributes win");
    }

    #[test]
    fn create_takes_core_and_custom_attributes_and_refuses_read_only_ones() {
        let p = decode_create(br#"{"name": "c", "visibility": "private", "tags": ["a"], "min_ram": 5, "os_distro": "x"}"#).unwrap();
        assert_eq!(p.name, Some(Some("c".into())));
        assert_eq!(p.visibility, Some(Visibility::Private));
        assert_eq!(p.min_ram, Some(5));
        assert_eq!(p.properties.unwrap()["os_distro"], Some("x".into()));
        for (body, want) in [
            (
                r#"{"status": "active"}"#,
                BodyError::Forbidden("Attribute 'status' is read-only.".into()),
            ),
            (
                r#"{"location": "x"}"#,
                BodyError::Forbidden("Attribute 'location' is reserved.".into()),
            ),
        ] {
            assert_eq!(decode_create(body.as_bytes()), Err(want));
        }
        for body in [
            r#"{"visibility": "everyone"}"#,
            r#"{"min_ram": -1}"#,
            r#"{"min_ram": "5"}"#,
            r#"{"protected": "yes"}"#,
            r#"{"disk_format": "floppy"}"#,
            r#"{"tags": "a"}"#,
            r#"{"os_distro": 5}"#,
            r#"{"id": "not-a-uuid"}"#,
            r#"[]"#,
        ] {
            assert!(
                matches!(decode_create(body.as_bytes()), Err(BodyError::Invalid(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn patches_follow_glances_rules() {
        let img = image();
        let patch = |body: &str| apply_changes(&img, &json_patch::parse(body.as_bytes()).unwrap());
        let p = patch(r#"[{"op": "replace", "path": "/name", "value": "n"}, {"op": "add", "path": "/k", "value": "v"}, {"op": "remove", "path": "/os_distro"}]"#).unwrap();
        assert_eq!(p.name, Some(Some("n".into())));
        let props = p.properties.unwrap();
        assert_eq!(props.get("k"), Some(&Some("v".into())));
        assert!(!props.contains_key("os_distro"));
        assert!(matches!(
            patch(r#"[{"op": "remove", "path": "/name"}]"#),
            Err(BodyError::Forbidden(_))
        ));
        assert!(matches!(
            patch(r#"[{"op": "replace", "path": "/size", "value": 1}]"#),
            Err(BodyError::Forbidden(_))
        ));
        assert!(matches!(
            patch(r#"[{"op": "replace", "path": "/nope", "value": "1"}]"#),
            Err(BodyError::Conflict(_))
        ));
        assert!(matches!(
            patch(r#"[{"op": "remove", "path": "/nope"}]"#),
            Err(BodyError::Conflict(_))
        ));
        assert!(matches!(
            patch(r#"[{"op": "add", "path": "/visibility", "value": "x"}]"#),
            Err(BodyError::Invalid(_))
        ));
    }
}
