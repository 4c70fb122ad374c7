//! Image members (§5.8): which tenants an image is shared with. Stored in two trees written in
//! one transaction with a check of the image: `members` (`image id ‖ member` → can_share) lists an
//! image's members in order, `shared` (`member ‖ 0x00 ‖ image id` → can_share) answers
//! "images shared with this member" without a scan.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use uuid::Uuid;

use super::{db, keys, Error, Registry};

/// Longest member id (a tenant id).
pub const MAX_MEMBER_LEN: usize = 255;

pub use crate::model::{Member, SharedImage};

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
        self.live_image(id)?;
        self.db
            .members
            .scan_prefix(keys::id_key(id))
            .map(|entry| {
                let (k, v) = entry?;
                Ok(Member {
                    member_id: String::from_utf8_lossy(&k[keys::ID_LEN..]).into_owned(),
                    can_share: v.first() == Some(&1),
                })
            })
            .collect()
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
                    can_share: v.first() == Some(&1),
                });
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
        for (m, _) in members {
            check_member_id(m)?;
        }
        let current = self.members(id)?;
        self.write_members(id, |tx_members, tx_shared| {
            for old in &current {
                tx_members.remove(member_key(id, &old.member_id))?;
                tx_shared.remove(shared_key(&old.member_id, id))?;
            }
            for (m, can_share) in members {
                let keep = current
                    .iter()
                    .find(|c| &c.member_id == m)
                    .map(|c| c.can_share);
                let value = [u8::from(can_share.or(keep).unwrap_or(false))];
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
        check_member_id(member)?;
        let current = self.members(id)?;
        let keep = current
            .iter()
            .find(|c| c.member_id == member)
            .map(|c| c.can_share);
        let value = [u8::from(can_share.or(keep).unwrap_or(false))];
        self.write_members(id, |tx_members, tx_shared| {
            tx_members.insert(member_key(id, member), &value)?;
            tx_shared.insert(shared_key(member, id), &value)?;
            Ok(())
        })?;
        self.db.flush().await
    }

    /// Removes `member`; [`Error::MemberNotFound`] if it is not one. Durable on return.
    pub async fn remove_member(&self, id: &Uuid, member: &str) -> Result<(), Error> {
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

    fn live_image(&self, id: &Uuid) -> Result<(), Error> {
        match self.get(id) {
            Ok(image) if !image.deleted => Ok(()),
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
        let result = (&self.db.images, &self.db.members, &self.db.shared).transaction(
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
        );
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Storage(e)),
        }
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
