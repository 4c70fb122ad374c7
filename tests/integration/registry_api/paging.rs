//! Sorting and marker paging (§8): walking a listing page by page must visit every image exactly
//! once, in the order `(sort_key, created_at, id)` that the test computes itself from the records
//! the server acknowledged.

use serde_json::{json, Value};

use glint::model::Status;
use glint::patch::ImagePatch;
use glint::registry::Limits;

use super::time_of;
use crate::support::{id_of, RegistryClient, TestServer};

const SORT_KEYS: [&str; 8] = [
    "id",
    "name",
    "status",
    "disk_format",
    "container_format",
    "size",
    "created_at",
    "updated_at",
];

/// Which acknowledged records a listing query selects.
type Filter = fn(&Value) -> bool;

/// One value of a sort key. A null sorts before every string: §8 compares NULLs as `''` against
/// a marker, and only nulls-first keeps the ORDER BY consistent with that comparison.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Text(Option<String>),
    Number(u64),
}

/// The sort tuple `(key, created_at, id)` of `image`.
fn sort_tuple(image: &Value, key: &str) -> (SortValue, String, String) {
    let value = match key {
        "size" => SortValue::Number(image["size"].as_u64().unwrap()),
        "id" => SortValue::Text(Some(id_of(image))),
        _ => SortValue::Text(image[key].as_str().map(str::to_string)),
    };
    (
        value,
        time_of(image, "created_at").to_string(),
        id_of(image),
    )
}

/// The ids of `images` in the order `sort_key` / `sort_dir` asks for.
fn expected_order(images: &[&Value], key: &str, dir: &str) -> Vec<String> {
    let mut rows: Vec<_> = images.iter().map(|i| sort_tuple(i, key)).collect();
    rows.sort_by(|a, b| match dir {
        "asc" => a.cmp(b),
        _ => b.cmp(a),
    });
    rows.into_iter().map(|(_, _, id)| id).collect()
}

/// Walks `resource?query` with `limit` per page, following the marker until an empty page.
#[track_caller]
fn walk(
    client: &RegistryClient,
    resource: &str,
    query: &str,
    limit: usize,
    total: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..=total / limit.max(1) + 1 {
        let mut path = format!("{resource}?{query}&limit={limit}");
        if let Some(m) = &marker {
            path.push_str(&format!("&marker={m}"));
        }
        let page = client.list_ids(&path);
        assert!(page.len() <= limit, "{path}: {} > limit", page.len());
        match page.last() {
            None => return seen,
            Some(last) => marker = Some(last.clone()),
        }
        seen.extend(page);
    }
    panic!("{resource}?{query}: still paging after {total} images: {seen:?}");
}

/// Thirty-six images (27 neither killed nor deleted) with repeated and null sort values, some
/// updated after creation so that `updated_at` order differs from `created_at` order, plus rows
/// that default lists hide.
fn varied_catalogue(srv: &TestServer) -> Vec<Value> {
    let names = [
        Some("beta"),
        Some("alpha"),
        None,
        Some("Zulu"),
        Some("alpha"),
        Some("é"),
    ];
    let statuses = ["active", "queued", "saving", "active", "killed"];
    let formats = [
        (Some("raw"), Some("bare")),
        (Some("qcow2"), Some("ovf")),
        (None, None),
        (Some("aki"), Some("aki")),
        (Some("raw"), Some("docker")),
        (Some("iso"), None),
        (None, Some("bare")),
    ];
    let sizes = [10_u64, 0, 10, 5, 1 << 40, 7, 10];
    let mut images: Vec<Value> = (0..36)
        .map(|i| {
            let (disk, container) = formats[i % formats.len()];
            srv.create(json!({
                "name": names[i % names.len()],
                "status": statuses[i % statuses.len()],
                "disk_format": disk,
                "container_format": container,
                "size": sizes[i % sizes.len()],
                "is_public": i % 4 != 1,
            }))
        })
        .collect();
    // Touch a few early images so that updated_at order differs from created_at order.
    for i in [2, 0, 11, 7] {
        images[i] = srv.update(&id_of(&images[i]), json!({"min_ram": i}));
    }
    for i in [3, 16] {
        images[i] = srv
            .delete(&format!("/images/{}", id_of(&images[i])))
            .json(200)["image"]
            .clone();
    }
    images
}

#[test]
fn marker_paging_visits_every_image_once_in_sort_order_for_every_key_and_direction() {
    let srv = TestServer::start();
    let images = varied_catalogue(&srv);
    let listed = |i: &&Value| i["deleted"] == false && i["status"] != "killed";
    let cases: [(&str, Filter); 5] = [
        ("is_public=None", |_| true),
        ("", |i| i["is_public"] == true),
        ("is_public=None&disk_format=raw", |i| {
            i["disk_format"] == "raw"
        }),
        ("is_public=None&size_min=5&size_max=10", |i| {
            (5..=10).contains(&i["size"].as_u64().unwrap())
        }),
        ("is_public=false&container_format=bare", |i| {
            i["is_public"] == false && i["container_format"] == "bare"
        }),
    ];
    for (query, filter) in cases {
        let rows: Vec<&Value> = images.iter().filter(listed).filter(|i| filter(i)).collect();
        assert!(!rows.is_empty(), "{query} selects nothing: a useless case");
        for key in SORT_KEYS {
            for dir in ["asc", "desc"] {
                let want = expected_order(&rows, key, dir);
                let q = format!("{query}&sort_key={key}&sort_dir={dir}");
                for limit in [1, 4, 1000] {
                    for resource in ["/images", "/images/detail"] {
                        let got = walk(&srv, resource, &q, limit, rows.len());
                        assert_eq!(got, want, "{resource}?{q} with limit={limit}");
                    }
                }
            }
        }
    }
}

#[test]
fn marker_paging_over_changes_since_includes_deleted_and_killed_rows_in_order() {
    let srv = TestServer::start();
    let images = varied_catalogue(&srv);
    let rows: Vec<&Value> = images.iter().filter(|i| i["is_public"] == true).collect();
    assert!(rows.iter().any(|i| i["deleted"] == true));
    assert!(rows.iter().any(|i| i["status"] == "killed"));
    for key in SORT_KEYS {
        for dir in ["asc", "desc"] {
            let want = expected_order(&rows, key, dir);
            let q = format!("changes-since=2000-01-01T00:00:00&sort_key={key}&sort_dir={dir}");
            assert_eq!(walk(&srv, "/images", &q, 3, rows.len()), want, "{q}");
        }
    }
}

#[test]
fn default_order_is_created_at_descending_and_sort_dir_alone_flips_it() {
    let srv = TestServer::start();
    let images = varied_catalogue(&srv);
    let rows: Vec<&Value> = images
        .iter()
        .filter(|i| i["deleted"] == false && i["status"] != "killed")
        .collect();
    assert!(rows.len() > 25, "the default page must cut the list");
    let newest_first = expected_order(&rows, "created_at", "desc");
    assert_eq!(
        srv.list_ids("/images?is_public=None&limit=100"),
        newest_first
    );
    assert_eq!(
        srv.list_ids("/images?is_public=None")[..],
        newest_first[..25],
        "the first page of the default order"
    );
    let oldest_first = expected_order(&rows, "created_at", "asc");
    assert_eq!(
        srv.list_ids("/images?is_public=None&limit=100&sort_dir=asc"),
        oldest_first
    );
    assert_eq!(
        srv.list_ids("/images?is_public=None&limit=100&sort_key=name"),
        expected_order(&rows, "name", "desc"),
        "sort_dir defaults to desc for any key"
    );
}

#[test]
fn a_deleted_marker_is_accepted_only_when_deleted_rows_are_listed() {
    let srv = TestServer::start();
    let images = varied_catalogue(&srv);
    let deleted = id_of(&images[16]);
    srv.get(&format!("/images?is_public=None&marker={deleted}"))
        .assert_error(400, "Invalid marker. Image could not be found.");
    let rows: Vec<&Value> = images.iter().filter(|i| i["deleted"] == true).collect();
    let want = expected_order(&rows, "created_at", "desc");
    let after: Vec<String> = want
        .iter()
        .skip_while(|id| **id != deleted)
        .skip(1)
        .cloned()
        .collect();
    assert_eq!(
        srv.list_ids(&format!(
            "/images?is_public=None&deleted=true&marker={deleted}"
        )),
        after
    );
}

/// Enough images that every filter matches too many rows to sort in memory, so pages come from
/// walking the indexes.
const LARGE: usize = 5000;

#[test]
fn paging_through_a_large_listing_follows_the_sort_order() {
    let mut records = Vec::new();
    let srv = TestServer::start_with(Limits::default(), |registry| {
        for i in 0..LARGE {
            let patch = ImagePatch {
                name: Some(Some(format!("n{}", i % 37))),
                size: Some((i % 11) as u64),
                disk_format: Some(Some(if i % 3 == 0 { "qcow2" } else { "raw" }.into())),
                is_public: Some(i % 10 != 0),
                ..Default::default()
            };
            let image = registry.create_unflushed(patch, Status::Active).unwrap();
            records.push(serde_json::to_value(&image).unwrap());
        }
    });
    let cases: [(&str, Filter); 3] = [
        ("", |i| i["is_public"] == true),
        ("is_public=None&size_min=1", |i| {
            i["size"].as_u64().unwrap() >= 1
        }),
        ("is_public=None", |_| true),
    ];
    for (query, filter) in cases {
        let rows: Vec<&Value> = records.iter().filter(|i| filter(i)).collect();
        assert!(rows.len() > 4096, "{query} must not be sortable in memory");
        for (key, dir) in [
            ("name", "asc"),
            ("size", "desc"),
            ("created_at", "desc"),
            ("id", "asc"),
        ] {
            let q = format!("{query}&sort_key={key}&sort_dir={dir}");
            let want = expected_order(&rows, key, dir);
            assert_eq!(walk(&srv, "/images", &q, 1000, rows.len()), want, "{q}");
        }
    }
    // A filter on a non-sort field with a different sort key, paged in small steps.
    let rows: Vec<&Value> = records.iter().filter(|i| i["is_public"] == true).collect();
    let want = expected_order(&rows, "updated_at", "asc");
    let got = walk(
        &srv,
        "/images",
        "sort_key=updated_at&sort_dir=asc",
        997,
        rows.len(),
    );
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

#[test]
fn limit_zero_with_a_marker_is_empty() {
    let srv = TestServer::start_with(Limits::default(), |_| {});
    let image = srv.create(json!({"is_public": true}));
    srv.create(json!({"is_public": true}));
    assert!(srv
        .list_ids(&format!("/images?limit=0&marker={}", id_of(&image)))
        .is_empty());
}
