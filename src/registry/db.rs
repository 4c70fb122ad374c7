//! The sled database: an `images` tree of records and an `index` tree of secondary index entries,
//! always written together in one multi-tree transaction.

use std::collections::BTreeSet;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use uuid::Uuid;

use super::decoded::DecodedCache;
use super::keys;
use super::Error;
use crate::model::Image;

/// The registry's sled handles.
pub(super) struct Db {
    /// Refuses writes while the database's disk has less than the reserve free.
    space: Option<SpaceReserve>,
    /// Makes writes durable, one fsync for every write made before it started.
    committer: Committer,
    /// `id → record`.
    pub(super) images: sled::Tree,
    /// Secondary index entries (see [`keys`]).
    pub(super) index: sled::Tree,
    /// Recently decoded records (see [`DecodedCache`]).
    pub(super) decoded: DecodedCache,
    /// `image id ‖ member` → can_share (see `members.rs`).
    pub(super) members: sled::Tree,
    /// `member ‖ 0x00 ‖ image id` → can_share.
    pub(super) shared: sled::Tree,
}

/// The layout version of the records and the index; [`Db::migrate`] brings an older database up.
/// 1: the v1 records and indexes. 2: `visibility` (from `is_public`), tags, owner and visibility
/// indexes.
const SCHEMA_VERSION: u8 = 2;

/// Key of the schema version in the default tree.
const SCHEMA_KEY: &[u8] = b"glint.schema_version";

impl Db {
    pub(super) fn open(dir: &Path, cache_bytes: u64, reserved_bytes: u64) -> Result<Db, Error> {
        let mut db = Db::with_config(sled::Config::new().path(dir).cache_capacity(cache_bytes))?;
        db.space = (reserved_bytes > 0).then(|| SpaceReserve {
            dir: dir.to_path_buf(),
            bytes: reserved_bytes,
        });
        Ok(db)
    }

    /// Refuses a write (503) while the disk has less than the reserve free: sled cannot recover
    /// from running out of space in-process, so it must never see ENOSPC.
    pub(super) fn ensure_space(&self) -> Result<(), Error> {
        match &self.space {
            Some(reserve) => reserve.check(),
            None => Ok(()),
        }
    }

    pub(super) fn temporary() -> Result<Db, Error> {
        Db::with_config(sled::Config::new().temporary(true))
    }

    fn with_config(config: sled::Config) -> Result<Db, Error> {
        let db = config.open()?;
        let version = db.get(SCHEMA_KEY)?.and_then(|v| v.first().copied());
        let this = Db {
            space: None,
            images: db.open_tree("images")?,
            index: db.open_tree("index")?,
            decoded: DecodedCache::new(),
            members: db.open_tree("members")?,
            shared: db.open_tree("shared")?,
            committer: Committer::start(db.clone())?,
        };
        match version {
            Some(v) if v >= SCHEMA_VERSION => {}
            _ => {
                this.migrate()?;
                db.insert(SCHEMA_KEY, &[SCHEMA_VERSION])?;
                db.flush()?;
            }
        }
        Ok(this)
    }

    /// Rewrites every record in the current layout and rebuilds the index from them. Records
    /// written before `visibility` existed take it from `is_public` (public, else shared, as
    /// Glance's migration did). Safe to repeat: a crash before the version is written runs it again.
    fn migrate(&self) -> Result<(), Error> {
        self.index.clear()?;
        for entry in self.images.iter() {
            let (key, bytes) = entry?;
            let raw: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))?;
            let mut image = decode(&bytes)?;
            if raw.get("visibility").is_none() {
                image.visibility = if image.is_public {
                    crate::model::Visibility::Public
                } else {
                    crate::model::Visibility::Shared
                };
            }
            for index_key in keys::index_keys(&image) {
                self.index.insert(index_key, &[])?;
            }
            let encoded = serde_json::to_vec(&image).map_err(Error::Encode)?;
            self.images.insert(key, encoded)?;
        }
        Ok(())
    }

    pub(super) fn get(&self, id: &Uuid) -> Result<Option<Image>, Error> {
        let key = keys::id_key(id);
        self.images
            .get(key)?
            .map(|bytes| self.decoded.decode(&key, &bytes))
            .transpose()
    }

    /// Replaces the record of `id` with what `change` makes of the current one (`None` if absent),
    /// updating the index entries that differ, all in one transaction.
    pub(super) fn write(
        &self,
        id: &Uuid,
        change: impl Fn(Option<Image>) -> Result<Image, Error>,
    ) -> Result<Image, Error> {
        self.ensure_space()?;
        let key = keys::id_key(id);
        let result = off_runtime(|| {
            (&self.images, &self.index).transaction(|(images, index)| {
                let old = match images.get(key)? {
                    Some(bytes) => {
                        Some(decode(&bytes).map_err(ConflictableTransactionError::Abort)?)
                    }
                    None => None,
                };
                let old_keys: BTreeSet<Vec<u8>> = old
                    .as_ref()
                    .map(keys::index_keys)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let new = change(old).map_err(ConflictableTransactionError::Abort)?;
                let new_keys: BTreeSet<Vec<u8>> = keys::index_keys(&new).into_iter().collect();
                for gone in old_keys.difference(&new_keys) {
                    index.remove(gone.as_slice())?;
                }
                for added in new_keys.difference(&old_keys) {
                    index.insert(added.as_slice(), &[])?;
                }
                let bytes = serde_json::to_vec(&new)
                    .map_err(|e| ConflictableTransactionError::Abort(Error::Encode(e)))?;
                images.insert(&key, bytes)?;
                Ok(new)
            })
        });
        match result {
            Ok(image) => Ok(image),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Storage(e)),
        }
    }

    /// Waits until every write so far is on disk. Concurrent callers share one fsync.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        self.committer.flush().await
    }
}

/// A waiter for the next flush: told its outcome when the flush is done.
type FlushWaiter = tokio::sync::oneshot::Sender<Result<(), sled::Error>>;

/// Group commit on a thread of its own: each flush serves every waiter that asked before it began.
///
/// Not `sled::Db::flush_async`: in sled 0.34 it parks each waiter on sled's own thread pool, which
/// is also where the log buffers get written. With enough concurrent writers every pool thread was
/// a waiter blocked behind a transaction, the buffer the first flush waited for was never written,
/// and the registry hung (`concurrent_durable_writes_all_complete`). The blocking `flush` on one
/// Runs a sled write, which may wait for its log on a slow disk, so that it does not hold up
/// the other tasks of a runtime worker: on a multi-threaded runtime the worker hands its tasks
/// to the others first (`block_in_place`); elsewhere (tests, tools) it just runs.
pub(super) fn off_runtime<T>(write: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(write)
        }
        _ => write(),
    }
}

/// The free space a database's disk must keep (`registry_reserved_space`).
struct SpaceReserve {
    dir: std::path::PathBuf,
    bytes: u64,
}

impl SpaceReserve {
    fn check(&self) -> Result<(), Error> {
        let free = match rustix::fs::statvfs(&self.dir) {
            Ok(stat) => stat.f_bavail.saturating_mul(stat.f_frsize),
            Err(_) => return Ok(()), // unknown: let sled try
        };
        if free < self.bytes {
            return Err(Error::Unavailable(format!(
                "the registry's disk is full: {} KiB free at {}, below registry_reserved_space ({} KiB); free space to write again",
                free >> 10,
                self.dir.display(),
                self.bytes >> 10
            )));
        }
        Ok(())
    }
}

/// dedicated thread keeps the pool free for the log writes.
struct Committer {
    /// `None` only while dropping.
    waiters: Option<std::sync::mpsc::Sender<FlushWaiter>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the commit thread; it ends, flushing once more, when the `Committer` is dropped.
    fn start(db: sled::Db) -> Result<Committer, Error> {
        let (waiters, queue) = std::sync::mpsc::channel::<FlushWaiter>();
        let thread = std::thread::Builder::new()
            .name("registry-commit".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let batch: Vec<FlushWaiter> =
                        std::iter::once(first).chain(queue.try_iter()).collect();
                    let started = std::time::Instant::now();
                    let outcome = db.flush().map(drop);
                    crate::metrics::metrics().flushed(started.elapsed());
                    for waiter in batch {
                        // A waiter that went away (its request was dropped) needs no answer.
                        let _ = waiter.send(outcome.clone());
                    }
                }
                let _ = db.flush();
            })
            .map_err(|e| Error::Unavailable(format!("cannot start the commit thread: {e}")))?;
        Ok(Committer {
            waiters: Some(waiters),
            thread: Some(thread),
        })
    }

    async fn flush(&self) -> Result<(), Error> {
        let (waiter, outcome) = tokio::sync::oneshot::channel();
        let stopped = || Error::Unavailable("the commit thread has stopped".into());
        let waiters = self.waiters.as_ref().ok_or_else(stopped)?;
        waiters.send(waiter).map_err(|_| stopped())?;
        outcome
            .await
            .map_err(|_| stopped())?
            .map_err(Error::Storage)
    }
}

impl Drop for Committer {
    /// Stops the thread and waits for its last flush, so that the database is closed (and its
    /// directory lock released) when the registry is dropped.
    fn drop(&mut self) {
        drop(self.waiters.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Image, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Status, Visibility};
    use crate::registry::{ListQuery, Registry};
    use crate::timestamp::Timestamp;

    /// A database written before v2 (records without `visibility`, no schema version, no
    /// visibility index) is brought up to date on open: public records become `public`, the
    /// others `shared`, and the new indexes answer lists.
    #[test]
    fn a_v1_database_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let (public, private) = (Uuid::new_v4(), Uuid::new_v4());
        {
            let db = sled::open(dir.path()).unwrap();
            let images = db.open_tree("images").unwrap();
            for (id, is_public) in [(public, true), (private, false)] {
                let mut image = Image::new(id, Status::Active, Timestamp::now());
                image.is_public = is_public;
                let mut raw = serde_json::to_value(&image).unwrap();
                let obj = raw.as_object_mut().unwrap();
                for key in [
                    "visibility",
                    "tags",
                    "os_hash_algo",
                    "os_hash_value",
                    "os_hidden",
                ] {
                    obj.remove(key);
                }
                images
                    .insert(keys::id_key(&id), serde_json::to_vec(&raw).unwrap())
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.get(&public).unwrap().visibility, Visibility::Public);
        assert_eq!(reg.get(&private).unwrap().visibility, Visibility::Shared);
        let mut query = ListQuery::new(Default::default());
        query.filters.visibility = crate::registry::Visibility::Is(Visibility::Shared);
        let listed: Vec<Uuid> = reg.list(&query).unwrap().iter().map(|i| i.id).collect();
        assert_eq!(listed, vec![private]);
        drop(reg);
        let again = Registry::open(dir.path()).unwrap();
        assert_eq!(
            again.get(&public).unwrap().visibility,
            Visibility::Public,
            "idempotent"
        );
    }
}
