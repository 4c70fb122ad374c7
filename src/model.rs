//! The image record (spec §3), its status lifecycle, and the validation rules that every stored
//! record obeys (§7). Knows nothing of HTTP or sled.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::timestamp::Timestamp;

/// Disk formats glint accepts (Cactus list plus the later v1 additions, §7.1).
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];

/// Container formats glint accepts (Cactus list plus the later v1 additions, §7.1).
pub const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker"];

/// The disk and container formats a service takes (`[image_format] disk_formats` and
/// `container_formats`, Glance's options): a subset of [`DISK_FORMATS`] and
/// [`CONTAINER_FORMATS`], all of them by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledFormats {
    /// Disk formats an image may be given.
    pub disk: Vec<String>,
    /// Container formats an image may be given.
    pub container: Vec<String>,
}

impl Default for EnabledFormats {
    fn default() -> EnabledFormats {
        EnabledFormats {
            disk: DISK_FORMATS.iter().map(|f| f.to_string()).collect(),
            container: CONTAINER_FORMATS.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// Formats that tie the disk and container format together (the aki/ari/ami rule).
const AMAZON_FORMATS: &[&str] = &["aki", "ari", "ami"];

/// Largest value of `min_disk` and `min_ram` (a 32-bit signed column upstream).
pub const MAX_MIN_VALUE: u64 = 2_147_483_647;

/// Longest image name, property key, and text field.
pub const MAX_NAME_LEN: usize = 255;

/// Longest checksum (an MD5 in hex).
pub const MAX_CHECKSUM_LEN: usize = 32;

/// Where an image is in its life (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Reserved: metadata only, no data yet.
    Queued,
    /// Data is being uploaded.
    Saving,
    /// Data is stored and can be downloaded.
    Active,
    /// An upload failed; only DELETE applies.
    Killed,
    /// Soft-deleted.
    Deleted,
    /// Deleted, data waiting for the scrubber.
    PendingDelete,
    /// Active, but its data may not be downloaded (v2 `actions/deactivate`).
    Deactivated,
    /// Data is being staged for an interoperable import (v2 `stage`).
    Uploading,
    /// An import is moving the data into a store.
    Importing,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Saving,
        Status::Active,
        Status::Killed,
        Status::Deleted,
        Status::PendingDelete,
        Status::Deactivated,
        Status::Uploading,
        Status::Importing,
    ];

    /// Statuses a client may set directly; the others are reached only through DELETE.
    pub const SETTABLE: [Status; 4] = [
        Status::Active,
        Status::Saving,
        Status::Queued,
        Status::Killed,
    ];

    /// The wire name (`queued`, `pending_delete`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Active => "active",
            Status::Killed => "killed",
            Status::Deleted => "deleted",
            Status::PendingDelete => "pending_delete",
            Status::Deactivated => "deactivated",
            Status::Uploading => "uploading",
            Status::Importing => "importing",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may see an image (Images API v2, §13). The v1 `is_public` flag is `visibility == Public`;
/// setting it false through v1 makes a public image `shared`, as Glance does.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone sees it and lists it.
    Public,
    /// Everyone may see it; listed only when asked for.
    Community,
    /// The owner and the members (the default of a new image).
    #[default]
    Shared,
    /// The owner only; no members.
    Private,
}

impl Visibility {
    /// Every visibility.
    pub const ALL: [Visibility; 4] = [
        Visibility::Public,
        Visibility::Community,
        Visibility::Shared,
        Visibility::Private,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Community => "community",
            Visibility::Shared => "shared",
            Visibility::Private => "private",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Visibility> {
        Visibility::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Most tags on one image (`image_tag_quota`'s default).
pub const MAX_TAGS: usize = 128;

/// The multihash algorithm glint records for every upload (`hashing_algorithm`).
pub const HASH_ALGO: &str = "sha512";

/// One image's metadata, as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Canonical lower-case hyphenated UUID.
    pub id: Uuid,
    /// Free text, not unique.
    pub name: Option<String>,
    /// Lifecycle state.
    pub status: Status,
    /// Size in bytes (0 until data is uploaded).
    pub size: u64,
    /// Size of the virtual disk, when known.
    pub virtual_size: Option<u64>,
    /// One of [`DISK_FORMATS`].
    pub disk_format: Option<String>,
    /// One of [`CONTAINER_FORMATS`].
    pub container_format: Option<String>,
    /// Lower-case MD5 hex of the data.
    pub checksum: Option<String>,
    /// Where the data lives (a store URI); never shown by the Images API.
    pub location: Option<String>,
    /// Visible to everyone.
    pub is_public: bool,
    /// Tenant that owns the image.
    pub owner: Option<String>,
    /// Cannot be deleted while set.
    pub protected: bool,
    /// Minimum disk in GB needed to boot.
    pub min_disk: u64,
    /// Minimum RAM in MB needed to boot.
    pub min_ram: u64,
    /// When the record was created.
    pub created_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
    /// When the record was soft-deleted.
    pub deleted_at: Option<Timestamp>,
    /// Soft-delete flag.
    pub deleted: bool,
    /// Custom key/value properties (values may be null).
    pub properties: BTreeMap<String, Option<String>>,
    /// Who may see the image; kept equal to `is_public` by [`crate::patch::ImagePatch`].
    #[serde(default)]
    pub visibility: Visibility,
    /// Free-form labels (v2).
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// The multihash algorithm of `os_hash_value` (`sha512`).
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    /// Lower-case hex digest of the data under `os_hash_algo`.
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// Left out of v2 lists unless asked for.
    #[serde(default)]
    pub os_hidden: bool,
    /// When the image first became `active`: the data's `Last-Modified`. Set by the registry
    /// and kept through deactivation; absent in records written before glint kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<Timestamp>,
}

/// The six fields of a brief list entry (§4.3).
#[derive(Debug, Serialize)]
pub struct BriefImage<'a> {
    /// See [`Image::id`].
    pub id: &'a Uuid,
    /// See [`Image::name`].
    pub name: &'a Option<String>,
    /// See [`Image::size`].
    pub size: u64,
    /// See [`Image::disk_format`].
    pub disk_format: &'a Option<String>,
    /// See [`Image::container_format`].
    pub container_format: &'a Option<String>,
    /// See [`Image::checksum`].
    pub checksum: &'a Option<String>,
}

/// An image as the Images API shows it (§4.3): every field except `location`.
#[derive(Debug, Serialize)]
pub struct PublicImage<'a> {
    /// See [`Image::id`].
    pub id: &'a Uuid,
    /// See [`Image::name`].
    pub name: &'a Option<String>,
    /// See [`Image::status`].
    pub status: Status,
    /// See [`Image::size`].
    pub size: u64,
    /// See [`Image::virtual_size`].
    pub virtual_size: Option<u64>,
    /// See [`Image::disk_format`].
    pub disk_format: &'a Option<String>,
    /// See [`Image::container_format`].
    pub container_format: &'a Option<String>,
    /// See [`Image::checksum`].
    pub checksum: &'a Option<String>,
    /// See [`Image::is_public`].
    pub is_public: bool,
    /// See [`Image::protected`].
    pub protected: bool,
    /// See [`Image::owner`].
    pub owner: &'a Option<String>,
    /// See [`Image::min_disk`].
    pub min_disk: u64,
    /// See [`Image::min_ram`].
    pub min_ram: u64,
    /// See [`Image::created_at`].
    pub created_at: Timestamp,
    /// See [`Image::updated_at`].
    pub updated_at: Timestamp,
    /// See [`Image::deleted_at`].
    pub deleted_at: Option<Timestamp>,
    /// See [`Image::deleted`].
    pub deleted: bool,
    /// See [`Image::properties`].
    pub properties: &'a BTreeMap<String, Option<String>>,
}

impl Image {
    /// This image without its location, as the Images API shows it.
    pub fn public_view(&self) -> PublicImage<'_> {
        PublicImage {
            id: &self.id,
            name: &self.name,
            status: self.status,
            size: self.size,
            virtual_size: self.virtual_size,
            disk_format: &self.disk_format,
            container_format: &self.container_format,
            checksum: &self.checksum,
            is_public: self.is_public,
            protected: self.protected,
            owner: &self.owner,
            min_disk: self.min_disk,
            min_ram: self.min_ram,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            deleted: self.deleted,
            properties: &self.properties,
        }
    }

    /// A fresh record with every field at its default and both timestamps at `now`.
    pub fn new(id: Uuid, status: Status, now: Timestamp) -> Image {
        Image {
            id,
            name: None,
            status,
            size: 0,
            virtual_size: None,
            disk_format: None,
            container_format: None,
            checksum: None,
            location: None,
            is_public: false,
            owner: None,
            protected: false,
            min_disk: 0,
            min_ram: 0,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            deleted: false,
            properties: BTreeMap::new(),
            visibility: Visibility::default(),
            tags: BTreeSet::new(),
            os_hash_algo: None,
            os_hash_value: None,
            os_hidden: false,
            activated_at: None,
        }
    }

    /// Notes the first time the image is `active`, at its `updated_at` (the time of the write
    /// that made it so); a later reactivation keeps the first time.
    pub fn note_activation(&mut self) {
        if self.status == Status::Active && self.activated_at.is_none() {
            self.activated_at = Some(self.updated_at);
        }
    }

    /// The brief list form of this image.
    pub fn brief(&self) -> BriefImage<'_> {
        BriefImage {
            id: &self.id,
            name: &self.name,
            size: self.size,
            disk_format: &self.disk_format,
            container_format: &self.container_format,
            checksum: &self.checksum,
        }
    }

    /// Checks every stored-record rule of §7: the status is one a client may set, formats are
    /// known and obey the aki/ari/ami rule, lengths and ranges hold, no 4-byte characters.
    pub fn validate(&self) -> Result<(), Invalid> {
        let v2_only = [Status::Deactivated, Status::Uploading, Status::Importing];
        if !Status::SETTABLE.contains(&self.status)
            && !v2_only.contains(&self.status)
            && !self.deleted
        {
            return Err(Invalid(format!(
                "Invalid image status '{}' for image. Allowed values: active, saving, queued, killed",
                self.status
            )));
        }
        check_format("disk_format", self.disk_format.as_deref(), DISK_FORMATS)?;
        check_format(
            "container_format",
            self.container_format.as_deref(),
            CONTAINER_FORMATS,
        )?;
        let (disk, container) = (
            self.disk_format.as_deref(),
            self.container_format.as_deref(),
        );
        let amazon = |f: Option<&str>| f.is_some_and(|f| AMAZON_FORMATS.contains(&f));
        if (amazon(disk) || amazon(container)) && disk != container {
            return Err(Invalid(
                "Invalid mix of disk and container formats. When setting a disk or container \
                 format to one of 'aki', 'ari', or 'ami', the container and disk formats must match."
                    .into(),
            ));
        }
        if let Some(name) = &self.name {
            let n = name.chars().count();
            if n > MAX_NAME_LEN {
                return Err(Invalid(format!("Image name too long: {n}")));
            }
        }
        if let Some(c) = &self.checksum {
            if c.chars().count() > MAX_CHECKSUM_LEN {
                return Err(Invalid(format!(
                    "Invalid checksum '{c}': can't exceed {MAX_CHECKSUM_LEN} characters"
                )));
            }
        }
        for (field, v) in [("min_disk", self.min_disk), ("min_ram", self.min_ram)] {
            if v > MAX_MIN_VALUE {
                return Err(Invalid(format!(
                    "'{field}' value out of range, must not exceed {MAX_MIN_VALUE}."
                )));
            }
        }
        if self.size > i64::MAX as u64 {
            return Err(Invalid(format!("'size' value out of range: {}", self.size)));
        }
        for (field, text) in [
            ("name", &self.name),
            ("disk_format", &self.disk_format),
            ("container_format", &self.container_format),
            ("checksum", &self.checksum),
            ("location", &self.location),
            ("owner", &self.owner),
        ] {
            check_text(field, text.as_deref())?;
        }
        if let Some(owner) = &self.owner {
            if owner.chars().count() > MAX_NAME_LEN {
                return Err(Invalid(format!(
                    "Owner too long: {}",
                    owner.chars().count()
                )));
            }
        }
        for (key, value) in &self.properties {
            if key.is_empty() {
                return Err(Invalid("Property names must not be empty".into()));
            }
            if key.chars().count() > MAX_NAME_LEN {
                return Err(Invalid(format!(
                    "Property name too long ({} characters, at most {MAX_NAME_LEN}): '{key}'",
                    key.chars().count()
                )));
            }
            check_text("property name", Some(key))?;
            check_text(&format!("property '{key}'"), value.as_deref())?;
        }
        if self.tags.len() > MAX_TAGS {
            return Err(Invalid(format!(
                "Maximum number of tags exceeded: {} (at most {MAX_TAGS})",
                self.tags.len()
            )));
        }
        for tag in &self.tags {
            if tag.is_empty() || tag.chars().count() > MAX_NAME_LEN {
                return Err(Invalid(format!(
                    "Invalid tag '{tag}': tags are 1 to {MAX_NAME_LEN} characters"
                )));
            }
            check_text("tag", Some(tag))?;
        }
        Ok(())
    }
}

fn check_format(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), Invalid> {
    match value {
        None => Ok(()),
        Some("") => Err(Invalid(format!(
            "{field} must not be empty; allowed values: {}",
            allowed.join(", ")
        ))),
        Some(v) if allowed.contains(&v) => Ok(()),
        Some(v) => Err(Invalid(format!(
            "Invalid {} '{v}' for image. Allowed values: {}",
            field.replace('_', " "),
            allowed.join(", ")
        ))),
    }
}

fn check_text(field: &str, value: Option<&str>) -> Result<(), Invalid> {
    match value {
        Some(v) if v.chars().any(|c| c.len_utf8() == 4) => Err(Invalid(format!(
            "Value of {field} can't contain 4 byte unicode characters."
        ))),
        _ => Ok(()),
    }
}

/// A record or request that breaks a validation rule; the text says which rule and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// Parses an image id the way Glance accepts it (hex, any case, dashes optional, `{}` or
/// `urn:uuid:` wrappers) and returns the canonical form.
pub fn parse_image_id(s: &str) -> Option<Uuid> {
    if s.len() > 45 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

// Image sharing (§5.8): the registry stores these and both APIs and the registry client carry
// them, so they live with the record rather than in any one of those.

/// One member of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The tenant the image is shared with.
    pub member_id: String,
    /// Whether that tenant may share it further.
    pub can_share: bool,
}

/// An image shared with a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedImage {
    /// The image.
    pub image_id: Uuid,
    /// Whether the member may share it further.
    pub can_share: bool,
}

/// Where a member stands with a shared image (v2): only `accepted` images are listed for it by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Offered, not answered (a new member's status).
    Pending,
    /// The member wants the image.
    Accepted,
    /// The member declined it.
    Rejected,
}

impl MemberStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<MemberStatus> {
        [Self::Pending, Self::Accepted, Self::Rejected]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// The status a stored byte stands for (unknown bytes read as pending).
    pub fn from_byte(b: u8) -> MemberStatus {
        match b {
            1 => MemberStatus::Accepted,
            2 => MemberStatus::Rejected,
            _ => MemberStatus::Pending,
        }
    }
}

/// One member of an image with its v2 status and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageMember {
    /// The image.
    pub image_id: Uuid,
    /// The tenant the image is shared with.
    pub member_id: String,
    /// Whether that tenant may share it further (v1).
    pub can_share: bool,
    /// The member's answer.
    pub status: MemberStatus,
    /// When the membership was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        Image::new(Uuid::nil(), Status::Queued, Timestamp::from_micros(0))
    }

    fn check(f: impl FnOnce(&mut Image)) -> Result<(), String> {
        let mut img = image();
        f(&mut img);
        img.validate().map_err(|e| e.0)
    }

    #[test]
    fn default_record_is_valid() {
        assert_eq!(check(|_| {}), Ok(()));
    }

    #[test]
    fn status_deleted_is_not_settable() {
        let err = check(|i| i.status = Status::Deleted).unwrap_err();
        assert!(err.contains("Invalid image status 'deleted'"), "{err}");
        assert!(err.contains("active, saving, queued, killed"), "{err}");
    }

    #[test]
    fn formats_must_be_known_and_non_empty() {
        assert!(check(|i| i.disk_format = Some("qcow2".into())).is_ok());
        assert!(check(|i| i.disk_format = Some("vhdx".into())).is_ok());
        assert!(check(|i| i.container_format = Some("docker".into())).is_ok());
        let err = check(|i| i.disk_format = Some("floppy".into())).unwrap_err();
        assert!(
            err.contains("Invalid disk format 'floppy'") && err.contains("qcow2"),
            "{err}"
        );
        let err = check(|i| i.container_format = Some(String::new())).unwrap_err();
        assert!(err.contains("container_format must not be empty"), "{err}");
    }

    #[test]
    fn amazon_formats_must_match() {
        assert!(check(|i| {
            i.disk_format = Some("aki".into());
            i.container_format = Some("aki".into())
        })
        .is_ok());
        let err = check(|i| {
            i.disk_format = Some("ami".into());
            i.container_format = Some("bare".into())
        })
        .unwrap_err();
        assert!(
            err.contains("Invalid mix of disk and container formats"),
            "{err}"
        );
        assert!(check(|i| i.container_format = Some("ari".into())).is_err());
    }

    #[test]
    fn lengths_ranges_and_unicode() {
        assert!(check(|i| i.name = Some("n".repeat(255))).is_ok());
        assert_eq!(
            check(|i| i.name = Some("é".repeat(256))),
            Err("Image name too long: 256".into())
        );
        assert!(check(|i| i.checksum = Some("a".repeat(33)))
            .unwrap_err()
            .contains("can't exceed 32"));
        assert!(check(|i| i.min_ram = MAX_MIN_VALUE + 1)
            .unwrap_err()
            .contains("'min_ram' value out of range"));
        assert!(check(|i| i.name = Some("cat 🐈".into()))
            .unwrap_err()
            .contains("4 byte unicode"));
        assert!(check(|i| {
            i.properties.insert("k".into(), Some("🐈".into()));
        })
        .unwrap_err()
        .contains("4 byte unicode"));
        assert!(check(|i| {
            i.properties.insert("k".repeat(256), None);
        })
        .unwrap_err()
        .contains("Property name too long"));
    }

    #[test]
    fn image_ids_accept_glance_forms_and_canonicalise() {
        let canonical = "de2f2211-3ac7-4260-9142-41db0ecfb425";
        for form in [
            canonical,
            "DE2F2211-3AC7-4260-9142-41DB0ECFB425",
            "de2f22113ac74260914241db0ecfb425",
            "{de2f2211-3ac7-4260-9142-41db0ecfb425}",
            "urn:uuid:de2f2211-3ac7-4260-9142-41db0ecfb425",
        ] {
            assert_eq!(
                parse_image_id(form).map(|u| u.to_string()),
                Some(canonical.to_string())
            );
        }
        for bad in [
            "",
            "1",
            "not-a-uuid",
            "de2f2211-3ac7-4260-9142-41db0ecfb42z",
        ] {
            assert_eq!(parse_image_id(bad), None, "{bad}");
        }
    }
}
