//! Decodes the Registry API's JSON request body, `{"image": {...}, "from_state": "..."}`, into an
//! [`ImagePatch`]. Every malformed value is a typed error naming the field; nothing panics. Also
//! writes the Images API v1 image object ([`write_public_image`]), as its lists show it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::json_out::Object;
use crate::model::{parse_image_id, Invalid, PublicImage, Status, Visibility};
use crate::patch::ImagePatch;
use crate::timestamp::Timestamp;

/// A decoded registry create or update request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    /// The fields to set.
    pub patch: ImagePatch,
    /// Makes an update conditional on the image's current status (§9.4).
    pub from_state: Option<Status>,
}

/// Appends `image` as a JSON object to `out`: the same object `serde_json` makes of
/// [`PublicImage`] (a test holds the two equal), written with [`Object`], which escapes strings
/// a word at a time; a detailed list page writes 25 of them.
pub fn write_public_image(out: &mut Vec<u8>, image: &PublicImage<'_>) {
    let mut id_buffer = uuid::Uuid::encode_buffer();
    let mut object = Object::open(out);
    object.str("id", image.id.hyphenated().encode_lower(&mut id_buffer));
    object.opt_str("name", image.name.as_deref());
    object.word("status", image.status.as_str());
    object.u64("size", image.size);
    object.opt_u64("virtual_size", image.virtual_size);
    object.opt_str("disk_format", image.disk_format.as_deref());
    object.opt_str("container_format", image.container_format.as_deref());
    object.opt_str("checksum", image.checksum.as_deref());
    object.bool("is_public", image.is_public);
    object.bool("protected", image.protected);
    object.opt_str("owner", image.owner.as_deref());
    object.u64("min_disk", image.min_disk);
    object.u64("min_ram", image.min_ram);
    object.time("created_at", image.created_at);
    object.time("updated_at", image.updated_at);
    object.opt_time("deleted_at", image.deleted_at);
    object.bool("deleted", image.deleted);
    let mut properties = Object::open(object.key("properties"));
    for (key, value) in image.properties {
        properties.any_opt_str(key, value.as_deref());
    }
    properties.close();
    object.close();
}

/// Parses a registry request body. Unknown keys inside `image` are ignored, as upstream does.
pub fn decode_registry_body(body: &[u8]) -> Result<RegistryRequest, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Invalid(format!("Malformed JSON in request body: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(Invalid(
            "Malformed request body: expected a JSON object with an 'image' key".into(),
        ));
    };
    let image = match top.remove("image") {
        Some(Value::Object(image)) => image,
        Some(_) => {
            return Err(Invalid(
                "Malformed request body: 'image' must be an object".into(),
            ))
        }
        None => {
            return Err(Invalid(
                "Malformed request body: missing 'image' key".into(),
            ))
        }
    };
    let from_state = match top.remove("from_state") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(Status::parse(&s).ok_or_else(|| Invalid(format!("Invalid from_state '{s}'")))?)
        }
        Some(other) => return Err(Invalid(format!("Invalid from_state {other}"))),
    };
    Ok(RegistryRequest {
        patch: decode_image_object(image)?,
        from_state,
    })
}

/// Encodes a registry create or update request: only the fields `patch` sets, so that
/// `decode_registry_body(encode_registry_body(p, s))` gives back `p` and `s`.
pub fn encode_registry_body(patch: &ImagePatch, from_state: Option<Status>) -> Vec<u8> {
    let mut image = Map::new();
    let mut put = |key: &str, value: Value| {
        image.insert(key.to_string(), value);
    };
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let p = patch;
    if let Some(id) = p.id {
        put("id", Value::String(id.to_string()));
    }
    if let Some(v) = &p.name {
        put("name", text(v));
    }
    if let Some(s) = p.status {
        put("status", Value::String(s.as_str().into()));
    }
    if let Some(v) = p.size {
        put("size", v.into());
    }
    if let Some(v) = p.virtual_size {
        put("virtual_size", v.map_or(Value::Null, Value::from));
    }
    for (key, field) in [
        ("disk_format", &p.disk_format),
        ("container_format", &p.container_format),
        ("checksum", &p.checksum),
        ("location", &p.location),
        ("owner", &p.owner),
        ("os_hash_algo", &p.os_hash_algo),
        ("os_hash_value", &p.os_hash_value),
    ] {
        if let Some(v) = field {
            put(key, text(v));
        }
    }
    // `visibility` says more than `is_public` (and the decoder refuses both together).
    match (p.visibility, p.is_public) {
        (Some(v), _) => put("visibility", Value::String(v.as_str().into())),
        (None, Some(b)) => put("is_public", Value::Bool(b)),
        (None, None) => {}
    }
    if let Some(tags) = &p.tags {
        put(
            "tags",
            Value::Array(tags.iter().cloned().map(Value::String).collect()),
        );
    }
    for (key, field) in [
        ("protected", p.protected),
        ("deleted", p.deleted),
        ("os_hidden", p.os_hidden),
    ] {
        if let Some(v) = field {
            put(key, Value::Bool(v));
        }
    }
    for (key, field) in [("min_disk", p.min_disk), ("min_ram", p.min_ram)] {
        if let Some(v) = field {
            put(key, v.into());
        }
    }
    for (key, field) in [("created_at", p.created_at), ("updated_at", p.updated_at)] {
        if let Some(t) = field {
            put(key, Value::String(t.to_string()));
        }
    }
    if let Some(t) = p.deleted_at {
        put(
            "deleted_at",
            t.map_or(Value::Null, |t| Value::String(t.to_string())),
        );
    }
    if let Some(props) = &p.properties {
        put(
            "properties",
            Value::Object(props.iter().map(|(k, v)| (k.clone(), text(v))).collect()),
        );
    }
    let mut top = Map::new();
    top.insert("image".into(), Value::Object(image));
    if let Some(s) = from_state {
        top.insert("from_state".into(), Value::String(s.as_str().into()));
    }
    serde_json::to_vec(&Value::Object(top)).unwrap_or_default()
}

fn decode_image_object(mut obj: Map<String, Value>) -> Result<ImagePatch, Invalid> {
    if obj.contains_key("is_public") && obj.contains_key("visibility") {
        return Err(Invalid(
            "Specifying both 'visibility' and 'is_public' is not permitted.".into(),
        ));
    }
    let mut p = ImagePatch::default();
    if let Some(v) = obj.remove("id") {
        p.id = match v {
            Value::Null => None,
            Value::String(s) => Some(
                parse_image_id(&s)
                    .ok_or_else(|| Invalid(format!("Invalid image id format: '{s}'")))?,
            ),
            other => return Err(Invalid(format!("Invalid image id format: {other}"))),
        };
    }
    if let Some(v) = obj.remove("status") {
        p.status = Some(match v {
            Value::String(s) if s.is_empty() => {
                return Err(Invalid("Image status is required.".into()))
            }
            Value::String(s) => Status::parse(&s).ok_or_else(|| {
                Invalid(format!(
                    "Invalid image status '{s}' for image. Allowed values: active, saving, queued, killed"
                ))
            })?,
            Value::Null => return Err(Invalid("Image status is required.".into())),
            other => return Err(Invalid(format!("Invalid image status {other} for image."))),
        });
    }
    p.name = opt_text(&mut obj, "name")?;
    p.disk_format = opt_text(&mut obj, "disk_format")?;
    p.container_format = opt_text(&mut obj, "container_format")?;
    p.checksum = opt_text(&mut obj, "checksum")?;
    p.owner = opt_text(&mut obj, "owner")?;
    p.location = opt_text(&mut obj, "location")?;
    p.os_hash_algo = opt_text(&mut obj, "os_hash_algo")?;
    p.os_hash_value = opt_text(&mut obj, "os_hash_value")?;
    p.os_hidden = boolean(&mut obj, "os_hidden")?;
    if let Some(v) = obj.remove("tags") {
        p.tags = match v {
            Value::Null => None,
            Value::Array(tags) => Some(
                tags.into_iter()
                    .map(|t| match t {
                        Value::String(s) => Ok(s),
                        other => Err(Invalid(format!("Invalid tag {other}: expected a string"))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(Invalid(format!("Invalid tags {other}: expected a list"))),
        };
    }
    if p.location.is_none() {
        if let Some(Value::Array(urls)) = obj.remove("locations") {
            p.location = Some(match urls.into_iter().next() {
                Some(Value::String(s)) => Some(s),
                Some(Value::Object(mut o)) => match o.remove("url") {
                    Some(Value::String(s)) => Some(s),
                    _ => return Err(Invalid("Invalid 'locations' entry: no url".into())),
                },
                None => None,
                Some(other) => return Err(Invalid(format!("Invalid 'locations' entry {other}"))),
            });
        }
    }
    p.size = int(&mut obj, "size")?.map(|v| v.unwrap_or(0));
    p.virtual_size = int(&mut obj, "virtual_size")?;
    p.min_disk = int(&mut obj, "min_disk")?.map(|v| v.unwrap_or(0));
    p.min_ram = int(&mut obj, "min_ram")?.map(|v| v.unwrap_or(0));
    p.is_public = boolean(&mut obj, "is_public")?;
    if let Some(v) = obj.remove("visibility") {
        p.visibility = match &v {
            Value::String(s) => Visibility::parse(s),
            _ => None,
        };
        if p.visibility.is_none() {
            return Err(Invalid(format!("Invalid visibility {v}")));
        }
    }
    p.protected = boolean(&mut obj, "protected")?;
    p.deleted = boolean(&mut obj, "deleted")?;
    p.created_at = time(&mut obj, "created_at")?.flatten();
    p.updated_at = time(&mut obj, "updated_at")?.flatten();
    p.deleted_at = time(&mut obj, "deleted_at")?;
    if let Some(v) = obj.remove("properties") {
        p.properties = match v {
            Value::Null => None,
            Value::Object(map) => Some(properties(map)?),
            other => {
                return Err(Invalid(format!(
                    "Invalid properties {other}: expected an object of strings"
                )))
            }
        };
    }
    Ok(p)
}

fn opt_text(obj: &mut Map<String, Value>, field: &str) -> Result<Option<Option<String>>, Invalid> {
    match obj.remove(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s))),
        Some(Value::Number(n)) => Ok(Some(Some(n.to_string()))),
        Some(other) => Err(Invalid(format!(
            "Invalid value {other} for parameter '{field}': expected a string"
        ))),
    }
}

/// An integer field that may also arrive as a decimal string; null maps to `Some(None)`.
fn int(obj: &mut Map<String, Value>, field: &str) -> Result<Option<Option<u64>>, Invalid> {
    let v = match obj.remove(field) {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(v) => v,
    };
    let text = match &v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    if field == "virtual_size" && text == "None" {
        return Ok(Some(None));
    }
    match text.parse::<i128>() {
        Ok(n) if n < 0 => Err(Invalid(format!(
            "Invalid value '{text}' for parameter '{field}': Cannot be a negative value."
        ))),
        Ok(n) if n > i64::MAX as i128 => Err(Invalid(format!(
            "Invalid value '{text}' for parameter '{field}': value out of range."
        ))),
        Ok(n) => Ok(Some(Some(n as u64))),
        Err(_) => Err(Invalid(format!(
            "Invalid value '{text}' for parameter '{field}': Cannot convert image {field} '{text}' to an integer."
        ))),
    }
}

fn boolean(obj: &mut Map<String, Value>, field: &str) -> Result<Option<bool>, Invalid> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "y" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "f" | "n" | "no" | "off" => Ok(Some(false)),
            _ => Err(Invalid(format!(
                "Invalid value '{s}' for parameter '{field}': expected a boolean"
            ))),
        },
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
        Some(other) => Err(Invalid(format!(
            "Invalid value {other} for parameter '{field}': expected a boolean"
        ))),
    }
}

fn time(obj: &mut Map<String, Value>, field: &str) -> Result<Option<Option<Timestamp>>, Invalid> {
    match obj.remove(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => match Timestamp::parse(&s) {
            Ok(t) if t.year() >= 1900 => Ok(Some(Some(t))),
            _ => Err(Invalid(format!("Invalid time format for {field}."))),
        },
        Some(_) => Err(Invalid(format!("Invalid time format for {field}."))),
    }
}

fn properties(map: Map<String, Value>) -> Result<BTreeMap<String, Option<String>>, Invalid> {
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Null => None,
                Value::String(s) => Some(s),
                Value::Bool(b) => Some(if b { "True" } else { "False" }.to_string()),
                Value::Number(n) => Some(n.to_string()),
                other => {
                    return Err(Invalid(format!(
                        "Invalid value {other} for property '{k}': expected a string"
                    )))
                }
            };
            Ok((k, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The written v1 object is byte for byte what serde_json makes of `PublicImage`, for
    /// images with and without every optional field and with text that needs escaping.
    #[test]
    fn the_v1_object_is_written_as_serde_json_writes_it() {
        use crate::model::Image;
        let bare = Image::new(
            uuid::Uuid::new_v4(),
            Status::Queued,
            Timestamp::from_micros(0),
        );
        let mut full = Image::new(
            uuid::Uuid::new_v4(),
            Status::PendingDelete,
            Timestamp::from_micros(1_462_916_115_123_456),
        );
        full.name = Some("a \"quoted\" name\twith\u{1} controls – ünï".into());
        full.size = u64::MAX;
        full.virtual_size = Some(42);
        full.disk_format = Some("qcow2".into());
        full.container_format = Some("bare".into());
        full.checksum = Some("0123456789abcdef0123456789abcdef".into());
        full.is_public = true;
        full.protected = true;
        full.owner = Some("tenant\\one".into());
        full.min_disk = 3;
        full.min_ram = 512;
        full.deleted = true;
        full.deleted_at = Some(Timestamp::from_micros(1_462_916_200_000_001));
        full.properties
            .insert("os_distro".into(), Some("ubuntu".into()));
        full.properties.insert("empty".into(), None);
        full.properties
            .insert("key \"q\"\n".into(), Some("v\\".into()));
        for image in [bare, full] {
            let mut written = Vec::new();
            write_public_image(&mut written, &image.public_view());
            let expected = serde_json::to_vec(&image.public_view()).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    fn decode(s: &str) -> Result<RegistryRequest, String> {
        decode_registry_body(s.as_bytes()).map_err(|e| e.0)
    }

    #[test]
    fn decodes_every_field() {
        let r = decode(
            r#"{"image": {"id": "DE2F22113AC74260914241DB0ECFB425", "name": "n", "status": "queued",
            "size": 10, "virtual_size": "None", "disk_format": "raw", "container_format": "bare",
            "checksum": null, "is_public": true, "protected": "false", "min_ram": "5",
            "min_disk": null, "location": "file:///x", "owner": "t1",
            "created_at": "2016-05-10T21:41:41.000000", "deleted": false,
            "properties": {"a": "1", "b": null}, "unknown": [1]}, "from_state": "saving"}"#,
        )
        .unwrap();
        let p = r.patch;
        assert_eq!(
            p.id.unwrap().to_string(),
            "de2f2211-3ac7-4260-9142-41db0ecfb425"
        );
        assert_eq!(p.name, Some(Some("n".into())));
        assert_eq!(p.status, Some(Status::Queued));
        assert_eq!(p.size, Some(10));
        assert_eq!(p.virtual_size, Some(None));
        assert_eq!(p.checksum, Some(None));
        assert_eq!(p.is_public, Some(true));
        assert_eq!(p.protected, Some(false));
        assert_eq!(p.min_ram, Some(5));
        assert_eq!(p.min_disk, Some(0));
        assert_eq!(p.location, Some(Some("file:///x".into())));
        assert_eq!(p.properties.unwrap().len(), 2);
        assert_eq!(r.from_state, Some(Status::Saving));
        assert!(p.created_at.is_some());
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let patch = ImagePatch {
            id: Some(uuid::Uuid::new_v4()),
            name: Some(None),
            status: Some(Status::Saving),
            size: Some(7),
            virtual_size: Some(Some(9)),
            disk_format: Some(Some("raw".into())),
            checksum: Some(None),
            location: Some(Some("file:///x".into())),
            is_public: Some(true),
            min_ram: Some(3),
            tags: Some(["a".to_string(), "b c".to_string()].into()),
            os_hash_algo: Some(Some("sha512".into())),
            os_hash_value: Some(None),
            os_hidden: Some(true),
            created_at: Some(Timestamp::from_micros(1_000_000)),
            deleted_at: Some(None),
            properties: Some(
                [
                    ("a".to_string(), None),
                    ("b".to_string(), Some("c".to_string())),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let decoded =
            decode_registry_body(&encode_registry_body(&patch, Some(Status::Queued))).unwrap();
        assert_eq!(decoded.patch, patch);
        assert_eq!(decoded.from_state, Some(Status::Queued));
        let shared = ImagePatch {
            visibility: Some(Visibility::Community),
            ..Default::default()
        };
        let decoded = decode_registry_body(&encode_registry_body(&shared, None)).unwrap();
        assert_eq!(decoded.patch, shared);
        let empty =
            decode_registry_body(&encode_registry_body(&ImagePatch::default(), None)).unwrap();
        assert_eq!(empty.patch, ImagePatch::default());
    }

    #[test]
    fn rejects_bad_bodies_with_a_message() {
        for (body, want) in [
            ("", "Malformed JSON"),
            ("[1]", "expected a JSON object"),
            ("{}", "missing 'image' key"),
            (r#"{"image": 3}"#, "'image' must be an object"),
            (r#"{"image": {"id": "42"}}"#, "Invalid image id format"),
            (r#"{"image": {"status": ""}}"#, "Image status is required"),
            (
                r#"{"image": {"status": "gone"}}"#,
                "Invalid image status 'gone'",
            ),
            (
                r#"{"image": {"size": "big"}}"#,
                "Cannot convert image size 'big' to an integer",
            ),
            (
                r#"{"image": {"min_ram": -1}}"#,
                "Cannot be a negative value",
            ),
            (r#"{"image": {"size": 1.5}}"#, "to an integer"),
            (r#"{"image": {"is_public": "maybe"}}"#, "expected a boolean"),
            (
                r#"{"image": {"created_at": "yesterday"}}"#,
                "Invalid time format for created_at",
            ),
            (
                r#"{"image": {"created_at": "1850-01-01"}}"#,
                "Invalid time format for created_at",
            ),
            (r#"{"image": {"properties": [1]}}"#, "Invalid properties"),
            (
                r#"{"image": {"properties": {"k": {}}}}"#,
                "Invalid value {} for property 'k'",
            ),
            (r#"{"image": {"name": ["x"]}}"#, "parameter 'name'"),
            (
                r#"{"image": {"is_public": true, "visibility": "public"}}"#,
                "both",
            ),
            (
                r#"{"image": {}, "from_state": "nope"}"#,
                "Invalid from_state",
            ),
        ] {
            let err = decode(body).expect_err(body);
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
