//! The Images API v2 over HTTP in both deployment shapes (so also through a remote registry):
//! create, upload and download with both hashes, JSON-patch rules, lists (filters, `in:`,
//! sorting, paging with `next`), tags, members with status, deactivate/reactivate, the
//! interoperable import, delete, and one set of records seen through v1 and v2.

use bytes::Bytes;
use md5::Digest;
use serde_json::{json, Value};

use super::{PUBLIC, RAW_BARE};
use crate::support::{id_of, md5_hex, test_data, ImageServer, Payload, Reply};

acceptance! {
    create_upload_download_records_md5_and_sha512,
    patch_follows_glances_attribute_rules,
    lists_filter_sort_and_page_with_next_links,
    tags_members_and_deactivation,
    glance_direct_import_stages_then_activates,
    delete_refuses_protected_images_and_removes_data,
    v1_and_v2_see_the_same_records,
    schemas_and_info_are_served,
    only_the_enabled_formats_are_taken [
        ("GLINT_DISK_FORMATS", "raw,qcow2"),
        ("GLINT_CONTAINER_FORMATS", "bare"),
    ],
}

const PATCH_TYPE: (&str, &str) = (
    "content-type",
    "application/openstack-images-v2.1-json-patch",
);
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

fn post_json(srv: &ImageServer, path: &str, body: Value) -> Reply {
    let data = Bytes::from(serde_json::to_vec(&body).unwrap());
    srv.request(
        "POST",
        path,
        &[("content-type", "application/json")],
        Payload::Sized(data),
    )
}

fn create(srv: &ImageServer, body: Value) -> Value {
    post_json(srv, "/v2/images", body).json(201)
}

fn patch(srv: &ImageServer, id: &str, ops: Value) -> Reply {
    let data = Bytes::from(serde_json::to_vec(&ops).unwrap());
    srv.request(
        "PATCH",
        &format!("/v2/images/{id}"),
        &[PATCH_TYPE],
        Payload::Sized(data),
    )
}

fn put_file(srv: &ImageServer, id: &str, what: &str, data: &[u8]) -> Reply {
    srv.request(
        "PUT",
        &format!("/v2/images/{id}/{what}"),
        &[OCTETS],
        Payload::Sized(Bytes::copy_from_slice(data)),
    )
}

fn show(srv: &ImageServer, id: &str) -> Value {
    srv.get(&format!("/v2/images/{id}")).json(200)
}

fn ids(list: &Value) -> Vec<String> {
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn sha512_hex(data: &[u8]) -> String {
    sha2::Sha512::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn create_upload_download_records_md5_and_sha512(srv: &ImageServer) {
    let image = create(
        srv,
        json!({"name": "v2", "disk_format": "raw", "container_format": "bare", "os_distro": "cirros"}),
    );
    assert_eq!(image["status"], "queued");
    assert_eq!(image["visibility"], "shared", "the default visibility");
    assert_eq!(image["size"], Value::Null, "no size before data");
    assert_eq!(
        image["os_distro"], "cirros",
        "custom properties are top-level"
    );
    let id = id_of(&image);
    let empty = srv.get(&format!("/v2/images/{id}/file"));
    assert_eq!(empty.status, 204, "no data yet: {empty:?}");
    let data = test_data(1_500_000, 7);
    let reply = put_file(srv, &id, "file", &data);
    assert_eq!(reply.status, 204, "{}", reply.text());
    let shown = show(srv, &id);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], data.len());
    assert_eq!(shown["checksum"], md5_hex(&data));
    assert_eq!(shown["os_hash_algo"], "sha512");
    assert_eq!(shown["os_hash_value"], sha512_hex(&data));
    let download = srv.get(&format!("/v2/images/{id}/file"));
    assert_eq!(download.status, 200);
    assert_eq!(download.body.as_ref(), data.as_slice());
    assert_eq!(
        download.header("content-md5"),
        Some(md5_hex(&data).as_str())
    );
    // A second upload, and data before the formats are set, are refused.
    put_file(srv, &id, "file", b"again").assert_error(409, "transition from active to saving");
    let bare = id_of(&create(srv, json!({"name": "no formats"})));
    put_file(srv, &bare, "file", b"x")
        .assert_error(400, "disk_format, container_format must be set");
    let wrong_type = srv.request(
        "PUT",
        &format!("/v2/images/{bare}/file"),
        &[("content-type", "text/plain")],
        Payload::Sized(Bytes::from_static(b"x")),
    );
    assert_eq!(wrong_type.status, 415, "{wrong_type:?}");
    assert_eq!(
        show(srv, &bare)["status"],
        "queued",
        "refusals leave the image queued"
    );
}

fn patch_follows_glances_attribute_rules(srv: &ImageServer) {
    let id = id_of(&create(srv, json!({"name": "p", "k1": "v1"})));
    let reply = patch(
        srv,
        &id,
        json!([
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/k2", "value": "v2"},
            {"op": "remove", "path": "/k1"},
            {"op": "replace", "path": "/min_ram", "value": 512},
            {"op": "add", "path": "/visibility", "value": "community"},
        ]),
    );
    let image = reply.json(200);
    assert_eq!(image["name"], "renamed");
    assert_eq!(image["k2"], "v2");
    assert!(image.get("k1").is_none(), "{image}");
    assert_eq!(image["min_ram"], 512);
    assert_eq!(image["visibility"], "community");
    for (ops, status, needle) in [
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            403,
            "read-only",
        ),
        (
            json!([{"op": "replace", "path": "/size", "value": 1}]),
            403,
            "read-only",
        ),
        (
            json!([{"op": "add", "path": "/deleted", "value": true}]),
            403,
            "reserved",
        ),
        (
            json!([{"op": "remove", "path": "/name"}]),
            403,
            "may not be removed",
        ),
        (
            json!([{"op": "replace", "path": "/nope", "value": "x"}]),
            409,
            "does not exist",
        ),
        (
            json!([{"op": "remove", "path": "/nope"}]),
            409,
            "does not exist",
        ),
        (
            json!([{"op": "add", "path": "/visibility", "value": "all"}]),
            400,
            "does not match schema",
        ),
        (
            json!([{"op": "add", "path": "/disk_format", "value": "floppy"}]),
            400,
            "floppy",
        ),
        (
            json!([{"op": "add", "path": "/k", "value": 5}]),
            400,
            "is not of type 'string'",
        ),
        (
            json!([{"op": "move", "path": "/k"}]),
            400,
            "Invalid operation",
        ),
        (json!({"op": "add"}), 400, "JSON array"),
    ] {
        patch(srv, &id, ops.clone()).assert_error(status, needle);
    }
    let wrong_type = srv.request(
        "PATCH",
        &format!("/v2/images/{id}"),
        &[("content-type", "application/json")],
        Payload::Sized(Bytes::from_static(b"[]")),
    );
    assert_eq!(wrong_type.status, 415, "{wrong_type:?}");
    assert_eq!(
        show(srv, &id)["name"],
        "renamed",
        "refused patches changed nothing"
    );
    post_json(srv, "/v2/images", json!({"status": "active"})).assert_error(403, "read-only");
    post_json(srv, "/v2/images", json!({"min_disk": -1})).assert_error(400, "out of range");
    let given = "0b2e7d3c-1111-4222-8333-444455556666";
    assert_eq!(create(srv, json!({"id": given}))["id"], given);
    post_json(srv, "/v2/images", json!({"id": given})).assert_error(409, "already exists");
}

fn lists_filter_sort_and_page_with_next_links(srv: &ImageServer) {
    let mut made = Vec::new();
    for (name, tag, visibility) in [
        ("b", "even", "public"),
        ("a", "odd", "private"),
        ("d", "even", "community"),
        ("c", "odd", "shared"),
    ] {
        made.push(id_of(&create(
            srv,
            json!({"name": name, "tags": [tag], "visibility": visibility, "os_distro": name}),
        )));
    }
    let hidden = id_of(&create(srv, json!({"name": "hidden", "os_hidden": true})));
    let all = srv.get("/v2/images").json(200);
    assert_eq!(all["schema"], "/v2/schemas/images");
    assert_eq!(
        ids(&all).len(),
        4,
        "hidden images are left out by default: {all}"
    );
    assert!(!ids(&all).contains(&hidden));
    let with_hidden = srv.get("/v2/images?os_hidden=true").json(200);
    assert_eq!(ids(&with_hidden), vec![hidden.clone()]);
    let names = |q: &str| -> Vec<String> {
        srv.get(&format!("/v2/images?{q}")).json(200)["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("sort=name:asc"), ["a", "b", "c", "d"]);
    assert_eq!(names("sort_key=name&sort_dir=desc"), ["d", "c", "b", "a"]);
    assert_eq!(names("tag=even&sort=name:asc"), ["b", "d"]);
    assert_eq!(names("visibility=community"), ["d"]);
    assert_eq!(names("name=in:a,c&sort=name:asc"), ["a", "c"]);
    assert_eq!(names("os_distro=b"), ["b"]);
    // Paging: limit 3 gives a next link that continues where the page ended.
    let first = srv.get("/v2/images?sort=name:asc&limit=3").json(200);
    assert_eq!(first["images"].as_array().unwrap().len(), 3);
    let next = first["next"].as_str().unwrap().to_string();
    assert!(
        next.starts_with("/v2/images?") && next.contains("marker="),
        "{next}"
    );
    let second = srv.get(&next).json(200);
    assert_eq!(second["images"][0]["name"], "d");
    assert!(
        second.get("next").is_none(),
        "a short page has no next: {second}"
    );
    srv.get("/v2/images?sort=name:up")
        .assert_error(400, "Invalid sort direction");
    srv.get("/v2/images?sort=visibility:asc")
        .assert_error(400, "Invalid sort key");
    srv.get("/v2/images?visibility=everyone")
        .assert_error(400, "Invalid visibility value");
    srv.get("/v2/images?marker=6f1e7b8a-0000-4000-8000-000000000000")
        .assert_error(400, "marker");
    srv.get("/v2/images?created_at=after:2024-01-01")
        .assert_error(400, "unknown operator");
    let since = srv
        .get("/v2/images?created_at=gte:2000-01-01T00:00:00Z")
        .json(200);
    assert_eq!(ids(&since).len(), 4);
}

fn tags_members_and_deactivation(srv: &ImageServer) {
    let image = create(
        srv,
        json!({"name": "t", "disk_format": "raw", "container_format": "bare"}),
    );
    let id = id_of(&image);
    for tag in ["gold", "with%20space"] {
        let reply = srv.request(
            "PUT",
            &format!("/v2/images/{id}/tags/{tag}"),
            &[],
            Payload::Empty,
        );
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    assert_eq!(show(srv, &id)["tags"], json!(["gold", "with space"]));
    let gone = srv.request(
        "DELETE",
        &format!("/v2/images/{id}/tags/gold"),
        &[],
        Payload::Empty,
    );
    assert_eq!(gone.status, 204);
    srv.request(
        "DELETE",
        &format!("/v2/images/{id}/tags/gold"),
        &[],
        Payload::Empty,
    )
    .assert_error(404, "no tag");

    let member = post_json(
        srv,
        &format!("/v2/images/{id}/members"),
        json!({"member": "proj-b"}),
    )
    .json(200);
    assert_eq!(member["status"], "pending");
    assert_eq!(member["schema"], "/v2/schemas/member");
    post_json(
        srv,
        &format!("/v2/images/{id}/members"),
        json!({"member": "proj-b"}),
    )
    .assert_error(409, "already associated");
    let update = |status: &str| {
        let body = Bytes::from(serde_json::to_vec(&json!({ "status": status })).unwrap());
        srv.request(
            "PUT",
            &format!("/v2/images/{id}/members/proj-b"),
            &[("content-type", "application/json")],
            Payload::Sized(body),
        )
    };
    assert_eq!(update("accepted").json(200)["status"], "accepted");
    update("maybe").assert_error(400, "Invalid member status");
    let listed = srv.get(&format!("/v2/images/{id}/members")).json(200);
    assert_eq!(listed["members"][0]["status"], "accepted");
    // v1 sees the same member.
    let v1 = srv.get(&format!("/v1/images/{id}/members")).json(200);
    assert_eq!(v1["members"][0]["member_id"], "proj-b");
    srv.get(&format!("/v2/images/{id}/members/nobody"))
        .assert_error(404, "not found");
    let removed = srv.request(
        "DELETE",
        &format!("/v2/images/{id}/members/proj-b"),
        &[],
        Payload::Empty,
    );
    assert_eq!(removed.status, 204);
    let private = id_of(&create(srv, json!({"visibility": "private"})));
    post_json(
        srv,
        &format!("/v2/images/{private}/members"),
        json!({"member": "p"}),
    )
    .assert_error(403, "Only shared images have members");

    let action = |what: &str| {
        srv.request(
            "POST",
            &format!("/v2/images/{id}/actions/{what}"),
            &[],
            Payload::Empty,
        )
    };
    action("deactivate").assert_error(403, "Not allowed to deactivate image in status 'queued'");
    assert_eq!(put_file(srv, &id, "file", b"data").status, 204);
    assert_eq!(action("deactivate").status, 204);
    assert_eq!(show(srv, &id)["status"], "deactivated");
    srv.get(&format!("/v2/images/{id}/file"))
        .assert_error(403, "deactivated");
    srv.download(&id).assert_error(403, "deactivated");
    assert_eq!(action("reactivate").status, 204);
    assert_eq!(
        srv.get(&format!("/v2/images/{id}/file")).body.as_ref(),
        b"data"
    );
}

fn glance_direct_import_stages_then_activates(srv: &ImageServer) {
    let info = srv.get("/v2/info/import").json(200);
    assert_eq!(
        info["import-methods"]["value"],
        json!(["glance-direct", "web-download"])
    );
    let created = post_json(
        srv,
        "/v2/images",
        json!({"name": "i", "disk_format": "raw", "container_format": "bare"}),
    );
    assert_eq!(
        created.header("openstack-image-import-methods"),
        Some("glance-direct,web-download")
    );
    let id = id_of(&created.json(201));
    let import = |method: Value| {
        post_json(
            srv,
            &format!("/v2/images/{id}/import"),
            json!({ "method": method }),
        )
    };
    import(json!({"name": "glance-direct"})).assert_error(409, "needs it uploading");
    let data = test_data(700_000, 3);
    assert_eq!(put_file(srv, &id, "stage", &data).status, 204);
    assert_eq!(show(srv, &id)["status"], "uploading");
    put_file(srv, &id, "stage", &data).assert_error(409, "to uploading is not allowed");
    import(json!({"name": "copy-image"})).assert_error(400, "not supported");
    assert_eq!(import(json!({"name": "glance-direct"})).status, 202);
    assert_eq!(
        srv.wait_status(&id, "active", std::time::Duration::from_secs(20)),
        "active",
        "{}",
        show(srv, &id)
    );
    let image = show(srv, &id);
    assert_eq!(image["checksum"], md5_hex(&data));
    assert_eq!(image["os_hash_value"], sha512_hex(&data));
    assert_eq!(
        srv.get(&format!("/v2/images/{id}/file")).body.as_ref(),
        data.as_slice()
    );
    let images = srv.images_dir();
    let staging = format!("{}-staging", images.file_name().unwrap().to_string_lossy());
    let staged = images.parent().unwrap().join(staging).join(&id);
    assert!(
        staged.parent().unwrap().is_dir(),
        "the staging directory is beside the images"
    );
    assert!(!staged.exists(), "staged data is removed after the import");
    let other = id_of(&create(
        srv,
        json!({"disk_format": "raw", "container_format": "bare"}),
    ));
    post_json(
        srv,
        &format!("/v2/images/{other}/import"),
        json!({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}),
    )
    .assert_error(400, "http:// or https://");
}

fn delete_refuses_protected_images_and_removes_data(srv: &ImageServer) {
    let id = id_of(&create(
        srv,
        json!({"disk_format": "raw", "container_format": "bare", "protected": true}),
    ));
    assert_eq!(put_file(srv, &id, "file", b"keep me").status, 204);
    srv.request("DELETE", &format!("/v2/images/{id}"), &[], Payload::Empty)
        .assert_error(403, "protected");
    assert_eq!(
        patch(
            srv,
            &id,
            json!([{"op": "replace", "path": "/protected", "value": false}])
        )
        .status,
        200
    );
    let deleted = srv.request("DELETE", &format!("/v2/images/{id}"), &[], Payload::Empty);
    assert_eq!(deleted.status, 204);
    srv.get(&format!("/v2/images/{id}"))
        .assert_error(404, "No image found");
    srv.request("DELETE", &format!("/v2/images/{id}"), &[], Payload::Empty)
        .assert_error(404, "No image found");
    srv.assert_no_data_for(&id);
    srv.get("/v2/images/not-an-id")
        .assert_error(404, "No image found");
}

fn v1_and_v2_see_the_same_records(srv: &ImageServer) {
    let mut headers = vec![
        PUBLIC,
        ("x-image-meta-name", "from v1"),
        ("x-image-meta-property-made_by", "v1"),
    ];
    headers.extend(RAW_BARE);
    let v1 = srv.create_with_data(&headers, b"v1 bytes");
    let id = id_of(&v1);
    let seen = show(srv, &id);
    assert_eq!(seen["visibility"], "public");
    assert_eq!(seen["made_by"], "v1");
    assert_eq!(
        seen["os_hash_value"],
        sha512_hex(b"v1 bytes"),
        "v1 uploads record the multihash"
    );
    assert_eq!(
        srv.get(&format!("/v2/images/{id}/file")).body.as_ref(),
        b"v1 bytes"
    );
    let v2 = id_of(&create(
        srv,
        json!({"name": "from v2", "visibility": "public", "k": "v"}),
    ));
    let head = srv.head(&v2);
    assert_eq!(head.header("x-image-meta-is_public"), Some("True"));
    assert_eq!(head.header("x-image-meta-property-k"), Some("v"));
    assert_eq!(
        patch(
            srv,
            &v2,
            json!([{"op": "replace", "path": "/visibility", "value": "private"}])
        )
        .status,
        200
    );
    assert_eq!(
        srv.head(&v2).header("x-image-meta-is_public"),
        Some("False")
    );
    let listed = srv.list_ids("/v1/images");
    assert!(
        listed.contains(&id) && !listed.contains(&v2),
        "v1's public list: {listed:?}"
    );
}

fn schemas_and_info_are_served(srv: &ImageServer) {
    let image = srv.get("/v2/schemas/image").json(200);
    assert_eq!(image["name"], "image");
    assert_eq!(image["additionalProperties"]["type"], "string");
    assert_eq!(
        image["properties"]["visibility"]["enum"],
        json!(["public", "community", "shared", "private"])
    );
    for name in ["images", "member", "members"] {
        assert_eq!(
            srv.get(&format!("/v2/schemas/{name}")).json(200)["name"],
            name
        );
    }
    srv.get("/v2/schemas/other")
        .assert_error(404, "could not be found");
    let stores = srv.get("/v2/info/stores").json(200);
    assert_eq!(stores["stores"][0]["id"], "file");
    assert_eq!(stores["stores"][0]["default"], true);
}

/// `[image_format] disk_formats` / `container_formats`: a format the operator has not enabled
/// is refused on create and update through v1 and v2 (400 naming it and what is taken, no record
/// left), the enabled ones work, and the v2 schema's enums list just those.
fn only_the_enabled_formats_are_taken(srv: &ImageServer) {
    let refused = "Invalid disk format 'vmdk' for image: this service takes raw, qcow2";
    let before = srv.get("/v1/images/detail").json(200)["images"]
        .as_array()
        .unwrap()
        .len();
    srv.post(&[
        ("x-image-meta-disk_format", "vmdk"),
        ("x-image-meta-container_format", "bare"),
    ])
    .assert_error(400, refused);
    srv.post(&[
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "ovf"),
    ])
    .assert_error(
        400,
        "Invalid container format 'ovf' for image: this service takes bare",
    );
    post_json(
        srv,
        "/v2/images",
        json!({"disk_format": "vmdk", "container_format": "bare"}),
    )
    .assert_error(400, refused);
    let after = srv.get("/v1/images/detail").json(200)["images"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before, "a refused create leaves no record");

    let v1 = srv
        .post(&[
            ("x-image-meta-disk_format", "qcow2"),
            ("x-image-meta-container_format", "bare"),
        ])
        .json(201);
    let v1_id = id_of(&v1["image"]);
    srv.put(&v1_id, &[("x-image-meta-disk_format", "vmdk")])
        .assert_error(400, refused);
    let v2 = create(
        srv,
        json!({"disk_format": "raw", "container_format": "bare"}),
    );
    let v2_id = v2["id"].as_str().unwrap();
    patch(
        srv,
        v2_id,
        json!([{"op": "replace", "path": "/disk_format", "value": "vmdk"}]),
    )
    .assert_error(400, refused);
    let renamed = patch(
        srv,
        v2_id,
        json!([{"op": "replace", "path": "/name", "value": "kept"}]),
    )
    .json(200);
    assert_eq!(renamed["disk_format"], "raw");

    let schema = srv.get("/v2/schemas/image").json(200);
    assert_eq!(
        schema["properties"]["disk_format"]["enum"],
        json!([null, "raw", "qcow2"])
    );
    assert_eq!(
        schema["properties"]["container_format"]["enum"],
        json!([null, "bare"])
    );
}
