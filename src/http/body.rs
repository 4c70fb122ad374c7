//! Response bodies built from buffers, and a size-limited request body collector.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};

pub use crate::body::{Body, BoxError};

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Why a request body could not be read whole.
#[derive(Debug)]
pub enum CollectError {
    /// The body is longer than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed while reading.
    Read(BoxError),
}

/// Reads a small request body (JSON) into memory, refusing more than `limit` bytes.
pub async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, CollectError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(CollectError::TooLarge { limit })
        }
        Err(e) => Err(CollectError::Read(e)),
    }
}
