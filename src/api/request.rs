//! Request plumbing shared by the API handlers: the body as an upload source, small JSON bodies,
//! draining an unread body before a refusal, and the framing headers.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::Response;

use super::Error;
use crate::http::body::Body;
use crate::store::{self, DataSource};

/// Reads a small JSON body (members calls).
pub(super) async fn read_small_body(body: Incoming) -> Result<bytes::Bytes, Error> {
    use crate::http::body::{collect_limited, CollectError};
    collect_limited(body, super::registry::MAX_JSON_BODY)
        .await
        .map_err(|e| match e {
            CollectError::TooLarge { limit } => {
                Error::PayloadTooLarge(format!("Request body is larger than {limit} bytes"))
            }
            CollectError::Read(e) => Error::BadRequest(format!("Could not read request body: {e}")),
        })
}

/// Most bytes of an unread request body read and dropped before an early refusal.
const DRAIN_LIMIT: u64 = 64 << 20;

/// Longest time spent dropping an unread request body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The body of a request that may carry image data, owned by the route until a handler takes it
/// for an upload; what is left unread when the handler refuses is drained by
/// [`RequestBody::answer`].
pub(super) struct RequestBody {
    body: Option<Incoming>,
}

impl RequestBody {
    /// The body of a request, not read yet.
    pub(super) fn new(body: Incoming) -> RequestBody {
        RequestBody { body: Some(body) }
    }

    /// The body, for the upload; a handler takes it once.
    pub(super) fn take(&mut self) -> Result<Incoming, Error> {
        self.body
            .take()
            .ok_or_else(|| Error::BadRequest("Could not read the request body twice".into()))
    }

    /// The answer to the request (`result`), after draining a body it refused unread.
    pub(super) async fn answer(
        self,
        headers: &HeaderMap,
        result: Result<Response<Body>, Error>,
    ) -> Result<Response<Body>, Error> {
        refuse_unread(headers, self.body, result).await
    }
}

/// When a request with data is refused before its body was read, reads and drops the body (up
/// to [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`]) before answering. A client that sends the whole
/// body before reading the answer (most do, including hyper's) then sees the refusal instead of a
/// connection closed under its upload. With `Expect: 100-continue` the client waits for the
/// answer, so nothing is read.
async fn refuse_unread(
    headers: &HeaderMap,
    body: Option<Incoming>,
    result: Result<Response<Body>, Error>,
) -> Result<Response<Body>, Error> {
    let expects_continue = headers
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if let (Err(_), Some(mut body), false) = (&result, body, expects_continue) {
        if has_body(headers) {
            let drained = tokio::time::timeout(DRAIN_TIME, async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > DRAIN_LIMIT {
                        break;
                    }
                }
            });
            let _ = drained.await;
        }
    }
    result
}

/// Any HTTP body (a request's, or data read back from a store for an import) as a
/// [`DataSource`]. A failure of the body is the client (or the source) breaking off.
pub(super) struct BodySource<B>(pub(super) B);

impl<B> DataSource for BodySource<B>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin,
    B::Error: std::fmt::Display,
{
    fn size_hint(&self) -> Option<u64> {
        self.0.size_hint().exact()
    }

    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, store::Error> {
        loop {
            if self.0.is_end_stream() {
                return Ok(None);
            }
            match self.0.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => return Err(store::Error::ClientDisconnected(e.to_string())),
            }
        }
    }
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the request carries image data (§5.5): any `Transfer-Encoding`, or a positive
/// `Content-Length`.
pub(super) fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING) || content_length(headers).is_some_and(|n| n > 0)
}

/// The media type of the request body (`Content-Type` without parameters, lower-case).
pub(super) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

pub(super) fn check_content_type(headers: &HeaderMap) -> Result<(), Error> {
    let media_type = media_type(headers);
    if media_type.as_deref() == Some("application/octet-stream") {
        Ok(())
    } else {
        Err(Error::BadRequest(
            "Content-Type must be application/octet-stream".into(),
        ))
    }
}
