//! The read-only HTTP store: images registered with an `http://` location are served by streaming
//! from that URL. Redirects are followed (at most [`MAX_REDIRECTS`]); the size comes from a HEAD at
//! registration. Uploads are refused: the type has no `put`, and [`super::Stores`] answers
//! [`Error::ReadOnly`].

use hyper::header::{CONTENT_LENGTH, LOCATION};
use hyper::{Method, Request, Response, StatusCode};

use super::http_client::{self, HttpClient};
use super::location::redact;
use super::{ByteRange, Error, Retrieved};

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// The HTTP store.
pub struct Http {
    http: HttpClient,
}

impl Http {
    /// The store, on the stores' shared client.
    pub fn new(http: HttpClient) -> Http {
        Http { http }
    }

    /// The size of the data at `url` (a HEAD request).
    pub async fn size(&self, url: &str) -> Result<u64, Error> {
        let response = self.follow(Method::HEAD, url, None).await?;
        response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Backend(format!("{} sent no Content-Length", redact(url))))
    }

    /// Streams the data at `url`, or only `range` of it (asked with `Range` on every hop of a
    /// redirect). An origin that ignores `Range` answers 200 with the whole data; the answer
    /// says so ([`Retrieved::range`] is `None`).
    pub async fn get(&self, url: &str, range: Option<ByteRange>) -> Result<Retrieved, Error> {
        let response = self.follow(Method::GET, url, range).await?;
        http_client::retrieved_range(response, range, "the HTTP origin")
    }

    /// Sends `method` to `url`, following redirects; answers the final success response.
    async fn follow(
        &self,
        method: Method,
        url: &str,
        range: Option<ByteRange>,
    ) -> Result<Response<hyper::body::Incoming>, Error> {
        let mut current: url::Url = url.parse().map_err(|_| Error::BadLocation(redact(url)))?;
        for _ in 0..=MAX_REDIRECTS {
            if current.scheme() != "http" && current.scheme() != "https" {
                return Err(Error::BadLocation(format!(
                    "{} (only http:// and https:// locations can be read)",
                    redact(current.as_str())
                )));
            }
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(current.as_str());
            if let Some(r) = range {
                builder = builder.header(hyper::header::RANGE, r.range_header());
            }
            let request = builder
                .body(http_client::empty())
                .map_err(|_| Error::BadLocation(redact(current.as_str())))?;
            let response = self.http.request(request).await.map_err(|e| {
                Error::Unavailable(format!(
                    "{} unreachable: {}",
                    redact(current.as_str()),
                    http_client::describe(&e)
                ))
            })?;
            let status = response.status();
            if status.is_redirection() {
                let target = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        Error::Backend(format!(
                            "redirect without Location from {}",
                            redact(current.as_str())
                        ))
                    })?;
                current = current
                    .join(target)
                    .map_err(|_| Error::BadLocation(redact(target)))?;
                continue;
            }
            return match status {
                s if s.is_success() => Ok(response),
                StatusCode::NOT_FOUND => Err(Error::NotFound(redact(current.as_str()))),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Forbidden(format!(
                    "{} answered {status}",
                    redact(current.as_str())
                ))),
                s if s.is_server_error() => Err(Error::Unavailable(format!(
                    "{} answered {s}",
                    redact(current.as_str())
                ))),
                s => Err(Error::Backend(format!(
                    "{} answered {s}",
                    redact(current.as_str())
                ))),
            };
        }
        // The location is not usable as given: a client error, with the reason.
        Err(Error::BadLocation(format!(
            "{} (more than {MAX_REDIRECTS} redirects)",
            redact(url)
        )))
    }
}
