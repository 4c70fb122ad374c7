//! List requests of the Images API v2 (`GET /v2/images`): Glance v2's parameters parsed into the
//! same [`ListQuery`] the indexes answer. Filters: `name`, `status`, `disk_format`,
//! `container_format` and `id` (each also as `in:a,b,"c,d"`), `visibility` (`all` for every
//! one), `owner`, `tag` (repeatable: all must match), `protected`, `os_hidden`, `size_min`,
//! `size_max`, `created_at` / `updated_at` with `eq: neq: gt: gte: lt: lte:`, `member_status`, and
//! any other key as a custom property. Order: `sort=key:dir,...` or `sort_key` / `sort_dir`
//! (repeatable), never both.

use super::keys::SortKey;
use super::query::{
    filter_int, parse_limit, parse_sort_key, CmpOp, Limits, ListQuery, SortDir, Visibility,
};
use crate::model::{parse_image_id, Invalid, Status, Visibility as ImageVisibility};
use crate::timestamp::Timestamp;

/// Which memberships `member_status` selects among images shared with the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// `pending`
    Pending,
    /// `accepted` (the default)
    Accepted,
    /// `rejected`
    Rejected,
    /// `all`
    All,
}

/// A parsed v2 list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2ListQuery {
    /// Filters, order, marker and limit.
    pub query: ListQuery,
    /// The membership status of shared images to list (applies once callers have a project).
    pub member_status: MemberStatus,
}

/// Parses v2 list parameters (in request order).
pub fn parse<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: Limits,
) -> Result<V2ListQuery, Invalid> {
    let mut q = ListQuery::new(limits);
    q.filters.visibility = Visibility::All;
    q.filters.os_hidden = Some(false);
    q.filters.killed_listed = true;
    let mut member_status = MemberStatus::Accepted;
    let (mut sort, mut sort_keys, mut sort_dirs) = (None, Vec::new(), Vec::new());
    let mut props: Vec<(String, String)> = Vec::new();
    for (key, value) in params {
        let f = &mut q.filters;
        match key {
            "limit" => q.limit = parse_limit(value, limits)?,
            "marker" => {
                q.marker = Some(
                    parse_image_id(value).ok_or_else(|| Invalid("Invalid marker format".into()))?,
                )
            }
            "sort" => sort = Some(value),
            "sort_key" => sort_keys.push(value),
            "sort_dir" => sort_dirs.push(parse_dir(value)?),
            "name" | "status" | "disk_format" | "container_format" => {
                let sort_key = parse_sort_key(key)?;
                let values = match value.strip_prefix("in:") {
                    Some(list) => split_list(list)?,
                    None => vec![value.to_string()],
                };
                if key == "status" {
                    for v in &values {
                        if Status::parse(v).is_none() {
                            return Err(Invalid(format!("Invalid status value: {v}")));
                        }
                    }
                }
                f.one_of.retain(|(k, _)| *k != sort_key);
                f.one_of.push((sort_key, values));
            }
            "id" => {
                let list = value.strip_prefix("in:").unwrap_or(value);
                let ids = split_list(list)?
                    .iter()
                    .map(|v| {
                        parse_image_id(v).ok_or_else(|| Invalid(format!("Invalid id value: {v}")))
                    })
                    .collect::<Result<_, _>>()?;
                f.ids = Some(ids);
            }
            "visibility" => {
                f.visibility = match value {
                    "all" => Visibility::All,
                    v => Visibility::Is(
                        ImageVisibility::parse(v)
                            .ok_or_else(|| Invalid(format!("Invalid visibility value: {v}")))?,
                    ),
                }
            }
            "owner" => f.owner = Some(value.to_string()),
            "tag" => f.tags.push(value.to_string()),
            "protected" => f.protected = Some(parse_bool(key, value)?),
            "os_hidden" => f.os_hidden = Some(parse_bool(key, value)?),
            "size_min" => f.size_min = Some(filter_int(key, value)?),
            "size_max" => f.size_max = Some(filter_int(key, value)?),
            "created_at" => f.created_at.push(parse_time_filter(key, value)?),
            "updated_at" => f.updated_at.push(parse_time_filter(key, value)?),
            "member_status" => {
                member_status = match value {
                    "pending" => MemberStatus::Pending,
                    "accepted" => MemberStatus::Accepted,
                    "rejected" => MemberStatus::Rejected,
                    "all" => MemberStatus::All,
                    v => return Err(Invalid(format!("Invalid status value: {v}"))),
                }
            }
            _ => {
                props.retain(|(k, _)| k != key);
                props.push((key.to_string(), value.to_string()));
            }
        }
    }
    q.filters.properties = props;
    if let (Some(min), Some(max)) = (q.filters.size_min, q.filters.size_max) {
        if min > max {
            return Err(Invalid(format!(
                "size_min ({min}) must not be larger than size_max ({max})"
            )));
        }
    }
    let order = match sort {
        Some(_) if !sort_keys.is_empty() || !sort_dirs.is_empty() => {
            return Err(Invalid(
                "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'".into(),
            ))
        }
        Some(text) => parse_sort(text)?,
        None => legacy_order(&sort_keys, &sort_dirs)?,
    };
    if let Some(((key, dir), rest)) = order.split_first() {
        q.sort_key = *key;
        q.sort_dir = *dir;
        q.then = rest.to_vec();
    }
    Ok(V2ListQuery {
        query: q,
        member_status,
    })
}

fn parse_dir(value: &str) -> Result<SortDir, Invalid> {
    match value {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        v => Err(Invalid(format!(
            "Invalid sort direction: {v}. It must be one of the following: asc, desc."
        ))),
    }
}

fn parse_v2_sort_key(value: &str) -> Result<SortKey, Invalid> {
    parse_sort_key(value).map_err(|_| {
        Invalid(format!(
            "Invalid sort key: {value}. It must be one of the following: name, status, \
             container_format, disk_format, size, id, created_at, updated_at."
        ))
    })
}

/// `sort=name:asc,created_at` (a key without a direction is descending).
fn parse_sort(text: &str) -> Result<Vec<(SortKey, SortDir)>, Invalid> {
    text.split(',')
        .map(|part| {
            let (key, dir) = match part.split_once(':') {
                Some((k, d)) => (k.trim(), parse_dir(d.trim())?),
                None => (part.trim(), SortDir::Desc),
            };
            Ok((parse_v2_sort_key(key)?, dir))
        })
        .collect()
}

/// `sort_key=a&sort_key=b&sort_dir=asc`: one direction for every key, or one per key.
fn legacy_order(keys: &[&str], dirs: &[SortDir]) -> Result<Vec<(SortKey, SortDir)>, Invalid> {
    if keys.is_empty() {
        return Ok(vec![(
            SortKey::CreatedAt,
            dirs.first().copied().unwrap_or(SortDir::Desc),
        )]);
    }
    if dirs.len() > 1 && dirs.len() != keys.len() {
        return Err(Invalid(
            "The number of sort_dir values must be one or match the number of sort_key values"
                .into(),
        ));
    }
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let dir = dirs
                .get(i)
                .or(dirs.first())
                .copied()
                .unwrap_or(SortDir::Desc);
            Ok((parse_v2_sort_key(key)?, dir))
        })
        .collect()
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Invalid> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Invalid(format!(
            "Invalid value for {key}: '{value}'; it must be true or false"
        ))),
    }
}

/// `gte:2024-01-01T00:00:00Z` (no operator means `eq`).
fn parse_time_filter(key: &str, value: &str) -> Result<(CmpOp, Timestamp), Invalid> {
    let (op, time) = match value.split_once(':') {
        Some((op, rest)) if op.chars().all(|c| c.is_ascii_alphabetic()) => {
            let op = match op {
                "eq" => CmpOp::Eq,
                "neq" => CmpOp::Neq,
                "gt" => CmpOp::Gt,
                "gte" => CmpOp::Gte,
                "lt" => CmpOp::Lt,
                "lte" => CmpOp::Lte,
                other => {
                    return Err(Invalid(format!(
                        "Unable to filter by unknown operator '{other}'."
                    )))
                }
            };
            (op, rest)
        }
        _ => (CmpOp::Eq, value),
    };
    let t = Timestamp::parse(time)
        .map_err(|_| Invalid(format!("Invalid time format for {key}: '{time}'")))?;
    Ok((op, t))
}

/// `a,b,"c,d"`: a comma-separated list in which double quotes keep commas.
fn split_list(text: &str) -> Result<Vec<String>, Invalid> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                quoted = false;
                if chars.peek().is_some_and(|&n| n != ',') {
                    return Err(Invalid(format!("Invalid filter value {text}. There is no comma after closing quotation mark.")));
                }
            }
            '"' if current.is_empty() => quoted = true,
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(Invalid(format!(
            "Invalid filter value {text}. The quote is not closed."
        )));
    }
    out.push(current);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &[(&str, &str)]) -> Result<V2ListQuery, String> {
        parse(q.iter().copied(), Limits::default()).map_err(|e| e.0)
    }

    #[test]
    fn defaults_list_every_visibility_but_no_hidden_images() {
        let q = p(&[]).unwrap().query;
        assert_eq!(q.filters.visibility, Visibility::All);
        assert_eq!(q.filters.os_hidden, Some(false));
        assert!(q.filters.killed_listed);
        assert_eq!(
            (q.sort_key, q.sort_dir),
            (SortKey::CreatedAt, SortDir::Desc)
        );
        assert_eq!(p(&[]).unwrap().member_status, MemberStatus::Accepted);
    }

    #[test]
    fn filters_and_operators() {
        let q = p(&[
            ("name", "in:a,\"b,c\""),
            ("status", "active"),
            ("visibility", "community"),
            ("tag", "t1"),
            ("tag", "t2"),
            ("created_at", "gte:2024-01-01T00:00:00Z"),
            ("updated_at", "2024-01-02T00:00:00"),
            ("os_distro", "ubuntu"),
            ("size_min", "1"),
            ("member_status", "all"),
        ])
        .unwrap();
        let f = &q.query.filters;
        assert_eq!(
            f.one_of,
            vec![
                (SortKey::Name, vec!["a".to_string(), "b,c".to_string()]),
                (SortKey::Status, vec!["active".to_string()])
            ]
        );
        assert_eq!(f.visibility, Visibility::Is(ImageVisibility::Community));
        assert_eq!(f.tags, vec!["t1", "t2"]);
        assert_eq!(f.created_at[0].0, CmpOp::Gte);
        assert_eq!(f.updated_at[0].0, CmpOp::Eq);
        assert_eq!(f.properties, vec![("os_distro".into(), "ubuntu".into())]);
        assert_eq!(q.member_status, MemberStatus::All);
    }

    #[test]
    fn sort_forms() {
        let q = p(&[("sort", "name:asc,size")]).unwrap().query;
        assert_eq!((q.sort_key, q.sort_dir), (SortKey::Name, SortDir::Asc));
        assert_eq!(q.then, vec![(SortKey::Size, SortDir::Desc)]);
        assert!(!q.index_order());
        let q = p(&[
            ("sort_key", "name"),
            ("sort_key", "created_at"),
            ("sort_dir", "asc"),
        ])
        .unwrap()
        .query;
        assert_eq!(q.then, vec![(SortKey::CreatedAt, SortDir::Asc)]);
        assert!(q.index_order());
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        for (q, want) in [
            (("limit", "x"), "limit param must be an integer"),
            (("limit", "-1"), "positive"),
            (("marker", "m"), "Invalid marker"),
            (("sort", "owner:asc"), "Invalid sort key: owner"),
            (("sort", "name:up"), "Invalid sort direction: up"),
            (("sort_dir", "sideways"), "Invalid sort direction"),
            (("visibility", "everyone"), "Invalid visibility value"),
            (("status", "gone"), "Invalid status value: gone"),
            (("member_status", "x"), "Invalid status value"),
            (("protected", "maybe"), "Invalid value for protected"),
            (
                ("created_at", "after:2024-01-01"),
                "unknown operator 'after'",
            ),
            (("created_at", "gt:yesterday"), "Invalid time format"),
            (("name", "in:\"a"), "quote is not closed"),
            (("id", "in:x"), "Invalid id value"),
            (("size_min", "-1"), "size_min"),
        ] {
            let err = p(&[q]).expect_err(q.0);
            assert!(err.contains(want), "{q:?}: {err}");
        }
        let err = p(&[("sort", "name"), ("sort_key", "size")]).unwrap_err();
        assert!(err.contains("cannot be combined"), "{err}");
        let err = p(&[
            ("sort_key", "name"),
            ("sort_key", "size"),
            ("sort_dir", "asc"),
            ("sort_dir", "asc"),
            ("sort_dir", "asc"),
        ])
        .unwrap_err();
        assert!(err.contains("number of sort_dir"), "{err}");
    }
}
