//! `Client`: a typed, async client of the Images API v1 on the hyper client. Metadata goes
//! through the same header codec as the server ([`crate::http::meta_headers`]), image data is
//! streamed both ways, and lists page through `limit`/`marker` on their own.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::io::{AsyncRead, ReadBuf};

use crate::body::BoxError;
use crate::http::meta_headers::{decode_response_image, encode_patch_headers};
use crate::http::query::QueryParams;
use crate::http::wire::CONVERT_FROM_HEADER;
use crate::model::Image;
use crate::patch::ImagePatch;

/// Request bodies: `!Sync` readers are fine, the client never shares a body between threads.
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Page size used when walking a list.
const PAGE_SIZE: usize = 100;

/// Bytes per chunk when streaming an upload.
const UPLOAD_CHUNK: usize = 256 << 10;

/// Why a client call failed.
#[derive(Debug)]
pub enum Error {
    /// 404: no such image (or route).
    NotFound(String),
    /// 409: the image exists already or is in the wrong state.
    Conflict(String),
    /// 400: the server refused the request; the text is its reason.
    BadRequest(String),
    /// 403: not allowed on this image.
    Forbidden(String),
    /// 413: over a size or quota limit.
    TooLarge(String),
    /// Any other non-success status, with the server's message.
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or the connection broke.
    Transport(String),
    /// The server answered something this client cannot read.
    Protocol(String),
    /// Reading local data to upload failed.
    Local(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(m)
            | Error::Conflict(m)
            | Error::BadRequest(m)
            | Error::Forbidden(m)
            | Error::TooLarge(m) => f.write_str(m),
            Error::Server { status, message } => write!(f, "server answered {status}: {message}"),
            Error::Transport(m) => f.write_str(m),
            Error::Protocol(m) => write!(f, "unexpected answer from the server: {m}"),
            Error::Local(e) => write!(f, "reading the image data failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Image data to upload: any async reader, with its length when known (then sent with
/// `Content-Length`, otherwise chunked).
pub struct Upload {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    length: Option<u64>,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl Upload {
    /// Data from `reader`, `length` bytes if known.
    pub fn new(reader: impl AsyncRead + Send + 'static, length: Option<u64>) -> Upload {
        Upload {
            reader: Box::pin(reader),
            length,
            progress: None,
        }
    }

    /// Calls `progress` with the running byte count as data is sent.
    pub fn with_progress(mut self, progress: impl Fn(u64) + Send + Sync + 'static) -> Upload {
        self.progress = Some(Arc::new(progress));
        self
    }
}

/// A download in progress: the image's metadata, its size, and the data stream.
pub struct Download {
    /// The image, from the response headers.
    pub image: Image,
    /// Bytes to expect (`Content-Length`).
    pub size: Option<u64>,
    body: Incoming,
}

impl Download {
    /// The next chunk of data, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => return Err(Error::Transport(format!("download broke off: {e}"))),
            }
        }
    }
}

/// A client of one glint (or Glance v1) Images API endpoint.
#[derive(Clone)]
pub struct Client {
    /// `http://host:port`, without a trailing slash or `/v1`.
    base: String,
    http: HyperClient<HttpConnector, Body>,
}

#[derive(Deserialize)]
struct ImageBody {
    image: Image,
}

#[derive(Deserialize)]
struct ImagesBody<T> {
    images: Vec<T>,
}

/// A brief list entry (§4.3): the six fields `GET /v1/images` returns.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ImageSummary {
    /// The image id.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Disk format.
    pub disk_format: Option<String>,
    /// Container format.
    pub container_format: Option<String>,
    /// MD5 of the data.
    pub checksum: Option<String>,
}

impl Client {
    /// A client of the Images API at `base_url` (e.g. `http://127.0.0.1:9292`; a trailing `/v1`
    /// is accepted).
    ///
    /// # Examples
    /// ```
    /// let client = glint::client::Client::new("http://127.0.0.1:9292");
    /// assert_eq!(client.base_url(), "http://127.0.0.1:9292");
    /// ```
    pub fn new(base_url: &str) -> Client {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client {
            base,
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// The endpoint this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Every image a brief list with `filters` selects (`GET /v1/images`), fetching page after
    /// page. The entries carry only id, name, formats, size and checksum.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a bad filter; transport errors.
    pub async fn list(&self, filters: &[(&str, &str)]) -> Result<Vec<ImageSummary>, Error> {
        self.walk("/v1/images", filters, |i: &ImageSummary| i.id)
            .await
    }

    /// Every image a detailed list with `filters` selects (`GET /v1/images/detail`).
    ///
    /// # Errors
    /// As [`Client::list`].
    pub async fn details(&self, filters: &[(&str, &str)]) -> Result<Vec<Image>, Error> {
        self.walk("/v1/images/detail", filters, |i: &Image| i.id)
            .await
    }

    async fn walk<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, &str)],
        id_of: impl Fn(&T) -> uuid::Uuid,
    ) -> Result<Vec<T>, Error> {
        let limit = filters
            .iter()
            .find(|(k, _)| *k == "limit")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let mut out: Vec<T> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page_size = limit.map_or(PAGE_SIZE, |l| (l - out.len()).min(PAGE_SIZE));
            let mut params: Vec<(String, String)> = filters
                .iter()
                .filter(|(k, _)| *k != "limit" && *k != "marker")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            params.push(("limit".into(), page_size.to_string()));
            if let Some(m) = &marker {
                params.push(("marker".into(), m.clone()));
            }
            let uri = format!("{path}?{}", QueryParams::from_pairs(params).encode());
            let resp = self
                .send(Method::GET, &uri, HeaderMap::new(), empty())
                .await?;
            let page: ImagesBody<T> = read_json(resp).await?;
            let n = page.images.len();
            marker = page.images.last().map(|i| id_of(i).to_string());
            out.extend(page.images);
            if n < page_size || limit.is_some_and(|l| out.len() >= l) || page_size == 0 {
                return Ok(out);
            }
        }
    }

    /// The image's metadata (`HEAD /v1/images/{id}`).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id.
    pub async fn show(&self, id: &str) -> Result<Image, Error> {
        let resp = self
            .send(Method::HEAD, &image_path(id), HeaderMap::new(), empty())
            .await
            .map_err(|e| match e {
                // HEAD answers carry no body, so the message is ours.
                Error::NotFound(_) => Error::NotFound(format!("No image with ID {id} was found")),
                other => other,
            })?;
        decode_response_image(resp.headers()).map_err(|e| Error::Protocol(e.0))
    }

    /// Starts downloading the image's data (`GET /v1/images/{id}`); read it with
    /// [`Download::chunk`]. Nothing is buffered beyond one chunk.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or inactive image.
    pub async fn download(&self, id: &str) -> Result<Download, Error> {
        let resp = self
            .send(Method::GET, &image_path(id), HeaderMap::new(), empty())
            .await?;
        let image = decode_response_image(resp.headers()).map_err(|e| Error::Protocol(e.0))?;
        let size = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Download {
            image,
            size,
            body: resp.into_body(),
        })
    }

    /// Creates an image from `meta` (`POST /v1/images`), uploading `data` if given.
    /// `store` picks the store (`x-image-meta-store`).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for invalid metadata, [`Error::Conflict`] for a duplicate id.
    pub async fn create(
        &self,
        meta: &ImagePatch,
        store: Option<&str>,
        data: Option<Upload>,
    ) -> Result<Image, Error> {
        let mut headers = HeaderMap::new();
        encode_patch_headers(meta, &mut headers);
        if let Some(store) = store {
            if let Ok(v) = HeaderValue::from_str(store) {
                headers.insert("x-image-meta-store", v);
            }
        }
        let body = upload_body(data, &mut headers);
        let resp = self.send(Method::POST, "/v1/images", headers, body).await?;
        Ok(read_json::<ImageBody>(resp).await?.image)
    }

    /// Creates a new image converted from image `source` (`POST /v1/images` with
    /// `x-glint-convert-from`): `meta` names the target `disk_format` and any field to set on
    /// the new image (the rest it takes from the source). Answers once the new image is active.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f() -> Result<(), glint::client::Error> {
    /// let client = glint::client::Client::new("http://127.0.0.1:9292");
    /// let meta = glint::patch::ImagePatch {
    ///     disk_format: Some(Some("qcow2".into())),
    ///     ..Default::default()
    /// };
    /// let image = client.convert("2b3c8f4e-0f42-4ad0-9a8b-1f5a3b7e2c11", &meta, None).await?;
    /// assert_eq!(image.disk_format.as_deref(), Some("qcow2"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] for a source the caller cannot see, [`Error::Conflict`] for one that
    /// is not active, [`Error::BadRequest`] for a format glint does not convert or data
    /// `qemu-img` refuses (the new image is then killed).
    pub async fn convert(
        &self,
        source: &str,
        meta: &ImagePatch,
        store: Option<&str>,
    ) -> Result<Image, Error> {
        let mut headers = HeaderMap::new();
        encode_patch_headers(meta, &mut headers);
        let source = HeaderValue::from_str(source)
            .map_err(|_| Error::BadRequest(format!("Invalid image id {source:?}")))?;
        headers.insert(CONVERT_FROM_HEADER, source);
        if let Some(store) = store {
            if let Ok(v) = HeaderValue::from_str(store) {
                headers.insert("x-image-meta-store", v);
            }
        }
        let resp = self
            .send(Method::POST, "/v1/images", headers, empty())
            .await?;
        Ok(read_json::<ImageBody>(resp).await?.image)
    }

    /// Updates an image's metadata (`PUT /v1/images/{id}`); with `purge_props`, properties
    /// missing from `meta` are removed. `data` uploads to a queued image.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`] (status/id changes, deleted images),
    /// [`Error::Conflict`] (data for an image that is not queued).
    pub async fn update(
        &self,
        id: &str,
        meta: &ImagePatch,
        purge_props: bool,
        data: Option<Upload>,
    ) -> Result<Image, Error> {
        let mut headers = HeaderMap::new();
        encode_patch_headers(meta, &mut headers);
        headers.insert(
            "x-glance-registry-purge-props",
            HeaderValue::from_static(if purge_props { "true" } else { "false" }),
        );
        let body = upload_body(data, &mut headers);
        let resp = self
            .send(Method::PUT, &image_path(id), headers, body)
            .await?;
        Ok(read_json::<ImageBody>(resp).await?.image)
    }

    /// Deletes an image (`DELETE /v1/images/{id}`).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`] for a protected image.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.send(Method::DELETE, &image_path(id), HeaderMap::new(), empty())
            .await
            .map(drop)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(body)
            .map_err(|e| Error::Protocol(format!("cannot build request: {e}")))?;
        req.headers_mut().extend(headers);
        let resp = self.http.request(req).await.map_err(|e| {
            let mut text = format!("cannot reach {}: {e}", self.base);
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            Error::Transport(text)
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let message = text
            .split_once("\n\n")
            .map_or(&*text, |(_, m)| m)
            .trim()
            .to_string();
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            message
        };
        Err(match status {
            StatusCode::NOT_FOUND => Error::NotFound(message),
            StatusCode::CONFLICT => Error::Conflict(message),
            StatusCode::BAD_REQUEST => Error::BadRequest(message),
            StatusCode::FORBIDDEN => Error::Forbidden(message),
            StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge(message),
            status => Error::Server { status, message },
        })
    }
}

fn image_path(id: &str) -> String {
    let mut path = String::from("/v1/images/");
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            path.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    path
}

async fn read_json<T: serde::de::DeserializeOwned>(resp: Response<Incoming>) -> Result<T, Error> {
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Transport(format!("reading the answer failed: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))
}

fn upload_body(data: Option<Upload>, headers: &mut HeaderMap) -> Body {
    match data {
        None => empty(),
        Some(upload) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Some(len) = upload.length {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            }
            ReaderBody {
                remaining: upload.length,
                reader: upload.reader,
                sent: 0,
                progress: upload.progress,
                buf: vec![0; UPLOAD_CHUNK],
            }
            .boxed_unsync()
        }
    }
}

/// A request body that streams an async reader in [`UPLOAD_CHUNK`] pieces.
struct ReaderBody {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    remaining: Option<u64>,
    sent: u64,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    buf: Vec<u8>,
}

impl hyper::body::Body for ReaderBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == Some(0) {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let want = this
            .remaining
            .map_or(this.buf.len(), |r| (r as usize).min(this.buf.len()));
        let mut read_buf = ReadBuf::new(&mut this.buf[..want]);
        match this.reader.as_mut().poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                if n == 0 {
                    return match this.remaining {
                        None => Poll::Ready(None),
                        Some(r) => Poll::Ready(Some(Err(format!(
                            "the data ended {r} bytes before its announced length"
                        )
                        .into()))),
                    };
                }
                let chunk = Bytes::copy_from_slice(read_buf.filled());
                this.sent += n as u64;
                if let Some(r) = &mut this.remaining {
                    *r -= n as u64;
                }
                if let Some(progress) = &this.progress {
                    progress(this.sent);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == Some(0)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.remaining {
            Some(r) => hyper::body::SizeHint::with_exact(r),
            None => hyper::body::SizeHint::default(),
        }
    }
}
