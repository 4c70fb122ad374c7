//! Support for the Images API tests: the real `glint` binary in either deployment shape
//! ([`ImageServer`]: `glint serve`, or `glint registry` + `glint api --registry-url`), and in
//! `client` a hyper client that sends image data with a `Content-Length` or chunked
//! ([`ApiClient`]), plus raw TCP for a client that goes away in the middle of an upload.

mod client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use client::{id_of, md5_hex, test_data, ApiClient, Payload, Reply};

/// Longest a spawned `glint` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the image service is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `glint serve`: API and registry in one process.
    Serve,
    /// `glint registry` and `glint api --registry-url`: two processes, two data directories.
    Split,
}

/// A `glint` child process. Killed by PID (SIGKILL) on drop if still running.
pub struct Glint {
    /// The process.
    child: Child,
    /// Everything it wrote to stderr so far, for failure messages.
    stderr: Arc<Mutex<String>>,
    /// Each stderr line as it arrives, to learn the bound ports.
    lines: mpsc::Receiver<String>,
    /// Drains stderr so a chatty server never blocks on a full pipe.
    reader: Option<JoinHandle<()>>,
}

impl Glint {
    /// Spawns `glint args...` with `env` added and every inherited `GLINT_*` variable removed.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Glint {
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
        Glint {
            child,
            stderr,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits for `glint: <what> listening on http://ADDR` and returns ADDR.
    #[track_caller]
    pub fn wait_listening(&mut self, what: &str) -> SocketAddr {
        let needle = format!("{what} listening on http://");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some((_, addr)) = line.split_once(&needle) {
                        return addr.trim().parse().unwrap();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("glint exited before listening; stderr:\n{}", self.stderr());
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

    /// Sends `signal` (e.g. `HUP`) by PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "kill -{signal} {} failed",
            self.child.id()
        );
    }

    /// `kill -9` by PID, then reaps the process.
    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL {} failed", self.child.id());
        self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Glint {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The image service as real processes on loopback ports, over temporary data directories.
/// Dropping it kills the processes (by PID), then removes the directories.
pub struct ImageServer {
    /// Speaks to the Images API.
    client: ApiClient,
    /// The process serving the Images API (`glint serve` or `glint api`).
    api: Glint,
    /// `glint registry` in the split shape.
    registry: Option<Glint>,
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
                let mut registry = Glint::spawn(
                    &[
                        "registry",
                        "--bind-host",
                        "127.0.0.1",
                        "--registry-port",
                        "0",
                        "--data-dir",
                        dir.path().to_str().unwrap(),
                    ],
                    &env_refs(&env),
                );
                let addr = registry.wait_listening("registry");
                (Some((registry, addr)), Some(dir))
            }
        };
        let registry_addr = registry.as_ref().map(|(_, addr)| *addr);
        let (api, addr) = spawn_api(shape, api_dir.path(), registry_addr, &env, &extra_args);
        ImageServer {
            client: ApiClient::new(addr),
            api,
            registry: registry.map(|(process, _)| process),
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
    pub fn api_process(&mut self) -> &mut Glint {
        &mut self.api
    }

    /// Everything the processes wrote to stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut logs = format!("api:\n{}", self.api.stderr());
        if let Some(registry) = &self.registry {
            logs.push_str(&format!("registry:\n{}", registry.stderr()));
        }
        logs
    }

    /// Kills the API process with SIGKILL (if still running) and starts it again over the same
    /// data directory, on a new port. Only for `glint serve`, whose data all lives there.
    pub fn restart(&mut self) {
        assert_eq!(self.shape, Shape::Serve, "restart is for glint serve");
        if let Ok(None) = self.api.child.try_wait() {
            self.api.kill9();
        }
        let (api, addr) = spawn_api(
            self.shape,
            self.api_dir.path(),
            None,
            &self.env,
            &self.extra_args,
        );
        self.api = api;
        self.client = ApiClient::new(addr);
    }
}

impl std::ops::Deref for ImageServer {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.client
    }
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Spawns the process that serves the Images API and waits until it listens.
fn spawn_api(
    shape: Shape,
    data_dir: &Path,
    registry: Option<SocketAddr>,
    env: &[(String, String)],
    extra: &[String],
) -> (Glint, SocketAddr) {
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
    let mut api = Glint::spawn(&args, &env_refs(env));
    let addr = api.wait_listening("api");
    (api, addr)
}
