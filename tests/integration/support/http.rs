//! The one HTTP client of the tests, on hyper: [`Http`] speaks to one server at a socket address
//! (one fresh connection per request, so no pooled connection outlives a test or holds a
//! server's graceful shutdown open), [`fetch_url`] sends one request to an absolute `http://` URL
//! (the real store servers), and both answer a whole [`Reply`]. Bodies go with a length, chunked,
//! or generated while sending ([`Payload`]); downloads can be hashed as they stream in
//! ([`Http::get_hashed`]) so 300 MiB never sit in the test's memory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::HOST;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use serde_json::Value;
use tokio::runtime::Runtime;

use super::fixtures::{hex, id_of, DataGen, GEN_CHUNK};

/// Longest one request to glint may take (a 300 MiB transfer included) before the test fails
/// instead of hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest one request to a store server may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Response headers the client accepts: an image with 128 properties sends ~145.
const MAX_RESPONSE_HEADERS: usize = 512;

/// An error of the client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

    /// Asserts `status` and a JSON body (`Content-Type: application/json`), and returns it.
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

    /// Asserts a 200 JSON list response and returns its `images`.
    #[track_caller]
    pub fn images(&self) -> Vec<Value> {
        match self.json(200) {
            Value::Object(mut o) => match o.remove("images") {
                Some(Value::Array(images)) => images,
                other => panic!("no images array: {other:?}"),
            },
            other => panic!("not an object: {other}"),
        }
    }

    /// Asserts an error response in the format of spec §5.9 (`text/plain; charset=UTF-8`, body
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

    /// The status line, every header and the body, as one text (to search it for secrets).
    pub fn everything(&self) -> String {
        let mut all = format!("{}\n", self.status);
        for (name, value) in &self.headers {
            all.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        all.push_str(&self.text());
        all
    }
}

/// A download, hashed on the fly.
#[derive(Debug)]
pub struct Download {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Bytes received.
    pub len: u64,
    /// Their MD5 (lower-case hex).
    pub md5: String,
    /// The bytes, when asked to keep them.
    pub data: Option<Vec<u8>>,
}

impl Download {
    /// A header value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
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
    /// `len` bytes generated from `seed` while sending; `chunked` sends them without a length.
    Generated {
        /// How many bytes.
        len: u64,
        /// The generator's seed.
        seed: u64,
        /// `Transfer-Encoding: chunked` rather than `Content-Length`.
        chunked: bool,
    },
}

impl From<Bytes> for Payload {
    fn from(data: Bytes) -> Payload {
        Payload::Sized(data)
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload::Sized(Bytes::from(text))
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::Sized(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(data: Vec<u8>) -> Payload {
        Payload::Sized(Bytes::from(data))
    }
}

/// A request body: known chunks or generated data; no size hint makes hyper send it chunked.
enum TestBody {
    Chunks {
        chunks: VecDeque<Bytes>,
        exact: Option<u64>,
    },
    Generated {
        gen: DataGen,
        exact: Option<u64>,
    },
}

impl From<Payload> for TestBody {
    fn from(payload: Payload) -> TestBody {
        match payload {
            Payload::Empty => TestBody::Chunks {
                chunks: VecDeque::new(),
                exact: Some(0),
            },
            Payload::Sized(data) => TestBody::Chunks {
                exact: Some(data.len() as u64),
                chunks: VecDeque::from([data]),
            },
            Payload::Chunked(chunks) => TestBody::Chunks {
                chunks: chunks.into(),
                exact: None,
            },
            Payload::Generated { len, seed, chunked } => TestBody::Generated {
                gen: DataGen::new(len, seed),
                exact: (!chunked).then_some(len),
            },
        }
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            TestBody::Chunks { chunks, .. } => chunks.pop_front(),
            TestBody::Generated { gen, .. } => gen.next_chunk(GEN_CHUNK),
        };
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TestBody::Chunks { chunks, exact } => exact.is_some() && chunks.is_empty(),
            TestBody::Generated { gen, exact } => exact.is_some() && gen.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let exact = match self {
            TestBody::Chunks { exact, .. } | TestBody::Generated { exact, .. } => *exact,
        };
        match exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A current-thread runtime that drives a client's requests; the tests themselves are
/// synchronous.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client of the server at one address.
pub struct Http {
    /// Where the server listens.
    addr: SocketAddr,
    /// Drives the requests.
    rt: Runtime,
}

impl Http {
    /// A client of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            rt: runtime(),
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and reads the whole response.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload: impl Into<Payload>,
    ) -> Reply {
        self.try_request(method, path, headers, payload)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Http::request`], with a failure to connect, send or read (a server that died)
    /// returned rather than a panic.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload: impl Into<Payload>,
    ) -> Result<Reply, String> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = TestBody::from(payload.into());
        let fut = async {
            let mut opened = open(self.addr, method.clone(), path, headers, body).await?;
            let body = (&mut opened.body).collect().await?.to_bytes();
            let reply = Reply {
                status: opened.parts.status,
                headers: std::mem::take(&mut opened.parts.headers),
                body,
            };
            opened.close().await;
            Ok::<_, BoxError>(reply)
        };
        match self
            .rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
        {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(format!("{method} {path}: {e}")),
            Err(_) => Err(format!(
                "{method} {path}: no response in {REQUEST_TIMEOUT:?}"
            )),
        }
    }

    /// `GET path`.
    #[track_caller]
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], Payload::Empty)
    }

    /// `GET path`; asserts 200 and returns `images` from the body.
    #[track_caller]
    pub fn list(&self, path: &str) -> Vec<Value> {
        self.get(path).images()
    }

    /// The ids of `GET path`, in order.
    #[track_caller]
    pub fn list_ids(&self, path: &str) -> Vec<String> {
        self.list(path).iter().map(id_of).collect()
    }

    /// The ids of `GET path` as a set, asserting no image is listed twice.
    #[track_caller]
    pub fn id_set(&self, path: &str) -> BTreeSet<String> {
        let ids = self.list_ids(path);
        let set: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            set.len(),
            ids.len(),
            "{path} listed an image twice: {ids:?}"
        );
        set
    }

    /// `GET path`, hashed as it streams in; the bytes are kept when `keep`.
    #[track_caller]
    pub fn get_hashed(&self, path: &str, keep: bool) -> Download {
        let fut = async {
            let body = TestBody::from(Payload::Empty);
            let mut opened = open(self.addr, Method::GET, path, &[], body).await?;
            let mut md5 = Md5::new();
            let mut len = 0u64;
            let mut data = keep.then(Vec::new);
            while let Some(frame) = opened.body.frame().await {
                if let Ok(chunk) = frame?.into_data() {
                    md5.update(&chunk);
                    len += chunk.len() as u64;
                    if let Some(data) = &mut data {
                        data.extend_from_slice(&chunk);
                    }
                }
            }
            let download = Download {
                status: opened.parts.status,
                headers: std::mem::take(&mut opened.parts.headers),
                len,
                md5: hex(&md5.finalize()),
                data,
            };
            opened.close().await;
            Ok::<_, BoxError>(download)
        };
        self.rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
            .unwrap_or_else(|_| panic!("GET {path}: no response in {REQUEST_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Sends a request on a fresh connection and answers the response head and its streaming body.
async fn open<B>(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: B,
) -> Result<Opened, BoxError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_headers(MAX_RESPONSE_HEADERS)
        .handshake(TokioIo::new(stream))
        .await?;
    let conn = tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header(HOST, addr.to_string());
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender.send_request(req.body(body)?).await?;
    let (parts, body) = resp.into_parts();
    Ok(Opened { parts, body, conn })
}

/// A response whose body is still to be read, and its connection.
struct Opened {
    parts: hyper::http::response::Parts,
    body: hyper::body::Incoming,
    conn: tokio::task::JoinHandle<hyper::Result<()>>,
}

impl Opened {
    /// Waits (briefly) for the connection to end once the body has been read, so that no
    /// connection outlives a test or holds a server's graceful shutdown open. A reset after a
    /// refused body is not our concern.
    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.conn).await;
    }
}

/// One request to an absolute `http://` URL of a store server, read whole.
async fn fetch(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Reply, BoxError> {
    let parsed = url::Url::parse(url)?;
    let host = parsed.host_str().ok_or("URL without host")?;
    let port = parsed.port_or_known_default().ok_or("URL without port")?;
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or("host does not resolve")?;
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut all: Vec<(&str, &str)> = vec![("host", authority.as_str())];
    all.extend_from_slice(headers);
    let length = body.len().to_string();
    if !body.is_empty() || method == Method::PUT || method == Method::POST {
        all.push(("content-length", length.as_str()));
    }
    let body = http_body_util::Full::new(body);
    let mut opened = open(addr, method, &target, &all, body).await?;
    let data = (&mut opened.body).collect().await?.to_bytes();
    let reply = Reply {
        status: opened.parts.status,
        headers: std::mem::take(&mut opened.parts.headers),
        body: data,
    };
    opened.close().await;
    Ok(reply)
}

/// One request to an absolute `http://` URL (at most 60 s), driven on `rt`.
#[track_caller]
pub fn fetch_url(
    rt: &Runtime,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let what = format!("{method} {}", url.split('?').next().unwrap_or(url));
    rt.block_on(async {
        tokio::time::timeout(FETCH_TIMEOUT, fetch(method, url, headers, body)).await
    })
    .unwrap_or_else(|_| panic!("{what}: no answer in {FETCH_TIMEOUT:?}"))
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}
