//! Test support: the Registry API served in-process on `127.0.0.1:0` over a temporary sled
//! directory ([`TestServer`]), the real `glint` binary as a child process ([`GlintProcess`]), and a
//! raw HTTP client on hyper ([`Client`]) that both are spoken to with.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HOST;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use glint::api::registry::RegistryService;
use glint::registry::{Limits, Registry};

/// Longest a single request may take before the test fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a spawned `glint` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Asserts a 200 JSON response and returns the parsed body.
    #[track_caller]
    pub fn ok_json(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
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
}

/// A raw HTTP/1.1 client: one fresh connection per request, so no pooled connection outlives a
/// test or holds a server's graceful shutdown open.
pub struct Client {
    /// Where the server listens.
    addr: SocketAddr,
    /// Drives the requests; the tests themselves are synchronous.
    rt: Runtime,
}

impl Client {
    /// A client of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Client { addr, rt }
    }

    /// Sends one request and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let fut = send(self.addr, method.clone(), path, headers, body.into());
        self.rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
            .unwrap_or_else(|_| panic!("{method} {path}: no response in {REQUEST_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], Bytes::new())
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], Bytes::new())
    }

    /// `POST path` with a JSON body given as text (so malformed bodies can be sent too).
    pub fn post_raw(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.into(),
        )
    }

    /// `PUT path` with a JSON body and extra headers.
    pub fn put_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.request("PUT", path, &all, body.to_string())
    }

    /// `POST /images` with `{"image": image}`: the raw reply.
    pub fn try_create(&self, image: Value) -> Reply {
        self.post_raw("/images", json!({ "image": image }).to_string())
    }

    /// `POST /images` with `{"image": image}`; asserts 200 and returns the stored record.
    #[track_caller]
    pub fn create(&self, image: Value) -> Value {
        self.try_create(image).ok_json()["image"].clone()
    }

    /// `PUT /images/{id}` with `{"image": image}` (upsert, no purge); returns the stored record.
    #[track_caller]
    pub fn update(&self, id: &str, image: Value) -> Value {
        self.put_json(&format!("/images/{id}"), &[], &json!({ "image": image }))
            .ok_json()["image"]
            .clone()
    }

    /// `GET path`; asserts 200 and returns `images` from the body.
    #[track_caller]
    pub fn list(&self, path: &str) -> Vec<Value> {
        match self.get(path).ok_json() {
            Value::Object(mut o) => match o.remove("images") {
                Some(Value::Array(images)) => images,
                other => panic!("{path}: no images array: {other:?}"),
            },
            other => panic!("{path}: not an object: {other}"),
        }
    }

    /// The ids of `GET path`, in order.
    #[track_caller]
    pub fn list_ids(&self, path: &str) -> Vec<String> {
        self.list(path).iter().map(id_of).collect()
    }
}

/// The `id` of an image object.
#[track_caller]
pub fn id_of(image: &Value) -> String {
    image["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {image}"))
        .to_string()
}

async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender.send_request(req.body(Full::new(body))?).await?;
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

/// The Registry API served in-process on `127.0.0.1:0` over a temporary sled directory. Dropping
/// it shuts the server down, waits for it, closes the database and removes the directory.
pub struct TestServer {
    /// Speaks to the server.
    client: Client,
    /// Fires the server's shutdown future.
    shutdown: Option<oneshot::Sender<()>>,
    /// Runs the accept loop; joined on drop.
    task: Option<tokio::task::JoinHandle<()>>,
    /// The server's runtime, separate from the client's so neither can starve the other.
    rt: Option<Runtime>,
    /// The sled directory; declared last so it is removed after the server has stopped.
    _dir: TempDir,
}

impl TestServer {
    /// A server with the default limits (25 / 1000) and an empty registry.
    pub fn start() -> TestServer {
        TestServer::start_with(Limits::default(), |_| {})
    }

    /// A server with `limits` whose registry `seed` fills before the first request.
    pub fn start_with(limits: Limits, seed: impl FnOnce(&Registry)) -> TestServer {
        TestServer::start_trusting(limits, seed, Vec::new())
    }

    /// Like [`TestServer::start_with`], believing the viewer headers of `trusted` peers
    /// (`registry_trusted_clients`).
    pub fn start_trusting(
        limits: Limits,
        seed: impl FnOnce(&Registry),
        trusted: Vec<std::net::IpAddr>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(&dir.path().join("registry")).unwrap());
        seed(&registry);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let service =
            Arc::new(RegistryService::new(registry.clone(), limits).with_trusted_clients(trusted));
        let task = rt.spawn(async move {
            glint::server::serve(listener, service, None, async {
                let _ = rx.await;
            })
            .await;
            registry.flush().await.unwrap();
        });
        TestServer {
            client: Client::new(addr),
            shutdown: Some(tx),
            task: Some(task),
            rt: Some(rt),
            _dir: dir,
        }
    }
}

impl std::ops::Deref for TestServer {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let (Some(rt), Some(task)) = (self.rt.take(), self.task.take()) {
            let stopped =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await });
            // Do not panic while already unwinding from a failed assertion.
            if !std::thread::panicking() {
                assert!(
                    matches!(stopped, Ok(Ok(()))),
                    "server did not stop cleanly: {stopped:?}"
                );
            }
        }
    }
}

/// The real `glint` binary as a child process. Killed by PID (SIGKILL) on drop if still running.
pub struct GlintProcess {
    /// The process.
    child: Child,
    /// Everything it wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
    /// Each stderr line as it arrives, for [`GlintProcess::wait_listening`].
    lines: mpsc::Receiver<String>,
    /// Drains stderr so a chatty server never blocks on a full pipe.
    reader: Option<JoinHandle<()>>,
}

impl GlintProcess {
    /// Spawns `glint args...` with `env` added and every inherited `GLINT_*` variable removed.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> GlintProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_glint"));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("GLINT_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        GlintProcess {
            child,
            stderr,
            lines,
            reader: Some(reader),
        }
    }

    /// Starts `glint registry` on `127.0.0.1:0` over `data_dir` and waits until it listens.
    pub fn start_registry(data_dir: &Path, extra: &[&str]) -> (GlintProcess, SocketAddr) {
        let dir = data_dir.to_str().unwrap();
        let mut args = vec![
            "registry",
            "--bind-host",
            "127.0.0.1",
            "--registry-port",
            "0",
            "--data-dir",
            dir,
        ];
        args.extend_from_slice(extra);
        let mut process = GlintProcess::spawn(&args, &[]);
        let addr = process.wait_listening();
        (process, addr)
    }

    /// Waits for the `registry listening on http://ADDR` line and returns ADDR.
    #[track_caller]
    pub fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => {
                    if let Some((_, addr)) = line.split_once("registry listening on http://") {
                        return addr.trim().parse().unwrap();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(5));
                    panic!(
                        "glint exited ({status:?}) before listening; stderr:\n{}",
                        self.stderr()
                    );
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "glint exited ({status}) before listening; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "glint did not listen within {START_TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`) to this process by PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// `kill -9` by PID, then reaps the process.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.join_reader();
    }

    /// Polls for the exit (bounded by `timeout`); once exited, all of stderr has been read.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.join_reader();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for GlintProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_reader();
    }
}

/// Runs `glint args...` with `env` to completion (at most 30 s) and returns its exit status and
/// stderr. A process still running at the deadline is killed and the test fails.
#[track_caller]
pub fn run_glint(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut process = GlintProcess::spawn(args, env);
    match process.wait_exit(Duration::from_secs(30)) {
        Some(status) => (status, process.stderr()),
        None => panic!(
            "glint {args:?} still running after 30 s; stderr:\n{}",
            process.stderr()
        ),
    }
}
