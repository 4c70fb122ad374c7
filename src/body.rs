//! The byte-stream types that every layer passes along: a boxed body of response or store data
//! and its error. A leaf like [`crate::model`], so that [`crate::http`], [`crate::store`] and
//! [`crate::client`] can share them without importing each other.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// The error a body stream can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response glint sends, and of image data read from a store: whole buffers
/// or a stream of chunks.
pub type Body = BoxBody<Bytes, BoxError>;

/// A run of bytes of image data, both ends included (`first..=last`), as HTTP byte ranges count:
/// what a ranged download asks of a store, and what the store says it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub first: u64,
    /// Offset of the last byte (never before `first`).
    pub last: u64,
}

impl ByteRange {
    /// The number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a range holds at least one byte (for clippy's `len` without `is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Range` request header value that asks for exactly this range.
    pub fn range_header(&self) -> String {
        format!("bytes={}-{}", self.first, self.last)
    }

    /// The `Content-Range` value of this range of a representation of `size` bytes.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.first, self.last)
    }

    /// The range a `Content-Range: bytes FIRST-LAST/SIZE` value names (the size may be `*`), or
    /// `None` if the value is not of that form.
    pub fn from_content_range(value: &str) -> Option<ByteRange> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (span, _size) = rest.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let digits = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        let (first, last) = (digits(first)?, digits(last)?);
        (first <= last).then_some(ByteRange { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn content_range_round_trips_and_refuses_other_forms() {
        let r = ByteRange { first: 5, last: 9 };
        assert_eq!(r.len(), 5);
        assert_eq!(r.range_header(), "bytes=5-9");
        assert_eq!(r.content_range(100), "bytes 5-9/100");
        assert_eq!(ByteRange::from_content_range("bytes 5-9/100"), Some(r));
        assert_eq!(ByteRange::from_content_range("bytes 5-9/*"), Some(r));
        for bad in [
            "bytes */100",
            "bytes 9-5/100",
            "items 5-9/100",
            "bytes 5-/100",
            "bytes -5-9/1",
            "",
        ] {
            assert_eq!(ByteRange::from_content_range(bad), None, "{bad}");
        }
    }
}
