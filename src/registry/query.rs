//! List requests (§8): filters, sort key and direction, marker and limit, parsed and validated
//! from query parameters, and the per-record predicate every listed image satisfies.

use uuid::Uuid;

pub use super::keys::SortKey;
use crate::model::{parse_image_id, Image, Invalid, Status, Visibility as ImageVisibility};
use crate::timestamp::Timestamp;

/// Paging defaults (`limit_param_default`, `api_limit_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Page size when the request gives no `limit`.
    pub default: usize,
    /// Largest page size; bigger requests are cut to this.
    pub max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default: 25,
            max: 1000,
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    /// Ascending.
    Asc,
    /// Descending (the default).
    Desc,
}

/// Which images `is_public` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Public images only: the default for a caller without an owner (§14 #20).
    Public,
    /// Non-public images only (`is_public=false`).
    Private,
    /// Every image (`is_public=None`, v2 `visibility=all`).
    All,
    /// Images of exactly this v2 visibility.
    Is(ImageVisibility),
}

/// A comparison of a v2 time filter (`created_at=gte:2024-01-01T00:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `neq`
    Neq,
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
}

impl CmpOp {
    /// Whether `have OP want` holds.
    pub fn holds(self, have: Timestamp, want: Timestamp) -> bool {
        match self {
            CmpOp::Eq => have == want,
            CmpOp::Neq => have != want,
            CmpOp::Gt => have > want,
            CmpOp::Gte => have >= want,
            CmpOp::Lt => have < want,
            CmpOp::Lte => have <= want,
        }
    }
}

/// The row filters of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// Exact `name`.
    pub name: Option<String>,
    /// Exact `status` (a plain string: an unknown status matches nothing).
    pub status: Option<String>,
    /// Exact `disk_format`.
    pub disk_format: Option<String>,
    /// Exact `container_format`.
    pub container_format: Option<String>,
    /// `size >= size_min`.
    pub size_min: Option<u64>,
    /// `size <= size_max`.
    pub size_max: Option<u64>,
    /// Exact `min_ram`.
    pub min_ram: Option<u64>,
    /// Exact `min_disk`.
    pub min_disk: Option<u64>,
    /// `properties[key] == value`, all of them.
    pub properties: Vec<(String, String)>,
    /// Exact `protected`.
    pub protected: Option<bool>,
    /// Public, private or all.
    pub visibility: Visibility,
    /// `updated_at > changes_since`; includes deleted and killed rows.
    pub changes_since: Option<Timestamp>,
    /// Deleted rows only (`true`) or none (`false`).
    pub deleted: Option<bool>,
    /// Every one of these tags (v2 `tag`, repeatable).
    pub tags: Vec<String>,
    /// Exact `owner` (v2).
    pub owner: Option<String>,
    /// Exact `os_hidden`; v2 lists default to `Some(false)`.
    pub os_hidden: Option<bool>,
    /// The id is one of these (v2 `id=in:...`).
    pub ids: Option<Vec<Uuid>>,
    /// The field is one of the values (v2 `name=in:a,b`; also `status`, the formats).
    pub one_of: Vec<(SortKey, Vec<String>)>,
    /// `created_at` comparisons (v2).
    pub created_at: Vec<(CmpOp, Timestamp)>,
    /// `updated_at` comparisons (v2).
    pub updated_at: Vec<(CmpOp, Timestamp)>,
    /// Whether killed images are listed (v2 lists them, v1 does not).
    pub killed_listed: bool,
    /// Only rows this caller may see (§13); `None` lists for an admin or a no-auth caller.
    pub viewer: Option<Viewer>,
}

/// The caller a list is restricted for (§13): public images, the images it owns, and shared
/// images it is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The caller's owner (project); `None` for an anonymous caller.
    pub owner: Option<String>,
    /// Which memberships list a shared image: `None` for any status (v1), else only that
    /// status (v2 `member_status`).
    pub member_status: Option<crate::model::MemberStatus>,
}

impl Viewer {
    /// Whether this caller sees `image` in a list filtered on `visibility`; `is_member` says
    /// whether the caller holds a membership of the selected status.
    pub fn lists(&self, image: &Image, visibility: Visibility, is_member: bool) -> bool {
        let owned = self.owner.is_some() && image.owner == self.owner;
        owned
            || match image.visibility {
                ImageVisibility::Public => true,
                // Community images are listed only when asked for (Glance v2).
                ImageVisibility::Community => {
                    visibility == Visibility::Is(ImageVisibility::Community)
                }
                ImageVisibility::Shared => is_member,
                ImageVisibility::Private => false,
            }
    }
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            name: None,
            status: None,
            disk_format: None,
            container_format: None,
            size_min: None,
            size_max: None,
            min_ram: None,
            min_disk: None,
            properties: Vec::new(),
            protected: None,
            visibility: Visibility::Public,
            changes_since: None,
            deleted: None,
            tags: Vec::new(),
            owner: None,
            os_hidden: None,
            ids: None,
            one_of: Vec::new(),
            created_at: Vec::new(),
            updated_at: Vec::new(),
            killed_listed: false,
            viewer: None,
        }
    }
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which rows.
    pub filters: Filters,
    /// Page size (already capped).
    pub limit: usize,
    /// Start strictly after this image in the sort order.
    pub marker: Option<Uuid>,
    /// Primary sort key; ties break on `created_at`, then `id`.
    pub sort_key: SortKey,
    /// Direction of the primary key (and of the tie-breaks when `then` is empty).
    pub sort_dir: SortDir,
    /// Further sort keys after the primary one (v2 `sort=name:asc,size:desc`); the order always
    /// ends with `created_at` and `id` in the direction of the last key.
    pub then: Vec<(SortKey, SortDir)>,
}

impl ListQuery {
    /// The default query: public, non-deleted images, newest first, `limits.default` of them.
    pub fn new(limits: Limits) -> ListQuery {
        ListQuery {
            filters: Filters::default(),
            limit: limits.default.min(limits.max),
            marker: None,
            sort_key: SortKey::CreatedAt,
            sort_dir: SortDir::Desc,
            then: Vec::new(),
        }
    }

    /// Whether the order is `(sort_key, created_at, id)`, all in `sort_dir`: the order the
    /// indexes hold. Other orders are sorted in memory.
    pub fn index_order(&self) -> bool {
        self.then
            .iter()
            .all(|(k, d)| matches!(k, SortKey::CreatedAt | SortKey::Id) && *d == self.sort_dir)
            || self.sort_key == SortKey::Id
    }

    /// Compares two images in this query's order.
    pub fn compare(&self, a: &Image, b: &Image) -> std::cmp::Ordering {
        let last = self.then.last().map_or(self.sort_dir, |(_, d)| *d);
        let keys = std::iter::once((self.sort_key, self.sort_dir))
            .chain(self.then.iter().copied())
            .chain([(SortKey::CreatedAt, last), (SortKey::Id, last)]);
        for (key, dir) in keys {
            let order = super::keys::field_bytes(a, key).cmp(&super::keys::field_bytes(b, key));
            let order = if dir == SortDir::Desc {
                order.reverse()
            } else {
                order
            };
            if order.is_ne() {
                return order;
            }
        }
        std::cmp::Ordering::Equal
    }

    /// Parses query parameters (the last of a repeated key wins; unknown keys are ignored).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        limits: Limits,
    ) -> Result<ListQuery, Invalid> {
        let mut q = ListQuery::new(limits);
        let mut props: Vec<(String, String)> = Vec::new();
        for (key, value) in params {
            let f = &mut q.filters;
            match key {
                "name" => f.name = Some(value.to_string()),
                "status" => f.status = Some(value.to_string()),
                "disk_format" => f.disk_format = Some(value.to_string()),
                "container_format" => f.container_format = Some(value.to_string()),
                "size_min" => f.size_min = Some(filter_int(key, value)?),
                "size_max" => f.size_max = Some(filter_int(key, value)?),
                "min_ram" => f.min_ram = Some(filter_int(key, value)?),
                "min_disk" => f.min_disk = Some(filter_int(key, value)?),
                "changes-since" => {
                    f.changes_since = Some(
                        Timestamp::parse(value)
                            .map_err(|_| Invalid("Unrecognized changes-since value".into()))?,
                    )
                }
                "protected" => {
                    f.protected = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(Invalid("protected must be True, or False".into())),
                    })
                }
                "is_public" => {
                    f.visibility = match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => Visibility::Public,
                        "false" | "0" => Visibility::Private,
                        "none" => Visibility::All,
                        _ => return Err(Invalid("is_public must be None, True, or False".into())),
                    }
                }
                "deleted" => f.deleted = Some(truthy(value)),
                "limit" => q.limit = parse_limit(value, limits)?,
                "marker" => {
                    q.marker = Some(
                        parse_image_id(value)
                            .ok_or_else(|| Invalid("Invalid marker format".into()))?,
                    )
                }
                "sort_key" => q.sort_key = parse_sort_key(value)?,
                "sort_dir" => {
                    q.sort_dir = match value {
                        "asc" => SortDir::Asc,
                        "desc" => SortDir::Desc,
                        _ => {
                            return Err(Invalid(
                                "Unsupported sort_dir. Acceptable values: asc, desc".into(),
                            ))
                        }
                    }
                }
                _ => {
                    if let Some(prop) = key.strip_prefix("property-") {
                        props.retain(|(k, _)| k != prop);
                        props.push((prop.to_string(), value.to_string()));
                    }
                }
            }
        }
        q.filters.properties = props;
        Ok(q)
    }

    /// Whether deleted rows take part in this listing (and so may serve as a marker).
    pub fn shows_deleted(&self) -> bool {
        self.filters.changes_since.is_some() || self.filters.deleted == Some(true)
    }
}

impl Filters {
    /// Whether `image` belongs in the listing.
    pub fn matches(&self, image: &Image) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let rows_ok = match (self.changes_since, self.deleted) {
            (Some(t), deleted) => {
                image.updated_at > t && deleted.is_none_or(|d| image.deleted == d)
            }
            (None, Some(true)) => image.deleted,
            (None, _) => !image.deleted && (self.killed_listed || image.status != Status::Killed),
        };
        let time_ok = |tests: &[(CmpOp, Timestamp)], have: Timestamp| {
            tests.iter().all(|(op, want)| op.holds(have, *want))
        };
        let field = |key: SortKey| -> Option<&str> {
            match key {
                SortKey::Name => image.name.as_deref(),
                SortKey::Status => Some(image.status.as_str()),
                SortKey::DiskFormat => image.disk_format.as_deref(),
                SortKey::ContainerFormat => image.container_format.as_deref(),
                _ => None,
            }
        };
        let v2_ok = self.tags.iter().all(|t| image.tags.contains(t))
            && eq(&self.owner, image.owner.as_deref())
            && self.os_hidden.is_none_or(|h| image.os_hidden == h)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&image.id))
            && self
                .one_of
                .iter()
                .all(|(key, values)| field(*key).is_some_and(|v| values.iter().any(|w| w == v)))
            && time_ok(&self.created_at, image.created_at)
            && time_ok(&self.updated_at, image.updated_at);
        rows_ok
            && v2_ok
            && eq(&self.name, image.name.as_deref())
            && eq(&self.status, Some(image.status.as_str()))
            && eq(&self.disk_format, image.disk_format.as_deref())
            && eq(&self.container_format, image.container_format.as_deref())
            && self.size_min.is_none_or(|m| image.size >= m)
            && self.size_max.is_none_or(|m| image.size <= m)
            && self.min_ram.is_none_or(|m| image.min_ram == m)
            && self.min_disk.is_none_or(|m| image.min_disk == m)
            && self.protected.is_none_or(|p| image.protected == p)
            && match self.visibility {
                Visibility::Public => image.is_public,
                Visibility::Private => !image.is_public,
                Visibility::All => true,
                Visibility::Is(v) => image.visibility == v,
            }
            && self.properties.iter().all(|(k, v)| {
                image
                    .properties
                    .get(k)
                    .is_some_and(|have| have.as_deref() == Some(v))
            })
    }
}

/// Glance's permissive boolean: `1 t true on y yes` (any case) are true, everything else false.
pub fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// A `limit` parameter: a non-negative integer, cut to `limits.max`.
pub(super) fn parse_limit(value: &str, limits: Limits) -> Result<usize, Invalid> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| Invalid("limit param must be an integer".into()))?;
    if n < 0 {
        return Err(Invalid("limit param must be positive".into()));
    }
    Ok((n as u64).min(limits.max as u64) as usize)
}

pub(super) fn filter_int(key: &str, value: &str) -> Result<u64, Invalid> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v <= i64::MAX as u64)
        .ok_or_else(|| Invalid(format!("Bad value passed to filter {key} got {value}")))
}

pub(super) fn parse_sort_key(value: &str) -> Result<SortKey, Invalid> {
    Ok(match value {
        "id" => SortKey::Id,
        "name" => SortKey::Name,
        "status" => SortKey::Status,
        "disk_format" => SortKey::DiskFormat,
        "container_format" => SortKey::ContainerFormat,
        "size" => SortKey::Size,
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        _ => {
            return Err(Invalid(
                "Unsupported sort_key. Acceptable values: name, status, container_format, \
                 disk_format, size, id, created_at, updated_at"
                    .into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<ListQuery, String> {
        ListQuery::from_params(q.iter().copied(), Limits::default()).map_err(|e| e.0)
    }

    #[test]
    fn defaults() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.limit, 25);
        assert_eq!(q.sort_key, SortKey::CreatedAt);
        assert_eq!(q.sort_dir, SortDir::Desc);
        assert_eq!(q.filters.visibility, Visibility::Public);
        assert_eq!(q.marker, None);
    }

    #[test]
    fn parses_every_parameter() {
        let q = parse(&[
            ("name", "n"),
            ("status", "active"),
            ("disk_format", "raw"),
            ("container_format", "bare"),
            ("size_min", "1"),
            ("size_max", "9"),
            ("min_ram", "2"),
            ("min_disk", "3"),
            ("property-os", "linux"),
            ("protected", "True"),
            ("is_public", "None"),
            ("changes-since", "2020-01-01"),
            ("deleted", "yes"),
            ("limit", "5000"),
            ("marker", "de2f2211-3ac7-4260-9142-41db0ecfb425"),
            ("sort_key", "size"),
            ("sort_dir", "asc"),
            ("unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!(q.limit, 1000, "limit is capped at api_limit_max");
        assert_eq!(q.sort_key, SortKey::Size);
        assert_eq!(q.sort_dir, SortDir::Asc);
        let f = &q.filters;
        assert_eq!(
            (f.size_min, f.size_max, f.min_ram, f.min_disk),
            (Some(1), Some(9), Some(2), Some(3))
        );
        assert_eq!(f.properties, vec![("os".to_string(), "linux".to_string())]);
        assert_eq!(
            (f.protected, f.visibility, f.deleted),
            (Some(true), Visibility::All, Some(true))
        );
        assert!(f.changes_since.is_some());
    }

    #[test]
    fn bad_parameters_name_the_problem() {
        for (q, want) in [
            (("limit", "x"), "limit param must be an integer"),
            (("limit", "-1"), "limit param must be positive"),
            (("marker", "7"), "Invalid marker format"),
            (("sort_key", "owner"), "Unsupported sort_key"),
            (("sort_dir", "up"), "Unsupported sort_dir"),
            (
                ("size_min", "-3"),
                "Bad value passed to filter size_min got -3",
            ),
            (
                ("size_max", "big"),
                "Bad value passed to filter size_max got big",
            ),
            (("min_ram", "x"), "Bad value passed to filter min_ram got x"),
            (("changes-since", ""), "Unrecognized changes-since value"),
            (("protected", "maybe"), "protected must be True, or False"),
            (
                ("is_public", "maybe"),
                "is_public must be None, True, or False",
            ),
        ] {
            let err = parse(&[q]).expect_err(q.0);
            assert!(err.contains(want), "{q:?}: {err}");
        }
    }

    #[test]
    fn default_rows_exclude_deleted_killed_and_private() {
        let f = Filters::default();
        let mut img = Image::new(Uuid::nil(), Status::Active, Timestamp::from_micros(5));
        assert!(!f.matches(&img), "private images are hidden by default");
        img.is_public = true;
        assert!(f.matches(&img));
        img.status = Status::Killed;
        assert!(!f.matches(&img));
        img.status = Status::Deleted;
        img.deleted = true;
        assert!(!f.matches(&img));
        let since = Filters {
            changes_since: Some(Timestamp::from_micros(4)),
            ..Filters::default()
        };
        assert!(since.matches(&img), "changes-since includes deleted rows");
        let only_deleted = Filters {
            deleted: Some(true),
            ..Filters::default()
        };
        assert!(only_deleted.matches(&img));
    }
}
