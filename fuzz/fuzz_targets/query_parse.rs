//! Invariant: `QueryParams::parse` and `ListQuery::from_params` never panic on any query string;
//! encoding and parsing again changes nothing (`parse(encode(parse(s))) == parse(s)`); and an
//! accepted `ListQuery` has `limit <= 1000` (`Limits::default().max`).
//!
//! Input: the raw query string (the part after `?`); bytes that are not UTF-8 become U+FFFD.
#![no_main]

use glint::http::query::QueryParams;
use glint::registry::{Limits, ListQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);

    let params = QueryParams::parse(&query);
    let encoded = params.encode();
    assert_eq!(
        QueryParams::parse(&encoded),
        params,
        "round trip through {encoded:?} changed the parameters"
    );

    let limits = Limits::default();
    if let Ok(list) = ListQuery::from_params(params.iter(), limits) {
        assert!(
            list.limit <= limits.max,
            "accepted limit {} > {}",
            list.limit,
            limits.max
        );
    }
});
