//! The registry: image records in sled, with secondary indexes kept in the same transaction as
//! the record. Knows nothing of HTTP; its errors are its own.

mod check;
mod db;
mod decoded;
mod index;
pub mod keys;
pub mod members;
pub mod query;
pub mod query_v2;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use crate::model::{Image, Invalid, Status};
use crate::patch::ImagePatch;
pub use crate::patch::UpdateOptions;
use crate::timestamp::Timestamp;
pub use check::CheckReport;
pub use members::{ImageMember, Member, MemberStatus, SharedImage};
pub use query::{Limits, ListQuery, SortDir, SortKey, Visibility};

/// sled's page cache unless configured: small, so the server's memory stays flat however many
/// images the registry holds (sled's own default is 1 GiB and grows with the database).
pub const DEFAULT_CACHE_BYTES: u64 = 16 << 20;

/// Why a registry operation did not succeed.
#[derive(Debug)]
pub enum Error {
    /// No image with this id.
    NotFound(Uuid),
    /// An image with this id already exists (deleted ones included).
    Duplicate(Uuid),
    /// The request or resulting record breaks a validation rule.
    Invalid(String),
    /// The change is not allowed on this image (for example a deleted one).
    Forbidden(String),
    /// The image is not in the state the caller expected (`from_state`).
    Conflict(String),
    /// sled failed.
    Storage(sled::Error),
    /// A stored record could not be decoded.
    Corrupt(String),
    /// A record could not be encoded for storage (a bug, not damage on disk).
    Encode(serde_json::Error),
    /// A remote registry could not be reached or gave a malformed answer.
    Unavailable(String),
    /// The tenant is not a member of the image.
    MemberNotFound,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(id) => write!(f, "Image {id} not found"),
            Error::Duplicate(id) => write!(f, "Image with identifier {id} already exists!"),
            Error::Invalid(m) | Error::Forbidden(m) | Error::Conflict(m) => f.write_str(m),
            Error::Storage(e) => write!(f, "metadata storage failed: {e}"),
            Error::Corrupt(m) => write!(f, "stored record is corrupt: {m}"),
            Error::Encode(e) => write!(f, "cannot encode a record: {e}"),
            Error::Unavailable(m) => write!(f, "registry unavailable: {m}"),
            Error::MemberNotFound => f.write_str("Membership could not be found."),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage(e) => Some(e),
            Error::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e)
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e.0)
    }
}

/// Counters of the work lists and lookups have done, for tests and diagnostics.
#[derive(Debug, Default)]
struct Counters {
    records_read: AtomicU64,
    index_entries_read: AtomicU64,
}

/// A snapshot of [`Registry`]'s work counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Image records fetched and decoded.
    pub records_read: u64,
    /// Index entries visited.
    pub index_entries_read: u64,
}

/// The image metadata store.
pub struct Registry {
    /// The database and its two trees.
    db: db::Db,
    /// Work counters, so tests can prove that filtered lists read only what they need.
    counters: Counters,
    /// Largest filter range sorted in memory; bigger ones are walked in index order. Tests lower
    /// it to exercise both plans on small data.
    small_source: usize,
}

impl Registry {
    /// Opens (or creates) the registry database in `dir`, with sled's page cache at
    /// [`DEFAULT_CACHE_BYTES`].
    pub fn open(dir: &Path) -> Result<Registry, Error> {
        Registry::open_with(dir, DEFAULT_CACHE_BYTES, 0)
    }

    /// Opens (or creates) the registry database in `dir`; sled keeps at most about
    /// `cache_bytes` of its pages in memory (`registry_cache_size`), and writes are refused
    /// (503) while the disk has less than `reserved_bytes` free (`registry_reserved_space`; 0:
    /// no reserve).
    pub fn open_with(dir: &Path, cache_bytes: u64, reserved_bytes: u64) -> Result<Registry, Error> {
        Ok(Registry {
            db: db::Db::open(dir, cache_bytes, reserved_bytes)?,
            counters: Counters::default(),
            small_source: index::SMALL_SOURCE,
        })
    }

    /// Opens a registry that lives only as long as the process (tests and benchmarks).
    pub fn temporary() -> Result<Registry, Error> {
        Ok(Registry {
            db: db::Db::temporary()?,
            counters: Counters::default(),
            small_source: index::SMALL_SOURCE,
        })
    }

    /// The work counters so far.
    pub fn read_stats(&self) -> ReadStats {
        ReadStats {
            records_read: self.counters.records_read.load(Ordering::Relaxed),
            index_entries_read: self.counters.index_entries_read.load(Ordering::Relaxed),
        }
    }

    /// The stored JSON of the image with this id: exactly `serde_json` of its [`Image`], so it
    /// can be sent as is (the Registry API's show answers it without decoding).
    pub fn get_json(&self, id: &Uuid) -> Result<sled::IVec, Error> {
        self.counters.records_read.fetch_add(1, Ordering::Relaxed);
        self.db
            .images
            .get(keys::id_key(id))?
            .ok_or(Error::NotFound(*id))
    }

    /// The image with this id, deleted or not.
    pub fn get(&self, id: &Uuid) -> Result<Image, Error> {
        self.counters.records_read.fetch_add(1, Ordering::Relaxed);
        self.db.get(id)?.ok_or(Error::NotFound(*id))
    }

    /// Creates an image from `patch`; an absent status becomes `default_status`. Returns once the
    /// record is durable.
    pub async fn create(&self, patch: ImagePatch, default_status: Status) -> Result<Image, Error> {
        let image = self.create_unflushed(patch, default_status)?;
        self.db.flush().await?;
        Ok(image)
    }

    /// [`Registry::create`] without waiting for durability (bulk loads, benchmarks).
    pub fn create_unflushed(
        &self,
        patch: ImagePatch,
        default_status: Status,
    ) -> Result<Image, Error> {
        let image = patch.into_new_image(default_status, Timestamp::now());
        image.validate()?;
        let id = image.id;
        self.db.write(&id, |old| match old {
            Some(_) => Err(Error::Duplicate(id)),
            None => Ok(image.clone()),
        })
    }

    /// Merges `patch` into the image (§9.4): server-managed fields are ignored, `updated_at` is
    /// bumped, properties are upserted or, with `purge_props`, replaced. Durable on return.
    pub async fn update(
        &self,
        id: &Uuid,
        patch: ImagePatch,
        options: UpdateOptions,
    ) -> Result<Image, Error> {
        let now = Timestamp::now();
        let image = self.db.write(id, |old| {
            let mut image = old.ok_or(Error::NotFound(*id))?;
            if image.deleted {
                return Err(Error::Forbidden(
                    "Forbidden to update deleted image.".into(),
                ));
            }
            if let Some(expected) = options.from_state {
                if image.status != expected {
                    return Err(Error::Conflict(format!(
                        "Image operation conflicts: image {id} is {}, not {expected}",
                        image.status
                    )));
                }
            }
            if patch.id.is_some_and(|new| new != *id) {
                return Err(Error::Forbidden(
                    "Forbidden to modify 'id' of image.".into(),
                ));
            }
            patch.clone().apply_mutable(&mut image, options.purge_props);
            image.updated_at = now.max(image.updated_at);
            image.note_activation();
            image.validate()?;
            Ok(image)
        })?;
        self.db.flush().await?;
        Ok(image)
    }

    /// Soft-deletes the image: status `deleted`, `deleted = true`, `deleted_at = now`. Durable on
    /// return. Deleting a deleted image is "not found".
    pub async fn delete(&self, id: &Uuid) -> Result<Image, Error> {
        let now = Timestamp::now();
        let image = self.db.write(id, |old| {
            let mut image = old.filter(|i| !i.deleted).ok_or(Error::NotFound(*id))?;
            image.status = Status::Deleted;
            image.deleted = true;
            image.deleted_at = Some(now);
            image.updated_at = now.max(image.updated_at);
            Ok(image)
        })?;
        self.db.flush().await?;
        Ok(image)
    }

    /// The page of images that `query` selects, in its order.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<Image>, Error> {
        index::list(self, query)
    }

    /// How many records have each status (deleted ones as `deleted`), from the status index:
    /// index keys only, no record is decoded.
    pub fn count_by_status(&self) -> Result<Vec<(&'static str, u64)>, Error> {
        Status::ALL
            .into_iter()
            .map(|status| {
                let prefix = keys::field_prefix(SortKey::Status, status.as_str());
                let mut n = 0u64;
                for key in self.db.index.scan_prefix(prefix).keys() {
                    key?;
                    n += 1;
                }
                Ok((status.as_str(), n))
            })
            .collect()
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> Result<(), Error> {
        self.db.flush().await
    }

    fn fetch_counted(&self, id: &Uuid) -> Result<Option<Image>, Error> {
        self.counters.records_read.fetch_add(1, Ordering::Relaxed);
        self.db.get(id)
    }

    fn count_index_entry(&self) {
        self.counters
            .index_entries_read
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
