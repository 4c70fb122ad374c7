//! Running the `glint` command-line client: against a `glint serve` ([`Server`], an
//! [`ImageServer`] with scratch space), with piped stdin/stdout/stderr and a watchdog
//! ([`run_cli`]), or in a pseudo-terminal for the progress bar ([`run_in_pty`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::glint::{clean_env, glint_bin, glint_command};
use super::images::{ImageServer, Shape};

/// How long one CLI invocation may run before the watchdog kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A `glint serve` process on `127.0.0.1` (both ports picked by the OS) over a temporary data
/// directory ([`ImageServer`]), with scratch space for the test's files.
pub struct Server {
    /// The service; killed (SIGKILL, by PID) on drop.
    pub srv: ImageServer,
    /// `http://127.0.0.1:PORT` of the Images API.
    pub url: String,
    /// Scratch space for the test (downloads, files to upload).
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `glint serve` and waits for its `api listening on` line.
    #[track_caller]
    pub fn start() -> Server {
        let srv = ImageServer::start(Shape::Serve, &[]);
        let url = format!("http://{}", srv.addr());
        Server {
            srv,
            url,
            dir: tempfile::tempdir().unwrap(),
        }
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
        run_cli(&all, &[], stdin)
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

    /// Creates an image with `POST /v1/images` that carries `x-image-meta-*` `headers` and no
    /// body (so a queued image, unless size=0), and returns its `image` object.
    #[track_caller]
    pub fn post_image(&self, headers: &[(&str, &str)]) -> Value {
        let names: Vec<String> = headers
            .iter()
            .map(|(name, _)| format!("x-image-meta-{name}"))
            .collect();
        let meta: Vec<(&str, &str)> = names
            .iter()
            .zip(headers)
            .map(|(name, (_, value))| (name.as_str(), *value))
            .collect();
        self.srv.create(&meta)
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
        self.assert_code(1);
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
        self.assert_stderr_has(needle);
        self.assert_no_panic();
    }

    /// Asserts exit code `code`.
    #[track_caller]
    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            code,
            "glint {:?}: expected exit code {code}; stdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout_text(),
            self.stderr
        );
    }

    /// Asserts that stderr contains `needle`, whatever the case.
    #[track_caller]
    fn assert_stderr_has(&self, needle: &str) {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "glint {:?}: stderr lacks {needle:?}: {}",
            self.args,
            self.stderr
        );
    }

    /// Asserts exit code 2 (usage error) with a hint to `--help`, and no panic.
    #[track_caller]
    pub fn assert_usage_error(&self, needle: &str) {
        self.assert_code(2);
        self.assert_stderr_has(needle);
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
pub fn run_cli(args: &[&str], env: &[(&str, &str)], stdin: Input) -> Run {
    let mut cmd = glint_command(args, env);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
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
