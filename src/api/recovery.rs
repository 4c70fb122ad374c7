//! The uploads, stages and imports this API process runs, kept in its [`Journal`] from before the
//! record leaves `queued` until the work is settled, and their recovery: after a crash (at
//! start-up), after a failure, or when a request's future is dropped mid-upload. Recovery looks
//! at each journaled image's record: one still `saving` or `importing` died with the work and is
//! killed, its store cleaned of partial files, unfinished S3 multipart uploads and Swift
//! segments; an interrupted stage goes back to `queued`. Records this process never journaled
//! (another API server's uploads through the Registry API) are never touched.

use uuid::Uuid;

use super::images::ImagesService;
use super::upload::from;
use super::Error;
use crate::journal::{Entry, Work};
use crate::model::Status;
use crate::patch::ImagePatch;

/// Work recorded in the journal. [`InFlight::settle`] ends it; dropped unsettled (the request
/// was cancelled), it is recovered at once in the background.
pub(super) struct InFlight {
    work: Option<(ImagesService, Entry)>,
}

impl InFlight {
    /// Ends the work: a success just leaves the journal; after a failure the image is recovered
    /// (killed if still in flight, its leftovers removed) and the entry kept if that fails, for
    /// the next start to finish.
    pub(super) async fn settle(mut self, succeeded: bool) {
        if let Some((service, entry)) = self.work.take() {
            if succeeded {
                service.journal.end(&entry.image, entry.work);
            } else {
                service.recover(&entry).await;
            }
        }
    }
}

impl InFlight {
    /// Forgets work that never started: the record did not take the first transition (it was
    /// not in the expected state), so neither it nor any store holds anything of this process.
    pub(super) fn abandon(mut self) {
        if let Some((service, entry)) = self.work.take() {
            service.journal.end(&entry.image, entry.work);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((service, entry)) = self.work.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move { service.recover(&entry).await });
                }
                Err(_) => crate::warn!(
                    "{:?} of image {} was cancelled; recovered at the next start",
                    entry.work,
                    entry.image
                ),
            }
        }
    }
}

impl ImagesService {
    /// Records that this process starts `work` on `image` with its data going to `store` (or
    /// the default store); nothing may change the record or a store before this returns.
    pub(super) async fn begin_work(
        &self,
        image: &Uuid,
        work: Work,
        store: Option<&str>,
    ) -> Result<InFlight, Error> {
        let store = match work {
            Work::Stage | Work::Delete => "file",
            Work::Upload | Work::Import => self.stores.resolve(store)?,
        };
        self.begin(Entry {
            image: *image,
            work,
            store: store.to_string(),
            location: None,
        })
        .await
    }

    /// Records that this process deletes `image`, whose data is at `location`: if it dies
    /// between the record and the data, recovery removes the data of the deleted record.
    pub(super) async fn begin_delete(
        &self,
        image: &Uuid,
        location: &str,
    ) -> Result<InFlight, Error> {
        self.begin(Entry {
            image: *image,
            work: Work::Delete,
            store: "file".to_string(),
            location: Some(location.to_string()),
        })
        .await
    }

    async fn begin(&self, entry: Entry) -> Result<InFlight, Error> {
        self.journal
            .begin(&entry)
            .await
            .map_err(|e| Error::Store(e.into()))?;
        Ok(InFlight {
            work: Some((self.handle(), entry)),
        })
    }

    /// Start-up recovery: settles every piece of work the journal names (a crash interrupted
    /// it). Returns how many entries there were.
    pub async fn recover_interrupted(&self) -> std::io::Result<usize> {
        let entries = self.journal.entries()?;
        for entry in &entries {
            self.recover(entry).await;
        }
        Ok(entries.len())
    }

    /// Settles one entry; on success it leaves the journal, on failure it stays (logged).
    async fn recover(&self, entry: &Entry) {
        match self.recover_entry(entry).await {
            Ok(()) => self.journal.end(&entry.image, entry.work),
            Err(e) => crate::error!(
                "could not recover the interrupted {:?} of image {}: {e}; retried at the next start",
                entry.work,
                entry.image
            ),
        }
    }

    async fn recover_entry(&self, entry: &Entry) -> Result<(), Error> {
        let id = &entry.image;
        let status = match self.catalog.get(id).await {
            Ok(image) => Some(image.status),
            Err(crate::registry::Error::NotFound(_)) => None,
            Err(e) => return Err(Error::Registry(e)),
        };
        match entry.work {
            Work::Stage => self.recover_stage(id, status).await,
            Work::Delete => {
                let gone = matches!(status, None | Some(Status::Deleted));
                if let (Some(uri), true) = (&entry.location, gone) {
                    let location = crate::store::Location::parse(uri)?;
                    match self.stores.delete(&location).await {
                        Ok(()) => crate::warn!("removed the data of deleted image {id}"),
                        Err(crate::store::Error::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.unstage(id).await;
                }
                Ok(())
            }
            Work::Upload | Work::Import => {
                let in_flight = match entry.work {
                    Work::Upload => Status::Saving,
                    _ => Status::Importing,
                };
                let status = match status {
                    Some(s) if s == in_flight => self.mark_killed(id, s).await?,
                    other => other,
                };
                // Data is kept only where an image may still own it (active, deactivated, or
                // waiting for the scrubber); a queued image never reached the store.
                let with_data = matches!(status, None | Some(Status::Killed | Status::Deleted));
                self.stores
                    .remove_leftovers(&entry.store, id, with_data)
                    .await?;
                if entry.work == Work::Import && with_data {
                    self.unstage(id).await;
                }
                Ok(())
            }
        }
    }

    /// An interrupted stage: while the image is still `uploading` without complete staged data,
    /// it goes back to `queued` (as a failed stage does); the partial staged file goes.
    async fn recover_stage(&self, id: &Uuid, status: Option<Status>) -> Result<(), Error> {
        let Some(staging) = &self.staging else {
            return Ok(());
        };
        staging.remove_partial(id).await?;
        match status {
            Some(Status::Uploading) if !staging.has_data(id).await? => {
                let queued = ImagePatch {
                    status: Some(Status::Queued),
                    ..Default::default()
                };
                self.catalog
                    .update(id, queued, from(Status::Uploading))
                    .await
                    .map_err(Error::Registry)?;
                crate::warn!("image {id} was being staged when glint stopped; queued again");
            }
            None | Some(Status::Killed | Status::Deleted | Status::Queued) => {
                self.unstage(id).await
            }
            _ => {}
        }
        Ok(())
    }

    /// Moves `id` from `from_status` to `killed` and returns its status after (`None` once
    /// gone). A record that left that status meanwhile is not this process's to kill.
    async fn mark_killed(&self, id: &Uuid, from_status: Status) -> Result<Option<Status>, Error> {
        use crate::registry::Error as Registry;
        let killed = ImagePatch {
            status: Some(Status::Killed),
            ..Default::default()
        };
        match self.catalog.update(id, killed, from(from_status)).await {
            Ok(image) => {
                crate::warn!("image {id} was {from_status} when its upload stopped; now killed");
                Ok(Some(image.status))
            }
            Err(Registry::NotFound(_)) => Ok(None),
            Err(Registry::Conflict(_)) => match self.catalog.get(id).await {
                Ok(image) => Ok(Some(image.status)),
                Err(Registry::NotFound(_)) => Ok(None),
                Err(e) => Err(Error::Registry(e)),
            },
            Err(e) => Err(Error::Registry(e)),
        }
    }
}
