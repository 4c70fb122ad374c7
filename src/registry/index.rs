//! Answers list queries from the secondary indexes, so that a filtered list reads only the index
//! ranges its filters name and the records in them, never every record.
//!
//! The plan:
//! 1. Every indexed filter (name, status, formats, is_public, properties, size range,
//!    changes-since) names one index range, a *source*. The sources are stepped in turn, one entry
//!    each, until one ends: that one is the most selective, found at a cost of at most
//!    `sources × its length` entries, without counting the large ones to the end.
//! 2. If it ends within `SMALL_SOURCE` entries, its records are read, filtered, sorted in
//!    memory by the sort bytes of [`keys`] and cut at the marker and limit.
//! 3. Otherwise every filter matches many rows, so the page is found by walking an index that is
//!    already in the requested order (a source that is, or the sort key's own index) from the
//!    marker, reading records until the page is full.

use std::collections::HashSet;
use std::ops::Bound;

use uuid::Uuid;

use super::keys::{self, SortKey};
use super::query::{CmpOp, ListQuery, SortDir, Viewer, Visibility};
use super::{Error, Registry};
use crate::model::{Image, Visibility as ImageVisibility};
use crate::timestamp::Timestamp;

/// Largest source whose rows are sorted in memory rather than walked in index order.
pub(super) const SMALL_SOURCE: usize = 1024;

/// A range of index keys, as sled takes it.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// One index range that holds every row satisfying one filter.
struct Source {
    /// Start of the range (inclusive).
    lo: Vec<u8>,
    /// End of the range (exclusive); `None` for the end of the tree.
    hi: Option<Vec<u8>>,
    /// The order the range is in.
    order: SourceOrder,
    /// More ranges whose union with this one is the filter's rows (`name=in:a,b`): such a
    /// source is only raced and sorted in memory, never walked in order.
    more: Vec<Source>,
    /// Rows named by id rather than by an index range (the images shared with a viewer), part
    /// of the union like `more`.
    ids: Vec<Uuid>,
}

/// How the entries of a source are ordered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SourceOrder {
    /// One value of `field` (if it is a sort key): `(created_at, id)` order.
    Equal(Option<SortKey>),
    /// A range of the sort key's own index: `(key, created_at, id)` order.
    Sorted(SortKey),
}

impl Source {
    fn prefix(prefix: Vec<u8>, field: Option<SortKey>) -> Source {
        Source {
            hi: keys::prefix_end(&prefix),
            lo: prefix,
            order: SourceOrder::Equal(field),
            more: Vec::new(),
            ids: Vec::new(),
        }
    }

    fn range(lo: Vec<u8>, hi: Option<Vec<u8>>, key: SortKey) -> Source {
        Source {
            lo,
            hi,
            order: SourceOrder::Sorted(key),
            more: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// The entries of every range of this source, in turn.
    fn entries<'a>(
        &self,
        tree: &'a sled::Tree,
    ) -> Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a> {
        // An empty range (`lo == hi`) stands for no entries: a source of ids only.
        let first = (self.hi.as_deref() != Some(self.lo.as_slice()))
            .then(|| tree.range::<Vec<u8>, _>(self.bounds()))
            .into_iter()
            .flatten();
        let rest: Vec<_> = self
            .more
            .iter()
            .map(|s| tree.range::<Vec<u8>, _>(s.bounds()))
            .collect();
        // An id stands for itself as an index key: keys end with the id they index.
        let ids = self.ids.iter().map(|id| {
            Ok((
                sled::IVec::from(&keys::id_key(id)[..]),
                sled::IVec::default(),
            ))
        });
        Box::new(
            first
                .chain(rest.into_iter().flatten())
                .chain(ids.collect::<Vec<_>>()),
        )
    }

    /// Whether walking this source yields rows in the order `key` asks for.
    fn ordered_by(&self, key: SortKey) -> bool {
        if !self.more.is_empty() || !self.ids.is_empty() {
            return false;
        }
        match self.order {
            SourceOrder::Equal(field) => key == SortKey::CreatedAt || field == Some(key),
            SourceOrder::Sorted(field) => field == key,
        }
    }

    /// Where `marker` sits in this source's order (only for sources [`Source::ordered_by`] the
    /// query's key).
    fn seek_key(&self, marker: &Image, key: SortKey) -> Vec<u8> {
        match self.order {
            SourceOrder::Equal(_) if key == SortKey::CreatedAt => {
                let mut k = self.lo.clone();
                keys::push_created_and_id(&mut k, marker);
                k
            }
            _ => keys::sort_index_key(marker, key),
        }
    }

    fn bounds(&self) -> KeyRange {
        let hi = self.hi.clone().map_or(Bound::Unbounded, Bound::Excluded);
        (Bound::Included(self.lo.clone()), hi)
    }

    /// The part of the range strictly after (in `dir`) `seek`, or `None` if it is empty.
    fn bounds_after(&self, seek: &[u8], dir: SortDir) -> Option<KeyRange> {
        let below_hi = self.hi.as_deref().is_none_or(|hi| seek < hi);
        match dir {
            SortDir::Asc if seek < self.lo.as_slice() => Some(self.bounds()),
            SortDir::Asc if below_hi => {
                let hi = self.hi.clone().map_or(Bound::Unbounded, Bound::Excluded);
                Some((Bound::Excluded(seek.to_vec()), hi))
            }
            SortDir::Asc => None,
            SortDir::Desc if seek <= self.lo.as_slice() => None,
            SortDir::Desc if below_hi => Some((
                Bound::Included(self.lo.clone()),
                Bound::Excluded(seek.to_vec()),
            )),
            SortDir::Desc => Some(self.bounds()),
        }
    }
}

/// The sources of `query`'s indexed filters.
fn sources(query: &ListQuery, shared: Option<&HashSet<Uuid>>) -> Vec<Source> {
    let f = &query.filters;
    let mut out = Vec::new();
    if let Some(source) = f
        .viewer
        .as_ref()
        .and_then(|v| viewer_source(v, f.visibility, shared))
    {
        out.push(source);
    }
    for (key, value) in [
        (SortKey::Name, &f.name),
        (SortKey::Status, &f.status),
        (SortKey::DiskFormat, &f.disk_format),
        (SortKey::ContainerFormat, &f.container_format),
    ] {
        if let Some(v) = value {
            out.push(Source::prefix(keys::field_prefix(key, v), Some(key)));
        }
    }
    for (k, v) in &f.properties {
        out.push(Source::prefix(keys::property_prefix(k, Some(v)), None));
    }
    match f.visibility {
        Visibility::Public => out.push(Source::prefix(keys::is_public_prefix(true), None)),
        Visibility::Private => out.push(Source::prefix(keys::is_public_prefix(false), None)),
        Visibility::Is(v) => out.push(Source::prefix(keys::visibility_prefix(v), None)),
        Visibility::All => {}
    }
    for tag in &f.tags {
        out.push(Source::prefix(keys::tag_prefix(tag), None));
    }
    if let Some(owner) = &f.owner {
        out.push(Source::prefix(keys::owner_prefix(Some(owner)), None));
    }
    for (key, values) in &f.one_of {
        let mut parts = values
            .iter()
            .map(|v| Source::prefix(keys::field_prefix(*key, v), Some(*key)));
        if let Some(mut first) = parts.next() {
            first.more = parts.collect();
            out.push(first);
        }
    }
    if f.size_min.is_some() || f.size_max.is_some() {
        let hi = match f.size_max {
            Some(max) => keys::prefix_end(&keys::size_key(max)),
            None => keys::prefix_end(&[keys::TAG_SIZE]),
        };
        out.push(Source::range(
            keys::size_key(f.size_min.unwrap_or(0)),
            hi,
            SortKey::Size,
        ));
    }
    if let Some(t) = f.changes_since {
        // `updated_at > t`: start just past every entry whose updated_at is exactly t.
        out.push(Source::range(
            keys::prefix_end(&keys::updated_at_key(t)).unwrap_or_default(),
            keys::prefix_end(&[keys::TAG_UPDATED_AT]),
            SortKey::UpdatedAt,
        ));
    }
    for (key, tests) in [
        (SortKey::CreatedAt, &f.created_at),
        (SortKey::UpdatedAt, &f.updated_at),
    ] {
        if let Some(source) = time_source(key, tests) {
            out.push(source);
        }
    }
    out
}

/// The union of index ranges that holds every row a viewer may list under `visibility`: the
/// public images (when the filter admits them), the viewer's own, and the images shared with
/// it. `None` when the visibility filter's own source is already as narrow.
fn viewer_source(
    viewer: &Viewer,
    visibility: Visibility,
    shared: Option<&HashSet<Uuid>>,
) -> Option<Source> {
    let mut parts = Vec::new();
    match visibility {
        Visibility::Public
        | Visibility::Is(ImageVisibility::Public | ImageVisibility::Community) => return None,
        Visibility::All => parts.push(Source::prefix(
            keys::visibility_prefix(ImageVisibility::Public),
            None,
        )),
        Visibility::Private | Visibility::Is(_) => {}
    }
    if let Some(owner) = &viewer.owner {
        parts.push(Source::prefix(keys::owner_prefix(Some(owner)), None));
    }
    let ids: Vec<Uuid> = shared
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    let mut first = match parts.is_empty() {
        true => {
            // Only the shared ids: an empty range carries them.
            let mut s = Source::prefix(vec![keys::TAG_OWNER], None);
            s.hi = Some(s.lo.clone());
            s
        }
        false => parts.remove(0),
    };
    first.more = parts;
    first.ids = ids;
    Some(first)
}

/// Which rows of a viewer-restricted list pass: the filters, and the §13 list rule.
struct Rows<'a> {
    query: &'a ListQuery,
    /// The images shared with the viewer (of the selected member status).
    shared: Option<HashSet<Uuid>>,
}

impl<'a> Rows<'a> {
    fn new(reg: &Registry, query: &'a ListQuery) -> Result<Rows<'a>, Error> {
        let shared = match &query.filters.viewer {
            Some(Viewer {
                owner: Some(owner),
                member_status,
            }) => Some(reg.shared_ids(owner, *member_status)?),
            _ => None,
        };
        Ok(Rows { query, shared })
    }

    fn keeps(&self, image: &Image) -> bool {
        self.query.filters.matches(image) && self.sees(image)
    }

    /// The §13 list rule alone (a marker need not match the filters, only be visible).
    fn sees(&self, image: &Image) -> bool {
        let f = &self.query.filters;
        f.viewer.as_ref().is_none_or(|v| {
            let member = self.shared.as_ref().is_some_and(|s| s.contains(&image.id));
            v.lists(image, f.visibility, member)
        })
    }
}

/// The index range of the time index `key` that holds every row passing `tests` (`neq` tests
/// narrow nothing and are left to the row predicate).
fn time_source(key: SortKey, tests: &[(CmpOp, Timestamp)]) -> Option<Source> {
    let tag = keys::sort_tag(key)?;
    let (mut lo, mut hi) = (vec![tag], keys::prefix_end(&[tag]));
    let mut narrowed = false;
    for (op, t) in tests {
        let at = keys::time_key(key, *t);
        let after = keys::prefix_end(&at);
        let (new_lo, new_hi) = match op {
            CmpOp::Eq => (Some(at.clone()), after),
            CmpOp::Gt => (after, None),
            CmpOp::Gte => (Some(at), None),
            CmpOp::Lt => (None, Some(at)),
            CmpOp::Lte => (None, after),
            CmpOp::Neq => (None, None),
        };
        if let Some(l) = new_lo {
            narrowed = true;
            lo = lo.max(l);
        }
        if let Some(h) = new_hi {
            narrowed = true;
            hi = Some(match hi {
                Some(old) => old.min(h),
                None => h,
            });
        }
    }
    if let Some(h) = &hi {
        if *h < lo {
            hi = Some(lo.clone());
        }
    }
    narrowed.then(|| Source::range(lo, hi, key))
}

pub(super) fn list(reg: &Registry, query: &ListQuery) -> Result<Vec<Image>, Error> {
    let rows = Rows::new(reg, query)?;
    let marker = match &query.marker {
        None => None,
        // A marker the caller may not see is as unknown as a missing one (§13).
        Some(id) => Some(
            reg.fetch_counted(id)?
                .filter(|m| !m.deleted || query.shows_deleted())
                .filter(|m| rows.sees(m))
                .ok_or_else(|| {
                    Error::Invalid("Invalid marker. Image could not be found.".into())
                })?,
        ),
    };
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    if let Some(ids) = &query.filters.ids {
        let mut ids = ids.clone();
        ids.sort_unstable();
        ids.dedup();
        return sort_in_memory(reg, &rows, marker.as_ref(), ids);
    }
    let sources = sources(query, rows.shared.as_ref());
    if !query.index_order() {
        // An order no index holds: sort the smallest source's rows, or every row.
        let ids = match smallest_source(reg, &sources)? {
            Some(ids) => ids,
            None => all_ids(reg)?,
        };
        return sort_in_memory(reg, &rows, marker.as_ref(), ids);
    }
    // A lone filter whose range is already in the requested order (the default list: public
    // images, newest first) is walked at once: racing it only to learn its size would read up to
    // `small_source` entries for nothing.
    let lone_ordered = sources.len() == 1 && sources[0].ordered_by(query.sort_key);
    if !lone_ordered {
        if let Some(ids) = smallest_source(reg, &sources)? {
            return sort_in_memory(reg, &rows, marker.as_ref(), ids);
        }
    }
    let (key, dir) = (query.sort_key, query.sort_dir);
    let source = match sources.into_iter().find(|s| s.ordered_by(key)) {
        Some(s) => s,
        None => match keys::sort_tag(key) {
            Some(tag) => Source::range(vec![tag], keys::prefix_end(&[tag]), key),
            None => return walk_primary(reg, &rows, marker.as_ref()),
        },
    };
    let bounds = match &marker {
        Some(m) => match source.bounds_after(&source.seek_key(m, key), dir) {
            Some(b) => b,
            None => return Ok(Vec::new()),
        },
        None => source.bounds(),
    };
    let range = reg.db.index.range::<Vec<u8>, _>(bounds);
    let entries: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match dir {
        SortDir::Asc => Box::new(range),
        SortDir::Desc => Box::new(range.rev()),
    };
    let mut page = Vec::new();
    for entry in entries {
        let (k, _) = entry?;
        reg.count_index_entry();
        let id = keys::id_from_key(&k).ok_or_else(|| Error::Corrupt("short index key".into()))?;
        if let Some(image) = reg.fetch_counted(&id)? {
            if rows.keeps(&image) {
                page.push(image);
                if page.len() == query.limit {
                    break;
                }
            }
        }
    }
    Ok(page)
}

/// Steps every source one entry at a time; returns the ids of the first to end, if it ends within
/// `reg.small_source` entries. With no source, returns `None`.
fn smallest_source(reg: &Registry, sources: &[Source]) -> Result<Option<Vec<Uuid>>, Error> {
    let mut iters: Vec<_> = sources.iter().map(|s| s.entries(&reg.db.index)).collect();
    let mut seen: Vec<Vec<Uuid>> = vec![Vec::new(); iters.len()];
    for _ in 0..=reg.small_source {
        for (i, iter) in iters.iter_mut().enumerate() {
            match iter.next() {
                None => return Ok(Some(std::mem::take(&mut seen[i]))),
                Some(entry) => {
                    let (k, _) = entry?;
                    reg.count_index_entry();
                    let id = keys::id_from_key(&k)
                        .ok_or_else(|| Error::Corrupt("short index key".into()))?;
                    seen[i].push(id);
                }
            }
        }
    }
    Ok(None)
}

fn sort_in_memory(
    reg: &Registry,
    rows_of: &Rows<'_>,
    marker: Option<&Image>,
    ids: Vec<Uuid>,
) -> Result<Vec<Image>, Error> {
    let query = rows_of.query;
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        // A union source (`in:` lists) can name an image twice.
        if !seen.insert(id) {
            continue;
        }
        let Some(image) = reg.fetch_counted(&id)? else {
            continue;
        };
        if !rows_of.keeps(&image) {
            continue;
        }
        let after_marker = marker.is_none_or(|m| query.compare(&image, m).is_gt());
        if after_marker {
            rows.push(image);
        }
    }
    rows.sort_unstable_by(|a, b| query.compare(a, b));
    rows.truncate(query.limit);
    Ok(rows)
}

/// Every image id, for an order that no index holds and no selective filter.
fn all_ids(reg: &Registry) -> Result<Vec<Uuid>, Error> {
    reg.db
        .images
        .iter()
        .keys()
        .map(|k| {
            let k = k?;
            keys::id_from_key(&k).ok_or_else(|| Error::Corrupt("short primary key".into()))
        })
        .collect()
}

/// Walks the primary tree in id order (`sort_key=id` with no selective filter).
fn walk_primary(
    reg: &Registry,
    rows: &Rows<'_>,
    marker: Option<&Image>,
) -> Result<Vec<Image>, Error> {
    let query = rows.query;
    let start = marker.map(|m| keys::id_key(&m.id).to_vec());
    let entries: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
        match (query.sort_dir, start) {
            (SortDir::Asc, Some(s)) => Box::new(
                reg.db
                    .images
                    .range::<Vec<u8>, _>((Bound::Excluded(s), Bound::Unbounded)),
            ),
            (SortDir::Asc, None) => Box::new(reg.db.images.iter()),
            (SortDir::Desc, Some(s)) => Box::new(reg.db.images.range::<Vec<u8>, _>(..s).rev()),
            (SortDir::Desc, None) => Box::new(reg.db.images.iter().rev()),
        };
    let mut page = Vec::new();
    for entry in entries {
        let (key, bytes) = entry?;
        reg.counters
            .records_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let image = reg.db.decoded.decode(&key, &bytes)?;
        if rows.keeps(&image) {
            page.push(image);
            if page.len() == query.limit {
                break;
            }
        }
    }
    Ok(page)
}
