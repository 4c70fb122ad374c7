//! Real caching proxies in front of a test's glint: Varnish and Squid (Debian's packages, made
//! ready by `scripts/services/start-varnish.sh` and `start-squid.sh`). The backend is started
//! by each test on a free port, so each test starts its own proxy in the foreground from the
//! project's own config (`scripts/services/proxies/`, the one the README shows) naming that
//! port, with a run dir under the script's state dir and its PID recorded there (for
//! `stop-*.sh`, should a test process die without dropping it). Dropping a [`Proxy`] stops it
//! by PID (SIGTERM, then SIGKILL) and removes its run dir.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::Http;
use super::services::service_vars;

/// Which proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// Varnish Cache (`varnishd -F`).
    Varnish,
    /// Squid (`squid -N`).
    Squid,
}

/// A proxy in front of one backend, stopped by PID on drop.
pub struct Proxy {
    /// Which proxy it is.
    pub kind: ProxyKind,
    /// The daemon (varnishd's manager process; squid's only process).
    child: Child,
    /// Where its PID is recorded for `stop-*.sh`.
    pid_file: PathBuf,
    /// Its run dir (config, work dir, logs); removed after the daemon is gone.
    dir: tempfile::TempDir,
    /// Where it listens.
    addr: SocketAddr,
}

impl Proxy {
    /// `kind` in front of `backend`, or `None` (after a `SKIPPED:` line) when its start script
    /// was not run (outside CI).
    #[track_caller]
    pub fn start(kind: ProxyKind, backend: SocketAddr) -> Option<Proxy> {
        let vars = match kind {
            ProxyKind::Varnish => service_vars(
                "Varnish",
                "start-varnish.sh",
                &[
                    "GLINT_TEST_VARNISHD",
                    "GLINT_TEST_VARNISH_VCL",
                    "VARNISH_STATE_DIR",
                ],
            )?,
            ProxyKind::Squid => service_vars(
                "Squid",
                "start-squid.sh",
                &[
                    "GLINT_TEST_SQUID",
                    "GLINT_TEST_SQUID_CONF",
                    "SQUID_STATE_DIR",
                ],
            )?,
        };
        // A port picked free can be taken before the daemon binds it: try again then.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Proxy::try_start(kind, &vars, backend) {
                Ok(proxy) => return Some(proxy),
                Err(why) => failures.push(why),
            }
        }
        panic!("{kind:?} did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start(kind: ProxyKind, vars: &[String], backend: SocketAddr) -> Result<Proxy, String> {
        let (program, template, state) = (&vars[0], &vars[1], PathBuf::from(&vars[2]));
        let runs = state.join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        std::fs::create_dir_all(state.join("pids")).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&runs)
            .unwrap();
        let port = free_port();
        let text = std::fs::read_to_string(template).unwrap();
        let text = text
            .replace("@BACKEND_HOST@", &backend.ip().to_string())
            .replace("@BACKEND_PORT@", &backend.port().to_string())
            .replace("@LISTEN_PORT@", &port.to_string())
            .replace("@CACHE_MB@", "256")
            .replace("@MAX_OBJECT_MB@", "128")
            .replace("@STATE@", dir.path().to_str().unwrap());
        let mut command = match kind {
            ProxyKind::Varnish => {
                let vcl = dir.path().join("glint.vcl");
                std::fs::write(&vcl, text).unwrap();
                let mut c = Command::new(program);
                // -j none: run as the current user; -T none: no management port to collide.
                c.args(["-F", "-j", "none", "-T", "none", "-s", "malloc,256m"])
                    .arg("-a")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("-f")
                    .arg(&vcl)
                    .arg("-n")
                    .arg(dir.path().join("work"));
                c
            }
            ProxyKind::Squid => {
                let conf = dir.path().join("squid.conf");
                std::fs::write(&conf, text).unwrap();
                prepare_for_squid_user(dir.path());
                let mut c = Command::new(program);
                c.arg("-N").arg("-f").arg(&conf);
                c
            }
        };
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let pid_file = state.join("pids").join(format!(
            "{}.pid",
            dir.path().file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut proxy = Proxy {
            kind,
            child,
            pid_file,
            dir,
            addr,
        };
        proxy.wait_ready()?;
        Ok(proxy)
    }

    /// Waits until the proxy answers a request that it passes to the backend.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{:?} exited ({status}):\n{}",
                    self.kind,
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                && Http::new(self.addr).get("/healthcheck").status == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{:?} not ready in 30 s:\n{}",
                    self.kind,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client of the proxy.
    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }

    /// The daemon's own output (and Squid's cache log), for failure messages.
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("daemon.log"), read("cache.log"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Squid started by root runs as `GLINT_TEST_SQUID_USER` (Debian's `proxy`), which must be
/// able to write its run dir.
fn prepare_for_squid_user(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = std::env::var("GLINT_TEST_SQUID_USER").unwrap_or_default();
    if !user.is_empty() {
        let status = Command::new("chown")
            .arg("-R")
            .arg(&user)
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "chown {user} {}", dir.display());
    }
}
