//! The sled database: an `images` tree of records and an `index` tree of secondary index entries,
//! always written together in one multi-tree transaction.

use std::collections::BTreeSet;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use uuid::Uuid;

use super::keys;
use super::Error;
use crate::model::Image;

/// The registry's sled handles.
pub(super) struct Db {
    /// Kept to flush the whole database.
    db: sled::Db,
    /// `id → record`.
    pub(super) images: sled::Tree,
    /// Secondary index entries (see [`keys`]).
    pub(super) index: sled::Tree,
    /// `image id ‖ member` → can_share (see `members.rs`).
    pub(super) members: sled::Tree,
    /// `member ‖ 0x00 ‖ image id` → can_share.
    pub(super) shared: sled::Tree,
}

impl Db {
    pub(super) fn open(dir: &Path) -> Result<Db, Error> {
        Db::with_config(sled::Config::new().path(dir))
    }

    pub(super) fn temporary() -> Result<Db, Error> {
        Db::with_config(sled::Config::new().temporary(true))
    }

    fn with_config(config: sled::Config) -> Result<Db, Error> {
        let db = config.open()?;
        Ok(Db {
            images: db.open_tree("images")?,
            index: db.open_tree("index")?,
            members: db.open_tree("members")?,
            shared: db.open_tree("shared")?,
            db,
        })
    }

    pub(super) fn get(&self, id: &Uuid) -> Result<Option<Image>, Error> {
        self.images
            .get(keys::id_key(id))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Replaces the record of `id` with what `change` makes of the current one (`None` if absent),
    /// updating the index entries that differ, all in one transaction.
    pub(super) fn write(
        &self,
        id: &Uuid,
        change: impl Fn(Option<Image>) -> Result<Image, Error>,
    ) -> Result<Image, Error> {
        let key = keys::id_key(id);
        let result = (&self.images, &self.index).transaction(|(images, index)| {
            let old = match images.get(key)? {
                Some(bytes) => Some(decode(&bytes).map_err(ConflictableTransactionError::Abort)?),
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
                .map_err(|e| ConflictableTransactionError::Abort(Error::Corrupt(e.to_string())))?;
            images.insert(&key, bytes)?;
            Ok(new)
        });
        match result {
            Ok(image) => Ok(image),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Storage(e)),
        }
    }

    /// Waits until every write so far is on disk. Concurrent callers share one fsync.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        self.db.flush_async().await?;
        Ok(())
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Image, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(e.to_string()))
}
