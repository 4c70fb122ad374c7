//! The real `glint` binary: [`glint_command`] (every inherited `GLINT_*` variable removed, so the
//! environment cannot change a test), a child process that is waited for by its listening line
//! and killed by PID on drop ([`GlintProcess`]), `glint registry` on a free loopback port
//! ([`GlintProcess::start_registry`]), and a run to completion ([`run_glint`]).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a spawned `glint` may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `glint` binary under test.
pub fn glint_bin() -> &'static str {
    env!("CARGO_BIN_EXE_glint")
}

/// `cmd` without the inherited `GLINT_*` variables.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("GLINT_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// `glint args...` with `env` added and every inherited `GLINT_*` variable removed.
pub fn glint_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(glint_bin());
    cmd.args(args);
    clean_env(&mut cmd).envs(env.iter().copied());
    cmd
}

/// `glint registry` on `127.0.0.1` with a port the OS picks, over `data_dir`.
pub fn registry_args(data_dir: &str) -> Vec<&str> {
    vec![
        "registry",
        "--bind-host",
        "127.0.0.1",
        "--registry-port",
        "0",
        "--data-dir",
        data_dir,
    ]
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
        let mut cmd = glint_command(args, env);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
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

    /// Starts `glint registry` on `127.0.0.1:0` over `data_dir` (with `extra` arguments and
    /// `env`) and waits until it listens.
    pub fn start_registry(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (GlintProcess, SocketAddr) {
        let mut args = registry_args(data_dir.to_str().unwrap());
        args.extend_from_slice(extra);
        let mut process = GlintProcess::spawn(&args, env);
        let addr = process.wait_listening("registry");
        (process, addr)
    }

    /// Waits for the `<what> listening on http://ADDR` line (`what`: `registry` or `api`) and
    /// returns ADDR.
    #[track_caller]
    pub fn wait_listening(&mut self, what: &str) -> SocketAddr {
        let needle = format!("{what} listening on http://");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => {
                    if let Some((_, addr)) = line.split_once(&needle) {
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

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to this process by PID.
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
        self.signal("KILL");
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

    /// The highest resident set size of the process so far, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
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
