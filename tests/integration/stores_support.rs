//! Support for the store tests against real servers on loopback (Ceph radosgw for S3, Swift with
//! tempauth, nginx for the http store; see `scripts/services/README.md`):
//!
//! * reading the servers' variables from the environment, failing when `GLINT_REQUIRE_STORES=1`
//!   (CI) and printing a loud `SKIPPED:` line otherwise ([`s3_env`], [`swift_env`], [`http_env`]);
//! * `glint serve` configured for a store ([`Glint`]) and a hyper client of its Images API that
//!   streams generated data up and hashes downloads on the fly ([`Api`]), so 300 MiB never sit in
//!   the test's memory;
//! * direct clients of the real servers, to see what glint left there ([`S3Direct`],
//!   [`SwiftDirect`]), which also remove the test's bucket or container when dropped.

use std::collections::VecDeque;
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
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::Value;
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::support::GlintProcess;

/// Set to `1` by `scripts/test.sh` (CI): a missing store server fails the test.
pub const REQUIRE_STORES: &str = "GLINT_REQUIRE_STORES";

/// Longest one request may take (a 300 MiB transfer included) before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest `glint serve` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Response headers accepted from glint.
const MAX_RESPONSE_HEADERS: usize = 512;

/// Size of the chunks of generated data.
const GEN_CHUNK: usize = 1 << 20;

/// One MiB.
pub const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The servers' variables

/// Reads `vars` from the environment. When one is missing, the test fails if
/// `GLINT_REQUIRE_STORES=1`, and otherwise prints a loud `SKIPPED:` line and gets `None`.
#[track_caller]
pub fn service_vars(service: &str, script: &str, vars: &[&str]) -> Option<Vec<String>> {
    let missing: Vec<&str> = vars
        .iter()
        .copied()
        .filter(|v| std::env::var(v).map_or(true, |s| s.trim().is_empty()))
        .collect();
    if missing.is_empty() {
        return Some(vars.iter().map(|v| std::env::var(v).unwrap()).collect());
    }
    let why = format!(
        "the {service} test server is missing: {} not set (start it with \
         `out=$(scripts/services/{script}) && eval \"$out\"`, or run scripts/test.sh)",
        missing.join(", ")
    );
    if std::env::var(REQUIRE_STORES).as_deref() == Ok("1") {
        panic!("{REQUIRE_STORES}=1 but {why}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("store test")
        .to_string();
    // Straight to the process's stderr, in one write: libtest captures `eprintln!` of passing
    // tests, and a skip must be seen.
    let banner = format!(
        "\n************************************************************\n\
         SKIPPED: {test}: {why}\n\
         ************************************************************\n"
    );
    let _ = std::io::stderr().lock().write_all(banner.as_bytes());
    None
}

/// The S3 server (radosgw): `S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_REGION`.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// `http://host:port`.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Signing region.
    pub region: String,
}

/// The S3 server's variables, or `None` (after a `SKIPPED:` line) outside CI.
#[track_caller]
pub fn s3_env() -> Option<S3Env> {
    let v = service_vars(
        "S3",
        "start-s3.sh",
        &["S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION"],
    )?;
    Some(S3Env {
        endpoint: v[0].trim_end_matches('/').to_string(),
        access_key: v[1].clone(),
        secret_key: v[2].clone(),
        region: v[3].clone(),
    })
}

/// The Swift server (tempauth): `SWIFT_AUTH_URL`, `SWIFT_USER`, `SWIFT_KEY`.
#[derive(Debug, Clone)]
pub struct SwiftEnv {
    /// The tempauth v1 endpoint.
    pub auth_url: String,
    /// `account:user`.
    pub user: String,
    /// The user's key.
    pub key: String,
}

/// The Swift server's variables, or `None` (after a `SKIPPED:` line) outside CI.
#[track_caller]
pub fn swift_env() -> Option<SwiftEnv> {
    let v = service_vars(
        "Swift",
        "start-swift.sh",
        &["SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY"],
    )?;
    Some(SwiftEnv {
        auth_url: v[0].clone(),
        user: v[1].clone(),
        key: v[2].clone(),
    })
}

/// The nginx of the http store: `HTTP_STORE_URL` (ends with `/`) and `HTTP_STORE_ROOT`.
#[derive(Debug, Clone)]
pub struct HttpEnv {
    /// Base URL, with a trailing slash.
    pub url: String,
    /// The directory nginx serves.
    pub root: std::path::PathBuf,
}

impl HttpEnv {
    /// The URL of `name` in the served directory.
    pub fn url_of(&self, name: &str) -> String {
        format!("{}{name}", self.url)
    }

    /// The URL that nginx redirects (302) to `name`.
    pub fn redirect_to(&self, name: &str) -> String {
        format!("{}redirect/{name}", self.url)
    }
}

/// The http store's nginx, or `None` (after a `SKIPPED:` line) outside CI.
#[track_caller]
pub fn http_env() -> Option<HttpEnv> {
    let v = service_vars(
        "HTTP",
        "start-http.sh",
        &["HTTP_STORE_URL", "HTTP_STORE_ROOT"],
    )?;
    let url = if v[0].ends_with('/') {
        v[0].clone()
    } else {
        format!("{}/", v[0])
    };
    Some(HttpEnv {
        url,
        root: v[1].clone().into(),
    })
}

/// A fresh name for a bucket or container: `glint-test-<12 hex digits>`.
pub fn unique_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("glint-test-{}", &id[..12])
}

/// The `GLINT_*` variables that configure the S3 store with `bucket`, uploads of known size up to
/// `threshold_mb` MiB in one PUT and parts of `part_mb` MiB, uploads going to S3 by default.
pub fn s3_config(
    env: &S3Env,
    bucket: &str,
    threshold_mb: u64,
    part_mb: u64,
) -> Vec<(String, String)> {
    vars(&[
        ("GLINT_S3_STORE_HOST", &env.endpoint),
        ("GLINT_S3_STORE_ACCESS_KEY", &env.access_key),
        ("GLINT_S3_STORE_SECRET_KEY", &env.secret_key),
        ("GLINT_S3_STORE_BUCKET", bucket),
        ("GLINT_S3_STORE_CREATE_BUCKET_ON_PUT", "true"),
        ("GLINT_S3_STORE_REGION", &env.region),
        (
            "GLINT_S3_STORE_LARGE_OBJECT_SIZE",
            &threshold_mb.to_string(),
        ),
        (
            "GLINT_S3_STORE_LARGE_OBJECT_CHUNK_SIZE",
            &part_mb.to_string(),
        ),
        ("GLINT_DEFAULT_STORE", "s3"),
    ])
}

/// The `GLINT_*` variables that configure the Swift store with `container`, objects of
/// `large_mb` MiB or more as segments of `chunk_mb` MiB (uploads name the store).
pub fn swift_config(
    env: &SwiftEnv,
    container: &str,
    large_mb: u64,
    chunk_mb: u64,
) -> Vec<(String, String)> {
    vars(&[
        ("GLINT_SWIFT_STORE_AUTH_ADDRESS", &env.auth_url),
        ("GLINT_SWIFT_STORE_USER", &env.user),
        ("GLINT_SWIFT_STORE_KEY", &env.key),
        ("GLINT_SWIFT_STORE_CONTAINER", container),
        ("GLINT_SWIFT_STORE_CREATE_CONTAINER_ON_PUT", "true"),
        ("GLINT_SWIFT_STORE_LARGE_OBJECT_SIZE", &large_mb.to_string()),
        (
            "GLINT_SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE",
            &chunk_mb.to_string(),
        ),
    ])
}

/// Owned copies of `pairs`.
pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replaces (or adds) `name` in `env`.
pub fn set_var(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    env.retain(|(k, _)| k != name);
    env.push((name.to_string(), value.to_string()));
}

// ---------------------------------------------------------------------------------------------
// glint

/// `glint serve` on loopback ports over a temporary data directory, killed by PID on drop.
pub struct Glint {
    /// Speaks to the Images API.
    pub api: Api,
    /// The process.
    process: GlintProcess,
    /// The data directory; declared last so it is removed after the process is dead.
    _dir: TempDir,
}

impl Glint {
    /// Starts `glint serve` with `env` (inherited `GLINT_*` variables removed), with `-d` when
    /// `debug`, and waits for its `api listening on` line.
    #[track_caller]
    pub fn start(env: &[(String, String)], debug: bool) -> Glint {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "serve",
            "--bind-host",
            "127.0.0.1",
            "--api-port",
            "0",
            "--registry-port",
            "0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ];
        if debug {
            args.push("-d");
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut process = GlintProcess::spawn(&args, &env);
        let needle = "glint: api listening on http://";
        let deadline = Instant::now() + START_TIMEOUT;
        let addr: SocketAddr = loop {
            let log = process.stderr();
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                let (_, addr) = line.split_once(needle).unwrap();
                break addr.trim().parse().unwrap();
            }
            if let Some(status) = process.wait_exit(Duration::ZERO) {
                panic!(
                    "glint exited ({status}) before listening; stderr:\n{}",
                    process.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "glint did not listen within {START_TIMEOUT:?}; stderr:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Glint {
            api: Api::new(addr),
            process,
            _dir: dir,
        }
    }

    /// Everything glint wrote to stderr so far.
    pub fn log(&self) -> String {
        self.process.stderr()
    }

    /// The highest resident set size of the process so far, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl std::ops::Deref for Glint {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

// ---------------------------------------------------------------------------------------------
// Generated data

/// Bytes of the pool that generated data is cut from.
const POOL: usize = 4 << 20;

/// Reproducible, incompressible bytes, produced a chunk at a time: slices of a pool of
/// pseudo-random bytes (xorshift64 from the seed), each chunk starting at an offset derived from
/// the seed and its position. Cutting slices keeps a 300 MiB stream cheap in an unoptimized test
/// build, and no two neighbouring chunks (nor parts or segments) repeat each other.
#[derive(Debug, Clone)]
pub struct DataGen {
    /// `POOL + GEN_CHUNK` pseudo-random bytes.
    pool: Bytes,
    /// The seed.
    seed: u64,
    /// Chunks produced so far.
    index: u64,
    /// Bytes still to produce.
    left: u64,
}

impl DataGen {
    /// `len` bytes from `seed`.
    pub fn new(len: u64, seed: u64) -> DataGen {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut pool = Vec::with_capacity(POOL + GEN_CHUNK);
        while pool.len() < POOL + GEN_CHUNK {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            pool.extend_from_slice(&state.to_le_bytes());
        }
        DataGen {
            pool: Bytes::from(pool),
            seed,
            index: 0,
            left: len,
        }
    }

    /// The next chunk of at most `max` (at most 1 MiB) bytes, `None` at the end.
    pub fn next_chunk(&mut self, max: usize) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(max.min(GEN_CHUNK) as u64) as usize;
        let mix = (self.index ^ self.seed.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let offset = ((mix >> 17) % POOL as u64) as usize;
        self.index += 1;
        self.left -= n as u64;
        Some(self.pool.slice(offset..offset + n))
    }
}

/// `len` generated bytes from `seed`, whole (for small images).
pub fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut gen = DataGen::new(len as u64, seed);
    let mut out = Vec::with_capacity(len);
    while let Some(chunk) = gen.next_chunk(GEN_CHUNK) {
        out.extend_from_slice(&chunk);
    }
    out
}

/// The MD5 (lower-case hex) of `len` generated bytes from `seed`, computed as a stream.
pub fn generated_md5(len: u64, seed: u64) -> String {
    let mut gen = DataGen::new(len, seed);
    let mut md5 = Md5::new();
    while let Some(chunk) = gen.next_chunk(GEN_CHUNK) {
        md5.update(&chunk);
    }
    hex(&md5.finalize())
}

/// The MD5 (lower-case hex) of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The Images API client

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
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
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
            TestBody::Generated { gen, exact } => exact.is_some() && gen.left == 0,
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

/// A client of glint's Images API on hyper: one fresh connection per request.
pub struct Api {
    /// Where the API listens.
    addr: SocketAddr,
    /// Drives the requests; the tests themselves are synchronous.
    rt: Runtime,
}

impl Api {
    /// A client of the API at `addr`.
    pub fn new(addr: SocketAddr) -> Api {
        Api {
            addr,
            rt: runtime(),
        }
    }

    /// Sends one request and reads the whole response.
    #[track_caller]
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload: Payload,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = match payload {
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
        };
        let fut = async {
            let (parts, mut body) = open(self.addr, method.clone(), path, headers, body).await?;
            let mut data = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Ok(chunk) = frame?.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Ok::<_, BoxError>(Reply {
                status: parts.status,
                headers: parts.headers,
                body: Bytes::from(data),
            })
        };
        self.rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
            .unwrap_or_else(|_| panic!("{method} {path}: no response in {REQUEST_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `POST /v1/images` of a raw/bare image named `name` with `payload` and extra headers.
    #[track_caller]
    pub fn upload(&self, name: &str, headers: &[(&str, &str)], payload: Payload) -> Reply {
        let mut all = vec![
            ("content-type", "application/octet-stream"),
            ("x-image-meta-name", name),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
        ];
        all.extend_from_slice(headers);
        self.request("POST", "/v1/images", &all, payload)
    }

    /// `POST /v1/images` without data.
    #[track_caller]
    pub fn post(&self, headers: &[(&str, &str)]) -> Reply {
        self.request("POST", "/v1/images", headers, Payload::Empty)
    }

    /// `HEAD /v1/images/{id}`.
    #[track_caller]
    pub fn head(&self, id: &str) -> Reply {
        self.request("HEAD", &format!("/v1/images/{id}"), &[], Payload::Empty)
    }

    /// `GET path`.
    #[track_caller]
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], Payload::Empty)
    }

    /// `DELETE /v1/images/{id}`.
    #[track_caller]
    pub fn delete(&self, id: &str) -> Reply {
        self.request("DELETE", &format!("/v1/images/{id}"), &[], Payload::Empty)
    }

    /// `x-image-meta-status` of `HEAD /v1/images/{id}` (asserting 200).
    #[track_caller]
    pub fn status_of(&self, id: &str) -> String {
        let head = self.head(id);
        assert_eq!(head.status, StatusCode::OK, "HEAD {id}: {head:?}");
        head.header("x-image-meta-status")
            .unwrap_or_else(|| panic!("no status header: {head:?}"))
            .to_string()
    }

    /// Polls `HEAD` until the image has `status` (at most `timeout`); returns the last status.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let head = self.head(id);
            let now = head.header("x-image-meta-status").unwrap_or("").to_string();
            if head.status == StatusCode::OK && now == status || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /v1/images/{id}`, hashed as it streams in; the bytes are kept when `keep`.
    #[track_caller]
    pub fn download(&self, id: &str, keep: bool) -> Download {
        let path = format!("/v1/images/{id}");
        let body = TestBody::Chunks {
            chunks: VecDeque::new(),
            exact: Some(0),
        };
        let fut = async {
            let (parts, mut body) = open(self.addr, Method::GET, &path, &[], body).await?;
            let mut md5 = Md5::new();
            let mut len = 0u64;
            let mut data = keep.then(Vec::new);
            while let Some(frame) = body.frame().await {
                if let Ok(chunk) = frame?.into_data() {
                    md5.update(&chunk);
                    len += chunk.len() as u64;
                    if let Some(data) = &mut data {
                        data.extend_from_slice(&chunk);
                    }
                }
            }
            Ok::<_, BoxError>(Download {
                status: parts.status,
                headers: parts.headers,
                len,
                md5: hex(&md5.finalize()),
                data,
            })
        };
        self.rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
            .unwrap_or_else(|_| panic!("GET {path}: no response in {REQUEST_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The detail object of `id` in any state (deleted and killed included), or `None`.
    #[track_caller]
    pub fn detail_of(&self, id: &str) -> Option<Value> {
        let reply = self
            .get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=None&limit=1000");
        let images = reply.json(200)["images"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        images.into_iter().find(|i| i["id"].as_str() == Some(id))
    }

    /// A `POST /v1/images` of `len` generated bytes (raw/bare, `Content-Length`) over a raw
    /// connection whose answer is read while the body is still being written, as curl does: a
    /// server that refuses an upload answers before reading all of it, then closes.
    #[track_caller]
    pub fn upload_answered_early(&self, headers: &[(&str, &str)], len: u64, seed: u64) -> Reply {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let mut head = format!(
            "POST /v1/images HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n\
             x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut writer = stream.try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            writer.write_all(head.as_bytes())?;
            let mut gen = DataGen::new(len, seed);
            while let Some(chunk) = gen.next_chunk(GEN_CHUNK) {
                writer.write_all(&chunk)?;
            }
            writer.flush()
        });
        let mut raw = Vec::new();
        let read = std::io::Read::read_to_end(&mut stream, &mut raw);
        // The write side fails once the server has answered and closed: that is the point.
        let _ = sending.join();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| {
            panic!("no complete answer ({read:?}): {text:?}");
        });
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or("");
        let code: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {status_line:?}"));
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers.append(
                    hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    value.trim().parse().unwrap(),
                );
            }
        }
        Reply {
            status: StatusCode::from_u16(code).unwrap(),
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    /// Starts a `POST /v1/images` of image `id` to `store` over a raw connection, announcing
    /// `total` bytes of which only `sent` are written; the upload stays open until the returned
    /// stream is closed (see [`close`]).
    pub fn start_upload(&self, id: &str, store: &str, total: u64, sent: u64) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        let head = format!(
            "POST /v1/images HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {total}\r\nx-image-meta-id: {id}\r\nx-image-meta-name: abandoned\r\n\
             x-image-meta-store: {store}\r\n\
             x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n\r\n",
            self.addr
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut gen = DataGen::new(sent, 7);
        while let Some(chunk) = gen.next_chunk(GEN_CHUNK) {
            stream.write_all(&chunk).unwrap();
        }
        stream.flush().unwrap();
        stream
    }
}

/// Closes a connection of [`Api::start_upload`]: the client goes away mid-upload.
pub fn close(stream: TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Both);
    drop(stream);
}

/// Polls `check` every 50 ms until it holds (at most `timeout`); returns whether it did.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends a request on a fresh connection and answers the response head and its streaming body.
async fn open<B>(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: B,
) -> Result<(hyper::http::response::Parts, hyper::body::Incoming), BoxError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_headers(MAX_RESPONSE_HEADERS)
        .handshake(TokioIo::new(stream))
        .await?;
    // The connection task ends with the body; a reset after a refused body is not our concern.
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header(HOST, addr.to_string());
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender.send_request(req.body(body)?).await?;
    Ok(resp.into_parts())
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
    let (parts, body) = open(addr, method, &target, &all, body).await?;
    let data = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: data,
    })
}

fn block_fetch(
    rt: &Runtime,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let what = format!("{method} {}", url.split('?').next().unwrap_or(url));
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), fetch(method, url, headers, body)).await
    })
    .unwrap_or_else(|_| panic!("{what}: no answer in 60 s"))
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The real S3 server

/// Presigned requests straight to the S3 server, to see what glint stored. Dropping it removes
/// the bucket with everything in it (unfinished multipart uploads included).
pub struct S3Direct {
    bucket: Bucket,
    credentials: Credentials,
    rt: Runtime,
}

/// How long a presigned URL of the tests stays valid.
const SIGN_TTL: Duration = Duration::from_secs(600);

impl S3Direct {
    /// A client of `bucket` (which need not exist yet) with the server's real credentials.
    pub fn new(env: &S3Env, bucket: &str) -> S3Direct {
        let endpoint: url::Url = env.endpoint.parse().unwrap();
        S3Direct {
            bucket: Bucket::new(
                endpoint,
                UrlStyle::Path,
                bucket.to_string(),
                env.region.clone(),
            )
            .unwrap(),
            credentials: Credentials::new(env.access_key.clone(), env.secret_key.clone()),
            rt: runtime(),
        }
    }

    fn send(&self, method: Method, url: &url::Url) -> Reply {
        block_fetch(&self.rt, method, url.as_str(), &[], Bytes::new())
    }

    /// Creates the bucket (an existing one is fine).
    #[track_caller]
    pub fn create_bucket(&self) {
        let url = self.bucket.create_bucket(&self.credentials).sign(SIGN_TTL);
        let r = block_fetch(&self.rt, Method::PUT, url.as_str(), &[], Bytes::new());
        assert!(
            r.status.is_success() || r.status == StatusCode::CONFLICT,
            "creating bucket {}: {r:?}",
            self.bucket.name()
        );
    }

    /// Whether the bucket exists.
    pub fn bucket_exists(&self) -> bool {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(SIGN_TTL);
        let r = self.send(Method::HEAD, &url);
        assert!(
            r.status.is_success() || r.status == StatusCode::NOT_FOUND,
            "HEAD bucket: {r:?}"
        );
        r.status.is_success()
    }

    /// `HEAD` of `key`: its headers, or `None` when S3 answers 404.
    #[track_caller]
    pub fn head(&self, key: &str) -> Option<HeaderMap> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), key)
            .sign(SIGN_TTL);
        let r = self.send(Method::HEAD, &url);
        match r.status {
            StatusCode::NOT_FOUND => None,
            s if s.is_success() => Some(r.headers),
            _ => panic!("HEAD {key}: {r:?}"),
        }
    }

    /// The ETag of `key` without its quotes, or `None` when there is no such object.
    #[track_caller]
    pub fn etag(&self, key: &str) -> Option<String> {
        self.head(key).map(|h| {
            h.get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no ETag for {key}: {h:?}"))
                .trim_matches('"')
                .to_string()
        })
    }

    /// Keys of the objects whose name starts with `prefix` (an absent bucket has none).
    #[track_caller]
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        action.with_prefix(prefix);
        let url = action.sign(SIGN_TTL);
        let r = self.send(Method::GET, &url);
        if r.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        assert!(r.status.is_success(), "listing {prefix}: {r:?}");
        let listing = rusty_s3::actions::ListObjectsV2::parse_response(&r.text())
            .unwrap_or_else(|e| panic!("unreadable listing ({e}): {}", r.text()));
        listing.contents.into_iter().map(|c| c.key).collect()
    }

    /// `(key, upload id)` of every unfinished multipart upload in the bucket
    /// (`GET /<bucket>?uploads`).
    #[track_caller]
    pub fn unfinished_uploads(&self) -> Vec<(String, String)> {
        // rusty-s3 has no ListMultipartUploads: presign a GET of the bucket itself (the object
        // with an empty key, `/<bucket>/`) with the `uploads` sub-resource.
        let mut action = self.bucket.get_object(Some(&self.credentials), "");
        action.query_mut().insert("uploads", "");
        let url = action.sign(SIGN_TTL);
        let r = self.send(Method::GET, &url);
        if r.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let text = r.text();
        assert!(
            r.status.is_success() && text.contains("ListMultipartUploadsResult"),
            "listing multipart uploads: {r:?}"
        );
        text.split("<Upload>")
            .skip(1)
            .map(|upload| (xml_field(upload, "Key"), xml_field(upload, "UploadId")))
            .collect()
    }

    /// Stores `data` as `key` (one plain PUT).
    #[track_caller]
    pub fn put(&self, key: &str, data: &[u8]) {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGN_TTL);
        let body = Bytes::copy_from_slice(data);
        let r = block_fetch(&self.rt, Method::PUT, url.as_str(), &[], body);
        assert!(r.status.is_success(), "PUT {key}: {r:?}");
    }

    /// Removes every object and unfinished upload, then the bucket; failures are ignored.
    fn destroy(&self) {
        for (key, upload) in self.unfinished_uploads() {
            let url = self
                .bucket
                .abort_multipart_upload(Some(&self.credentials), &key, &upload)
                .sign(SIGN_TTL);
            let _ = self.send(Method::DELETE, &url);
        }
        for key in self.list("") {
            let url = self
                .bucket
                .delete_object(Some(&self.credentials), &key)
                .sign(SIGN_TTL);
            let _ = self.send(Method::DELETE, &url);
        }
        let url = self.bucket.delete_bucket(&self.credentials).sign(SIGN_TTL);
        let _ = self.send(Method::DELETE, &url);
    }
}

impl Drop for S3Direct {
    fn drop(&mut self) {
        // Best effort, and never a second panic while a failed assertion unwinds.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.destroy()));
    }
}

fn xml_field(xml: &str, name: &str) -> String {
    xml.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("</{name}>")).next())
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The real Swift server

/// Requests straight to Swift with a tempauth token, to see what glint stored. Dropping it
/// removes the container with everything in it.
pub struct SwiftDirect {
    env: SwiftEnv,
    storage: String,
    /// Renewed when Swift answers 401 (a test may expire it on purpose).
    token: std::sync::Mutex<String>,
    container: String,
    rt: Runtime,
}

impl SwiftDirect {
    /// Authenticates as the configured user; `container` need not exist yet.
    #[track_caller]
    pub fn new(env: &SwiftEnv, container: &str) -> SwiftDirect {
        let rt = runtime();
        let (storage, token) = swift_login(&rt, env);
        SwiftDirect {
            env: env.clone(),
            storage,
            token: std::sync::Mutex::new(token),
            container: container.to_string(),
            rt,
        }
    }

    /// The token in use.
    pub fn token(&self) -> String {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Logs in again and returns the user's current token (tempauth hands every login of a
    /// user the same token until it expires).
    pub fn login(&self) -> String {
        let (_, token) = swift_login(&self.rt, &self.env);
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        token
    }

    /// A request with the token; on 401 one new login and one retry.
    fn send(&self, method: Method, path: &str) -> Reply {
        let url = format!("{}/{path}", self.storage);
        let reply = self.send_with(method.clone(), &url, &self.token());
        if reply.status != StatusCode::UNAUTHORIZED {
            return reply;
        }
        let (_, token) = swift_login(&self.rt, &self.env);
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        self.send_with(method, &url, &token)
    }

    /// A request to `{storage}/{path}` with exactly `token`, never renewed.
    pub fn send_with_token(&self, method: Method, path: &str, token: &str) -> Reply {
        self.send_with(method, &format!("{}/{path}", self.storage), token)
    }

    fn send_with(&self, method: Method, url: &str, token: &str) -> Reply {
        block_fetch(
            &self.rt,
            method,
            url,
            &[("x-auth-token", token)],
            Bytes::new(),
        )
    }

    /// Names in the container that start with `prefix`, in Swift's order (an absent container
    /// has none).
    #[track_caller]
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let r = self.send(
            Method::GET,
            &format!("{}?format=json&prefix={prefix}", self.container),
        );
        if r.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        assert!(r.status.is_success(), "listing {prefix}: {r:?}");
        if r.status == StatusCode::NO_CONTENT {
            return Vec::new();
        }
        let listed: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
        listed
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// `HEAD` of `object`: its headers, or `None` when Swift answers 404.
    #[track_caller]
    pub fn head(&self, object: &str) -> Option<HeaderMap> {
        let r = self.send(Method::HEAD, &format!("{}/{object}", self.container));
        match r.status {
            StatusCode::NOT_FOUND => None,
            s if s.is_success() => Some(r.headers),
            _ => panic!("HEAD {object}: {r:?}"),
        }
    }

    /// Whether the container exists.
    pub fn container_exists(&self) -> bool {
        let r = self.send(Method::HEAD, &self.container);
        r.status.is_success()
    }

    /// Removes every object, then the container; failures are ignored.
    fn destroy(&self) {
        for name in self.list("") {
            let _ = self.send(Method::DELETE, &format!("{}/{name}", self.container));
        }
        let _ = self.send(Method::DELETE, &self.container);
    }
}

/// Logs in with tempauth v1: the storage URL and a token (tempauth hands out the user's current
/// token while it is valid).
#[track_caller]
pub fn swift_login(rt: &Runtime, env: &SwiftEnv) -> (String, String) {
    let r = block_fetch(
        rt,
        Method::GET,
        &env.auth_url,
        &[("x-auth-user", &env.user), ("x-auth-key", &env.key)],
        Bytes::new(),
    );
    assert!(r.status.is_success(), "tempauth: {r:?}");
    (
        r.header("x-storage-url").unwrap().to_string(),
        r.header("x-auth-token").unwrap().to_string(),
    )
}

impl Drop for SwiftDirect {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.destroy()));
    }
}
