//! Parts of an upload of unknown length, written to unlinked temporary files as they arrive, for
//! a store that must know a part's length before it sends it (S3). Memory then holds a few
//! chunks whatever the part size and however many such uploads run; the disk holds at most the
//! parts in flight, and nothing once their files are closed (they have no name after creation;
//! one left by a crash in that instant is removed by [`clear`]).

use std::io;
use std::path::{Path, PathBuf};

use std::fs::File;
use std::io::{Read, Seek, Write};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::{DataSource, Error, Metered};

/// What a spool file's name starts with.
const PREFIX: &str = ".spool-";

/// Bytes read from a spool file at a time.
const CHUNK: usize = 64 << 10;

/// Chunks on their way to or from a part's file.
const QUEUE: usize = 4;

/// One part on disk. Its file is written, then read, by one blocking thread each, fed and
/// drained through short queues: the chunks are allocated and freed in few places, which keeps
/// the allocator's footprint as small as the queues.
#[derive(Debug)]
pub struct Spooled {
    /// The file, until the reading starts.
    file: Option<File>,
    /// The chunks read, once it has.
    chunks: Option<mpsc::Receiver<std::io::Result<Bytes>>>,
    len: u64,
}

impl Spooled {
    /// Copies the next `limit` bytes of `source` (fewer if it ends first) into a new unlinked
    /// file in `dir`, created if missing; the rest of a chunk that crosses the limit is pushed
    /// back for the next part.
    pub async fn fill<S: DataSource>(
        dir: &Path,
        source: &mut Metered<'_, S>,
        limit: u64,
    ) -> Result<Spooled, Error> {
        let owned = dir.to_path_buf();
        let mut file = tokio::task::spawn_blocking(move || create_unlinked(&owned))
            .await
            .map_err(|e| Error::Backend(format!("spool task failed: {e}")))?
            .map_err(|e| spool_error(dir, e))?;
        let (chunks, mut queue) = mpsc::channel::<Bytes>(QUEUE);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
            while let Some(chunk) = queue.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.rewind()?;
            Ok(file)
        });
        let mut len = 0u64;
        let mut fed = Ok(());
        while len < limit {
            let mut chunk = match source.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    fed = Err(e);
                    break;
                }
            };
            let room = limit - len;
            if chunk.len() as u64 > room {
                source.push_back(chunk.split_off(room as usize));
            }
            len += chunk.len() as u64;
            if chunks.send(chunk).await.is_err() {
                break; // The writer failed; its result says how.
            }
        }
        drop(chunks);
        let written = writer
            .await
            .map_err(|e| Error::Backend(format!("spool task failed: {e}")))?;
        fed?;
        let file = written.map_err(|e| spool_error(dir, e))?;
        Ok(Spooled {
            file: Some(file),
            chunks: None,
            len,
        })
    }

    /// How many bytes the part holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the part holds nothing (the upload had ended).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl DataSource for Spooled {
    fn size_hint(&self) -> Option<u64> {
        Some(self.len)
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if let Some(mut file) = self.file.take() {
            let (chunks, queue) = mpsc::channel(QUEUE);
            tokio::task::spawn_blocking(move || loop {
                let mut buf = BytesMut::zeroed(CHUNK);
                let read = file.read(&mut buf).map(|n| {
                    buf.truncate(n);
                    buf.freeze()
                });
                let end = !matches!(&read, Ok(chunk) if !chunk.is_empty());
                if chunks.blocking_send(read).is_err() || end {
                    return;
                }
            });
            self.chunks = Some(queue);
        }
        let Some(queue) = self.chunks.as_mut() else {
            return Ok(None);
        };
        match queue.recv().await {
            Some(Ok(chunk)) if !chunk.is_empty() => Ok(Some(chunk)),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(_)) | None => Ok(None),
        }
    }
}

/// Removes the spool files a crash left in `dir` (only this process's data directory holds
/// them, so none is in use at start-up). A missing directory holds none.
pub fn clear(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(PREFIX) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A new file in `dir`, open for reading and writing, whose name is removed at once.
fn create_unlinked(dir: &Path) -> io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(format!("{PREFIX}{}", uuid::Uuid::new_v4()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// A spool failure is the server's own disk, not the store: 503 naming the directory.
fn spool_error(dir: &Path, e: io::Error) -> Error {
    Error::Unavailable(format!(
        "cannot hold an upload part in {}: {e}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source of `chunks`.
    struct Chunks(std::vec::IntoIter<Bytes>);

    impl DataSource for Chunks {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
            Ok(self.0.next())
        }
    }

    async fn read_all(mut part: Spooled) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = part.next_chunk().await.unwrap() {
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[tokio::test]
    async fn parts_cut_an_upload_at_their_limit_leave_no_name_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = data.chunks(7_001).map(Bytes::copy_from_slice).collect();
        let mut source = Chunks(chunks.into_iter());
        let mut metered = Metered::new(&mut source, u64::MAX);
        let mut back = Vec::new();
        loop {
            let part = Spooled::fill(dir.path(), &mut metered, 30_000)
                .await
                .unwrap();
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            if part.is_empty() {
                break;
            }
            assert!(part.len() == 30_000 || back.len() + part.len() as usize == data.len());
            back.extend(read_all(part).await);
        }
        assert_eq!(back, data);
    }

    #[test]
    fn clear_removes_only_spool_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".spool-left"), b"x").unwrap();
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        assert_eq!(clear(dir.path()).unwrap(), 1);
        assert!(dir.path().join("other").exists());
        assert_eq!(clear(&dir.path().join("missing")).unwrap(), 0);
    }
}
