//! `POST /images` (§9.3) and `GET /images/{id}`: round trips, defaults, ids, and every validation
//! rule of §7 answered with 400 and a message naming the field.

use serde_json::{json, Value};

use super::{
    every_id, full_image, is_canonical_uuid, is_glance_time, keys_of, time_of, RECORD_KEYS,
};
use crate::support::{id_of, TestServer};

const ID: &str = "de2f2211-3ac7-4260-9142-41db0ecfb425";

#[test]
fn create_returns_200_and_round_trips_every_field() {
    let srv = TestServer::start();
    let sent = full_image(ID);
    let stored = srv.create(sent.clone());
    let mut want: Vec<String> = RECORD_KEYS.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(keys_of(&stored), want, "{stored}");
    for (key, value) in sent.as_object().unwrap() {
        assert_eq!(&stored[key], value, "field {key}");
    }
    assert_eq!(stored["deleted"], false);
    assert_eq!(stored["deleted_at"], Value::Null);
    assert!(is_glance_time(time_of(&stored, "created_at")), "{stored}");
    assert_eq!(stored["created_at"], stored["updated_at"]);
    let shown = srv.get(&format!("/images/{ID}")).json(200);
    assert_eq!(shown, json!({ "image": stored }));
}

#[test]
fn create_defaults_status_active_and_generates_a_canonical_uuid4() {
    let srv = TestServer::start();
    let a = srv.create(json!({}));
    let b = srv.create(json!({"name": "second"}));
    let id = id_of(&a);
    assert!(is_canonical_uuid(&id), "{id}");
    assert_eq!(&id[14..15], "4", "a random (version 4) uuid: {id}");
    assert_ne!(id, id_of(&b));
    for (field, default) in [
        ("status", json!("active")),
        ("name", Value::Null),
        ("size", json!(0)),
        ("virtual_size", Value::Null),
        ("disk_format", Value::Null),
        ("container_format", Value::Null),
        ("checksum", Value::Null),
        ("location", Value::Null),
        ("is_public", json!(false)),
        ("owner", Value::Null),
        ("protected", json!(false)),
        ("min_disk", json!(0)),
        ("min_ram", json!(0)),
        ("deleted", json!(false)),
        ("deleted_at", Value::Null),
        ("properties", json!({})),
    ] {
        assert_eq!(a[field], default, "default of {field}");
    }
    assert_eq!(srv.get(&format!("/images/{id}")).json(200)["image"], a);
}

#[test]
fn create_maps_null_minimums_to_zero() {
    let srv = TestServer::start();
    let image = srv.create(json!({"min_ram": null, "min_disk": null, "size": null}));
    assert_eq!(
        (&image["min_ram"], &image["min_disk"], &image["size"]),
        (&json!(0), &json!(0), &json!(0))
    );
}

#[test]
fn create_stores_a_non_canonical_id_in_canonical_form() {
    let srv = TestServer::start();
    for (given, canonical) in [
        (
            "DE2F2211-3AC7-4260-9142-41DB0ECFB425",
            "de2f2211-3ac7-4260-9142-41db0ecfb425",
        ),
        (
            "0e7fa4a2c5f14a5a9b3a8f2b1c6d7e80",
            "0e7fa4a2-c5f1-4a5a-9b3a-8f2b1c6d7e80",
        ),
        (
            "{1a2b3c4d-0000-4000-8000-00000000000a}",
            "1a2b3c4d-0000-4000-8000-00000000000a",
        ),
        (
            "urn:uuid:1a2b3c4d-0000-4000-8000-00000000000b",
            "1a2b3c4d-0000-4000-8000-00000000000b",
        ),
    ] {
        let image = srv.create(json!({"id": given, "name": given}));
        assert_eq!(image["id"], canonical, "stored id of {given}");
        let shown = srv.get(&format!("/images/{canonical}")).json(200);
        assert_eq!(shown["image"]["name"], given);
    }
    // A non-canonical path id of at most 36 characters finds the canonical record.
    for path_id in [
        "DE2F2211-3AC7-4260-9142-41DB0ECFB425",
        "0E7FA4A2C5F14A5A9B3A8F2B1C6D7E80",
    ] {
        let shown = srv.get(&format!("/images/{path_id}")).json(200);
        assert!(is_canonical_uuid(&id_of(&shown["image"])), "{shown}");
    }
}

#[test]
fn create_with_an_existing_id_is_409_in_any_form_and_even_when_deleted() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "name": "first"}));
    srv.try_create(json!({"id": ID, "name": "second"}))
        .assert_error(409, &format!("Image with identifier {ID} already exists!"));
    srv.try_create(json!({"id": ID.to_uppercase()}))
        .assert_error(409, "already exists");
    srv.delete(&format!("/images/{ID}")).json(200);
    srv.try_create(json!({"id": ID}))
        .assert_error(409, "already exists");
    let shown = srv.get(&format!("/images/{ID}")).json(200);
    assert_eq!(shown["image"]["name"], "first", "the original is untouched");
}

/// Sends each create body, expects 400 with its message, and checks nothing was stored.
#[track_caller]
fn assert_each_rejected(srv: &TestServer, cases: &[(Value, &str)]) {
    let before = every_id(srv);
    for (image, needle) in cases {
        let reply = srv.try_create(image.clone());
        assert_eq!(reply.status, 400, "{image}: {}", reply.text());
        reply.assert_error(400, "Failed to add image metadata");
        reply.assert_error(400, needle);
    }
    assert_eq!(every_id(srv), before, "a rejected create stored a record");
}

#[test]
fn create_rejects_an_unknown_empty_or_unsettable_status() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"status": "available"}),
                "Invalid image status 'available'",
            ),
            (json!({"status": "ACTIVE"}), "Invalid image status 'ACTIVE'"),
            (json!({"status": ""}), "Image status is required"),
            (json!({"status": null}), "Image status is required"),
            (
                json!({"status": "deleted"}),
                "Invalid image status 'deleted'",
            ),
            (
                json!({"status": "pending_delete"}),
                "Invalid image status 'pending_delete'",
            ),
        ],
    );
    for status in ["active", "saving", "queued", "killed"] {
        assert_eq!(srv.create(json!({"status": status}))["status"], status);
    }
}

#[test]
fn create_rejects_unknown_or_empty_formats() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"disk_format": "floppy"}),
                "Invalid disk format 'floppy'",
            ),
            (
                json!({"container_format": "box"}),
                "Invalid container format 'box'",
            ),
            (json!({"disk_format": "QCOW2"}), "disk format 'QCOW2'"),
            (json!({"disk_format": ""}), "disk_format must not be empty"),
            (
                json!({"container_format": ""}),
                "container_format must not be empty",
            ),
        ],
    );
    for disk in ["raw", "vhd", "vhdx", "vmdk", "vdi", "iso", "ploop", "qcow2"] {
        srv.create(json!({"disk_format": disk}));
    }
    for container in ["bare", "ovf", "ova", "docker"] {
        srv.create(json!({"container_format": container}));
    }
}

#[test]
fn create_rejects_amazon_formats_that_do_not_match() {
    let srv = TestServer::start();
    let mix = "Invalid mix of disk and container formats";
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"disk_format": "aki", "container_format": "bare"}),
                mix,
            ),
            (
                json!({"disk_format": "raw", "container_format": "ari"}),
                mix,
            ),
            (
                json!({"disk_format": "ami", "container_format": "aki"}),
                mix,
            ),
            (json!({"disk_format": "ami"}), mix),
            (json!({"container_format": "ari"}), mix),
        ],
    );
    for f in ["aki", "ari", "ami"] {
        let image = srv.create(json!({"disk_format": f, "container_format": f}));
        assert_eq!(
            (&image["disk_format"], &image["container_format"]),
            (&json!(f), &json!(f))
        );
    }
}

#[test]
fn create_rejects_an_id_that_is_not_a_uuid() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (json!({"id": "42"}), "Invalid image id format"),
            (json!({"id": 42}), "Invalid image id format"),
            (json!({"id": "not-a-uuid"}), "Invalid image id format"),
            (
                json!({"id": "de2f2211-3ac7-4260-9142-41db0ecfb42z"}),
                "Invalid image id format",
            ),
            (json!({"id": ""}), "Invalid image id format"),
        ],
    );
}

#[test]
fn create_enforces_the_length_limits_of_name_checksum_and_property_names() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (json!({"name": "n".repeat(256)}), "Image name too long: 256"),
            (json!({"name": "é".repeat(256)}), "Image name too long: 256"),
            (
                json!({"checksum": "a".repeat(33)}),
                "can't exceed 32 characters",
            ),
            (
                json!({"properties": {"k".repeat(256): "v"}}),
                "Property name too long",
            ),
        ],
    );
    let image = srv.create(json!({
        "name": "é".repeat(255),
        "checksum": "a".repeat(32),
        "properties": {"k".repeat(255): "v"}
    }));
    assert_eq!(image["name"].as_str().unwrap().chars().count(), 255);
}

#[test]
fn create_rejects_negative_and_non_integer_numbers() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"size": -1}),
                "parameter 'size': Cannot be a negative value",
            ),
            (
                json!({"size": "big"}),
                "Cannot convert image size 'big' to an integer",
            ),
            (
                json!({"size": 1.5}),
                "Cannot convert image size '1.5' to an integer",
            ),
            (
                json!({"min_ram": -5}),
                "parameter 'min_ram': Cannot be a negative value",
            ),
            (
                json!({"min_ram": "lots"}),
                "Cannot convert image min_ram 'lots' to an integer",
            ),
            (
                json!({"min_disk": -1}),
                "parameter 'min_disk': Cannot be a negative value",
            ),
            (
                json!({"min_disk": "1.0"}),
                "Cannot convert image min_disk '1.0' to an integer",
            ),
            (
                json!({"virtual_size": -2}),
                "parameter 'virtual_size': Cannot be a negative value",
            ),
        ],
    );
    let image = srv.create(json!({"size": "42", "min_ram": " 7 ", "virtual_size": "None"}));
    assert_eq!((&image["size"], &image["min_ram"]), (&json!(42), &json!(7)));
    assert_eq!(image["virtual_size"], Value::Null);
}

#[test]
fn create_rejects_min_disk_and_min_ram_above_2147483647() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"min_disk": 2_147_483_648_u64}),
                "'min_disk' value out of range, must not exceed 2147483647.",
            ),
            (
                json!({"min_ram": 2_147_483_648_u64}),
                "'min_ram' value out of range, must not exceed 2147483647.",
            ),
        ],
    );
    let image = srv.create(json!({"min_disk": 2_147_483_647, "min_ram": 2_147_483_647}));
    assert_eq!(image["min_disk"], 2_147_483_647);
}

#[test]
fn create_rejects_4_byte_unicode_in_any_value_or_property() {
    let srv = TestServer::start();
    let cat = "cat \u{1F408}";
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"name": cat}),
                "name can't contain 4 byte unicode characters",
            ),
            (json!({"owner": cat}), "owner can't contain 4 byte unicode"),
            (
                json!({"location": cat}),
                "location can't contain 4 byte unicode",
            ),
            (
                json!({"properties": {"k": cat}}),
                "property 'k' can't contain 4 byte unicode",
            ),
            (
                json!({"properties": {cat: "v"}}),
                "property name can't contain 4 byte unicode",
            ),
        ],
    );
    // Three-byte characters are fine.
    let image = srv.create(json!({"name": "€ 日本", "properties": {"ключ": "значение"}}));
    assert_eq!(image["name"], "€ 日本");
    assert_eq!(image["properties"]["ключ"], "значение");
}

#[test]
fn create_rejects_bad_timestamps() {
    let srv = TestServer::start();
    assert_each_rejected(
        &srv,
        &[
            (
                json!({"created_at": "yesterday"}),
                "Invalid time format for created_at.",
            ),
            (
                json!({"updated_at": "1850-01-01T00:00:00"}),
                "Invalid time format for updated_at.",
            ),
            (
                json!({"deleted_at": 5}),
                "Invalid time format for deleted_at.",
            ),
        ],
    );
}

#[test]
fn create_rejects_malformed_or_misshapen_bodies() {
    let srv = TestServer::start();
    for (body, needle) in [
        ("{", "Malformed JSON in request body"),
        ("", "Malformed JSON in request body"),
        ("{\"image\": {\"name\": \"x\"}} trailing", "Malformed JSON"),
        ("{}", "missing 'image' key"),
        ("{\"name\": \"x\"}", "missing 'image' key"),
        ("[1, 2]", "expected a JSON object with an 'image' key"),
        ("\"image\"", "expected a JSON object"),
        ("42", "expected a JSON object"),
        ("{\"image\": [1]}", "'image' must be an object"),
        ("{\"image\": null}", "'image' must be an object"),
        (
            "{\"image\": {\"properties\": [\"a\"]}}",
            "Invalid properties",
        ),
    ] {
        let reply = srv.post_raw("/images", body);
        reply.assert_error(400, "Failed to add image metadata");
        reply.assert_error(400, needle);
    }
    assert!(every_id(&srv).is_empty());
}

#[test]
fn get_returns_the_full_record_including_location() {
    let srv = TestServer::start();
    let created = srv.create(full_image(ID));
    let shown = srv.get(&format!("/images/{ID}")).json(200);
    assert_eq!(keys_of(&shown), ["image"]);
    assert_eq!(shown["image"], created);
    assert_eq!(
        shown["image"]["location"],
        "file:///var/lib/glint/images/cirros"
    );
}

#[test]
fn get_of_an_unknown_or_non_uuid_id_is_404() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID}));
    let unknown = "0b6e3c38-8b5c-4b55-9a8e-3f1fb1b5b2a1";
    srv.get(&format!("/images/{unknown}"))
        .assert_error(404, "not found");
    srv.get("/images/not-a-uuid")
        .assert_error(404, "not-a-uuid not found");
    srv.get("/images/42").assert_error(404, "not found");
    srv.get("/images/0123456789abcdef0123456789abcdef01234")
        .assert_error(404, "could not be found");
}
