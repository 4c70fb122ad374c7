//! The MD5 of an upload, computed on a thread of its own while the data streams on, so that the
//! hash (the costliest step of an upload: about 1.5 s of CPU per GiB) overlaps the network and the
//! store instead of adding to them.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Error;

/// Chunks queued for the hashing thread. With chunks of at most a few hundred KiB this bounds the
/// memory an upload can pin while the hash catches up to a few MiB.
const QUEUE: usize = 16;

/// An MD5 computed in the background over the chunks given to [`BackgroundMd5::update`].
pub(super) struct BackgroundMd5 {
    /// `None` until the first chunk: an empty upload starts no thread.
    worker: Option<Worker>,
}

struct Worker {
    chunks: mpsc::Sender<Bytes>,
    digest: JoinHandle<[u8; 16]>,
}

impl BackgroundMd5 {
    pub(super) fn new() -> BackgroundMd5 {
        BackgroundMd5 { worker: None }
    }

    /// Queues `chunk` for hashing; waits only while the queue is full. The chunk is shared, not
    /// copied.
    pub(super) async fn update(&mut self, chunk: Bytes) -> Result<(), Error> {
        let worker = self.worker.get_or_insert_with(Worker::start);
        worker.chunks.send(chunk).await.map_err(|_| stopped())
    }

    /// The lower-case hex MD5 of every chunk, once the hashing thread has caught up.
    pub(super) async fn finish(self) -> Result<String, Error> {
        let digest = match self.worker {
            None => Md5::new().finalize().into(),
            Some(Worker { chunks, digest }) => {
                drop(chunks);
                digest.await.map_err(|_| stopped())?
            }
        };
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl Worker {
    fn start() -> Worker {
        let (chunks, mut queue) = mpsc::channel::<Bytes>(QUEUE);
        let digest = tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some(chunk) = queue.blocking_recv() {
                md5.update(&chunk);
            }
            md5.finalize().into()
        });
        Worker { chunks, digest }
    }
}

fn stopped() -> Error {
    Error::Io(std::io::Error::other("the checksum thread stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn md5_of(chunks: &[&[u8]]) -> String {
        let mut md5 = BackgroundMd5::new();
        for chunk in chunks {
            md5.update(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        md5.finish().await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn digests_match_known_md5_values_however_the_data_is_split() {
        assert_eq!(md5_of(&[]).await, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_of(&[b""]).await, "d41d8cd98f00b204e9800998ecf8427e");
        let fox = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(md5_of(&[fox]).await, "9e107d9d372bb6826bd81d3542a419d6");
        let split: Vec<&[u8]> = fox.chunks(3).collect();
        assert_eq!(md5_of(&split).await, "9e107d9d372bb6826bd81d3542a419d6");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_chunks_than_the_queue_holds_are_all_hashed() {
        let chunk = vec![7u8; 4096];
        let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), QUEUE * 8).collect();
        let expected: String = Md5::digest(chunk.repeat(QUEUE * 8))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(md5_of(&chunks).await, expected);
    }
}
