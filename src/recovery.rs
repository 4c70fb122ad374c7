//! Start-up recovery of uploads that a crash interrupted. An image left in `saving` (or in
//! `importing`, whose background v2 import ran in this process) can never finish: its upload died
//! with the process. The filesystem store removes the partial files when
//! it opens; this marks the records `killed`, so clients see the upload failed.

use crate::model::Status;
use crate::patch::{ImagePatch, UpdateOptions};
use crate::registry::{Error, Limits, ListQuery, Registry, SortKey, Visibility};

/// Images read per page while looking for interrupted uploads.
const PAGE: usize = 1000;

/// Marks every image still `saving` or `importing` as `killed`, and logs each one. An image that cannot be
/// changed (for example one that left `saving` meanwhile) is logged and skipped; only a failure
/// to list the images is an error.
pub async fn kill_interrupted_uploads(registry: &Registry) -> Result<(), Error> {
    for status in [Status::Saving, Status::Importing] {
        kill_all_in(registry, status).await?;
    }
    Ok(())
}

async fn kill_all_in(registry: &Registry, status: Status) -> Result<(), Error> {
    let mut query = ListQuery::new(Limits {
        default: PAGE,
        max: PAGE,
    });
    query.filters.status = Some(status.as_str().to_string());
    query.filters.visibility = Visibility::All;
    query.sort_key = SortKey::Id;
    loop {
        let page = registry.list(&query)?;
        for image in &page {
            let killed = ImagePatch {
                status: Some(Status::Killed),
                ..Default::default()
            };
            let options = UpdateOptions {
                purge_props: false,
                from_state: Some(status),
            };
            match registry.update(&image.id, killed, options).await {
                Ok(_) => crate::warn!(
                    "image {} was {status} when glint stopped; now killed",
                    image.id
                ),
                Err(e) => crate::warn!("could not kill interrupted upload {}: {e}", image.id),
            }
        }
        match page.last() {
            Some(last) if page.len() == query.limit => query.marker = Some(last.id),
            _ => return Ok(()),
        }
    }
}
