//! Support for the `glint` CLI tests: a real `glint serve` child on loopback (killed by PID on
//! drop), a runner for the CLI binary with piped stdin/stdout/stderr and a watchdog, random
//! image data, MD5, a pty runner for the progress bar, and a raw HTTP POST for queued images.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde_json::Value;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one CLI invocation may run before the watchdog kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The `glint` binary under test.
pub fn glint_bin() -> &'static str {
    env!("CARGO_BIN_EXE_glint")
}

/// A `glint serve` process on `127.0.0.1` (both ports picked by the OS) over a temporary data
/// directory. Killed (SIGKILL, by PID) and reaped on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` of the Images API.
    pub url: String,
    /// Drains the server's stderr so it never blocks on a full pipe.
    reader: Option<JoinHandle<()>>,
    /// Scratch space for the test: the data directory lives in `data/`.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `glint serve` and waits for its `api listening on` line.
    #[track_caller]
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cmd = Command::new(glint_bin());
        cmd.args([
            "serve",
            "--bind-host",
            "127.0.0.1",
            "--api-port",
            "0",
            "--registry-port",
            "0",
            "--data-dir",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        clean_env(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let pipe = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            reader: Some(reader),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = String::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some((_, addr)) = line.split_once("api listening on ") {
                        server.url = addr.trim().to_string();
                        return server;
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("glint serve exited before listening; stderr:\n{seen}")
                }
            }
            assert!(
                Instant::now() < deadline,
                "glint serve did not listen within {START_TIMEOUT:?}; stderr:\n{seen}"
            );
        }
    }

    /// `host:port` of the Images API.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// A path in the test's scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `glint ARGS --url URL` against this server with standard input from `/dev/null`.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, Input::Null)
    }

    /// Runs `glint ARGS --url URL` against this server.
    #[track_caller]
    pub fn run_with(&self, args: &[&str], stdin: Input) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", &self.url]);
        run_glint(&all, &[], stdin)
    }

    /// Runs a command that must succeed, and returns its standard output as text.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).success().stdout_text()
    }

    /// Runs a command with `--json` that must succeed, and parses its output.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).success().json()
    }

    /// `glint add FIELDS... --file PATH` (with data) and returns the new image's id.
    #[track_caller]
    pub fn add_file(&self, fields: &[&str], file: &Path) -> String {
        let mut args = vec!["add"];
        args.extend_from_slice(fields);
        let file = file.to_str().unwrap();
        args.extend(["--file", file]);
        let run = self.run(&args).success();
        added_id(&run.stdout_text())
    }

    /// Every image, public and private, as `index --all --json` shows them.
    #[track_caller]
    pub fn all_images(&self) -> Vec<Value> {
        self.json(&["index", "--all"]).as_array().unwrap().clone()
    }

    /// Creates an image with a raw HTTP/1.1 `POST /v1/images` that carries `x-image-meta-*`
    /// `headers` and no body (so a queued image, unless size=0), and returns its `image` object.
    #[track_caller]
    pub fn post_image(&self, headers: &[(&str, &str)]) -> Value {
        let mut request = format!("POST /v1/images HTTP/1.1\r\nHost: {}\r\n", self.addr());
        for (name, value) in headers {
            request.push_str(&format!("x-image-meta-{name}: {value}\r\n"));
        }
        request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        let (status, body) = raw_http(self.addr(), &request);
        assert_eq!(status, 201, "POST /v1/images {headers:?}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        answer["image"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `Child::kill` sends SIGKILL to this child's PID; then reap it.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Removes inherited `GLINT_*` variables so the environment cannot change a test.
fn clean_env(cmd: &mut Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("GLINT_") {
            cmd.env_remove(name);
        }
    }
}

/// What a CLI invocation reads on standard input.
pub enum Input {
    /// `/dev/null`.
    Null,
    /// A pipe fed with these bytes, then closed.
    Bytes(Vec<u8>),
}

/// The outcome of one CLI invocation.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub args: Vec<String>,
    /// The exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns `self`.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "glint {:?} failed; stderr:\n{}",
            self.args, self.stderr
        );
        self
    }

    /// Standard output as UTF-8 text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "glint {:?}: output is not JSON ({e}):\n{}",
                self.args,
                self.stdout_text()
            )
        })
    }

    /// Asserts that the command failed with exit code 1 and one clean line on stderr that
    /// contains `needle`, without a panic or backtrace.
    #[track_caller]
    pub fn assert_failure(&self, needle: &str) {
        assert_eq!(
            self.code,
            1,
            "glint {:?}: expected exit code 1; stdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout_text(),
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "glint {:?}: expected one line on stderr, got:\n{}",
            self.args,
            self.stderr
        );
        assert!(
            self.stderr.starts_with("glint "),
            "glint {:?}: stderr does not say who speaks: {}",
            self.args,
            self.stderr
        );
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "glint {:?}: stderr lacks {needle:?}: {}",
            self.args,
            self.stderr
        );
        self.assert_no_panic();
    }

    /// Asserts exit code 2 (usage error) with a hint to `--help`, and no panic.
    #[track_caller]
    pub fn assert_usage_error(&self, needle: &str) {
        assert_eq!(
            self.code,
            2,
            "glint {:?}: expected exit code 2; stdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout_text(),
            self.stderr
        );
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "glint {:?}: stderr lacks {needle:?}: {}",
            self.args,
            self.stderr
        );
        assert!(
            self.stderr.contains("help"),
            "glint {:?}: no hint to --help: {}",
            self.args,
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "glint {:?}: usage error wrote to stdout: {}",
            self.args,
            self.stdout_text()
        );
        self.assert_no_panic();
    }

    /// Asserts that stderr shows no panic, backtrace or progress bar.
    #[track_caller]
    pub fn assert_no_panic(&self) {
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(
                !self.stderr.contains(bad),
                "glint {:?}: stderr shows a panic: {}",
                self.args,
                self.stderr
            );
        }
    }

    /// Asserts that nothing on stderr looks like a progress bar.
    #[track_caller]
    pub fn assert_no_progress(&self) {
        assert!(
            !self.stderr.contains('\r') && !self.stderr.contains('%'),
            "glint {:?}: progress output on a non-terminal stderr: {:?}",
            self.args,
            self.stderr
        );
    }
}

/// Runs the `glint` binary with `args`, `env` added (inherited `GLINT_*` removed) and `stdin`;
/// stdout and stderr are captured. A watchdog kills it by PID after [`RUN_TIMEOUT`].
#[track_caller]
pub fn run_glint(args: &[&str], env: &[(&str, &str)], stdin: Input) -> Run {
    let mut cmd = Command::new(glint_bin());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    clean_env(&mut cmd);
    cmd.envs(env.iter().copied());
    let output = run_watched(cmd, stdin, &format!("glint {args:?}"));
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Spawns `cmd`, feeds `stdin` from a thread, and collects its output; kills it by PID if it
/// runs longer than [`RUN_TIMEOUT`] (the test then fails).
#[track_caller]
fn run_watched(mut cmd: Command, stdin: Input, what: &str) -> std::process::Output {
    cmd.stdin(match stdin {
        Input::Null => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
    });
    let mut child = cmd.spawn().unwrap();
    let feeder = match stdin {
        Input::Null => None,
        Input::Bytes(data) => {
            let mut pipe = child.stdin.take().unwrap();
            // A command that exits early closes the pipe: ignore the write error.
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
    };
    let pid = child.id();
    let (done, timer) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = timer.recv_timeout(RUN_TIMEOUT) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return true;
        }
        false
    });
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    let killed = watchdog.join().unwrap();
    if let Some(feeder) = feeder {
        feeder.join().unwrap();
    }
    assert!(!killed, "{what} still running after {RUN_TIMEOUT:?}");
    output
}

/// The id in `Added new image with ID: ID`.
#[track_caller]
pub fn added_id(stdout: &str) -> String {
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Added new image with ID: "))
        .unwrap_or_else(|| panic!("no 'Added new image' line in:\n{stdout}"))
        .trim()
        .to_string();
    uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id:?} is not a UUID: {e}"));
    id
}

/// A seed that differs from run to run; printed so a failure can be replayed.
pub fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seed = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    eprintln!("random seed: {seed}");
    seed
}

/// `len` pseudo-random bytes from `seed` (xorshift64*).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Random image data of 1 to 3 MiB.
pub fn random_image(seed: u64) -> Vec<u8> {
    let len = (1 << 20)
        + (random_bytes(seed ^ 0x9e37_79b9, 8)[..4]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b))
            % (2 << 20));
    random_bytes(seed, len)
}

/// Lower-case hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends one raw HTTP/1.1 request (with `Connection: close`) and returns the status and the
/// body, de-chunked if needed.
#[track_caller]
pub fn raw_http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}

/// How the pty runner gives the CLI a terminal.
pub enum PtyTool {
    /// util-linux `script -qec CMD /dev/null`.
    Script,
    /// `python3 -c 'import pty, sys; pty.spawn(sys.argv[1:])' CMD...` ([`PTY_PY`]).
    Python,
}

/// Python's fallback pty runner: exits with the child's exit code.
const PTY_PY: &str =
    "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))";

/// Picks `script` when it works, else Python's `pty` module.
pub fn pty_tool() -> PtyTool {
    let script = Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match script {
        Ok(status) if status.success() => PtyTool::Script,
        _ => PtyTool::Python,
    }
}

/// Runs `glint ARGS` with a pseudo-terminal as its stdin, stdout and stderr, typing `input`
/// into it, and returns the exit code and what the terminal showed (stdout and stderr mixed,
/// with `\r\n` line ends).
#[track_caller]
pub fn run_in_pty(args: &[&str], input: &[u8]) -> (i32, String) {
    let mut argv = vec![glint_bin().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut cmd = match pty_tool() {
        PtyTool::Script => {
            let line = argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            let mut cmd = Command::new("script");
            cmd.args(["-qec", &line, "/dev/null"]);
            cmd
        }
        PtyTool::Python => {
            let mut cmd = Command::new("python3");
            cmd.args(["-c", PTY_PY]).args(&argv);
            cmd
        }
    };
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    clean_env(&mut cmd);
    let output = run_watched(cmd, Input::Bytes(input.to_vec()), &format!("pty {argv:?}"));
    let mut shown = String::from_utf8_lossy(&output.stdout).into_owned();
    shown.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), shown)
}

/// `'text'` for `sh -c`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
