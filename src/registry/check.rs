//! A full consistency check of the database: what the crash-torture test asserts after every
//! `kill -9`, and what an operator can run on a stopped registry (`glint check`).

use std::collections::HashSet;

use uuid::Uuid;

use super::keys;
use super::{db, Error, Registry};

/// What [`Registry::check`] read and found wrong.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Image records read.
    pub records: u64,
    /// Index entries read.
    pub index_entries: u64,
    /// Membership entries read (both directions).
    pub member_entries: u64,
    /// Every inconsistency found, one line each (empty when the database is consistent).
    pub problems: Vec<String>,
}

/// Most problems listed; beyond that only the count grows.
const MOST_LISTED: usize = 100;

impl CheckReport {
    fn problem(&mut self, what: String) {
        if self.problems.len() < MOST_LISTED {
            self.problems.push(what);
        }
    }
}

impl Registry {
    /// Checks every record against the indexes and back: each record decodes and has every index
    /// entry its values call for; each index entry names a live record that calls for it; each
    /// membership is recorded in both directions with the same value. Reads everything once.
    pub fn check(&self) -> Result<CheckReport, Error> {
        let mut report = CheckReport::default();
        for entry in self.db.images.iter() {
            let (key, bytes) = entry?;
            report.records += 1;
            let image = match db::decode(&bytes) {
                Ok(image) => image,
                Err(e) => {
                    report.problem(format!("record {key:?} does not decode: {e}"));
                    continue;
                }
            };
            if key.as_ref() != keys::id_key(&image.id) {
                report.problem(format!(
                    "record of {} is stored under another key",
                    image.id
                ));
            }
            for index_key in keys::index_keys(&image) {
                if !self.db.index.contains_key(&index_key)? {
                    report.problem(format!(
                        "image {} lacks the index entry {index_key:?}",
                        image.id
                    ));
                }
            }
        }
        // Index entries are grouped by image only per tag; cache the last record's keys.
        let mut last: Option<(Uuid, HashSet<Vec<u8>>)> = None;
        for entry in self.db.index.iter() {
            let (index_key, _) = entry?;
            report.index_entries += 1;
            let Some(id) = keys::id_from_key(&index_key) else {
                report.problem(format!("index entry {index_key:?} names no image"));
                continue;
            };
            if last.as_ref().is_none_or(|(cached, _)| *cached != id) {
                let wanted = match self.db.get(&id) {
                    Ok(Some(image)) => keys::index_keys(&image).into_iter().collect(),
                    Ok(None) => {
                        report.problem(format!(
                            "index entry {index_key:?} names a missing image {id}"
                        ));
                        HashSet::new()
                    }
                    Err(_) => HashSet::new(), // reported with the records
                };
                last = Some((id, wanted));
            }
            if let Some((_, wanted)) = &last {
                if !wanted.is_empty() && !wanted.contains(index_key.as_ref()) {
                    report.problem(format!(
                        "index entry {index_key:?} does not match the record of {id}"
                    ));
                }
            }
        }
        self.check_members(&mut report)?;
        Ok(report)
    }

    fn check_members(&self, report: &mut CheckReport) -> Result<(), Error> {
        for entry in self.db.members.iter() {
            let (key, value) = entry?;
            report.member_entries += 1;
            if key.len() < keys::ID_LEN {
                report.problem(format!("membership key {key:?} is too short"));
                continue;
            }
            let (id_bytes, member) = key.split_at(keys::ID_LEN);
            let mut mirror = member.to_vec();
            mirror.push(0);
            mirror.extend_from_slice(id_bytes);
            if self.db.shared.get(&mirror)?.as_deref() != Some(value.as_ref()) {
                report.problem(format!(
                    "membership {key:?} is not mirrored in the shared-with index"
                ));
            }
            if self.db.images.get(id_bytes)?.is_none() {
                report.problem(format!("membership {key:?} names a missing image"));
            }
        }
        for entry in self.db.shared.iter() {
            let (key, value) = entry?;
            report.member_entries += 1;
            let Some(split) = key.len().checked_sub(keys::ID_LEN + 1) else {
                report.problem(format!("shared-with key {key:?} is too short"));
                continue;
            };
            let (member, id_bytes) = (&key[..split], &key[split + 1..]);
            let mut mirror = id_bytes.to_vec();
            mirror.extend_from_slice(member);
            if self.db.members.get(&mirror)?.as_deref() != Some(value.as_ref()) {
                report.problem(format!(
                    "shared-with entry {key:?} has no membership behind it"
                ));
            }
        }
        Ok(())
    }
}
