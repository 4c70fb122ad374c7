//! Request ids as Glance sends them back on every response (`x-openstack-request-id:
//! req-<uuid>`, oslo's request-id middleware): a valid id the client sent is echoed, otherwise a
//! new one is made. New ids are UUID-shaped (version 4 bits set) from a random per-process base
//! and a counter, so making one costs no system call.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// The response (and request) header.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// Whether `id` is `req-` followed by a hyphenated UUID.
pub fn is_valid(id: &str) -> bool {
    id.strip_prefix("req-")
        .is_some_and(|u| u.len() == 36 && Uuid::try_parse(u).is_ok())
}

/// Makes request ids.
#[derive(Debug)]
pub struct RequestIds {
    base: u128,
    counter: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds {
            base: Uuid::new_v4().as_u128(),
            counter: AtomicU64::new(0),
        }
    }
}

impl RequestIds {
    /// The id of a request that sent `given` (echoed when valid), or a new one.
    pub fn for_request(&self, given: Option<&[u8]>) -> String {
        if let Some(id) = given.and_then(|g| std::str::from_utf8(g).ok()) {
            if is_valid(id) {
                return id.to_string();
            }
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // The counter goes into the low bits, whose version and variant bits are then set.
        let raw = self.base ^ u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let uuid = uuid::Builder::from_u128(raw)
            .with_version(uuid::Version::Random)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid();
        format!("req-{}", uuid.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_echoed_and_others_replaced_by_new_distinct_ones() {
        let ids = RequestIds::default();
        let given = "req-1b4e28ba-2fa1-41d2-883f-0016d3cca427";
        assert_eq!(ids.for_request(Some(given.as_bytes())), given);
        let a = ids.for_request(Some(b"req-not-a-uuid"));
        let b = ids.for_request(None);
        assert!(is_valid(&a) && is_valid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_valid("1b4e28ba-2fa1-41d2-883f-0016d3cca427"));
        assert!(!is_valid("req-1b4e28ba2fa141d2883f0016d3cca427"));
        let many: std::collections::HashSet<String> =
            (0..10_000).map(|_| ids.for_request(None)).collect();
        assert_eq!(many.len(), 10_000);
    }
}
