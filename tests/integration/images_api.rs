//! The Images API v1 over HTTP (spec §2.3, §4–§7, §14), against the real `glint` binary in both
//! deployment shapes: `glint serve` (API and registry in one process) and the split shape
//! (`glint registry` + `glint api --registry-url`). Every acceptance test is a function of the
//! running server, instantiated once per shape by [`acceptance!`].
//!
//! * `versions` – version negotiation and URL prefixes (§2.3).
//! * `caching` – validators, 304/412, ranges (206/416, If-Range) and cache headers of image data.
//! * `create` – POST: reserve, size 0, data with a length or chunked, download, ETag (§5.4, §5.5).
//! * `headers` – the header codec: HEAD in every status, round trips, the property quota (§4).
//! * `lists` – brief and detail lists: contents, filters, sorting, marker paging (§5.1, §5.2, §8).
//! * `validation` – the value rules of §7.1–§7.2 on metadata headers: 400s with the reason.
//! * `refusals` – refused uploads and sources (cap, formats, Content-Type, store, mismatches) and
//!   what each leaves behind.
//! * `routes` – 404 for unknown ids and paths, 405 with `Allow` for wrong methods.
//! * `update` – PUT: immutability, uploads to queued images, purge-props, DELETE (§5.6, §5.7).
//! * `failures` – uploads that die: client disconnect, delete while saving (412), `kill -9` and
//!   restart recovery (§12.6); the size cap from a config file.
//! * `convert` – image conversion with the real qemu-img: v1 `x-glint-convert-from` between every
//!   pair of formats, refusals, failures, access, the v2 `image_conversion` import plugin, S3.
//! * `glanceclient` – the real python-glanceclient (v1 and v2) and `openstack image` against
//!   `glint serve`.
//! * `v2` – the Images API v2: images, JSON patch, data, lists, tags, members, import.
//! * `identity` – tokens, owners, visibility, members and policy (§13) through v1 and v2.
//! * `keystone` – the same with tokens a real Keystone validates.
//! * `operations` – request ids, `/healthcheck`, JSON logs.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{keys_of, ApiClient, Reply};

/// Instantiates acceptance tests once per deployment shape, as `serve::<name>` and
/// `split::<name>`. Each test is a `fn(&ImageServer)` in the invoking module; a list of
/// `("GLINT_OPTION", "value")` pairs in brackets after a name is the servers' environment, and
/// may start with `@BASE,` (a slice of pairs several tests share).
macro_rules! acceptance {
    ($($name:ident $([$(@$base:expr,)? $($env:expr),* $(,)?])?),* $(,)?) => {
        mod serve {
            $(
                #[test]
                fn $name() {
                    #[allow(unused_mut)]
                    let mut env: Vec<(&str, &str)> = Vec::new();
                    $($(env.extend_from_slice(&$base);)?)?
                    env.extend_from_slice(&[$($($env),*)?]);
                    let srv = crate::support::ImageServer::start(
                        crate::support::Shape::Serve,
                        &env,
                    );
                    super::$name(&srv);
                }
            )*
        }
        mod split {
            $(
                #[test]
                fn $name() {
                    #[allow(unused_mut)]
                    let mut env: Vec<(&str, &str)> = Vec::new();
                    $($(env.extend_from_slice(&$base);)?)?
                    env.extend_from_slice(&[$($($env),*)?]);
                    let srv = crate::support::ImageServer::start(
                        crate::support::Shape::Split,
                        &env,
                    );
                    super::$name(&srv);
                }
            )*
        }
    };
}

mod caching;
mod convert;
mod create;
mod failures;
mod glanceclient;
mod headers;
mod identity;
mod keystone;
mod lists;
mod members;
mod operations;
mod refusals;
mod routes;
mod update;
mod v2;
mod validation;
mod versions;

/// Makes an image public, so that the default list shows it (§14 #20).
const PUBLIC: (&str, &str) = ("x-image-meta-is_public", "True");

/// Raw format headers for uploads.
const RAW_BARE: [(&str, &str); 2] = [
    ("x-image-meta-disk_format", "raw"),
    ("x-image-meta-container_format", "bare"),
];

/// Keys of the JSON image object of the API (§4.3): every field but `location`.
const IMAGE_KEYS: [&str; 18] = [
    "checksum",
    "container_format",
    "created_at",
    "deleted",
    "deleted_at",
    "disk_format",
    "id",
    "is_public",
    "min_disk",
    "min_ram",
    "name",
    "owner",
    "properties",
    "protected",
    "size",
    "status",
    "updated_at",
    "virtual_size",
];

/// The `x-image-meta-*` headers (name after the prefix → value) that §4.2 derives from a JSON
/// image object: underscore names, `True`/`False`, nulls omitted, one `property-<key>` per
/// non-null property (none once deleted), never `location`.
#[track_caller]
fn expected_meta(image: &Value) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    for (field, value) in image.as_object().unwrap() {
        let text = match value {
            Value::Null => continue,
            Value::Bool(true) => "True".to_string(),
            Value::Bool(false) => "False".to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            Value::Object(_) if field == "properties" => continue,
            other => panic!("unexpected {field}: {other}"),
        };
        meta.insert(field.clone(), text);
    }
    if image["deleted"] != Value::Bool(true) {
        for (key, value) in image["properties"].as_object().unwrap() {
            if let Some(text) = value.as_str() {
                meta.insert(format!("property-{}", key.to_lowercase()), text.to_string());
            }
        }
    }
    meta
}

/// Asserts that a HEAD or GET reply carries exactly the metadata headers of `image` (§4.2), and
/// `ETag` exactly when there is a checksum.
#[track_caller]
fn assert_meta_headers(reply: &Reply, image: &Value) {
    assert_eq!(reply.meta(), expected_meta(image), "{reply:?}");
    assert_eq!(
        reply.header("etag"),
        image["checksum"]
            .as_str()
            .map(|c| format!("\"{c}\""))
            .as_deref(),
        "ETag is the checksum in quotes, sent only when there is one"
    );
    assert!(reply.header("x-image-meta-location").is_none());
    assert!(reply.header("location").is_none());
}

/// HEAD of `id` answers 200 with exactly the headers of its detail object.
#[track_caller]
fn assert_head_matches_detail(client: &ApiClient, id: &str) {
    let image = client
        .detail_of(id)
        .unwrap_or_else(|| panic!("{id} not in the detail list"));
    let head = client.head(id);
    assert_eq!(head.status.as_u16(), 200, "{head:?}");
    assert!(head.body.is_empty());
    assert_meta_headers(&head, &image);
}

/// Asserts that no image with `id` exists (HEAD answers 404).
#[track_caller]
fn assert_no_record(client: &ApiClient, id: &str) {
    let head = client.head(id);
    assert_eq!(
        head.status.as_u16(),
        404,
        "a record was left behind: {head:?}"
    );
    assert!(client.detail_of(id).is_none());
}

/// A fresh image id in canonical form, distinct per `n` (fixed, so failures reproduce).
fn fixed_id(n: u32) -> String {
    format!("7c6d2f8e-1b5a-4c3e-9f00-{n:012x}")
}
