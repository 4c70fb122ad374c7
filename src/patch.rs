//! A partial image: the fields a create or update request sets. Both the Registry API's JSON body
//! and (later) the Images API's headers decode into this one type, so the rules of applying a
//! change live in one place.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::model::{Image, Status, Visibility};
use crate::timestamp::Timestamp;

/// Which fields a request sets. `None` means "not in the request"; for nullable fields
/// `Some(None)` means "set to null".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePatch {
    /// Requested id (create only).
    pub id: Option<Uuid>,
    /// See [`Image::name`].
    pub name: Option<Option<String>>,
    /// See [`Image::status`].
    pub status: Option<Status>,
    /// See [`Image::size`].
    pub size: Option<u64>,
    /// See [`Image::virtual_size`].
    pub virtual_size: Option<Option<u64>>,
    /// See [`Image::disk_format`].
    pub disk_format: Option<Option<String>>,
    /// See [`Image::container_format`].
    pub container_format: Option<Option<String>>,
    /// See [`Image::checksum`].
    pub checksum: Option<Option<String>>,
    /// See [`Image::location`].
    pub location: Option<Option<String>>,
    /// See [`Image::is_public`].
    pub is_public: Option<bool>,
    /// See [`Image::owner`].
    pub owner: Option<Option<String>>,
    /// See [`Image::protected`].
    pub protected: Option<bool>,
    /// See [`Image::min_disk`].
    pub min_disk: Option<u64>,
    /// See [`Image::min_ram`].
    pub min_ram: Option<u64>,
    /// Honoured on create only.
    pub created_at: Option<Timestamp>,
    /// Honoured on create only.
    pub updated_at: Option<Timestamp>,
    /// Honoured on create only.
    pub deleted_at: Option<Option<Timestamp>>,
    /// Honoured on create only.
    pub deleted: Option<bool>,
    /// Properties to set (upserted, or the full set when purging).
    pub properties: Option<BTreeMap<String, Option<String>>>,
    /// See [`Image::visibility`]; wins over `is_public` when both are set.
    pub visibility: Option<Visibility>,
    /// The whole tag set (replaces the stored one).
    pub tags: Option<BTreeSet<String>>,
    /// See [`Image::os_hash_algo`].
    pub os_hash_algo: Option<Option<String>>,
    /// See [`Image::os_hash_value`].
    pub os_hash_value: Option<Option<String>>,
    /// See [`Image::os_hidden`].
    pub os_hidden: Option<bool>,
}

impl ImagePatch {
    /// Builds a new record from this patch: unset fields take their defaults, the status defaults
    /// to `default_status`, and the id to a fresh random UUID.
    pub fn into_new_image(self, default_status: Status, now: Timestamp) -> Image {
        let id = self.id.unwrap_or_else(Uuid::new_v4);
        let mut image = Image::new(id, self.status.unwrap_or(default_status), now);
        if let Some(t) = self.created_at {
            image.created_at = t;
            image.updated_at = t;
        }
        if let Some(t) = self.updated_at {
            image.updated_at = t;
        }
        if let Some(t) = self.deleted_at {
            image.deleted_at = t;
        }
        if let Some(d) = self.deleted {
            image.deleted = d;
        }
        self.apply_mutable(&mut image, true);
        image.note_activation();
        image
    }

    /// Applies the fields an update may change to `image`. Server-managed fields (timestamps,
    /// `deleted`, `id`) are ignored here; the caller decides what to do with them. With
    /// `purge_props`, properties missing from the patch are removed.
    pub fn apply_mutable(self, image: &mut Image, purge_props: bool) {
        if let Some(v) = self.name {
            image.name = v;
        }
        if let Some(v) = self.status {
            image.status = v;
        }
        if let Some(v) = self.size {
            image.size = v;
        }
        if let Some(v) = self.virtual_size {
            image.virtual_size = v;
        }
        if let Some(v) = self.disk_format {
            image.disk_format = v;
        }
        if let Some(v) = self.container_format {
            image.container_format = v;
        }
        if let Some(v) = self.checksum {
            image.checksum = v;
        }
        if let Some(v) = self.location {
            image.location = v;
        }
        match (self.visibility, self.is_public) {
            (Some(v), _) => image.visibility = v,
            (None, Some(true)) => image.visibility = Visibility::Public,
            (None, Some(false)) if image.visibility == Visibility::Public => {
                image.visibility = Visibility::Shared
            }
            _ => {}
        }
        image.is_public = image.visibility == Visibility::Public;
        if let Some(v) = self.tags {
            image.tags = v;
        }
        if let Some(v) = self.os_hash_algo {
            image.os_hash_algo = v;
        }
        if let Some(v) = self.os_hash_value {
            image.os_hash_value = v;
        }
        if let Some(v) = self.os_hidden {
            image.os_hidden = v;
        }
        if let Some(v) = self.owner {
            image.owner = v;
        }
        if let Some(v) = self.protected {
            image.protected = v;
        }
        if let Some(v) = self.min_disk {
            image.min_disk = v;
        }
        if let Some(v) = self.min_ram {
            image.min_ram = v;
        }
        match self.properties {
            Some(props) if purge_props => image.properties = props,
            Some(props) => image.properties.extend(props),
            None if purge_props => image.properties.clear(),
            None => {}
        }
    }
}

/// How an update applies its patch (§9.4): the Registry API reads these from its request, the
/// registry applies them, and the registry client sends them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    /// Remove stored properties that the patch does not name.
    pub purge_props: bool,
    /// Apply only if the image is currently in this status.
    pub from_state: Option<Status>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn new_image_takes_defaults_and_requested_values() {
        let id = Uuid::new_v4();
        let patch = ImagePatch {
            id: Some(id),
            name: Some(Some("cirros".into())),
            min_ram: Some(512),
            ..Default::default()
        };
        let img = patch.into_new_image(Status::Active, Timestamp::from_micros(7));
        assert_eq!(img.id, id);
        assert_eq!(img.status, Status::Active);
        assert_eq!(img.name.as_deref(), Some("cirros"));
        assert_eq!(img.min_ram, 512);
        assert_eq!(img.created_at, img.updated_at);
        assert!(!img.is_public && !img.deleted && img.properties.is_empty());
    }

    #[test]
    fn properties_upsert_without_purge_and_replace_with_purge() {
        let mut img = ImagePatch {
            properties: Some(props(&[("a", "1"), ("b", "2")])),
            ..Default::default()
        }
        .into_new_image(Status::Queued, Timestamp::from_micros(0));
        let change = ImagePatch {
            properties: Some(props(&[("b", "3"), ("c", "4")])),
            ..Default::default()
        };
        change.clone().apply_mutable(&mut img, false);
        assert_eq!(img.properties, props(&[("a", "1"), ("b", "3"), ("c", "4")]));
        change.apply_mutable(&mut img, true);
        assert_eq!(img.properties, props(&[("b", "3"), ("c", "4")]));
        ImagePatch::default().apply_mutable(&mut img, true);
        assert!(img.properties.is_empty());
    }

    #[test]
    fn is_public_and_visibility_stay_in_step() {
        let mut img =
            ImagePatch::default().into_new_image(Status::Queued, Timestamp::from_micros(0));
        assert_eq!((img.visibility, img.is_public), (Visibility::Shared, false));
        let set = |is_public, visibility| ImagePatch {
            is_public,
            visibility,
            ..Default::default()
        };
        set(Some(true), None).apply_mutable(&mut img, false);
        assert_eq!((img.visibility, img.is_public), (Visibility::Public, true));
        set(Some(false), None).apply_mutable(&mut img, false);
        assert_eq!((img.visibility, img.is_public), (Visibility::Shared, false));
        set(None, Some(Visibility::Private)).apply_mutable(&mut img, false);
        assert_eq!(
            (img.visibility, img.is_public),
            (Visibility::Private, false)
        );
        set(Some(false), None).apply_mutable(&mut img, false);
        assert_eq!(
            img.visibility,
            Visibility::Private,
            "v1 false keeps a non-public visibility"
        );
        set(None, Some(Visibility::Public)).apply_mutable(&mut img, false);
        assert!(img.is_public);
    }

    #[test]
    fn explicit_null_clears_a_field() {
        let mut img = ImagePatch {
            name: Some(Some("x".into())),
            ..Default::default()
        }
        .into_new_image(Status::Queued, Timestamp::from_micros(0));
        ImagePatch {
            name: Some(None),
            ..Default::default()
        }
        .apply_mutable(&mut img, false);
        assert_eq!(img.name, None);
    }
}
