//! Invariant: the v2 JSON-patch parser (`http::json_patch::parse`) and its application to an
//! image (`http::image_v2::apply_changes`) never panic on any body; an accepted patch applied
//! to a valid image gives a patch that keeps the record valid or is refused by validation, never
//! anything else, and it never touches a read-only attribute (status, size, checksum, id).
//!
//! Input: the request body.
#![no_main]

use glint::http::{image_v2, json_patch};
use glint::model::{Image, Status};
use glint::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(changes) = json_patch::parse(data) else {
        return;
    };
    let mut image = Image::new(uuid::Uuid::from_u128(7), Status::Active, Timestamp::from_micros(1));
    image.properties.insert("k".into(), Some("v".into()));
    if let Ok(patch) = image_v2::apply_changes(&image, &changes) {
        assert!(patch.status.is_none() && patch.size.is_none() && patch.checksum.is_none());
        assert!(patch.id.is_none());
        let mut changed = image.clone();
        patch.apply_mutable(&mut changed, true);
        assert_eq!(changed.is_public, changed.visibility == glint::model::Visibility::Public);
        let _ = changed.validate();
    }
});
