//! Recently decoded records, so that a record read again is cloned, not parsed again: decoding a
//! record's JSON was a quarter of the instructions of `GET /v2/images/{id}` (callgrind).
//!
//! Correct by construction, with nothing to invalidate: an entry is the stored bytes beside what
//! they decode to, and it is used only when the bytes read now are the same bytes. A write that
//! changes a record changes its bytes, so the next read misses and decodes. The cache is
//! direct-mapped (a record's slot comes from its key) with a lock per slot, so its memory is
//! bounded by the slot count and two requests contend only when they read records of one slot.

use std::sync::Mutex;

use sled::IVec;

use super::Error;
use crate::model::Image;

/// Slots: at most this many decoded records are kept (a few MiB at most).
const SLOTS: usize = 1024;

/// A slot: the stored bytes of a record and what they decode to.
type Slot = Mutex<Option<(IVec, Image)>>;

/// See the module documentation.
pub(super) struct DecodedCache {
    slots: Box<[Slot]>,
}

impl DecodedCache {
    /// An empty cache.
    pub(super) fn new() -> DecodedCache {
        DecodedCache {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The record `bytes` (stored under `key`) decodes to: a clone of the cached one when these
    /// are the bytes it was decoded from, else decoded and cached.
    pub(super) fn decode(&self, key: &[u8], bytes: &IVec) -> Result<Image, Error> {
        let slot = &self.slots[slot_of(key)];
        if let Ok(cached) = slot.lock() {
            if let Some((cached_bytes, image)) = cached.as_ref() {
                if cached_bytes == bytes {
                    return Ok(image.clone());
                }
            }
        }
        let image = super::db::decode(bytes)?;
        if let Ok(mut cached) = slot.lock() {
            *cached = Some((bytes.clone(), image.clone()));
        }
        Ok(image)
    }
}

/// The slot of a key: FNV-1a over its bytes (ids may be chosen by clients, so not just the
/// last bytes of a UUID).
fn slot_of(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::timestamp::Timestamp;

    fn record(name: &str) -> (Image, IVec) {
        let mut image = Image::new(uuid::Uuid::new_v4(), Status::Active, Timestamp::now());
        image.name = Some(name.into());
        let bytes = IVec::from(serde_json::to_vec(&image).unwrap());
        (image, bytes)
    }

    /// A record read again with the same bytes comes from the cache; once its bytes change, the
    /// new bytes are decoded, never the stale record returned.
    #[test]
    fn a_changed_record_is_decoded_again() {
        let cache = DecodedCache::new();
        let (image, bytes) = record("first");
        let key = image.id.as_bytes().to_vec();
        assert_eq!(cache.decode(&key, &bytes).unwrap(), image);
        assert_eq!(cache.decode(&key, &bytes).unwrap(), image);
        let mut renamed = image.clone();
        renamed.name = Some("second".into());
        let renamed_bytes = IVec::from(serde_json::to_vec(&renamed).unwrap());
        assert_eq!(cache.decode(&key, &renamed_bytes).unwrap(), renamed);
        assert_eq!(cache.decode(&key, &bytes).unwrap(), image);
    }

    /// Two records that share a slot each decode to themselves.
    #[test]
    fn records_of_one_slot_do_not_mix() {
        let cache = DecodedCache::new();
        let (a, a_bytes) = record("a");
        let key = a.id.as_bytes().to_vec();
        let (b, b_bytes) = record("b");
        for _ in 0..3 {
            assert_eq!(cache.decode(&key, &a_bytes).unwrap(), a);
            assert_eq!(cache.decode(&key, &b_bytes).unwrap(), b);
        }
    }

    /// Bytes that are not a record are an error, and are not cached as one.
    #[test]
    fn corrupt_bytes_are_an_error() {
        let cache = DecodedCache::new();
        let bad = IVec::from(&b"{not json"[..]);
        assert!(matches!(cache.decode(b"k", &bad), Err(Error::Corrupt(_))));
        assert!(matches!(cache.decode(b"k", &bad), Err(Error::Corrupt(_))));
    }
}
