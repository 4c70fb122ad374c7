//! The `Range` request header (RFC 9110 §14.2) of an image download, resolved against the
//! image's size: the whole image, one range of it, or a range no byte of the image satisfies.
//!
//! What glint does with each form (RFC 9110 lets a server ignore `Range`, and answering the
//! whole representation is always correct):
//! * one `bytes=` range → that range (206), or 416 when it starts past the end;
//! * several ranges → the whole image (200): a `multipart/byteranges` answer costs a store
//!   request per part, and caches and hypervisors ask for one range at a time;
//! * another unit, a syntax error, a range whose end is before its start, more than one `Range`
//!   field → the whole image (200), as RFC 9110 asks of a recipient of an invalid `Range`.

use hyper::header::{HeaderMap, RANGE};

pub use crate::body::ByteRange;

/// One range-spec of a `bytes=` range set, as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last` or `first-` (`last` absent): from an offset.
    From {
        /// The first byte's offset.
        first: u64,
        /// The last byte's offset, when given.
        last: Option<u64>,
    },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// What the `Range` header of a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable `Range`: the whole image (absent, invalid, another unit, or several ranges).
    Whole,
    /// Exactly one range-spec.
    One(RangeSpec),
}

/// A range request resolved against the image's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Send the whole image (200).
    Whole,
    /// Send this part (206).
    Part(ByteRange),
    /// No byte of the image is in the range (416, `Content-Range: bytes */size`).
    Unsatisfiable,
}

/// Reads the `Range` fields of `headers`.
pub fn range_request(headers: &HeaderMap) -> RangeRequest {
    let mut fields = headers.get_all(RANGE).iter();
    match (fields.next(), fields.next()) {
        (Some(value), None) => parse_range(value.as_bytes()),
        // None, or a field repeated (a list split over lines is no single range).
        _ => RangeRequest::Whole,
    }
}

/// Parses one `Range` value: `bytes=` (any case) and a comma-separated list of specs with
/// optional whitespace around them (empty list elements are skipped, RFC 9110 §5.6.1).
pub fn parse_range(value: &[u8]) -> RangeRequest {
    let Ok(text) = std::str::from_utf8(value) else {
        return RangeRequest::Whole;
    };
    let Some((unit, set)) = text.trim().split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeRequest::Whole;
    }
    let mut specs = set
        .split(',')
        .map(|s| s.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeRequest::Whole;
    };
    match parse_spec(spec) {
        Some(spec) => RangeRequest::One(spec),
        None => RangeRequest::Whole,
    }
}

/// `first-last`, `first-` or `-suffix`; digits only. A number too large for u64 saturates: it
/// is past the end of any image, which is what it means.
fn parse_spec(spec: &str) -> Option<RangeSpec> {
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        return Some(RangeSpec::Suffix(number(last)?));
    }
    let first = number(first)?;
    let last = match last {
        "" => None,
        text => Some(number(text)?),
    };
    // RFC 9110 §14.1.1: a last-pos before the first-pos makes the range-spec invalid.
    if last.is_some_and(|l| l < first) {
        return None;
    }
    Some(RangeSpec::From { first, last })
}

/// Resolves `request` against an image of `size` bytes (RFC 9110 §14.1.2): an end past the
/// image is clipped to its last byte, a suffix longer than the image is the whole image (still
/// a 206), and a start at or past the end, or a zero-length suffix, is unsatisfiable. Every
/// range of an empty image is unsatisfiable: it has no byte to send.
pub fn resolve(request: RangeRequest, size: u64) -> Resolved {
    let RangeRequest::One(spec) = request else {
        return Resolved::Whole;
    };
    if size == 0 {
        return Resolved::Unsatisfiable;
    }
    let end = size - 1;
    match spec {
        RangeSpec::From { first, .. } if first >= size => Resolved::Unsatisfiable,
        RangeSpec::From { first, last } => Resolved::Part(ByteRange {
            first,
            last: last.map_or(end, |l| l.min(end)),
        }),
        RangeSpec::Suffix(0) => Resolved::Unsatisfiable,
        RangeSpec::Suffix(n) => Resolved::Part(ByteRange {
            first: size.saturating_sub(n),
            last: end,
        }),
    }
}

/// The `Content-Range` of a 416 answer for an image of `size` bytes.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(first: u64, last: u64) -> Resolved {
        Resolved::Part(ByteRange { first, last })
    }

    /// `(header value, resolved against 100 bytes)`.
    #[test]
    fn range_values_resolve_as_rfc_9110_says() {
        use Resolved::{Unsatisfiable as U, Whole as W};
        for (value, want) in [
            ("bytes=0-0", part(0, 0)),
            ("bytes=0-99", part(0, 99)),
            ("bytes=10-19", part(10, 19)),
            ("bytes=10-", part(10, 99)),
            ("bytes=90-1000", part(90, 99)),
            ("bytes=-10", part(90, 99)),
            ("bytes=-100", part(0, 99)),
            ("bytes=-1000", part(0, 99)),
            ("bytes=99-", part(99, 99)),
            ("BYTES=1-2", part(1, 2)),
            ("bytes= 1-2 ", part(1, 2)),
            ("bytes=1-2,", part(1, 2)),
            ("bytes=, 1-2", part(1, 2)),
            ("bytes=99999999999999999999999-", U),
            ("bytes=0-99999999999999999999999", part(0, 99)),
            ("bytes=-99999999999999999999999", part(0, 99)),
            ("bytes=-0", U),
            ("bytes=100-", U),
            ("bytes=100-200", U),
            ("bytes=5-4", W),
            ("bytes=0-1,5-6", W),
            ("bytes=0-1, -5", W),
            ("bytes=1 - 2", W),
            ("bytes=1-2-3", W),
            ("bytes=a-b", W),
            ("bytes=-", W),
            ("bytes=", W),
            ("bytes=+1-2", W),
            ("bytes 1-2", W),
            ("items=1-2", W),
            ("", W),
            ("garbage", W),
        ] {
            let got = resolve(parse_range(value.as_bytes()), 100);
            assert_eq!(got, want, "{value:?}");
        }
    }

    #[test]
    fn every_range_of_an_empty_image_is_unsatisfiable_but_no_range_is_the_whole() {
        for value in ["bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0"] {
            let got = resolve(parse_range(value.as_bytes()), 0);
            assert_eq!(got, Resolved::Unsatisfiable, "{value}");
        }
        assert_eq!(resolve(RangeRequest::Whole, 0), Resolved::Whole);
    }

    #[test]
    fn a_repeated_or_non_utf8_range_field_is_ignored() {
        let mut headers = HeaderMap::new();
        assert_eq!(range_request(&headers), RangeRequest::Whole);
        headers.append(RANGE, "bytes=0-1".parse().unwrap());
        assert!(matches!(range_request(&headers), RangeRequest::One(_)));
        headers.append(RANGE, "bytes=2-3".parse().unwrap());
        assert_eq!(range_request(&headers), RangeRequest::Whole);
        assert_eq!(parse_range(b"bytes=\xff-1"), RangeRequest::Whole);
        assert_eq!(unsatisfied_range(42), "bytes */42");
    }

    /// Every spec over small numbers, against every small size: never a part outside the
    /// image, and a `first-last` inside it is kept as asked.
    #[test]
    fn a_resolved_part_always_lies_inside_the_image() {
        for size in 0u64..12 {
            for a in 0u64..14 {
                for b in 0u64..14 {
                    for value in [
                        format!("bytes={a}-{b}"),
                        format!("bytes={a}-"),
                        format!("bytes=-{b}"),
                    ] {
                        if let Resolved::Part(r) = resolve(parse_range(value.as_bytes()), size) {
                            assert!(
                                r.first <= r.last && r.last < size,
                                "{value} of {size}: {r:?}"
                            );
                        }
                    }
                    let got = resolve(parse_range(format!("bytes={a}-{b}").as_bytes()), size);
                    if a <= b && b < size {
                        assert_eq!(got, part(a, b), "bytes={a}-{b} of {size}");
                    }
                }
            }
        }
    }
}
