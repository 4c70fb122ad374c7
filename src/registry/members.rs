//! Image members (§5.8): which tenants an image is shared with. Stored in two trees written in
//! one transaction with a check of the image: `members` (`image id ‖ member` → can_share) lists an
//! image's members in order, `shared` (`member ‖ 0x00 ‖ image id` → can_share) answers
//! "images shared with this member" without a scan.
//!
//! A member's value is `can_share (1 byte)`, followed since v2 by `status (1 byte) ‖ created_at
//! ‖ updated_at (8 bytes each, big-endian micros)`; a one-byte value (written before v2) reads as
//! `pending`, with the image's own times.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use uuid::Uuid;

use super::{db, keys, Error, Registry};
use crate::model::Image;
use crate::timestamp::Timestamp;

/// Longest member id (a tenant id).
pub const MAX_MEMBER_LEN: usize = 255;

pub use crate::model::{ImageMember, Member, MemberStatus, SharedImage};

/// A stored member value, decoded.
#[derive(Debug, Clone, Copy)]
struct Value {
    can_share: bool,
    status: MemberStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl Value {
    fn new(can_share: bool, now: Timestamp) -> Value {
        Value {
            can_share,
            status: MemberStatus::Pending,
            created_at: now,
            updated_at: now,
        }
    }

    fn decode(bytes: &[u8], image: Option<&Image>) -> Value {
        let time = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(|b| Timestamp::from_micros(i64::from_be_bytes(b)))
        };
        let fallback = image.map_or(Timestamp::from_micros(0), |i| i.created_at);
        Value {
            can_share: bytes.first() == Some(&1),
            status: MemberStatus::from_byte(bytes.get(1).copied().unwrap_or(0)),
            created_at: time(2).unwrap_or(fallback),
            updated_at: time(10).unwrap_or(fallback),
        }
    }

    fn encode(self) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[0] = u8::from(self.can_share);
        out[1] = self.status as u8;
        out[2..10].copy_from_slice(&self.created_at.as_micros().to_be_bytes());
        out[10..18].copy_from_slice(&self.updated_at.as_micros().to_be_bytes());
        out
    }
}

/// Checks a member id: non-empty, at most [`MAX_MEMBER_LEN`] characters, no control characters.
pub fn check_member_id(member: &str) -> Result<(), Error> {
    if member.is_empty()
        || member.chars().count() > MAX_MEMBER_LEN
        || member.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "Invalid membership association: member id must be 1 to {MAX_MEMBER_LEN} printable characters"
        )));
    }
    Ok(())
}

fn member_key(id: &Uuid, member: &str) -> Vec<u8> {
    let mut k = keys::id_key(id).to_vec();
    k.extend_from_slice(member.as_bytes());
    k
}

fn shared_key(member: &str, id: &Uuid) -> Vec<u8> {
    let mut k = member.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&keys::id_key(id));
    k
}

impl Registry {
    /// The members of a (non-deleted) image, by member id.
    pub fn members(&self, id: &Uuid) -> Result<Vec<Member>, Error> {
        Ok(self
            .image_members(id)?
            .into_iter()
            .map(|m| Member {
                member_id: m.member_id,
                can_share: m.can_share,
            })
            .collect())
    }

    /// The members of a (non-deleted) image with their v2 status, by member id.
    pub fn image_members(&self, id: &Uuid) -> Result<Vec<ImageMember>, Error> {
        let image = self.live_image(id)?;
        self.db
            .members
            .scan_prefix(keys::id_key(id))
            .map(|entry| {
                let (k, v) = entry?;
                let value = Value::decode(&v, Some(&image));
                Ok(ImageMember {
                    image_id: *id,
                    member_id: String::from_utf8_lossy(&k[keys::ID_LEN..]).into_owned(),
                    can_share: value.can_share,
                    status: value.status,
                    created_at: value.created_at,
                    updated_at: value.updated_at,
                })
            })
            .collect()
    }

    /// Sets the v2 status of an existing member. Durable on return.
    pub async fn set_member_status(
        &self,
        id: &Uuid,
        member: &str,
        status: MemberStatus,
    ) -> Result<ImageMember, Error> {
        self.db.ensure_space()?;
        let image = self.live_image(id)?;
        let stored = self
            .db
            .members
            .get(member_key(id, member))?
            .ok_or(Error::MemberNotFound)?;
        let mut value = Value::decode(&stored, Some(&image));
        value.status = status;
        value.updated_at = Timestamp::now().max(value.updated_at);
        let bytes = value.encode();
        self.write_members(id, |tx_members, tx_shared| {
            tx_members.insert(member_key(id, member), &bytes)?;
            tx_shared.insert(shared_key(member, id), &bytes)?;
            Ok(())
        })?;
        self.db.flush().await?;
        Ok(ImageMember {
            image_id: *id,
            member_id: member.to_string(),
            can_share: value.can_share,
            status: value.status,
            created_at: value.created_at,
            updated_at: value.updated_at,
        })
    }

    /// The (non-deleted) images shared with `member`.
    pub fn shared_images(&self, member: &str) -> Result<Vec<SharedImage>, Error> {
        let mut prefix = member.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.db.shared.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let Some(image_id) = keys::id_from_key(&k) else {
                continue;
            };
            if self.get(&image_id).is_ok_and(|i| !i.deleted) {
                out.push(SharedImage {
                    image_id,
                    can_share: Value::decode(&v, None).can_share,
                });
            }
        }
        Ok(out)
    }

    /// The ids of the images `member` holds a membership of, of status `status` (any when
    /// `None`): what a list restricted to a viewer (§13) needs besides the indexes.
    pub(super) fn shared_ids(
        &self,
        member: &str,
        status: Option<MemberStatus>,
    ) -> Result<std::collections::HashSet<Uuid>, Error> {
        let mut prefix = member.as_bytes().to_vec();
        prefix.push(0);
        let mut out = std::collections::HashSet::new();
        for entry in self.db.shared.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let Some(image_id) = keys::id_from_key(&k) else {
                continue;
            };
            if status.is_none_or(|s| Value::decode(&v, None).status == s) {
                out.insert(image_id);
            }
        }
        Ok(out)
    }

    /// Makes the member set exactly `members`. A member without `can_share` keeps its current
    /// value, or gets false if new. Durable on return.
    pub async fn replace_members(
        &self,
        id: &Uuid,
        members: &[(String, Option<bool>)],
    ) -> Result<(), Error> {
        self.db.ensure_space()?;
        for (m, _) in members {
            check_member_id(m)?;
        }
        let current = self.image_members(id)?;
        let now = Timestamp::now();
        self.write_members(id, |tx_members, tx_shared| {
            for old in &current {
                tx_members.remove(member_key(id, &old.member_id))?;
                tx_shared.remove(shared_key(&old.member_id, id))?;
            }
            for (m, can_share) in members {
                let value = merged_value(&current, m, *can_share, now).encode();
                tx_members.insert(member_key(id, m), &value)?;
                tx_shared.insert(shared_key(m, id), &value)?;
            }
            Ok(())
        })?;
        self.db.flush().await
    }

    /// Adds `member`, or updates its `can_share` when given. Durable on return.
    pub async fn add_member(
        &self,
        id: &Uuid,
        member: &str,
        can_share: Option<bool>,
    ) -> Result<(), Error> {
        self.db.ensure_space()?;
        check_member_id(member)?;
        let current = self.image_members(id)?;
        let value = merged_value(&current, member, can_share, Timestamp::now()).encode();
        self.write_members(id, |tx_members, tx_shared| {
            tx_members.insert(member_key(id, member), &value)?;
            tx_shared.insert(shared_key(member, id), &value)?;
            Ok(())
        })?;
        self.db.flush().await
    }

    /// Removes `member`; [`Error::MemberNotFound`] if it is not one. Durable on return.
    pub async fn remove_member(&self, id: &Uuid, member: &str) -> Result<(), Error> {
        self.db.ensure_space()?;
        self.live_image(id)?;
        if !self.db.members.contains_key(member_key(id, member))? {
            return Err(Error::MemberNotFound);
        }
        self.write_members(id, |tx_members, tx_shared| {
            tx_members.remove(member_key(id, member))?;
            tx_shared.remove(shared_key(member, id))?;
            Ok(())
        })?;
        self.db.flush().await
    }

    fn live_image(&self, id: &Uuid) -> Result<Image, Error> {
        match self.get(id) {
            Ok(image) if !image.deleted => Ok(image),
            Ok(_) | Err(Error::NotFound(_)) => Err(Error::NotFound(*id)),
            Err(e) => Err(e),
        }
    }

    /// Runs `change` on the member trees in one transaction that also checks the image still
    /// exists and is not deleted.
    fn write_members(
        &self,
        id: &Uuid,
        change: impl Fn(
            &sled::transaction::TransactionalTree,
            &sled::transaction::TransactionalTree,
        ) -> Result<(), ConflictableTransactionError<Error>>,
    ) -> Result<(), Error> {
        let result = db::off_runtime(|| {
            (&self.db.images, &self.db.members, &self.db.shared).transaction(
                |(images, members, shared)| {
                    let alive = match images.get(keys::id_key(id))? {
                        Some(bytes) => {
                            !db::decode(&bytes)
                                .map_err(ConflictableTransactionError::Abort)?
                                .deleted
                        }
                        None => false,
                    };
                    if !alive {
                        return Err(ConflictableTransactionError::Abort(Error::NotFound(*id)));
                    }
                    change(members, shared)
                },
            )
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Storage(e)),
        }
    }
}

/// The value of `member` after an add or replace: an existing member keeps its status, times and
/// (unless given) `can_share`; a new one is pending, with `can_share` false unless given.
fn merged_value(
    current: &[ImageMember],
    member: &str,
    can_share: Option<bool>,
    now: Timestamp,
) -> Value {
    match current.iter().find(|c| c.member_id == member) {
        Some(c) => Value {
            can_share: can_share.unwrap_or(c.can_share),
            status: c.status,
            created_at: c.created_at,
            updated_at: if can_share.is_some_and(|s| s != c.can_share) {
                now.max(c.updated_at)
            } else {
                c.updated_at
            },
        },
        None => Value::new(can_share.unwrap_or(false), now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::patch::ImagePatch;

    #[tokio::test]
    async fn members_replace_add_remove_and_shared_images() {
        let reg = Registry::temporary().unwrap();
        let img = reg
            .create(ImagePatch::default(), Status::Active)
            .await
            .unwrap();
        let other = reg
            .create(ImagePatch::default(), Status::Active)
            .await
            .unwrap();
        assert!(reg.members(&img.id).unwrap().is_empty());
        reg.replace_members(&img.id, &[("t1".into(), Some(true)), ("t2".into(), None)])
            .await
            .unwrap();
        reg.add_member(&other.id, "t1", None).await.unwrap();
        assert_eq!(
            reg.members(&img.id).unwrap(),
            vec![
                Member {
                    member_id: "t1".into(),
                    can_share: true
                },
                Member {
                    member_id: "t2".into(),
                    can_share: false
                }
            ]
        );
        // Replacing keeps can_share of existing members when not given.
        reg.replace_members(&img.id, &[("t1".into(), None), ("t3".into(), None)])
            .await
            .unwrap();
        let ids: Vec<_> = reg
            .members(&img.id)
            .unwrap()
            .into_iter()
            .map(|m| (m.member_id, m.can_share))
            .collect();
        assert_eq!(ids, vec![("t1".into(), true), ("t3".into(), false)]);
        let shared = reg.shared_images("t1").unwrap();
        assert_eq!(shared.len(), 2);
        assert!(
            reg.shared_images("t2").unwrap().is_empty(),
            "the reverse index follows replacements"
        );
        let t1 = reg
            .set_member_status(&img.id, "t1", MemberStatus::Accepted)
            .await
            .unwrap();
        assert_eq!(t1.status, MemberStatus::Accepted);
        reg.add_member(&img.id, "t1", Some(false)).await.unwrap();
        let listed = reg.image_members(&img.id).unwrap();
        assert_eq!(
            listed[0].status,
            MemberStatus::Accepted,
            "a re-add keeps the status"
        );
        assert_eq!(listed[1].status, MemberStatus::Pending);
        assert!(matches!(
            reg.set_member_status(&img.id, "nobody", MemberStatus::Rejected)
                .await,
            Err(Error::MemberNotFound)
        ));
        reg.remove_member(&img.id, "t3").await.unwrap();
        assert!(matches!(
            reg.remove_member(&img.id, "t3").await,
            Err(Error::MemberNotFound)
        ));
        reg.delete(&other.id).await.unwrap();
        assert_eq!(
            reg.shared_images("t1").unwrap().len(),
            1,
            "deleted images are not listed"
        );
        assert!(matches!(reg.members(&other.id), Err(Error::NotFound(_))));
        assert!(matches!(
            reg.add_member(&other.id, "t9", None).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            reg.add_member(&img.id, "", None).await,
            Err(Error::Invalid(_))
        ));
    }
}
