//! Disk image conversion with the real `qemu-img convert` (issue 13): the source data is streamed
//! into a temporary file (size-capped, shown to [`crate::inspect`] on the way: it must be safe
//! and what its `disk_format` says), `qemu-img` runs on it with `-f` always given (it never
//! probes), under resource limits (`prlimit`: address space, CPU seconds, file size) and a
//! wall-clock timeout, and the result is handed back as a [`DataSource`] over a second temporary
//! file, to be stored like any upload. Both files are removed in every outcome, a dropped
//! (cancelled) conversion included: the files are guarded and `qemu-img` is killed on drop.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::body::Body;
use crate::inspect::Inspector;
use crate::store::DataSource;

pub use crate::inspect::Format;

/// The disk formats glint converts between, as sources and as targets.
pub const FORMATS: [Format; 6] = [
    Format::Raw,
    Format::Qcow2,
    Format::Vmdk,
    Format::Vhd,
    Format::Vhdx,
    Format::Vdi,
];

/// The format a Glance `disk_format` names, if glint converts it.
pub fn convertible(disk_format: &str) -> Option<Format> {
    FORMATS.into_iter().find(|f| f.as_str() == disk_format)
}

/// The `disk_format` names of [`FORMATS`], comma-separated, for messages.
pub fn names() -> String {
    FORMATS.map(Format::as_str).join(", ")
}

/// What the configuration says about conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where the temporary files live (`<data_dir>/convert`, the process's own).
    pub dir: PathBuf,
    /// Bounds on each `qemu-img` run.
    pub limits: Limits,
    /// The format v2 imports convert to (`[image_conversion] output_format`), when
    /// `[image_import_opts] image_import_plugins` names `image_conversion`.
    pub import_output_format: Option<Format>,
}

/// Bounds on one `qemu-img convert` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Address space in bytes (`RLIMIT_AS`; qemu-img's thread stacks need well over 1 GiB).
    pub address_space: u64,
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Wall-clock time before the run is killed.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            address_space: 4 << 30,
            cpu_seconds: 600,
            timeout: Duration::from_secs(1800),
        }
    }
}

/// Why a conversion failed.
#[derive(Debug)]
pub enum Error {
    /// Reading the source data from its store failed.
    SourceRead(String),
    /// The source, or the converted result, is larger than the size cap.
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The inspector refused the source: unsafe, or not the format its `disk_format` says.
    Refused(String),
    /// `qemu-img` could not convert the data; its message, with glint's paths left out.
    Failed(String),
    /// `qemu-img` ran past a limit (CPU seconds or wall-clock time) and was stopped.
    Stopped(String),
    /// `qemu-img` (or `prlimit`) cannot be run on this host.
    Unavailable(String),
    /// Writing or reading a temporary file failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::SourceRead(why) => write!(f, "reading the source image failed: {why}"),
            Error::TooLarge { cap } => write!(
                f,
                "Image conversion refused: the image would be larger than {cap} bytes (image_size_cap)."
            ),
            Error::Refused(why) => write!(f, "Image conversion refused: {why}"),
            Error::Failed(why) => write!(f, "Image conversion failed: {why}"),
            Error::Stopped(why) => write!(f, "Image conversion stopped: {why}"),
            Error::Unavailable(why) => write!(f, "Image conversion is not available: {why}"),
            Error::Io(e) => write!(f, "conversion temporary file I/O failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Most bytes of `qemu-img`'s stderr kept for the message.
const STDERR_KEPT: usize = 4096;

/// Bytes per chunk when the result is read back.
const CHUNK: usize = 256 << 10;

/// Runs conversions in its own directory of temporary files.
#[derive(Debug)]
pub struct Converter {
    /// Holds the temporary files, nothing else; emptied when the converter is opened.
    dir: PathBuf,
    /// Bounds on each run.
    limits: Limits,
    /// The `qemu-img` program.
    qemu_img: PathBuf,
}

impl Converter {
    /// A converter whose temporary files live in `dir` (made if missing). Files a crashed
    /// process left there are removed: the directory must be this process's own.
    pub fn open(dir: &Path, limits: Limits) -> io::Result<Converter> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() {
                crate::warn!("removing a conversion's leftover file {}", path.display());
                std::fs::remove_file(&path)?;
            }
        }
        Ok(Converter {
            dir: dir.to_path_buf(),
            limits,
            qemu_img: PathBuf::from("qemu-img"),
        })
    }

    /// The directory of the temporary files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Converts the data in `source` (declared `from`) to `to`: at most `cap` bytes in and out.
    pub async fn convert(
        &self,
        source: Body,
        from: Format,
        to: Format,
        cap: u64,
    ) -> Result<Converted, Error> {
        let name = uuid::Uuid::new_v4();
        let input = TempFile(self.dir.join(format!("{name}.source")));
        let output = TempFile(self.dir.join(format!("{name}.{}", to.qemu_name())));
        let virtual_size = receive(source, &input.0, from, cap).await?;
        if to == Format::Raw && virtual_size.is_some_and(|v| v > cap) {
            return Err(Error::TooLarge { cap });
        }
        self.run_qemu_img(&input.0, &output.0, from, to, cap)
            .await?;
        drop(input);
        let file = tokio::fs::File::open(&output.0).await?;
        let size = file.metadata().await?.len();
        if size > cap {
            return Err(Error::TooLarge { cap });
        }
        Ok(Converted {
            file,
            size,
            _path: output,
        })
    }

    /// `prlimit ... -- qemu-img convert -f FROM -O TO input output`, bounded by the limits and
    /// the timeout; the output file may not grow past `cap`.
    async fn run_qemu_img(
        &self,
        input: &Path,
        output: &Path,
        from: Format,
        to: Format,
        cap: u64,
    ) -> Result<(), Error> {
        let limits = &self.limits;
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--as={}", limits.address_space))
            .arg(format!("--cpu={}", limits.cpu_seconds))
            .arg(format!("--fsize={cap}"))
            .arg("--")
            .arg(&self.qemu_img)
            .args(["convert", "-f", from.qemu_name(), "-O", to.qemu_name()])
            .arg(input)
            .arg(output)
            // Messages in one language, whatever the service's locale.
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| Error::Unavailable(format!("cannot run prlimit: {e}")))?;
        let mut stderr = child.stderr.take();
        let run = async {
            let mut kept = Vec::new();
            if let Some(pipe) = stderr.as_mut() {
                // Read to the end (so qemu-img never blocks on a full pipe), keep the start.
                let mut buf = [0u8; 1024];
                loop {
                    let n = pipe.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    let room = STDERR_KEPT.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&buf[..room]);
                }
            }
            let status = child.wait().await?;
            Ok::<_, io::Error>((status, kept))
        };
        let (status, stderr) = match tokio::time::timeout(limits.timeout, run).await {
            Ok(done) => done?,
            Err(_) => {
                // Killed and reaped before its files are removed, so it cannot write them again.
                if let Err(e) = child.kill().await {
                    crate::warn!("cannot kill qemu-img after its timeout: {e}");
                }
                return Err(Error::Stopped(format!(
                    "qemu-img ran longer than {} s (image_conversion qemu_img_timeout)",
                    limits.timeout.as_secs()
                )));
            }
        };
        if status.success() {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&stderr)
            .replace(&*input.to_string_lossy(), "<source>")
            .replace(&*output.to_string_lossy(), "<target>");
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(classify(status, message, limits, cap))
    }
}

/// What a failed `prlimit qemu-img` run means.
fn classify(status: std::process::ExitStatus, message: String, limits: &Limits, cap: u64) -> Error {
    use std::os::unix::process::ExitStatusExt;
    const SIGXCPU: i32 = 24;
    if status.signal() == Some(SIGXCPU) {
        return Error::Stopped(format!(
            "qemu-img used more than {} CPU seconds (image_conversion qemu_img_cpu_time)",
            limits.cpu_seconds
        ));
    }
    // RLIMIT_FSIZE: qemu-img reports EFBIG ("File too large") for the output it may not grow.
    if message.contains("File too large") {
        return Error::TooLarge { cap };
    }
    // prlimit's own "failed to execute": the program is missing.
    if status.code() == Some(127) {
        return Error::Unavailable(format!("qemu-img cannot be run: {message}"));
    }
    if message.is_empty() {
        return Error::Failed(format!("qemu-img ended with {status}"));
    }
    Error::Failed(message)
}

/// Streams `source` into a new file at `path` (at most `cap` bytes), inspecting it on the way;
/// returns its virtual size. Unsafe data, or data that is not `declared`, is refused.
async fn receive(
    mut source: Body,
    path: &Path,
    declared: Format,
    cap: u64,
) -> Result<Option<u64>, Error> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut inspector = Inspector::new();
    let mut total = 0u64;
    let mut head_checked = false;
    while let Some(frame) = source.frame().await {
        let frame = frame.map_err(|e| Error::SourceRead(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > cap {
            return Err(Error::TooLarge { cap });
        }
        inspector.feed(&data);
        // What the head shows is final: refused data is not written further.
        if !head_checked && inspector.head_seen() {
            head_checked = true;
            if let Some(found) = inspector.early() {
                refuse(&found, declared)?;
            }
        }
        file.write_all(&data).await?;
    }
    file.flush().await?;
    let inspection = inspector.finish();
    refuse(&inspection, declared)?;
    Ok(inspection.virtual_size)
}

/// Unsafe data, or data that is not `declared`, is refused.
fn refuse(found: &crate::inspect::Inspection, declared: Format) -> Result<(), Error> {
    if let Some(why) = &found.unsafe_because {
        return Err(Error::Refused(format!("{why}.")));
    }
    match found.mismatch(declared.as_str()) {
        Some(why) => Err(Error::Refused(why)),
        None => Ok(()),
    }
}

/// A temporary file, removed when dropped (whether or not it was ever created).
#[derive(Debug)]
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => crate::error!("cannot remove {}: {e}", self.0.display()),
        }
    }
}

/// A converted image: its bytes as a [`DataSource`], from a temporary file removed on drop.
#[derive(Debug)]
pub struct Converted {
    file: tokio::fs::File,
    size: u64,
    _path: TempFile,
}

impl Converted {
    /// Size of the converted image in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl DataSource for Converted {
    fn size_hint(&self) -> Option<u64> {
        Some(self.size)
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, crate::store::Error> {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = self.file.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glint_names_map_to_qemu_names_in_one_place() {
        for f in FORMATS {
            assert_eq!(convertible(f.as_str()), Some(f));
        }
        assert_eq!(Format::Vhd.qemu_name(), "vpc");
        assert_eq!(Format::Vhdx.qemu_name(), "vhdx");
        assert_eq!(convertible("vpc"), None, "vpc is qemu's name only");
        assert_eq!(convertible("iso"), None);
        assert_eq!(names(), "raw, qcow2, vmdk, vhd, vhdx, vdi");
    }

    fn body(data: Vec<u8>) -> Body {
        http_body_util::Full::new(Bytes::from(data))
            .map_err(|never| match never {})
            .boxed()
    }

    /// 1 MiB of non-zero data and zeros, as raw.
    fn raw_disk() -> Vec<u8> {
        (0..1u32 << 20)
            .map(|i| if i & 0x1000 == 0 { (i % 251) as u8 } else { 0 })
            .collect()
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn qemu_img_present() -> bool {
        let found = std::process::Command::new("qemu-img")
            .arg("--version")
            .output()
            .is_ok();
        if !found {
            assert!(
                std::env::var("GLINT_REQUIRE_STORES").as_deref() != Ok("1"),
                "qemu-img is needed; scripts/test.sh installs it"
            );
            eprintln!("SKIPPED: qemu-img not installed");
        }
        found
    }

    #[test]
    fn converts_and_leaves_no_file_behind_whatever_the_outcome() {
        if !qemu_img_present() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let converter = Converter::open(dir.path(), Limits::default()).unwrap();
        let files = || std::fs::read_dir(dir.path()).unwrap().count();
        run(async {
            let mut out = converter
                .convert(body(raw_disk()), Format::Raw, Format::Qcow2, 1 << 30)
                .await
                .unwrap();
            assert_eq!(files(), 1, "only the result is kept");
            let mut bytes = Vec::new();
            while let Some(chunk) = out.next_chunk().await.unwrap() {
                bytes.extend_from_slice(&chunk);
            }
            assert_eq!(bytes.len() as u64, out.size());
            assert!(bytes.starts_with(b"QFI\xfb"));
            drop(out);
            assert_eq!(files(), 0, "the result is removed with it");

            // What it is not declared as: refused before qemu-img runs.
            let err = converter
                .convert(body(bytes.clone()), Format::Raw, Format::Vmdk, 1 << 30)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Refused(m) if m.contains("qcow2")),
                "{err}"
            );
            // Larger than the cap, in or out.
            let err = converter
                .convert(body(raw_disk()), Format::Raw, Format::Qcow2, 1000)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::TooLarge { cap: 1000 }), "{err}");
            let err = converter
                .convert(body(bytes.clone()), Format::Qcow2, Format::Raw, 500_000)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::TooLarge { .. }), "{err}");
            // A qcow2 header qemu-img refuses (cluster_bits 40): its message, without our paths.
            let mut lying = bytes.clone();
            lying[20..24].copy_from_slice(&40u32.to_be_bytes());
            let err = converter
                .convert(body(lying), Format::Qcow2, Format::Raw, 1 << 30)
                .await
                .unwrap_err();
            let Error::Failed(message) = &err else {
                panic!("{err:?}")
            };
            assert!(
                message.contains("<source>") && !message.contains(&*dir.path().to_string_lossy()),
                "{message}"
            );
            assert_eq!(files(), 0);
        });
        // Past the wall-clock limit: killed, and nothing left.
        let hasty = Converter::open(
            dir.path(),
            Limits {
                timeout: Duration::ZERO,
                ..Limits::default()
            },
        )
        .unwrap();
        run(async {
            let err = hasty
                .convert(body(raw_disk()), Format::Raw, Format::Vdi, 1 << 30)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Stopped(m) if m.contains("qemu_img_timeout")),
                "{err}"
            );
        });
        assert_eq!(files(), 0);
    }

    #[test]
    fn opening_removes_what_a_crash_left() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.source"), b"left").unwrap();
        let converter = Converter::open(dir.path(), Limits::default()).unwrap();
        assert_eq!(std::fs::read_dir(converter.dir()).unwrap().count(), 0);
    }
}
