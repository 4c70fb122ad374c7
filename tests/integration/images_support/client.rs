//! The HTTP side of the Images API tests: [`ApiClient`] on hyper (one connection per request,
//! bodies with a length or chunked, up to 512 response headers), whole [`Reply`]s with the
//! §5.9 error assertion, raw TCP uploads that stop half-way, and fixed test data.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::HOST;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use serde_json::Value;
use tokio::runtime::Runtime;

/// Longest a single request may take before the test fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Response headers the client accepts: an image with 128 properties sends ~145.
const MAX_RESPONSE_HEADERS: usize = 512;

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts `status` and a JSON body, and returns it.
    #[track_caller]
    pub fn json(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// Asserts an error response (spec §5.9: `text/plain; charset=UTF-8`, body
    /// `<code> <Reason>\n\n<message>\n`) whose message contains `needle`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, needle: &str) {
        let text = self.text();
        assert_eq!(self.status.as_u16(), status, "body: {text}");
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=UTF-8"),
            "{self:?}"
        );
        let title = format!(
            "{} {}\n\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("")
        );
        assert!(
            text.starts_with(&title),
            "expected {title:?} first: {text:?}"
        );
        assert!(
            text[title.len()..].contains(needle),
            "expected {needle:?} in the message: {text:?}"
        );
    }

    /// The `x-image-meta-*` headers, by the rest of their name (as glanceclient reads them).
    pub fn meta(&self) -> BTreeMap<String, String> {
        let mut meta = BTreeMap::new();
        for (name, value) in &self.headers {
            if let Some(rest) = name.as_str().strip_prefix("x-image-meta-") {
                let text = String::from_utf8(value.as_bytes().to_vec()).unwrap();
                let old = meta.insert(rest.to_string(), text);
                assert!(old.is_none(), "x-image-meta-{rest} sent twice");
            }
        }
        meta
    }
}

/// What a request carries as its body.
pub enum Payload {
    /// No body.
    Empty,
    /// These bytes, with `Content-Length`.
    Sized(Bytes),
    /// These chunks, with `Transfer-Encoding: chunked`.
    Chunked(Vec<Bytes>),
}

/// A request body of known chunks; no size hint makes hyper send it chunked.
struct TestBody {
    /// What is left to send.
    chunks: VecDeque<Bytes>,
    /// The length, when it is sent with `Content-Length`.
    exact: Option<u64>,
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.exact.is_some() && self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// An Images API client on hyper: one fresh connection per request, so no pooled connection
/// outlives a test.
pub struct ApiClient {
    /// Where the API listens.
    addr: SocketAddr,
    /// Drives the requests; the tests themselves are synchronous.
    rt: Runtime,
}

impl ApiClient {
    /// A client of the API at `addr`.
    pub fn new(addr: SocketAddr) -> ApiClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        ApiClient { addr, rt }
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload: Payload,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = match payload {
            Payload::Empty => TestBody {
                chunks: VecDeque::new(),
                exact: Some(0),
            },
            Payload::Sized(data) => TestBody {
                exact: Some(data.len() as u64),
                chunks: VecDeque::from([data]),
            },
            Payload::Chunked(chunks) => TestBody {
                chunks: chunks.into(),
                exact: None,
            },
        };
        let fut = send(self.addr, method.clone(), path, headers, body);
        self.rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
            .unwrap_or_else(|_| panic!("{method} {path}: no response in {REQUEST_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], Payload::Empty)
    }

    /// `GET path` with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, Payload::Empty)
    }

    /// `HEAD /v1/images/{id}`.
    pub fn head(&self, id: &str) -> Reply {
        self.request("HEAD", &format!("/v1/images/{id}"), &[], Payload::Empty)
    }

    /// `GET /v1/images/{id}`.
    pub fn download(&self, id: &str) -> Reply {
        self.get(&format!("/v1/images/{id}"))
    }

    /// `DELETE /v1/images/{id}`.
    pub fn delete(&self, id: &str) -> Reply {
        self.request("DELETE", &format!("/v1/images/{id}"), &[], Payload::Empty)
    }

    /// `POST /v1/images` with metadata headers and no body.
    pub fn post(&self, headers: &[(&str, &str)]) -> Reply {
        self.request("POST", "/v1/images", headers, Payload::Empty)
    }

    /// `POST /v1/images` with `data` (Content-Length), `Content-Type: application/octet-stream`
    /// and the metadata headers.
    pub fn post_data(&self, headers: &[(&str, &str)], data: &[u8]) -> Reply {
        let mut all = vec![("content-type", "application/octet-stream")];
        all.extend_from_slice(headers);
        let payload = Payload::Sized(Bytes::copy_from_slice(data));
        self.request("POST", "/v1/images", &all, payload)
    }

    /// `PUT /v1/images/{id}` with metadata headers and no body.
    pub fn put(&self, id: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("PUT", &format!("/v1/images/{id}"), headers, Payload::Empty)
    }

    /// `PUT /v1/images/{id}` with `data`, like [`ApiClient::post_data`].
    pub fn put_data(&self, id: &str, headers: &[(&str, &str)], data: &[u8]) -> Reply {
        let mut all = vec![("content-type", "application/octet-stream")];
        all.extend_from_slice(headers);
        let payload = Payload::Sized(Bytes::copy_from_slice(data));
        self.request("PUT", &format!("/v1/images/{id}"), &all, payload)
    }

    /// `POST /v1/images` without data; asserts 201 and returns the image object.
    #[track_caller]
    pub fn create(&self, headers: &[(&str, &str)]) -> Value {
        self.post(headers).json(201)["image"].clone()
    }

    /// `POST /v1/images` with `data` in raw/bare; asserts 201 and returns the image object.
    #[track_caller]
    pub fn create_with_data(&self, headers: &[(&str, &str)], data: &[u8]) -> Value {
        let mut all = vec![
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
        ];
        all.extend_from_slice(headers);
        self.post_data(&all, data).json(201)["image"].clone()
    }

    /// `x-image-meta-status` of `HEAD /v1/images/{id}` (asserting 200).
    #[track_caller]
    pub fn status_of(&self, id: &str) -> String {
        let head = self.head(id);
        assert_eq!(head.status, StatusCode::OK, "HEAD {id}: {head:?}");
        head.meta()
            .remove("status")
            .unwrap_or_else(|| panic!("no status header: {head:?}"))
    }

    /// Polls `HEAD` until the image has `status` (at most `timeout`); returns whether it did.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let head = self.head(id);
            if head.status == StatusCode::OK
                && head.meta().get("status").map(String::as_str) == Some(status)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `images` of a list or detail response (asserting 200).
    #[track_caller]
    pub fn list(&self, path: &str) -> Vec<Value> {
        match self.get(path).json(200) {
            Value::Object(mut o) => match o.remove("images") {
                Some(Value::Array(images)) => images,
                other => panic!("{path}: no images array: {other:?}"),
            },
            other => panic!("{path}: not an object: {other}"),
        }
    }

    /// The ids of a list or detail response, in order.
    #[track_caller]
    pub fn list_ids(&self, path: &str) -> Vec<String> {
        self.list(path).iter().map(id_of).collect()
    }

    /// The detail object of `id` in any state (deleted and killed included), or `None`.
    #[track_caller]
    pub fn detail_of(&self, id: &str) -> Option<Value> {
        self.list("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=None&limit=1000")
            .into_iter()
            .find(|image| id_of(image) == id)
    }

    /// Opens a raw connection and starts a `POST /v1/images` upload of image `id` announcing
    /// `total` bytes, of which only `sent` are written. The caller decides what happens next;
    /// the server closes the connection after its answer.
    pub fn start_partial_upload(&self, id: &str, total: usize, sent: usize) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let head = format!(
            "POST /v1/images HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\n\
             Content-Length: {total}\r\nx-image-meta-id: {id}\r\nx-image-meta-name: partial\r\n\
             x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n\r\n",
            self.addr
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&test_data(sent, 7)).unwrap();
        stream.flush().unwrap();
        stream
    }
}

async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: TestBody,
) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_headers(MAX_RESPONSE_HEADERS)
        .handshake(TokioIo::new(stream))
        .await?;
    let conn = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender.send_request(req.body(body)?).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    drop(sender);
    // The connection ends once the sender is gone; a reset after a refused body is not our concern.
    let _ = conn.await;
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// The `id` of an image object.
#[track_caller]
pub fn id_of(image: &Value) -> String {
    image["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {image}"))
        .to_string()
}

/// `len` fixed pseudo-random bytes (xorshift from `seed`): reproducible, incompressible.
pub fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// The lowercase hex MD5 of `data` (Glance's checksum).
pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
