//! Invariant: `decode_registry_body` never panics on any bytes. When it accepts a body, building a
//! new record from the patch (`into_new_image(Status::Active, now)`) and validating it never
//! panics, and a record that validates survives a serde_json round trip unchanged: it serialises,
//! and deserialises back to an equal `Image` (this is how the registry stores records in sled).
//!
//! Input: the raw request body, e.g. `{"image": {"name": "x"}, "from_state": "queued"}`.
#![no_main]

use glint::http::image_json::decode_registry_body;
use glint::model::{Image, Status};
use glint::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = decode_registry_body(data) else {
        return;
    };
    let image = request
        .patch
        .into_new_image(Status::Active, Timestamp::now());
    if image.validate().is_err() {
        return;
    }
    let json = match serde_json::to_vec(&image) {
        Ok(json) => json,
        Err(e) => panic!("valid record does not serialise: {e}\n{image:#?}"),
    };
    let back: Image = match serde_json::from_slice(&json) {
        Ok(back) => back,
        Err(e) => panic!(
            "valid record does not deserialise: {e}\n{}",
            String::from_utf8_lossy(&json)
        ),
    };
    assert_eq!(back, image, "serde_json round trip changed the record");
});
