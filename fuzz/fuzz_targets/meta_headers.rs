//! Invariant: `decode_image_meta` never panics on any header map. When it accepts one, the
//! client half of the codec agrees with it: `encode_patch_headers` of the decoded patch decodes
//! back to the same patch. And when the patch makes a valid record, the server half agrees with
//! the client: `decode_response_image(encode_image_meta(image))` gives the image back (for values
//! a header can carry unchanged: no control characters, no surrounding spaces, non-null
//! properties).
//!
//! Input: header lines `name: value`, separated by `\n`; lines that are not valid headers are
//! skipped.
#![no_main]

use glint::http::meta_headers::{
    decode_image_meta, decode_response_image, encode_image_meta, encode_patch_headers,
};
use glint::model::Status;
use glint::timestamp::Timestamp;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn headers_from(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    headers
}

/// Whether a header carries `text` unchanged (responses are not percent-encoded).
fn carried_unchanged(text: &str) -> bool {
    text.trim() == text && !text.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    let headers = headers_from(data);
    let Ok(meta) = decode_image_meta(&headers) else {
        return;
    };
    let mut encoded = HeaderMap::new();
    encode_patch_headers(&meta.patch, &mut encoded);
    let again = decode_image_meta(&encoded)
        .unwrap_or_else(|e| panic!("our own encoding does not decode: {e}\n{encoded:?}"));
    assert_eq!(again.patch, meta.patch, "client encoding changed the patch\n{encoded:?}");

    let mut image = meta.patch.into_new_image(Status::Active, Timestamp::from_micros(1_000_000));
    if image.validate().is_err() {
        return;
    }
    image.properties.retain(|_, v| v.is_some());
    let texts = [&image.name, &image.disk_format, &image.container_format, &image.checksum, &image.owner];
    if texts.iter().any(|t| t.as_deref().is_some_and(|t| !carried_unchanged(t) || t.is_empty()))
        || image.properties.iter().any(|(k, v)| {
            !carried_unchanged(v.as_deref().unwrap_or("")) || HeaderName::from_bytes(format!("x-image-meta-property-{k}").as_bytes()).is_err()
        })
    {
        return;
    }
    let mut response = HeaderMap::new();
    encode_image_meta(&image, &mut response);
    let back = decode_response_image(&response)
        .unwrap_or_else(|e| panic!("the client cannot read the server's headers: {e}\n{response:?}"));
    assert_eq!(back, image, "server encoding changed the image\n{response:?}");
});
