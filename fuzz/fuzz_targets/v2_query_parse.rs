//! Invariant: the Images API v2 list parser (`registry::query_v2::parse`) never panics on any
//! query string; an accepted query has `limit <= 1000`, and its order compares every pair of
//! images consistently (`compare(a, b) == compare(b, a).reverse()`), since pages are cut by it.
//!
//! Input: the raw query string (the part after `?`); bytes that are not UTF-8 become U+FFFD.
#![no_main]

use glint::http::query::QueryParams;
use glint::model::{Image, Status};
use glint::registry::{query_v2, Limits};
use glint::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let params = QueryParams::parse(&query);
    let limits = Limits::default();
    if let Ok(parsed) = query_v2::parse(params.iter(), limits) {
        let q = parsed.query;
        assert!(q.limit <= limits.max, "accepted limit {} > {}", q.limit, limits.max);
        let mut a = Image::new(uuid::Uuid::from_u128(1), Status::Active, Timestamp::from_micros(5));
        let mut b = Image::new(uuid::Uuid::from_u128(2), Status::Queued, Timestamp::from_micros(5));
        a.name = Some("a".into());
        b.size = 9;
        assert_eq!(q.compare(&a, &b), q.compare(&b, &a).reverse());
        assert!(q.compare(&a, &b).is_ne(), "distinct images never tie");
    }
});
