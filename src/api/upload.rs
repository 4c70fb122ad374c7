//! The upload procedure (§5.5.1) that both APIs share: `queued → saving`, stream into a store,
//! verify size and checksum, record size, MD5 and the SHA-512 multihash, then `→ active`. Any
//! failure kills the image and removes every byte written.

use uuid::Uuid;

use super::images::ImagesService;
use super::recovery::InFlight;
use super::Error;
use crate::api::error::RegistryOp;
use crate::inspect::Inspector;
use crate::journal::Work;
use crate::model::{Image, Status, HASH_ALGO};
use crate::patch::ImagePatch;
use crate::registry::UpdateOptions;
use crate::store::{DataSource, Location};

/// An upload's bytes on their way to the store, shown to the disk image inspector in the same
/// pass (no second read, no copy). Once the head of the data shows it must be refused (unsafe,
/// or a format found at its start that is not the declared one), the upload stops there: the
/// store gets no more and removes what it has.
struct Inspected<'a, S> {
    source: &'a mut S,
    inspector: Inspector,
    /// The declared `disk_format`, when a mismatch refuses the data.
    must_match: Option<String>,
    /// Whether the head has been judged.
    judged: bool,
}

impl<S: DataSource> DataSource for Inspected<'_, S> {
    fn size_hint(&self) -> Option<u64> {
        self.source.size_hint()
    }

    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, crate::store::Error> {
        let chunk = self.source.next_chunk().await?;
        if let Some(bytes) = &chunk {
            self.inspector.feed(bytes);
            if !self.judged && self.inspector.head_seen() {
                self.judged = true;
                if let Some(why) = self
                    .inspector
                    .early()
                    .and_then(|found| refusal(&found, self.must_match.as_deref()))
                {
                    return Err(crate::store::Error::Refused(format!(
                        "{why} Setting image status to 'killed'."
                    )));
                }
            }
        }
        Ok(chunk)
    }
}

/// Why inspected data must be refused: unsafe always, a mismatch with `must_match` (the
/// declared format, when `require_image_format_match`) too.
fn refusal(found: &crate::inspect::Inspection, must_match: Option<&str>) -> Option<String> {
    found
        .unsafe_because
        .as_ref()
        .map(|why| format!("Image data refused: {why}."))
        .or_else(|| must_match.and_then(|declared| found.mismatch(declared)))
}

impl ImagesService {
    /// Uploads `source` as the data of a queued image: `queued → saving → active`.
    pub(super) async fn upload(
        &self,
        image: Image,
        store: Option<&str>,
        mut source: impl DataSource,
    ) -> Result<Image, Error> {
        let (work, image) = self.start_upload(&image, store).await?;
        let result = self.store_data(image, store, &mut source).await;
        work.settle(result.is_ok()).await;
        result
    }

    /// Journals an upload of `image` to `store` and moves it `queued → saving`; the caller
    /// settles the returned work once the data is stored or has failed.
    pub(super) async fn start_upload(
        &self,
        image: &Image,
        store: Option<&str>,
    ) -> Result<(InFlight, Image), Error> {
        let work = self.begin_work(&image.id, Work::Upload, store).await?;
        let saving = ImagePatch {
            status: Some(Status::Saving),
            ..Default::default()
        };
        match self
            .catalog
            .update(&image.id, saving, from(Status::Queued))
            .await
        {
            Ok(image) => Ok((work, image)),
            Err(e) => {
                work.abandon();
                Err(Error::from_registry(e, RegistryOp::StartUpload))
            }
        }
    }

    /// Streams `source` into a store as the data of `image` (which is in `saving` or
    /// `importing`), checks it against what the record declared and makes the image active.
    pub(super) async fn store_data(
        &self,
        image: Image,
        store: Option<&str>,
        source: &mut impl DataSource,
    ) -> Result<Image, Error> {
        let (id, current) = (image.id, image.status);
        let declared = image.disk_format.as_deref().unwrap_or("raw");
        let mut inspected = Inspected {
            source,
            inspector: Inspector::new(),
            must_match: self
                .settings
                .require_format_match
                .then(|| declared.to_string()),
            judged: false,
        };
        let stored = match self
            .stores
            .put(store, &id, &mut inspected, self.settings.size_cap)
            .await
        {
            Ok(stored) => stored,
            Err(e) => {
                self.kill(&id, current).await;
                return Err(e.into());
            }
        };
        let inspection = inspected.inspector.finish();
        if let Some(table) = inspection.partition_table {
            crate::info!(
                "image {id}: raw data with a {} partition table",
                table.as_str()
            );
        }
        if let Some(why) = refusal(&inspection, inspected.must_match.as_deref()) {
            let _ = self.discard(&stored.location).await;
            self.kill(&id, current).await;
            return Err(Error::BadRequest(format!(
                "{why} Setting image status to 'killed'."
            )));
        }
        let mismatch = if image.size != 0 && image.size != stored.size {
            Some(("size", image.size.to_string(), stored.size.to_string()))
        } else {
            match &image.checksum {
                Some(c) if *c != stored.checksum => {
                    Some(("checksum", c.clone(), stored.checksum.clone()))
                }
                _ => None,
            }
        };
        if let Some((attr, given, actual)) = mismatch {
            let _ = self.discard(&stored.location).await;
            self.kill(&id, current).await;
            return Err(Error::BadRequest(format!(
                "Supplied {attr} ({given}) and {attr} generated from uploaded image ({actual}) did not match. Setting image status to 'killed'."
            )));
        }
        let active = ImagePatch {
            status: Some(Status::Active),
            size: Some(stored.size),
            checksum: Some(Some(stored.checksum.clone())),
            os_hash_algo: Some(Some(HASH_ALGO.into())),
            os_hash_value: Some(Some(stored.os_hash_value.clone())),
            virtual_size: inspection.virtual_size_for(declared).map(Some),
            location: Some(Some(stored.location.to_string())),
            ..Default::default()
        };
        match self.catalog.update(&id, active, from(current)).await {
            Ok(image) => Ok(image),
            Err(e) => {
                let _ = self.discard(&stored.location).await;
                let err = Error::from_registry(e, RegistryOp::FinishUpload { id: &id });
                // A record that is gone or changed is not ours to kill.
                if !matches!(err, Error::PreconditionFailed(_)) {
                    self.kill(&id, current).await;
                }
                Err(err)
            }
        }
    }

    /// Moves an image from `from` to `killed`; a failure here is logged, not returned, since the
    /// caller is already answering with the original error.
    pub(super) async fn kill(&self, id: &Uuid, from_status: Status) {
        let killed = ImagePatch {
            status: Some(Status::Killed),
            ..Default::default()
        };
        if let Err(e) = self.catalog.update(id, killed, from(from_status)).await {
            crate::warn!("could not mark image {id} killed: {e}");
        }
    }

    /// Removes data a failed or deleted image left in a store; whether it is gone (a failure
    /// is logged).
    pub(super) async fn discard(&self, location: &Location) -> bool {
        match self.stores.delete(location).await {
            Ok(()) | Err(crate::store::Error::NotFound(_)) => true,
            Err(e) => {
                crate::error!("could not remove image data at {}: {e}", location.scheme());
                false
            }
        }
    }

    /// Deletes the record of `image` through `delete`, then its data, journaled in between so
    /// that a crash after the record cannot leave the data behind for good.
    pub(super) async fn delete_with_data(
        &self,
        image: &Image,
        delete: impl std::future::Future<Output = Result<Image, Error>>,
    ) -> Result<Image, Error> {
        let work = match &image.location {
            Some(uri) => Some(self.begin_delete(&image.id, uri).await?),
            None => None,
        };
        let deleted = match delete.await {
            Ok(deleted) => deleted,
            Err(e) => {
                if let Some(work) = work {
                    work.abandon();
                }
                return Err(e);
            }
        };
        let mut removed = true;
        if let Some(uri) = &deleted.location {
            match Location::parse(uri) {
                Ok(location) => removed = self.discard(&location).await,
                Err(e) => crate::warn!("image {} had an unreadable location: {e}", image.id),
            }
        }
        if let Some(work) = work {
            work.settle(removed).await;
        }
        Ok(deleted)
    }
}

/// An update that applies only while the image is in `status`, keeping its properties.
pub(super) fn from(status: Status) -> UpdateOptions {
    UpdateOptions {
        purge_props: false,
        from_state: Some(status),
    }
}
