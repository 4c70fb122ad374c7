//! Every key byte layout of the registry, in one place.
//!
//! * `images` tree: `id (16 bytes)` → the record as JSON.
//! * `index` tree: `tag ‖ sort bytes` → empty, where the sort bytes of field F are
//!   `enc(F) ‖ created_at ‖ id`, so one ordered scan gives the list order `(F, created_at, id)` of
//!   §8, and a prefix `tag ‖ enc(value)` holds the rows with `F = value` in `(created_at, id)` order.
//!
//! Encodings keep byte order equal to value order: integers big-endian; timestamps big-endian with
//! the sign bit flipped; optional strings as `0x00` (null, first) or `0x01 ‖ escaped ‖ 0x00 0x00`
//! with `0x00` escaped as `0x00 0xFF`, so no string is a prefix of another's encoding.

use uuid::Uuid;

use crate::model::{Image, Visibility};
use crate::timestamp::Timestamp;

/// The list sort keys of §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `id`
    Id,
    /// `name`
    Name,
    /// `status`
    Status,
    /// `disk_format`
    DiskFormat,
    /// `container_format`
    ContainerFormat,
    /// `size`
    Size,
    /// `created_at` (the default)
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
}

/// Index tag of `name`.
pub const TAG_NAME: u8 = b'n';
/// Index tag of `status`.
pub const TAG_STATUS: u8 = b's';
/// Index tag of `disk_format`.
pub const TAG_DISK_FORMAT: u8 = b'd';
/// Index tag of `container_format`.
pub const TAG_CONTAINER_FORMAT: u8 = b'c';
/// Index tag of `size`.
pub const TAG_SIZE: u8 = b'z';
/// Index tag of `created_at`.
pub const TAG_CREATED_AT: u8 = b'C';
/// Index tag of `updated_at`.
pub const TAG_UPDATED_AT: u8 = b'U';
/// Index tag of `is_public`.
pub const TAG_IS_PUBLIC: u8 = b'p';
/// Index tag of properties (`key`, `value`).
pub const TAG_PROPERTY: u8 = b'P';
/// Index tag of `visibility` (v2).
pub const TAG_VISIBILITY: u8 = b'v';
/// Index tag of tags (one entry per tag).
pub const TAG_TAG: u8 = b't';
/// Index tag of `owner`.
pub const TAG_OWNER: u8 = b'o';

/// Length of an id in a key.
pub const ID_LEN: usize = 16;

/// The primary key of an image.
pub fn id_key(id: &Uuid) -> [u8; ID_LEN] {
    *id.as_bytes()
}

/// The image id at the end of an index key (or a primary key).
pub fn id_from_key(key: &[u8]) -> Option<Uuid> {
    let start = key.len().checked_sub(ID_LEN)?;
    Uuid::from_slice(&key[start..]).ok()
}

/// The index tag of a sort key, or `None` for `id` (the primary tree is that index).
pub fn sort_tag(key: SortKey) -> Option<u8> {
    match key {
        SortKey::Id => None,
        SortKey::Name => Some(TAG_NAME),
        SortKey::Status => Some(TAG_STATUS),
        SortKey::DiskFormat => Some(TAG_DISK_FORMAT),
        SortKey::ContainerFormat => Some(TAG_CONTAINER_FORMAT),
        SortKey::Size => Some(TAG_SIZE),
        SortKey::CreatedAt => Some(TAG_CREATED_AT),
        SortKey::UpdatedAt => Some(TAG_UPDATED_AT),
    }
}

/// The bytes whose order is the order of `image`'s field `key` alone (ties left open).
pub fn field_bytes(image: &Image, key: SortKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    push_field(&mut out, image, key);
    out
}

fn push_field(out: &mut Vec<u8>, image: &Image, key: SortKey) {
    match key {
        SortKey::Id => out.extend_from_slice(&id_key(&image.id)),
        SortKey::Name => push_str(out, image.name.as_deref()),
        SortKey::Status => push_str(out, Some(image.status.as_str())),
        SortKey::DiskFormat => push_str(out, image.disk_format.as_deref()),
        SortKey::ContainerFormat => push_str(out, image.container_format.as_deref()),
        SortKey::Size => out.extend_from_slice(&image.size.to_be_bytes()),
        SortKey::CreatedAt => push_ts(out, image.created_at),
        SortKey::UpdatedAt => push_ts(out, image.updated_at),
    }
}

/// The bytes whose order is the list order `(key, created_at, id)` of `image`.
pub fn sort_bytes(image: &Image, key: SortKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    push_field(&mut out, image, key);
    if !matches!(key, SortKey::Id | SortKey::CreatedAt) {
        push_ts(&mut out, image.created_at);
    }
    if key != SortKey::Id {
        out.extend_from_slice(&id_key(&image.id));
    }
    out
}

/// The first index key of sort key `key`'s index (`CreatedAt` or `UpdatedAt`) at time `t`.
pub fn time_key(key: SortKey, t: Timestamp) -> Vec<u8> {
    let mut out = vec![sort_tag(key).unwrap_or(0)];
    push_ts(&mut out, t);
    out
}

/// The key of `image` in the index of sort key `key` (`key` must not be `Id`).
pub fn sort_index_key(image: &Image, key: SortKey) -> Vec<u8> {
    let mut out = vec![sort_tag(key).unwrap_or(0)];
    out.extend(sort_bytes(image, key));
    out
}

/// Every index entry of `image`.
pub fn index_keys(image: &Image) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = [
        SortKey::Name,
        SortKey::Status,
        SortKey::DiskFormat,
        SortKey::ContainerFormat,
        SortKey::Size,
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
    ]
    .into_iter()
    .map(|k| sort_index_key(image, k))
    .collect();
    let mut public = is_public_prefix(image.is_public);
    push_created_and_id(&mut public, image);
    keys.push(public);
    let mut visibility = visibility_prefix(image.visibility);
    push_created_and_id(&mut visibility, image);
    keys.push(visibility);
    let mut owner = owner_prefix(image.owner.as_deref());
    push_created_and_id(&mut owner, image);
    keys.push(owner);
    for tag in &image.tags {
        let mut key = tag_prefix(tag);
        push_created_and_id(&mut key, image);
        keys.push(key);
    }
    for (k, v) in &image.properties {
        let mut key = property_prefix(k, v.as_deref());
        push_created_and_id(&mut key, image);
        keys.push(key);
    }
    keys
}

/// The prefix of the index entries whose string field (by sort key) equals `value`.
pub fn field_prefix(key: SortKey, value: &str) -> Vec<u8> {
    let mut out = vec![sort_tag(key).unwrap_or(0)];
    push_str(&mut out, Some(value));
    out
}

/// The prefix of the images with `is_public == public`.
pub fn is_public_prefix(public: bool) -> Vec<u8> {
    vec![TAG_IS_PUBLIC, u8::from(public)]
}

/// The prefix of the images with this `visibility`.
pub fn visibility_prefix(visibility: Visibility) -> Vec<u8> {
    vec![TAG_VISIBILITY, visibility as u8]
}

/// The prefix of the images with this `owner` (`None`: no owner).
pub fn owner_prefix(owner: Option<&str>) -> Vec<u8> {
    let mut out = vec![TAG_OWNER];
    push_str(&mut out, owner);
    out
}

/// The prefix of the images tagged `tag`.
pub fn tag_prefix(tag: &str) -> Vec<u8> {
    let mut out = vec![TAG_TAG];
    push_str(&mut out, Some(tag));
    out
}

/// The prefix of the images with property `key` equal to `value`.
pub fn property_prefix(key: &str, value: Option<&str>) -> Vec<u8> {
    let mut out = vec![TAG_PROPERTY];
    push_str(&mut out, Some(key));
    push_str(&mut out, value);
    out
}

/// The first key of the size index at or above `size`.
pub fn size_key(size: u64) -> Vec<u8> {
    let mut out = vec![TAG_SIZE];
    out.extend_from_slice(&size.to_be_bytes());
    out
}

/// The first key of the updated_at index at or above `t`.
pub fn updated_at_key(t: Timestamp) -> Vec<u8> {
    time_key(SortKey::UpdatedAt, t)
}

/// Appends the `(created_at, id)` suffix of an index entry: an equality prefix plus this suffix
/// is the entry of `image` under that prefix.
pub fn push_created_and_id(out: &mut Vec<u8>, image: &Image) {
    push_ts(out, image.created_at);
    out.extend_from_slice(&id_key(&image.id));
}

/// The smallest key greater than every key that starts with `prefix`, or `None` if there is none.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn push_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0x00),
        Some(s) => {
            out.push(0x01);
            for &b in s.as_bytes() {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0x00, 0x00]);
        }
    }
}

fn push_ts(out: &mut Vec<u8>, t: Timestamp) {
    out.extend_from_slice(&((t.as_micros() as u64) ^ (1 << 63)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn enc(s: Option<&str>) -> Vec<u8> {
        let mut v = Vec::new();
        push_str(&mut v, s);
        v
    }

    #[test]
    fn string_encoding_preserves_order() {
        let values = [
            None,
            Some(""),
            Some("\0"),
            Some("\0\0"),
            Some("a"),
            Some("a\0"),
            Some("a\0b"),
            Some("ab"),
            Some("b"),
        ];
        for w in values.windows(2) {
            assert!(enc(w[0]) < enc(w[1]), "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn timestamp_encoding_preserves_order_across_the_epoch() {
        let enc = |m| {
            let mut v = Vec::new();
            push_ts(&mut v, Timestamp::from_micros(m));
            v
        };
        assert!(enc(-5) < enc(-1) && enc(-1) < enc(0) && enc(0) < enc(1) && enc(1) < enc(i64::MAX));
    }

    #[test]
    fn index_keys_end_with_the_id_and_extend_their_prefix() {
        let mut img = Image::new(Uuid::new_v4(), Status::Active, Timestamp::from_micros(99));
        img.name = Some("cirros".into());
        img.properties.insert("os".into(), Some("linux".into()));
        img.tags.insert("gold".into());
        let keys = index_keys(&img);
        assert_eq!(keys.len(), 12);
        for k in &keys {
            assert_eq!(id_from_key(k), Some(img.id));
        }
        assert!(keys
            .iter()
            .any(|k| k.starts_with(&field_prefix(SortKey::Name, "cirros"))));
        assert!(keys
            .iter()
            .any(|k| k.starts_with(&property_prefix("os", Some("linux")))));
        assert!(keys.iter().any(|k| k.starts_with(&is_public_prefix(false))));
        assert!(keys
            .iter()
            .any(|k| k.starts_with(&visibility_prefix(Visibility::Shared))));
        assert!(keys.iter().any(|k| k.starts_with(&tag_prefix("gold"))));
        assert!(keys.iter().any(|k| k.starts_with(&owner_prefix(None))));
        assert!(!keys
            .iter()
            .any(|k| k.starts_with(&field_prefix(SortKey::Name, "cirro"))));
    }

    #[test]
    fn prefix_end_is_the_successor() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
