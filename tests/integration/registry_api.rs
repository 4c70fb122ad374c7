//! The Registry API over HTTP (spec §9), against the real service on `127.0.0.1:0`: one file per
//! concern, sharing the fixtures below.

mod create;
mod list;
mod paging;
mod routes;
mod update;

use serde_json::{json, Value};

use crate::support::{keys_of, RegistryClient};

/// Every key of a registry image object: the §3 record plus `location` (§9.1).
const RECORD_KEYS: [&str; 24] = [
    "id",
    "name",
    "status",
    "size",
    "virtual_size",
    "disk_format",
    "container_format",
    "checksum",
    "location",
    "is_public",
    "owner",
    "protected",
    "min_disk",
    "min_ram",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "properties",
    // The Images API v2 attributes of the same record (Glance's registry stores them too).
    "visibility",
    "tags",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
];

/// A create body that sets every client-settable field to a non-default value.
fn full_image(id: &str) -> Value {
    json!({
        "id": id,
        "name": "cirros-0.3.4-x86_64",
        "status": "queued",
        "size": 13_287_936,
        "virtual_size": 41_126_400,
        "disk_format": "qcow2",
        "container_format": "bare",
        "checksum": "ee1eca47dc88f4879d8a229cc70a07c6",
        "location": "file:///var/lib/glint/images/cirros",
        "is_public": true,
        "owner": "c60b1d57c5034e0d86902aedf8c49be0",
        "protected": true,
        "min_disk": 1,
        "min_ram": 64,
        "properties": {"os_distro": "cirros", "Kernel-ID": "k-1", "ramdisk": null}
    })
}

/// Whether `s` is a canonical (lower-case, hyphenated) UUID.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// Whether `s` is a timestamp in Glance's `YYYY-MM-DDTHH:MM:SS.ffffff` form (§14 #22).
fn is_glance_time(s: &str) -> bool {
    let pattern = "dddd-dd-ddTdd:dd:dd.dddddd";
    s.len() == pattern.len()
        && s.chars()
            .zip(pattern.chars())
            .all(|(c, p)| if p == 'd' { c.is_ascii_digit() } else { c == p })
}

/// A query that lists every row the registry holds, deleted and killed ones included.
const EVERY_ROW: &str = "/images/detail?is_public=None&changes-since=1900-01-01&limit=1000";

/// The ids of every row the registry holds, sorted.
fn every_id(client: &RegistryClient) -> Vec<String> {
    let mut ids = client.list_ids(EVERY_ROW);
    ids.sort();
    ids
}

/// The timestamp field `field` of an image object.
#[track_caller]
fn time_of<'a>(image: &'a Value, field: &str) -> &'a str {
    image[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {image}"))
}
