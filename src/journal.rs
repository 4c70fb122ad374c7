//! The journal of the uploads this API process is running: one small file per upload, stage or
//! import, written and synced before the record leaves `queued` or the store is touched, and
//! removed once the work is settled. After a crash it names exactly the work that died with the
//! process, so start-up recovery kills those images and cleans their stores, and leaves alone
//! the `saving` records that other API servers (through the Registry API) are still uploading.
//!
//! Entries live in `<data dir>/in-flight/<image id>.<work>`, as JSON. A removal is not synced: if
//! a crash loses it, recovery finds an entry whose work had finished and leaves that image as it
//! is.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Name of the journal's directory under the data dir.
pub const DIR_NAME: &str = "in-flight";

/// What an entry's process was doing to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Uploading its data into a store (`queued → saving → active`).
    Upload,
    /// Staging its data for an import (v2 `PUT /stage`, `queued → uploading`).
    Stage,
    /// Importing it into a store in the background (`→ importing → active`).
    Import,
    /// Deleting it: the record first, then its data.
    Delete,
}

impl Work {
    fn as_str(self) -> &'static str {
        match self {
            Work::Upload => "upload",
            Work::Stage => "stage",
            Work::Import => "import",
            Work::Delete => "delete",
        }
    }
}

/// One piece of work in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The image.
    pub image: Uuid,
    /// What was being done.
    pub work: Work,
    /// The store the data was going to (the resolved name, e.g. `file`, `s3`, `swift`).
    pub store: String,
    /// The data's location, for a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The journal directory of one API process.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Opens (and makes, if missing) the journal in `data_dir`.
    pub fn open(data_dir: &Path) -> io::Result<Journal> {
        let dir = data_dir.join(DIR_NAME);
        std::fs::create_dir_all(&dir)?;
        sync_dir(data_dir)?;
        Ok(Journal { dir })
    }

    /// Records `entry` durably: when this returns, a crash at any later instant leaves the entry
    /// for start-up recovery to find.
    pub async fn begin(&self, entry: &Entry) -> io::Result<()> {
        let path = self.path_of(&entry.image, entry.work);
        let body = serde_json::to_vec(entry).map_err(io::Error::other)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let temp = path.with_extension("new");
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            sync_dir(&dir)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Forgets the entry of `image` for `work` (an entry already gone is fine).
    pub fn end(&self, image: &Uuid, work: Work) {
        match std::fs::remove_file(self.path_of(image, work)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => crate::error!("cannot clear the in-flight entry of image {image}: {e}"),
        }
    }

    /// Every entry left in the journal. Half-written entries (a crash before their rename, so
    /// before the work began) and unreadable ones are removed and logged.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for dirent in std::fs::read_dir(&self.dir)? {
            let path = dirent?.path();
            let parsed = std::fs::read(&path)
                .ok()
                .and_then(|body| serde_json::from_slice::<Entry>(&body).ok())
                .filter(|entry| path == self.path_of(&entry.image, entry.work));
            match parsed {
                Some(entry) => entries.push(entry),
                None => {
                    if path.extension().is_none_or(|e| e != "new") {
                        crate::warn!("removing unreadable in-flight entry {}", path.display());
                    }
                    std::fs::remove_file(&path)?;
                }
            }
        }
        entries.sort_by_key(|e| (e.image, e.work.as_str()));
        Ok(entries)
    }

    fn path_of(&self, image: &Uuid, work: Work) -> PathBuf {
        self.dir.join(format!("{image}.{}", work.as_str()))
    }
}

/// Makes a directory's entries (a new or renamed file in it) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(work: Work) -> Entry {
        Entry {
            image: Uuid::new_v4(),
            work,
            store: "file".into(),
            location: None,
        }
    }

    #[tokio::test]
    async fn entries_outlive_the_journal_until_they_end() {
        let dir = tempfile::tempdir().unwrap();
        let upload = entry(Work::Upload);
        let stage = entry(Work::Stage);
        {
            let journal = Journal::open(dir.path()).unwrap();
            journal.begin(&upload).await.unwrap();
            journal.begin(&stage).await.unwrap();
        }
        let journal = Journal::open(dir.path()).unwrap();
        let mut left = journal.entries().unwrap();
        left.sort_by_key(|e| e.image);
        let mut expected = vec![upload.clone(), stage.clone()];
        expected.sort_by_key(|e| e.image);
        assert_eq!(left, expected);

        journal.end(&upload.image, Work::Upload);
        journal.end(&upload.image, Work::Upload);
        assert_eq!(journal.entries().unwrap(), vec![stage]);
    }

    #[tokio::test]
    async fn half_written_and_foreign_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let kept = entry(Work::Import);
        journal.begin(&kept).await.unwrap();
        let journal_dir = dir.path().join(DIR_NAME);
        std::fs::write(journal_dir.join("x.new"), b"{\"ima").unwrap();
        std::fs::write(journal_dir.join("junk"), b"not json").unwrap();
        // A valid entry under another image's name is not believed.
        let other = entry(Work::Upload);
        std::fs::write(
            journal_dir.join(format!("{}.upload", Uuid::new_v4())),
            serde_json::to_vec(&other).unwrap(),
        )
        .unwrap();
        assert_eq!(journal.entries().unwrap(), vec![kept]);
        assert_eq!(std::fs::read_dir(&journal_dir).unwrap().count(), 1);
    }
}
