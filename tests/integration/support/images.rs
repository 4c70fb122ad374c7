//! The image service as real processes: [`ImageServer`] in either deployment shape
//! (`glint serve`, or `glint registry` + `glint api --registry-url`) on free loopback ports over
//! fresh data directories, and [`ApiClient`], the Images API helpers on the tests' one [`Http`]
//! (v1 paths, uploads with a length, chunked or generated, hashed downloads, and raw TCP for a
//! client that goes away in the middle of an upload or reads the answer before it has sent all).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{HeaderMap, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use super::fixtures::{id_of, DataGen, GEN_CHUNK};
use super::glint::GlintProcess;
use super::http::{Download, Http, Payload, Reply, REQUEST_TIMEOUT};

/// The detail list with every image in any state (deleted and killed included).
pub const ALL_IMAGES: &str =
    "/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=None&limit=1000";

/// An Images API client.
pub struct ApiClient {
    /// The HTTP client.
    http: Http,
}

impl ApiClient {
    /// A client of the API at `addr`.
    pub fn new(addr: SocketAddr) -> ApiClient {
        ApiClient {
            http: Http::new(addr),
        }
    }

    /// `GET path` with extra headers.
    #[track_caller]
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, Payload::Empty)
    }

    /// `HEAD /v1/images/{id}`.
    #[track_caller]
    pub fn head(&self, id: &str) -> Reply {
        self.request("HEAD", &format!("/v1/images/{id}"), &[], Payload::Empty)
    }

    /// `GET /v1/images/{id}`.
    #[track_caller]
    pub fn download(&self, id: &str) -> Reply {
        self.get(&format!("/v1/images/{id}"))
    }

    /// `GET /v1/images/{id}`, hashed as it streams in; the bytes are kept when `keep`.
    #[track_caller]
    pub fn download_hashed(&self, id: &str, keep: bool) -> Download {
        self.http.get_hashed(&format!("/v1/images/{id}"), keep)
    }

    /// `DELETE /v1/images/{id}`.
    #[track_caller]
    pub fn delete(&self, id: &str) -> Reply {
        self.request("DELETE", &format!("/v1/images/{id}"), &[], Payload::Empty)
    }

    /// `POST /v1/images` with metadata headers and no body.
    #[track_caller]
    pub fn post(&self, headers: &[(&str, &str)]) -> Reply {
        self.request("POST", "/v1/images", headers, Payload::Empty)
    }

    /// `POST /v1/images` with `data` (Content-Length), `Content-Type: application/octet-stream`
    /// and the metadata headers.
    #[track_caller]
    pub fn post_data(&self, headers: &[(&str, &str)], data: &[u8]) -> Reply {
        self.send_data("POST", "/v1/images", headers, data)
    }

    /// `PUT /v1/images/{id}` with metadata headers and no body.
    #[track_caller]
    pub fn put(&self, id: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("PUT", &format!("/v1/images/{id}"), headers, Payload::Empty)
    }

    /// `PUT /v1/images/{id}` with `data`, like [`ApiClient::post_data`].
    #[track_caller]
    pub fn put_data(&self, id: &str, headers: &[(&str, &str)], data: &[u8]) -> Reply {
        self.send_data("PUT", &format!("/v1/images/{id}"), headers, data)
    }

    #[track_caller]
    fn send_data(&self, method: &str, path: &str, headers: &[(&str, &str)], data: &[u8]) -> Reply {
        let mut all = vec![("content-type", "application/octet-stream")];
        all.extend_from_slice(headers);
        let payload = Payload::Sized(Bytes::copy_from_slice(data));
        self.request(method, path, &all, payload)
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

    /// One series of the service's `/metrics`, written as the exposition spells it (labels in
    /// glint's order, e.g. `glint_store_bytes_total{store="s3",direction="out"}`); 0 when the
    /// series is absent (nothing counted yet).
    #[track_caller]
    pub fn metric(&self, series: &str) -> f64 {
        let reply = self.get("/metrics");
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply
            .text()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
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

    /// Polls `HEAD` until the image has `status` (at most `timeout`); returns the last status
    /// seen (empty when there was none).
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let head = self.head(id);
            let now = head.meta().remove("status").unwrap_or_default();
            if head.status == StatusCode::OK && now == status || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The detail object of `id` in any state (deleted and killed included), or `None`.
    #[track_caller]
    pub fn detail_of(&self, id: &str) -> Option<Value> {
        self.list(ALL_IMAGES)
            .into_iter()
            .find(|image| id_of(image) == id)
    }

    /// Opens a raw connection and starts a `POST /v1/images` upload of image `id` (raw/bare,
    /// with `headers`) announcing `total` bytes, of which only `sent` (generated from seed 7)
    /// are written. The caller decides what happens next (see [`close`]); the server closes the
    /// connection after its answer. Err: the server answered (and closed) before `sent` bytes
    /// were taken; the error holds its answer.
    pub fn try_start_upload(
        &self,
        id: &str,
        headers: &[(&str, &str)],
        total: u64,
        sent: u64,
    ) -> Result<TcpStream, String> {
        let mut all = vec![
            ("x-image-meta-id", id),
            ("x-image-meta-name", "partial"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
        ];
        all.extend_from_slice(headers);
        self.start_body("POST /v1/images", &all, total, sent)
    }

    /// Like [`ApiClient::try_start_upload`], for a v2 `PUT /v2/images/{id}/stage` of a queued
    /// image.
    pub fn try_start_stage(&self, id: &str, total: u64, sent: u64) -> Result<TcpStream, String> {
        self.start_body(&format!("PUT /v2/images/{id}/stage"), &[], total, sent)
    }

    /// Opens a raw connection, sends `request` (method and path) with `headers` announcing
    /// `total` bytes of octet-stream, and writes only `sent` of them (seed 7). Err: the
    /// server's answer, when it stopped taking the body before that.
    fn start_body(
        &self,
        request: &str,
        headers: &[(&str, &str)],
        total: u64,
        sent: u64,
    ) -> Result<TcpStream, String> {
        let mut stream = TcpStream::connect(self.addr()).unwrap();
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let mut head = format!(
            "{request} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n",
            self.addr()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut gen = DataGen::new(sent, 7);
        let mut written = 0u64;
        let mut send = || -> std::io::Result<()> {
            stream.write_all(head.as_bytes())?;
            while let Some(chunk) = gen.next_chunk(GEN_CHUNK) {
                stream.write_all(&chunk)?;
                written += chunk.len() as u64;
            }
            stream.flush()
        };
        if let Err(e) = send() {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            return Err(format!(
                "{request}: the server stopped taking the body after {written} of {sent} bytes \
                 ({e}); it answered:\n{}",
                String::from_utf8_lossy(&answer)
            ));
        }
        Ok(stream)
    }

    /// A `POST /v1/images` of `len` generated bytes (raw/bare, `Content-Length`) over a raw
    /// connection whose answer is read while the body is still being written, as curl does: a
    /// server that refuses an upload answers before reading all of it, then closes.
    #[track_caller]
    pub fn upload_answered_early(&self, headers: &[(&str, &str)], len: u64, seed: u64) -> Reply {
        let mut stream = TcpStream::connect(self.addr()).unwrap();
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let mut head = format!(
            "POST /v1/images HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n\
             x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n",
            self.addr()
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
}

/// `addr`, `request`, `get`, `list` and `list_ids` are the [`Http`] client's.
impl std::ops::Deref for ApiClient {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

/// Closes a connection of [`ApiClient::start_upload`]: the client goes away mid-upload.
pub fn close(stream: TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Both);
    drop(stream);
}

/// How the image service is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `glint serve`: API and registry in one process.
    Serve,
    /// `glint registry` and `glint api --registry-url`: two processes, two data directories.
    Split,
}

/// The image service as real processes on loopback ports, over temporary data directories.
/// Dropping it kills the processes (by PID), then removes the directories.
pub struct ImageServer {
    /// Speaks to the Images API.
    client: ApiClient,
    /// The process serving the Images API (`glint serve` or `glint api`).
    api: GlintProcess,
    /// `glint registry` in the split shape.
    registry: Option<GlintProcess>,
    /// Where the Registry API listens (`glint serve`'s own port, or `glint registry`'s).
    registry_addr: SocketAddr,
    /// The deployment shape.
    shape: Shape,
    /// Environment given to every process, kept for [`ImageServer::restart`].
    env: Vec<(String, String)>,
    /// Extra arguments given to the API process, kept for [`ImageServer::restart`].
    extra_args: Vec<String>,
    /// The API process's data directory (holds `images/`); declared after the processes so it is
    /// removed once they are dead.
    api_dir: TempDir,
    /// The registry's own data directory in the split shape.
    _registry_dir: Option<TempDir>,
}

impl ImageServer {
    /// The service in `shape`, with `env` (e.g. `GLINT_IMAGE_SIZE_CAP`) given to its processes.
    pub fn start(shape: Shape, env: &[(&str, &str)]) -> ImageServer {
        ImageServer::start_with_args(shape, env, &[])
    }

    /// `glint serve` with `env` (owned pairs, as the store configurations are built), with `-d`
    /// when `debug`.
    pub fn serve(env: &[(String, String)], debug: bool) -> ImageServer {
        let extra: &[&str] = if debug { &["-d"] } else { &[] };
        ImageServer::start_with_args(Shape::Serve, &env_refs(env), extra)
    }

    /// Like [`ImageServer::start`], with extra arguments (e.g. `--config-file`) for the API
    /// process.
    pub fn start_with_args(shape: Shape, env: &[(&str, &str)], extra: &[&str]) -> ImageServer {
        let api_dir = tempfile::tempdir().unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let extra_args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let (registry, registry_dir) = match shape {
            Shape::Serve => (None, None),
            Shape::Split => {
                let dir = tempfile::tempdir().unwrap();
                let (registry, addr) =
                    GlintProcess::start_registry(dir.path(), &[], &env_refs(&env));
                (Some((registry, addr)), Some(dir))
            }
        };
        let remote = registry.as_ref().map(|(_, addr)| *addr);
        let (api, addr, registry_addr) =
            spawn_api(shape, api_dir.path(), remote, &env, &extra_args);
        ImageServer {
            client: ApiClient::new(addr),
            api,
            registry: registry.map(|(process, _)| process),
            registry_addr,
            shape,
            env,
            extra_args,
            api_dir,
            _registry_dir: registry_dir,
        }
    }

    /// The deployment shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The filesystem store's directory: `<API data dir>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.api_dir.path().join("images")
    }

    /// Names of every file in the filesystem store's directory, hidden ones included.
    pub fn image_files(&self) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(self.images_dir()) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.images_dir().display()),
        };
        names.sort();
        names
    }

    /// Asserts that the store holds no data for `id`, neither complete nor partial, and no
    /// partial file of any upload.
    #[track_caller]
    pub fn assert_no_data_for(&self, id: &str) {
        let files = self.image_files();
        assert!(
            !files
                .iter()
                .any(|f| f.contains(id) || f.ends_with(".partial")),
            "data left behind for {id} in {}: {files:?}",
            self.images_dir().display()
        );
    }

    /// The API process (to kill it).
    pub fn api_process(&mut self) -> &mut GlintProcess {
        &mut self.api
    }

    /// The highest resident set size of the API process so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.api.peak_rss()
    }

    /// Everything the processes wrote to stderr, for failure messages and log checks.
    /// [`ApiClient::try_start_upload`]; panics with the server's answer and log when it
    /// stopped taking the body early.
    #[track_caller]
    pub fn start_upload(
        &self,
        id: &str,
        headers: &[(&str, &str)],
        total: u64,
        sent: u64,
    ) -> TcpStream {
        self.client
            .try_start_upload(id, headers, total, sent)
            .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.logs()))
    }

    /// [`ApiClient::try_start_stage`]; panics with the server's answer and log when it stopped
    /// taking the body early.
    #[track_caller]
    pub fn start_stage(&self, id: &str, total: u64, sent: u64) -> TcpStream {
        self.client
            .try_start_stage(id, total, sent)
            .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.logs()))
    }

    /// What the processes wrote to stderr so far.
    pub fn logs(&self) -> String {
        let mut logs = format!("api:\n{}", self.api.stderr());
        if let Some(registry) = &self.registry {
            logs.push_str(&format!("registry:\n{}", registry.stderr()));
        }
        logs
    }

    /// Where the Registry API listens (it moves when `glint serve` restarts).
    pub fn registry_addr(&self) -> SocketAddr {
        self.registry_addr
    }

    /// Kills the API process with SIGKILL (if still running) and starts it again over the same
    /// data directory, on a new port: `glint serve` whole, or `glint api` alone (the registry
    /// process keeps running).
    pub fn restart(&mut self) {
        if self.api.is_running() {
            self.api.kill9();
        }
        let remote = (self.shape == Shape::Split).then_some(self.registry_addr);
        let (api, addr, registry_addr) = spawn_api(
            self.shape,
            self.api_dir.path(),
            remote,
            &self.env,
            &self.extra_args,
        );
        self.api = api;
        self.client = ApiClient::new(addr);
        self.registry_addr = registry_addr;
    }
}

impl std::ops::Deref for ImageServer {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.client
    }
}

/// Borrowed copies of owned `(name, value)` pairs.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Spawns the process that serves the Images API and waits until it listens; returns it, its
/// address and the registry's (`glint serve`'s own, or `registry`).
fn spawn_api(
    shape: Shape,
    data_dir: &Path,
    registry: Option<SocketAddr>,
    env: &[(String, String)],
    extra: &[String],
) -> (GlintProcess, SocketAddr, SocketAddr) {
    let registry_url = registry.map(|addr| format!("http://{addr}"));
    let mut args = vec![
        "--bind-host",
        "127.0.0.1",
        "--api-port",
        "0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    match (shape, &registry_url) {
        (Shape::Serve, _) => args.splice(0..0, ["serve", "--registry-port", "0"]),
        (Shape::Split, Some(url)) => args.splice(0..0, ["api", "--registry-url", url.as_str()]),
        (Shape::Split, None) => panic!("the split shape needs a registry"),
    };
    args.extend(extra.iter().map(String::as_str));
    let mut api = GlintProcess::spawn(&args, &env_refs(env));
    // `glint serve` announces its registry port first.
    let registry = match registry {
        Some(addr) => addr,
        None => api.wait_listening("registry"),
    };
    let addr = api.wait_listening("api");
    (api, addr, registry)
}
