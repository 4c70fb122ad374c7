//! The header codec of the Images API (spec §4): `x-image-meta-*` and `x-image-meta-property-*`
//! request headers into an [`ImagePatch`], and an [`Image`] into response headers. Pure: decoding
//! any header map returns a value or a typed error, never a panic.

use std::collections::BTreeMap;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, ETAG};

use crate::model::{
    Image, Invalid, CONTAINER_FORMATS, DISK_FORMATS, MAX_CHECKSUM_LEN, MAX_MIN_VALUE, MAX_NAME_LEN,
};
use crate::patch::ImagePatch;
use crate::timestamp::Timestamp;
use uuid::Uuid;

/// Prefix of every metadata header.
pub const META_PREFIX: &str = "x-image-meta-";
/// Prefix of property headers.
pub const PROPERTY_PREFIX: &str = "x-image-meta-property-";

/// Core field names a request may send (§4.1 rule 5); anything else is `400 Bad header`.
const ALLOWED_FIELDS: &[&str] = &[
    "location",
    "size",
    "is_public",
    "disk_format",
    "container_format",
    "name",
    "status",
    "copy_from",
    "uri",
    "checksum",
    "created_at",
    "updated_at",
    "deleted_at",
    "min_ram",
    "min_disk",
    "owner",
    "store",
    "id",
    "protected",
    "deleted",
    "virtual_size",
];

const AMAZON_FORMATS: &[&str] = &["aki", "ari", "ami"];

/// Metadata decoded from request headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaHeaders {
    /// The fields to set: core fields and properties. `status`, `id` and `location` are not in
    /// it (they have rules of their own), nor the timestamps and `deleted` (validated, ignored).
    pub patch: ImagePatch,
    /// `x-image-meta-id`, as sent.
    pub id: Option<String>,
    /// `x-image-meta-status`, as sent.
    pub status: Option<String>,
    /// `x-image-meta-location`, as sent (present even when empty).
    pub location: Option<String>,
    /// `x-image-meta-store`: which store takes the upload.
    pub store: Option<String>,
    /// `x-glance-api-copy-from`.
    pub copy_from: Option<String>,
}

/// Reads a request header value: bytes as UTF-8, falling back to Latin-1 (§14 #31), then
/// `%XX` escapes decoded, because python-glanceclient 2.x percent-encodes every value it sends
/// (LP #1766235) and an operator's `--name "My Image"` must not be stored as `My%20Image`.
fn request_text(v: &HeaderValue) -> String {
    crate::http::query::percent_decode(&header_text(v))
}

/// Reads header bytes as UTF-8, falling back to Latin-1 (§14 #31).
fn header_text(v: &HeaderValue) -> String {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => s.trim().to_string(),
        Err(_) => v
            .as_bytes()
            .iter()
            .map(|&b| b as char)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}

/// Decodes the metadata headers of a request (§4.1). Timestamps are checked but not kept.
pub fn decode_image_meta(headers: &HeaderMap) -> Result<MetaHeaders, Invalid> {
    let mut meta = MetaHeaders::default();
    let mut properties = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str(); // header names are already lower case
        let text = request_text(value);
        let nullable = || (!text.is_empty()).then(|| text.clone());
        if let Some(key) = name.strip_prefix(PROPERTY_PREFIX) {
            properties.insert(key.replace('-', "_"), nullable());
            continue;
        }
        if name == "x-glance-api-copy-from" {
            meta.copy_from = Some(text);
            continue;
        }
        let Some(field) = name.strip_prefix(META_PREFIX) else {
            continue;
        };
        let field = field.replace('-', "_");
        let p = &mut meta.patch;
        match field.as_str() {
            "name" => p.name = Some(nullable()),
            "disk_format" => p.disk_format = Some(nullable()),
            "container_format" => p.container_format = Some(nullable()),
            "checksum" => p.checksum = Some(nullable()),
            "owner" => p.owner = Some(nullable()),
            "size" => p.size = int_field(&field, &text)?,
            "min_ram" => p.min_ram = Some(int_field(&field, &text)?.unwrap_or(0)),
            "min_disk" => p.min_disk = Some(int_field(&field, &text)?.unwrap_or(0)),
            "virtual_size" if text == "None" => p.virtual_size = Some(None),
            "virtual_size" => p.virtual_size = Some(int_field(&field, &text)?),
            "is_public" => p.is_public = Some(truthy(&text)),
            "protected" => p.protected = Some(truthy(&text)),
            "deleted" => {}
            "created_at" | "updated_at" | "deleted_at" => {
                if !text.is_empty() && !Timestamp::parse(&text).is_ok_and(|t| t.year() >= 1900) {
                    return Err(Invalid(format!("Invalid time format for {field}.")));
                }
            }
            "id" => meta.id = Some(text),
            "status" => meta.status = Some(text),
            "location" => meta.location = Some(text),
            "store" => meta.store = Some(text),
            "copy_from" | "uri" => {}
            _ => {
                debug_assert!(!ALLOWED_FIELDS.contains(&field.as_str()));
                return Err(Invalid(format!("Bad header: {name}")));
            }
        }
    }
    if !properties.is_empty() {
        meta.patch.properties = Some(properties);
    }
    Ok(meta)
}

impl MetaHeaders {
    /// Checks the request's own values (§5.5 step 2, §7.1–7.2): formats, the aki/ari/ami rule
    /// (filling in the other format when only one is given), name, checksum and ranges.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        let p = &mut self.patch;
        for (field, value, allowed) in [
            ("disk format", &p.disk_format, DISK_FORMATS),
            ("container format", &p.container_format, CONTAINER_FORMATS),
        ] {
            if let Some(v) = value {
                let v = v.as_deref().unwrap_or("None");
                if !allowed.contains(&v) {
                    return Err(Invalid(format!(
                        "Invalid {field} '{v}' for image. Allowed values: {}",
                        allowed.join(", ")
                    )));
                }
            }
        }
        fn amazon(f: &Option<Option<String>>) -> Option<String> {
            f.clone()
                .flatten()
                .filter(|f| AMAZON_FORMATS.contains(&f.as_str()))
        }
        if let Some(fmt) = amazon(&p.disk_format).or(amazon(&p.container_format)) {
            let fmt = Some(Some(fmt));
            match (&p.disk_format, &p.container_format) {
                (Some(d), Some(c)) if d != c => {
                    return Err(Invalid(
                        "Invalid mix of disk and container formats. When setting a disk or \
                         container format to one of 'aki', 'ari', or 'ami', the container and \
                         disk formats must match."
                            .into(),
                    ))
                }
                (None, _) => p.disk_format = fmt,
                (_, None) => p.container_format = fmt,
                _ => {}
            }
        }
        if let Some(Some(name)) = &p.name {
            let n = name.chars().count();
            if n > MAX_NAME_LEN {
                return Err(Invalid(format!("Image name too long: {n}")));
            }
        }
        if let Some(Some(c)) = &p.checksum {
            if c.chars().count() > MAX_CHECKSUM_LEN {
                return Err(Invalid(format!(
                    "Invalid checksum '{c}': can't exceed {MAX_CHECKSUM_LEN} characters"
                )));
            }
        }
        for (field, v) in [("min_disk", p.min_disk), ("min_ram", p.min_ram)] {
            if v.is_some_and(|v| v > MAX_MIN_VALUE) {
                return Err(Invalid(format!(
                    "Invalid value for parameter '{field}': '{field}' value out of range, must not exceed {MAX_MIN_VALUE}."
                )));
            }
        }
        Ok(())
    }
}

fn int_field(field: &str, text: &str) -> Result<Option<u64>, Invalid> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i128>() {
        Ok(n) if n < 0 => Err(Invalid(format!(
            "Invalid value '{text}' for parameter '{field}': Cannot be a negative value."
        ))),
        Ok(n) if n > i64::MAX as i128 => Err(Invalid(format!(
            "Invalid value '{text}' for parameter '{field}': value out of range."
        ))),
        Ok(n) => Ok(Some(n as u64)),
        Err(_) => Err(Invalid(format!(
            "Invalid value '{text}' for parameter '{field}': Cannot convert image {field} '{text}' to an integer."
        ))),
    }
}

/// Glance's permissive boolean: `1 t true on y yes` (any case) are true, anything else false.
pub fn truthy(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// Writes `image` as response headers (§4.2): underscore names, `True`/`False`, nulls omitted,
/// one header per property, never the location; plus `ETag` (the checksum in double quotes, as
/// HTTP spells an entity-tag) when there is a checksum.
pub fn encode_image_meta(image: &Image, headers: &mut HeaderMap) {
    // Every HEAD and GET of an image writes these, so the names are constants (no formatting or
    // parsing) and each value is made with at most one allocation.
    const fn meta(name: &'static str) -> HeaderName {
        HeaderName::from_static(name)
    }
    const ID: HeaderName = meta("x-image-meta-id");
    const NAME: HeaderName = meta("x-image-meta-name");
    const STATUS: HeaderName = meta("x-image-meta-status");
    const SIZE: HeaderName = meta("x-image-meta-size");
    const VIRTUAL_SIZE: HeaderName = meta("x-image-meta-virtual_size");
    const DISK_FORMAT: HeaderName = meta("x-image-meta-disk_format");
    const CONTAINER_FORMAT: HeaderName = meta("x-image-meta-container_format");
    const CHECKSUM: HeaderName = meta("x-image-meta-checksum");
    const IS_PUBLIC: HeaderName = meta("x-image-meta-is_public");
    const PROTECTED: HeaderName = meta("x-image-meta-protected");
    const DELETED: HeaderName = meta("x-image-meta-deleted");
    const MIN_RAM: HeaderName = meta("x-image-meta-min_ram");
    const MIN_DISK: HeaderName = meta("x-image-meta-min_disk");
    const OWNER: HeaderName = meta("x-image-meta-owner");
    const CREATED_AT: HeaderName = meta("x-image-meta-created_at");
    const UPDATED_AT: HeaderName = meta("x-image-meta-updated_at");
    const DELETED_AT: HeaderName = meta("x-image-meta-deleted_at");
    let bool_value = |b: bool| HeaderValue::from_static(if b { "True" } else { "False" });
    let text = |value: &Option<String>| value.as_deref().map(header_value);

    headers.reserve(18 + image.properties.len());
    let mut id = Uuid::encode_buffer();
    headers.insert(
        ID,
        header_value(image.id.hyphenated().encode_lower(&mut id)),
    );
    let fields = [
        (NAME, text(&image.name)),
        (
            STATUS,
            Some(HeaderValue::from_static(image.status.as_str())),
        ),
        (SIZE, Some(HeaderValue::from(image.size))),
        (VIRTUAL_SIZE, image.virtual_size.map(HeaderValue::from)),
        (DISK_FORMAT, text(&image.disk_format)),
        (CONTAINER_FORMAT, text(&image.container_format)),
        (CHECKSUM, text(&image.checksum)),
        (IS_PUBLIC, Some(bool_value(image.is_public))),
        (PROTECTED, Some(bool_value(image.protected))),
        (DELETED, Some(bool_value(image.deleted))),
        (MIN_RAM, Some(HeaderValue::from(image.min_ram))),
        (MIN_DISK, Some(HeaderValue::from(image.min_disk))),
        (OWNER, text(&image.owner)),
        (CREATED_AT, Some(timestamp_value(image.created_at))),
        (UPDATED_AT, Some(timestamp_value(image.updated_at))),
        (DELETED_AT, image.deleted_at.map(timestamp_value)),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
    if !image.deleted {
        let mut name = String::with_capacity(PROPERTY_PREFIX.len() + 32);
        for (key, value) in &image.properties {
            let Some(value) = value else { continue };
            name.clear();
            name.push_str(PROPERTY_PREFIX);
            name.extend(key.chars().map(|c| c.to_ascii_lowercase()));
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => {
                    headers.insert(name, header_value(value));
                }
                Err(_) => crate::debug!("property '{key}' cannot be a header name; not sent"),
            }
        }
    }
    if let Some(checksum) = &image.checksum {
        headers.insert(ETAG, header_value(&format!("\"{checksum}\"")));
    }
}

/// A timestamp as a header value, in Glance's format.
fn timestamp_value(at: Timestamp) -> HeaderValue {
    match at.glance_bytes() {
        Some(text) => HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("")),
        None => header_value(&at.to_string()),
    }
}

/// A header value for `text`, as UTF-8 bytes; control characters become spaces.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| {
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        HeaderValue::from_bytes(cleaned.as_bytes()).unwrap_or(HeaderValue::from_static(""))
    })
}

/// Writes the fields a patch sets as request headers, as the Images API reads them (§4.1): the
/// client half of the codec, so that `decode_image_meta(encode_patch_headers(p)) == p` for the
/// fields a client may send.
pub fn encode_patch_headers(patch: &ImagePatch, headers: &mut HeaderMap) {
    let mut put = |name: String, value: Option<String>| {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            let encoded = crate::http::query::percent_encode_header(value.as_deref().unwrap_or(""));
            headers.insert(name, header_value(&encoded));
        }
    };
    let field = |f: &str| format!("{META_PREFIX}{f}");
    let bool_text = |b: bool| Some(if b { "True" } else { "False" }.to_string());
    if let Some(id) = patch.id {
        put(field("id"), Some(id.to_string()));
    }
    for (name, value) in [
        ("name", &patch.name),
        ("disk_format", &patch.disk_format),
        ("container_format", &patch.container_format),
        ("checksum", &patch.checksum),
        ("owner", &patch.owner),
        ("location", &patch.location),
    ] {
        if let Some(v) = value {
            put(field(name), v.clone());
        }
    }
    for (name, value) in [
        ("size", patch.size),
        ("min_ram", patch.min_ram),
        ("min_disk", patch.min_disk),
    ] {
        if let Some(v) = value {
            put(field(name), Some(v.to_string()));
        }
    }
    if let Some(v) = patch.virtual_size {
        put(
            field("virtual_size"),
            Some(v.map_or("None".to_string(), |v| v.to_string())),
        );
    }
    if let Some(v) = patch.is_public {
        put(field("is_public"), bool_text(v));
    }
    if let Some(v) = patch.protected {
        put(field("protected"), bool_text(v));
    }
    for (key, value) in patch.properties.iter().flatten() {
        put(
            format!("{PROPERTY_PREFIX}{}", key.to_ascii_lowercase()),
            value.clone(),
        );
    }
}

/// Reads an image back from response headers (HEAD or GET), as a client does (§4.4).
pub fn decode_response_image(headers: &HeaderMap) -> Result<Image, Invalid> {
    let text = |f: &str| {
        headers
            .get(format!("{META_PREFIX}{f}").as_str())
            .map(header_text)
    };
    let opt = |f: &str| text(f).filter(|v| !v.is_empty());
    let int = |f: &str| -> Result<u64, Invalid> {
        match opt(f) {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| Invalid(format!("server sent a bad {f}: '{v}'"))),
        }
    };
    let time = |f: &str| -> Result<Option<Timestamp>, Invalid> {
        opt(f)
            .map(|v| {
                Timestamp::parse(&v).map_err(|_| Invalid(format!("server sent a bad {f}: '{v}'")))
            })
            .transpose()
    };
    let id = opt("id").ok_or_else(|| Invalid("server sent no x-image-meta-id".into()))?;
    let id = crate::model::parse_image_id(&id)
        .ok_or_else(|| Invalid(format!("server sent a bad id: '{id}'")))?;
    let status = opt("status").unwrap_or_default();
    let status = crate::model::Status::parse(&status)
        .ok_or_else(|| Invalid(format!("server sent a bad status: '{status}'")))?;
    let created_at = time("created_at")?.unwrap_or(Timestamp::from_micros(0));
    let mut image = Image::new(id, status, created_at);
    image.updated_at = time("updated_at")?.unwrap_or(created_at);
    image.deleted_at = time("deleted_at")?;
    image.name = opt("name");
    image.disk_format = opt("disk_format");
    image.container_format = opt("container_format");
    image.checksum = opt("checksum");
    image.owner = opt("owner");
    image.size = int("size")?;
    image.min_ram = int("min_ram")?;
    image.min_disk = int("min_disk")?;
    image.virtual_size = opt("virtual_size")
        .filter(|v| v != "None")
        .map(|v| v.parse())
        .transpose()
        .map_err(|_| Invalid("server sent a bad virtual_size".into()))?;
    image.is_public = text("is_public").is_some_and(|v| truthy(&v));
    if image.is_public {
        image.visibility = crate::model::Visibility::Public;
    }
    image.protected = text("protected").is_some_and(|v| truthy(&v));
    image.deleted = text("deleted").is_some_and(|v| truthy(&v));
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(PROPERTY_PREFIX) {
            image
                .properties
                .insert(key.to_string(), Some(header_text(value)));
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use uuid::Uuid;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        h
    }

    fn decode(pairs: &[(&str, &str)]) -> Result<MetaHeaders, String> {
        decode_image_meta(&headers(pairs)).map_err(|e| e.0)
    }

    #[test]
    fn decodes_core_fields_any_spelling() {
        let m = decode(&[
            ("X-Image-Meta-Disk-Format", "raw"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-name", "My Image"),
            ("x-image-meta-size", "42"),
            ("x-image-meta-is_public", "True"),
            ("x-image-meta-protected", "garbage"),
            ("x-image-meta-min-ram", "512"),
            ("x-image-meta-virtual_size", "None"),
            ("x-image-meta-checksum", ""),
            ("x-image-meta-store", "file"),
            ("x-image-meta-id", "abc"),
            ("x-image-meta-status", "active"),
            ("x-image-meta-created_at", "2016-05-10T21:41:41.000000"),
            ("content-type", "application/octet-stream"),
        ])
        .unwrap();
        let p = &m.patch;
        assert_eq!(p.disk_format, Some(Some("raw".into())));
        assert_eq!(p.container_format, Some(Some("bare".into())));
        assert_eq!(p.name, Some(Some("My Image".into())));
        assert_eq!(p.size, Some(42));
        assert_eq!(p.is_public, Some(true));
        assert_eq!(
            p.protected,
            Some(false),
            "anything not truthy is false, never an error"
        );
        assert_eq!(p.min_ram, Some(512));
        assert_eq!(p.virtual_size, Some(None));
        assert_eq!(p.checksum, Some(None), "an empty value means null");
        assert_eq!(
            (m.store.as_deref(), m.id.as_deref(), m.status.as_deref()),
            (Some("file"), Some("abc"), Some("active"))
        );
        assert_eq!(
            p.created_at, None,
            "client timestamps are validated, then ignored"
        );
    }

    #[test]
    fn decodes_properties_lowercased_with_underscores() {
        let m = decode(&[
            ("X-Image-Meta-Property-Foo-Bar", "x"),
            ("x-image-meta-property-empty", ""),
        ])
        .unwrap();
        let props = m.patch.properties.unwrap();
        assert_eq!(props.get("foo_bar"), Some(&Some("x".to_string())));
        assert_eq!(props.get("empty"), Some(&None));
    }

    #[test]
    fn rejects_bad_headers_with_the_upstream_messages() {
        for (pairs, want) in [
            (vec![("x-image-meta-colour", "red")], "Bad header: x-image-meta-colour"),
            (vec![("x-image-meta-size", "big")], "Invalid value 'big' for parameter 'size': Cannot convert image size 'big' to an integer."),
            (vec![("x-image-meta-min_disk", "-1")], "Invalid value '-1' for parameter 'min_disk': Cannot be a negative value."),
            (vec![("x-image-meta-updated_at", "soon")], "Invalid time format for updated_at."),
        ] {
            assert_eq!(decode(&pairs).unwrap_err(), want);
        }
    }

    fn validate(pairs: &[(&str, &str)]) -> Result<MetaHeaders, String> {
        let mut m = decode(pairs)?;
        m.validate().map_err(|e| e.0)?;
        Ok(m)
    }

    #[test]
    fn validates_request_values() {
        assert!(validate(&[("x-image-meta-disk_format", "floppy")])
            .unwrap_err()
            .starts_with("Invalid disk format 'floppy' for image."));
        assert!(validate(&[("x-image-meta-container_format", "")])
            .unwrap_err()
            .starts_with("Invalid container format 'None' for image."));
        assert!(validate(&[
            ("x-image-meta-disk_format", "ami"),
            ("x-image-meta-container_format", "bare")
        ])
        .unwrap_err()
        .starts_with("Invalid mix of disk and container formats."));
        let m = validate(&[("x-image-meta-disk_format", "aki")]).unwrap();
        assert_eq!(
            m.patch.container_format,
            Some(Some("aki".into())),
            "the other format is filled in"
        );
        assert_eq!(
            validate(&[("x-image-meta-name", &"n".repeat(256))]).unwrap_err(),
            "Image name too long: 256"
        );
        assert!(validate(&[("x-image-meta-checksum", &"a".repeat(33))])
            .unwrap_err()
            .contains("can't exceed 32 characters"));
        assert!(validate(&[("x-image-meta-min_ram", "2147483648")])
            .unwrap_err()
            .contains("must not exceed 2147483647"));
    }

    #[test]
    fn encodes_like_glance_queens() {
        let mut img = Image::new(Uuid::nil(), Status::Active, Timestamp::from_micros(0));
        img.name = Some("cirros".into());
        img.checksum = Some("8a40c862b5735975d82605c1dd395796".into());
        img.is_public = true;
        img.location = Some("file:///secret/place".into());
        img.properties
            .insert("Distro".into(), Some("Ubuntu".into()));
        img.properties.insert("nothing".into(), None);
        let mut h = HeaderMap::new();
        encode_image_meta(&img, &mut h);
        assert_eq!(h["x-image-meta-is_public"], "True");
        assert_eq!(h["x-image-meta-protected"], "False");
        assert!(
            h.get("x-image-meta-disk_format").is_none(),
            "nulls are omitted"
        );
        assert!(
            h.get("x-image-meta-location").is_none(),
            "never the location"
        );
        assert_eq!(h["x-image-meta-property-distro"], "Ubuntu");
        assert!(h.get("x-image-meta-property-nothing").is_none());
        assert_eq!(h[ETAG], "\"8a40c862b5735975d82605c1dd395796\"");
        assert_eq!(h["x-image-meta-created_at"], "1970-01-01T00:00:00.000000");
        let names: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        for want in [
            "id",
            "name",
            "status",
            "size",
            "checksum",
            "is_public",
            "protected",
            "deleted",
            "min_ram",
            "min_disk",
            "created_at",
            "updated_at",
        ] {
            assert!(
                names.contains(&format!("x-image-meta-{want}")),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn client_encoding_is_what_the_server_decodes() {
        let patch = ImagePatch {
            id: Some(Uuid::new_v4()),
            name: Some(Some("n ü 100%".into())),
            disk_format: Some(Some("raw".into())),
            container_format: Some(None),
            size: Some(5),
            min_ram: Some(1),
            virtual_size: Some(None),
            is_public: Some(true),
            protected: Some(false),
            owner: Some(Some("me".into())),
            properties: Some(
                [
                    ("os".to_string(), Some("linux".to_string())),
                    ("gone".to_string(), None),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        encode_patch_headers(&patch, &mut h);
        let m = decode_image_meta(&h).unwrap();
        assert_eq!(m.id, Some(patch.id.unwrap().to_string()));
        let mut expected = patch.clone();
        expected.id = None;
        assert_eq!(m.patch, expected);
    }

    #[test]
    fn server_encoding_is_what_the_client_decodes() {
        let mut img = Image::new(
            Uuid::new_v4(),
            Status::Active,
            Timestamp::from_micros(1_500_000),
        );
        img.updated_at = Timestamp::from_micros(2_000_000);
        img.name = Some("x".into());
        img.size = 77;
        img.virtual_size = Some(80);
        img.checksum = Some("abc".into());
        img.is_public = true;
        img.visibility = crate::model::Visibility::Public;
        img.min_disk = 4;
        img.properties.insert("k".into(), Some("v".into()));
        let mut h = HeaderMap::new();
        encode_image_meta(&img, &mut h);
        assert_eq!(decode_response_image(&h).unwrap(), img);
    }

    #[test]
    fn encode_then_decode_round_trips_the_mutable_fields() {
        let mut img = Image::new(Uuid::new_v4(), Status::Queued, Timestamp::now());
        img.name = Some("ünïcode name".into());
        img.disk_format = Some("qcow2".into());
        img.container_format = Some("bare".into());
        img.size = 99;
        img.min_disk = 3;
        img.owner = Some("tenant".into());
        img.properties
            .insert("os_type".into(), Some("linux".into()));
        let mut h = HeaderMap::new();
        encode_image_meta(&img, &mut h);
        h.remove(ETAG);
        for field in ["id", "status", "created_at", "updated_at", "deleted"] {
            h.remove(format!("x-image-meta-{field}").as_str());
        }
        let m = decode_image_meta(&h).unwrap();
        let mut back = Image::new(img.id, img.status, img.created_at);
        back.updated_at = img.updated_at;
        m.patch.apply_mutable(&mut back, true);
        assert_eq!(back, img);
    }
}
