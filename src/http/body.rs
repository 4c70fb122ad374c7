//! Body types shared by the server and client, and a size-limited body collector.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, Limited};

/// The error a response body stream can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response glint sends: whole buffers or a stream of chunks.
pub type Body = BoxBody<Bytes, BoxError>;

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
