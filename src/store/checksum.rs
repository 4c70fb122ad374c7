//! The hashes of an upload, the MD5 (Glance's `checksum`) and the SHA-512 multihash
//! (`os_hash_value`), each computed on a thread of its own while the data streams on, so that
//! hashing (the costliest step of an upload: about 1.5 s of CPU per GiB for MD5, a little less for
//! SHA-512) overlaps the network, the store and the other hash instead of adding to them.

use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha512;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Error;

/// Chunks queued for each hashing thread. With chunks of at most a few hundred KiB this bounds
/// the memory an upload can pin while a hash catches up to a few MiB.
const QUEUE: usize = 16;

/// The two digests of an upload, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// MD5 (Glance's `checksum`).
    pub md5: String,
    /// SHA-512 (`os_hash_value`, with `os_hash_algo` = `sha512`).
    pub sha512: String,
}

/// MD5 and SHA-512 computed in the background over the chunks given to
/// [`BackgroundHashes::update`].
pub(super) struct BackgroundHashes {
    /// `None` until the first chunk: an empty upload starts no thread.
    workers: Option<(Worker, Worker)>,
}

/// One hashing thread and the queue that feeds it.
struct Worker {
    chunks: mpsc::Sender<Bytes>,
    digest: JoinHandle<Vec<u8>>,
}

impl BackgroundHashes {
    pub(super) fn new() -> BackgroundHashes {
        BackgroundHashes { workers: None }
    }

    /// Queues `chunk` for both hashes; waits only while a queue is full. The chunk is shared, not
    /// copied.
    pub(super) async fn update(&mut self, chunk: Bytes) -> Result<(), Error> {
        let (md5, sha512) = self
            .workers
            .get_or_insert_with(|| (Worker::start::<Md5>(), Worker::start::<Sha512>()));
        md5.chunks
            .send(chunk.clone())
            .await
            .map_err(|_| stopped())?;
        sha512.chunks.send(chunk).await.map_err(|_| stopped())
    }

    /// Both digests of every chunk, once the hashing threads have caught up.
    pub(super) async fn finish(self) -> Result<Digests, Error> {
        let (md5, sha512) = match self.workers {
            None => (Md5::digest(b"").to_vec(), Sha512::digest(b"").to_vec()),
            Some((md5, sha512)) => (md5.finish().await?, sha512.finish().await?),
        };
        Ok(Digests {
            md5: hex(&md5),
            sha512: hex(&sha512),
        })
    }
}

impl Worker {
    fn start<D: Digest + Send + 'static>() -> Worker {
        let (chunks, mut queue) = mpsc::channel::<Bytes>(QUEUE);
        let digest = tokio::task::spawn_blocking(move || {
            let mut hash = D::new();
            while let Some(chunk) = queue.blocking_recv() {
                hash.update(&chunk);
            }
            hash.finalize().to_vec()
        });
        Worker { chunks, digest }
    }

    async fn finish(self) -> Result<Vec<u8>, Error> {
        drop(self.chunks);
        self.digest.await.map_err(|_| stopped())
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn stopped() -> Error {
    Error::Io(std::io::Error::other("a checksum thread stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn digests_of(chunks: &[&[u8]]) -> Digests {
        let mut hashes = BackgroundHashes::new();
        for chunk in chunks {
            hashes.update(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        hashes.finish().await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn digests_match_known_values_however_the_data_is_split() {
        let empty = digests_of(&[]).await;
        assert_eq!(empty.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert!(empty.sha512.starts_with("cf83e1357eefb8bdf1542850d66d8007"));
        assert_eq!(digests_of(&[b""]).await, empty);
        let fox = b"The quick brown fox jumps over the lazy dog";
        let whole = digests_of(&[fox]).await;
        assert_eq!(whole.md5, "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(
            whole.sha512,
            "07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb64\
             2e93a252a954f23912547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6"
        );
        let split: Vec<&[u8]> = fox.chunks(3).collect();
        assert_eq!(digests_of(&split).await, whole);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_chunks_than_the_queue_holds_are_all_hashed() {
        let chunk = vec![7u8; 4096];
        let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), QUEUE * 8).collect();
        let data = chunk.repeat(QUEUE * 8);
        let got = digests_of(&chunks).await;
        assert_eq!(got.md5, hex(&Md5::digest(&data)));
        assert_eq!(got.sha512, hex(&Sha512::digest(&data)));
    }
}
