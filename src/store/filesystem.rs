//! The filesystem store: one file per image, `<dir>/<id>`. Uploads go to a temporary name in the
//! same directory, are fsynced, then renamed into place (and the directory fsynced), so a file
//! under its final name is always complete and durable. A failed upload removes its temporary file.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::Frame;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{ByteRange, DataSource, Error, Location, Metered, Retrieved};
use crate::body::BoxError;

/// Bytes gathered before each write to disk: big writes keep the upload near disk speed.
const WRITE_CHUNK: usize = 1 << 20;

/// Bytes per chunk when streaming a file out.
const READ_CHUNK: usize = 512 << 10;

/// Bytes written between two background syncs of an upload's file. Without them the kernel keeps
/// the whole upload dirty in the page cache and the final fsync writes all of it while the client
/// waits; with them the disk works while the upload streams and the final fsync has at most this
/// much left to write.
const SYNC_EVERY: u64 = 64 << 20;

/// Suffix of files that are still being written.
const PARTIAL_SUFFIX: &str = ".partial";

/// A directory of image files.
pub struct Filesystem {
    /// Where the image files live (`filesystem_store_datadir`), absolute.
    dir: PathBuf,
}

impl Filesystem {
    /// A store in `dir` (created if missing). Partial files that a crash left are not removed
    /// here: the directory may be shared with other API servers whose uploads are still being
    /// written; start-up recovery removes the ones its own journal names
    /// ([`Filesystem::remove_partial`]).
    pub fn open(dir: &Path) -> Result<Filesystem, Error> {
        std::fs::create_dir_all(dir)?;
        let dir = std::fs::canonicalize(dir)?;
        Ok(Filesystem { dir })
    }

    /// The file an upload of `id` is written to until it is complete.
    fn partial_path(&self, id: &Uuid) -> PathBuf {
        self.dir.join(format!(".{id}{PARTIAL_SUFFIX}"))
    }

    /// Removes the partial file an interrupted upload of `id` left; whether there was one.
    pub async fn remove_partial(&self, id: &Uuid) -> Result<bool, Error> {
        let partial = self.partial_path(id);
        match tokio::fs::remove_file(&partial).await {
            Ok(()) => {
                crate::warn!("removed partial upload {}", partial.display());
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the complete data of `id` is in this directory.
    pub async fn has_data(&self, id: &Uuid) -> Result<bool, Error> {
        Ok(tokio::fs::try_exists(self.dir.join(id.to_string())).await?)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the directory takes a write: a small probe file is written, synced and removed
    /// (a partial file's name, so a crash in between leaves nothing start-up keeps).
    pub async fn probe(&self) -> Result<(), Error> {
        use tokio::io::AsyncWriteExt;
        let path = self.dir.join(format!(".healthcheck{PARTIAL_SUFFIX}"));
        let result = async {
            let mut file = tokio::fs::File::create(&path).await?;
            file.write_all(b"ok").await?;
            file.sync_all().await
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        Ok(result?)
    }

    /// Streams `source` into `<dir>/<id>` and returns its location.
    pub(super) async fn put<S: DataSource>(
        &self,
        id: &Uuid,
        source: &mut Metered<'_, S>,
    ) -> Result<Location, Error> {
        let path = self.dir.join(id.to_string());
        if tokio::fs::try_exists(&path).await? {
            return Err(Error::Duplicate(id.to_string()));
        }
        // One name per image: the registry lets one upload at a time move an image to `saving`,
        // so an existing partial file is another upload's (or a crash's, until recovery).
        let partial = self.partial_path(id);
        let file = match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .await
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Duplicate(format!(
                    "{id} (an upload of it is already being written)"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = self.write_partial(file, &partial, &path, source).await {
            if let Err(rm) = tokio::fs::remove_file(&partial).await {
                if rm.kind() != std::io::ErrorKind::NotFound {
                    crate::error!("cannot remove partial upload {}: {rm}", partial.display());
                }
            }
            return Err(e);
        }
        Ok(Location::File(path))
    }

    async fn write_partial<S: DataSource>(
        &self,
        mut file: tokio::fs::File,
        partial: &Path,
        path: &Path,
        source: &mut Metered<'_, S>,
    ) -> Result<(), Error> {
        let mut pending = BytesMut::with_capacity(WRITE_CHUNK);
        let mut write_behind = WriteBehind::new(file.try_clone().await?.into_std().await);
        let mut written = 0u64;
        while let Some(chunk) = source.next_chunk().await? {
            pending.extend_from_slice(&chunk);
            if pending.len() >= WRITE_CHUNK {
                file.write_all(&pending).await?;
                written += pending.len() as u64;
                pending.clear();
                write_behind.maybe_start(written).await?;
            }
        }
        file.write_all(&pending).await?;
        file.flush().await?;
        write_behind.wait().await?;
        file.sync_all().await?;
        drop(file);
        if tokio::fs::try_exists(path).await? {
            return Err(Error::Duplicate(path.display().to_string()));
        }
        tokio::fs::rename(partial, path).await?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        Ok(())
    }

    /// Streams the file at `path`, or only `range` of it: the file is positioned at the
    /// range's first byte, so nothing before it is read. Opening, sizing and positioning the
    /// file take one trip to the blocking pool, and a read of at most [`READ_CHUNK`] bytes is
    /// made in the same trip: a small image is answered after a single hop, where three (open,
    /// metadata, read) held it to an eighth of the 0-byte GET's rate.
    pub(super) async fn get(
        &self,
        path: &Path,
        range: Option<ByteRange>,
    ) -> Result<Retrieved, Error> {
        let owned = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || open_for_read(&owned, range))
            .await
            .map_err(|e| Error::Backend(format!("reading {}: {e}", path.display())))??;
        let (body, len) = match opened {
            Opened::Whole(data) => {
                let len = data.len() as u64;
                (crate::http::body::full(data), len)
            }
            Opened::Stream(file, len) => (
                http_body_util::BodyExt::boxed(FileBody::new(file, len)),
                len,
            ),
        };
        Ok(Retrieved {
            body,
            size: Some(len),
            range,
        })
    }

    pub(super) async fn delete(&self, path: &Path) -> Result<(), Error> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(path.display().to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A file opened for a download: read whole when small, else to be streamed.
enum Opened {
    /// All the bytes asked for (at most [`READ_CHUNK`]).
    Whole(Vec<u8>),
    /// The file, positioned at the first byte asked for, and how many bytes to send.
    Stream(std::fs::File, u64),
}

/// Opens `path` for a download of `range` (or all of it), on a blocking thread.
fn open_for_read(path: &Path, range: Option<ByteRange>) -> Result<Opened, Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(path.display().to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let size = file.metadata()?.len();
    let len = match range {
        None => size,
        Some(r) if r.last >= size => {
            return Err(Error::Backend(format!(
                "{} holds {size} bytes, fewer than the range {}-{} asked",
                path.display(),
                r.first,
                r.last
            )))
        }
        Some(r) => {
            file.seek(SeekFrom::Start(r.first))?;
            r.len()
        }
    };
    if len > READ_CHUNK as u64 {
        return Ok(Opened::Stream(file, len));
    }
    let mut data = vec![0u8; len as usize];
    match file.read_exact(&mut data) {
        Ok(()) => Ok(Opened::Whole(data)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::Backend(format!(
            "{} is shorter than its size",
            path.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Syncs an upload's file on a blocking thread every [`SYNC_EVERY`] bytes, while the upload goes
/// on: one sync at a time, each covering what was written before it started.
struct WriteBehind {
    file: std::sync::Arc<std::fs::File>,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Bytes written when the last sync was started.
    synced_at: u64,
}

impl WriteBehind {
    fn new(file: std::fs::File) -> WriteBehind {
        WriteBehind {
            file: std::sync::Arc::new(file),
            running: None,
            synced_at: 0,
        }
    }

    /// Starts a sync if [`SYNC_EVERY`] bytes were written since the last one and it has ended;
    /// reports the error of a sync that ended.
    async fn maybe_start(&mut self, written: u64) -> Result<(), Error> {
        if written - self.synced_at < SYNC_EVERY {
            return Ok(());
        }
        if self
            .running
            .as_ref()
            .is_some_and(|sync| !sync.is_finished())
        {
            return Ok(());
        }
        self.wait().await?;
        let file = self.file.clone();
        self.running = Some(tokio::task::spawn_blocking(move || file.sync_data()));
        self.synced_at = written;
        Ok(())
    }

    /// Waits for the running sync, if any.
    async fn wait(&mut self) -> Result<(), Error> {
        if let Some(sync) = self.running.take() {
            sync.await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        }
        Ok(())
    }
}

/// A response body that streams a file in [`READ_CHUNK`] pieces. Each piece is read on a blocking
/// thread straight into the buffer that becomes the frame (no intermediate copy), and the next read
/// starts as soon as a frame is handed out, so the disk and the socket work at the same time: at
/// most two pieces per download are in memory.
struct FileBody {
    /// The file, when no read is running.
    file: Option<std::fs::File>,
    /// The running read: gives the file back with the bytes read.
    reading: Option<tokio::task::JoinHandle<(std::fs::File, std::io::Result<Vec<u8>>)>>,
    /// Bytes not yet handed out or being read.
    remaining: u64,
}

impl FileBody {
    fn new(file: std::fs::File, size: u64) -> FileBody {
        let mut body = FileBody {
            file: Some(file),
            reading: None,
            remaining: size,
        };
        body.start_read();
        body
    }

    /// Starts reading the next piece, if there is one to read and no read is running.
    fn start_read(&mut self) {
        if self.remaining == 0 || self.reading.is_some() {
            return;
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let want = READ_CHUNK.min(self.remaining as usize);
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; want];
            let result = std::io::Read::read(&mut file, &mut buf).map(|n| {
                buf.truncate(n);
                buf
            });
            (file, result)
        }));
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        self.start_read();
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(Some(Err("image file read was lost".into())));
        };
        let (file, result) = match Pin::new(reading).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                self.reading = None;
                return Poll::Ready(Some(Err(e.into())));
            }
            Poll::Ready(Ok(done)) => done,
        };
        self.reading = None;
        self.file = Some(file);
        let data = match result {
            Ok(data) => data,
            Err(e) => return Poll::Ready(Some(Err(e.into()))),
        };
        if data.is_empty() {
            return Poll::Ready(Some(Err("image file is shorter than its size".into())));
        }
        self.remaining -= (data.len() as u64).min(self.remaining);
        self.start_read();
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(data)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}
