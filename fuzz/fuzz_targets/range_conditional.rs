//! Invariant: the `Range` and conditional-request parsers never panic on any header values; a
//! resolved range always lies inside the image (`first <= last < size`); and a request whose
//! `If-None-Match` is the current tag itself is answered 304 unless an `If-Match` /
//! `If-Unmodified-Since` in the same input fails it (412).
//!
//! Input: the first byte is the image size (0-255); the rest is split at `\n` into the values of
//! Range, If-Range, If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since.
#![no_main]

use glint::http::conditional::{
    evaluate, from_unix_seconds, if_range_holds, Precondition, Validators,
};
use glint::http::range::{range_request, resolve, Resolved};
use hyper::header::{
    HeaderMap, HeaderValue, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};
use libfuzzer_sys::fuzz_target;

const TAG: &str = "8a40c862b5735975d82605c1dd395796";

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let size = u64::from(size);
    let mut headers = HeaderMap::new();
    let names = [
        RANGE,
        IF_RANGE,
        IF_MATCH,
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_UNMODIFIED_SINCE,
    ];
    for (name, value) in names.iter().zip(rest.split(|b| *b == b'\n')) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name.clone(), value);
        }
    }
    let current = Validators {
        etag: Some(TAG),
        last_modified: Some(from_unix_seconds(784_111_777)),
    };
    if let Resolved::Part(r) = resolve(range_request(&headers), size) {
        assert!(r.first <= r.last && r.last < size, "{r:?} outside {size}");
    }
    let _ = if_range_holds(&headers, &current);
    let outcome = evaluate(true, &headers, &current);
    headers.insert(
        IF_NONE_MATCH,
        HeaderValue::from_static("\"8a40c862b5735975d82605c1dd395796\""),
    );
    let matched = evaluate(true, &headers, &current);
    assert!(
        matched == Precondition::NotModified
            || (matched == Precondition::Failed && outcome == Precondition::Failed),
        "If-None-Match of the current tag gave {matched:?} (before: {outcome:?})"
    );
});
