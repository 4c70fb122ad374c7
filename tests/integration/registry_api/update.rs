//! `PUT /images/{id}` (§9.4) and `DELETE /images/{id}` (§9.5).

use serde_json::{json, Value};

use super::{every_id, full_image, time_of};
use crate::support::{id_of, TestServer};

const ID: &str = "de2f2211-3ac7-4260-9142-41db0ecfb425";
const PATH: &str = "/images/de2f2211-3ac7-4260-9142-41db0ecfb425";
const PURGE: (&str, &str) = ("X-Glance-Registry-Purge-Props", "true");

fn props(image: &Value) -> &Value {
    &image["properties"]
}

#[test]
fn update_merges_fields_bumps_updated_at_and_keeps_created_at() {
    let srv = TestServer::start();
    let before = srv.create(full_image(ID));
    let after = srv.update(
        ID,
        json!({"name": "renamed", "min_ram": 256, "checksum": null}),
    );
    for (field, value) in after.as_object().unwrap() {
        match field.as_str() {
            "name" => assert_eq!(value, "renamed"),
            "min_ram" => assert_eq!(value, 256),
            "checksum" => assert_eq!(value, &Value::Null),
            "updated_at" => assert!(
                time_of(&after, "updated_at") > time_of(&before, "updated_at"),
                "updated_at not bumped: {before} -> {after}"
            ),
            _ => assert_eq!(value, &before[field], "{field} changed"),
        }
    }
    assert_eq!(srv.get(PATH).json(200)["image"], after);
    let again = srv.update(ID, json!({"properties": {"os_distro": "cirros"}}));
    assert!(
        time_of(&again, "updated_at") > time_of(&after, "updated_at"),
        "a property-only change bumps updated_at too"
    );
}

#[test]
fn update_ignores_client_timestamps_and_the_deleted_flag() {
    let srv = TestServer::start();
    let before = srv.create(json!({"id": ID, "name": "n"}));
    let after = srv.update(
        ID,
        json!({
            "name": "m",
            "created_at": "2001-02-03T04:05:06.000000",
            "updated_at": "2001-02-03T04:05:06.000000",
            "deleted_at": "2001-02-03T04:05:06.000000",
            "deleted": true
        }),
    );
    assert_eq!(after["name"], "m");
    assert_eq!(after["created_at"], before["created_at"]);
    assert!(time_of(&after, "updated_at") > time_of(&before, "updated_at"));
    assert_eq!(after["deleted_at"], Value::Null);
    assert_eq!(after["deleted"], false);
    assert_eq!(after["status"], "active");
    assert_eq!(srv.get(PATH).json(200)["image"], after);
}

#[test]
fn update_upserts_properties_by_default() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "properties": {"a": "1", "b": "2"}}));
    let after = srv.update(ID, json!({"properties": {"b": "3", "c": null}}));
    assert_eq!(props(&after), &json!({"a": "1", "b": "3", "c": null}));
    let after = srv.update(ID, json!({"name": "no properties key"}));
    assert_eq!(props(&after), &json!({"a": "1", "b": "3", "c": null}));
}

#[test]
fn purge_props_header_replaces_the_properties() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "properties": {"a": "1", "b": "2"}}));
    let purge = |body: Value| {
        srv.put_json(PATH, &[PURGE], &json!({ "image": body }))
            .json(200)["image"]
            .clone()
    };
    let after = purge(json!({"properties": {"b": "3", "c": "4"}}));
    assert_eq!(props(&after), &json!({"b": "3", "c": "4"}));
    let after = purge(json!({"name": "body without properties"}));
    assert_eq!(props(&after), &json!({}), "nothing named, nothing kept");
    assert_eq!(after["name"], "body without properties");
    assert_eq!(props(&srv.get(PATH).json(200)["image"]), &json!({}));
    // The purged properties no longer match a filter.
    srv.update(ID, json!({"is_public": true}));
    assert!(srv.list_ids("/images?property-b=3").is_empty());
}

#[test]
fn purge_props_header_purges_only_when_exactly_true() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "properties": {"a": "1"}}));
    for value in ["false", "True", "TRUE", "1", "yes", ""] {
        let reply = srv.put_json(
            PATH,
            &[("X-Glance-Registry-Purge-Props", value)],
            &json!({"image": {"properties": {"b": "2"}}}),
        );
        assert_eq!(
            props(&reply.json(200)["image"]),
            &json!({"a": "1", "b": "2"}),
            "header value {value:?} must not purge (§9.4: only the exact string `true`)"
        );
    }
}

#[test]
fn update_with_a_mismatched_from_state_is_409_and_a_matching_one_applies() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "status": "queued"}));
    srv.put_json(
        PATH,
        &[],
        &json!({"image": {"status": "active"}, "from_state": "saving"}),
    )
    .assert_error(409, "Image operation conflicts");
    assert_eq!(srv.get(PATH).json(200)["image"]["status"], "queued");
    let reply = srv.put_json(
        PATH,
        &[],
        &json!({"image": {"status": "saving"}, "from_state": "queued"}),
    );
    assert_eq!(reply.json(200)["image"]["status"], "saving");
    srv.put_json(
        PATH,
        &[],
        &json!({"image": {"status": "killed"}, "from_state": "queued"}),
    )
    .assert_error(409, "Image operation conflicts");
    srv.put_json(PATH, &[], &json!({"image": {}, "from_state": "bogus"}))
        .assert_error(400, "Invalid from_state");
}

#[test]
fn update_that_changes_the_id_is_403_but_repeating_it_is_fine() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "name": "n"}));
    srv.put_json(
        PATH,
        &[],
        &json!({"image": {"id": "0b6e3c38-8b5c-4b55-9a8e-3f1fb1b5b2a1", "name": "x"}}),
    )
    .assert_error(403, "Forbidden to modify 'id' of image.");
    assert_eq!(srv.get(PATH).json(200)["image"]["name"], "n");
    let same = srv.update(ID, json!({"id": ID.to_uppercase(), "name": "m"}));
    assert_eq!((&same["id"], &same["name"]), (&json!(ID), &json!("m")));
}

#[test]
fn update_of_a_deleted_image_is_403() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID}));
    srv.delete(PATH).json(200);
    srv.put_json(PATH, &[], &json!({"image": {"name": "zombie"}}))
        .assert_error(403, "Forbidden to update deleted image.");
    assert_eq!(srv.get(PATH).json(200)["image"]["name"], Value::Null);
}

#[test]
fn update_of_an_unknown_or_non_uuid_id_is_404() {
    let srv = TestServer::start();
    srv.put_json(PATH, &[], &json!({"image": {"name": "x"}}))
        .assert_error(404, "not found");
    srv.put_json("/images/nope", &[], &json!({"image": {"name": "x"}}))
        .assert_error(404, "not found");
    assert!(every_id(&srv).is_empty(), "PUT must not create");
}

#[test]
fn update_with_invalid_values_is_400_and_changes_nothing() {
    let srv = TestServer::start();
    let stored = srv.create(json!({"id": ID, "disk_format": "aki", "container_format": "aki"}));
    for (body, needle) in [
        (
            json!({"status": "deleted"}),
            "Invalid image status 'deleted'",
        ),
        (json!({"status": ""}), "Image status is required"),
        (
            json!({"disk_format": "floppy"}),
            "Invalid disk format 'floppy'",
        ),
        (
            json!({"container_format": "bare"}),
            "Invalid mix of disk and container formats",
        ),
        (json!({"name": "x".repeat(256)}), "Image name too long: 256"),
        (
            json!({"min_disk": 2_147_483_648_u64}),
            "'min_disk' value out of range",
        ),
        (json!({"size": -1}), "Cannot be a negative value"),
        (json!({"checksum": "c".repeat(33)}), "can't exceed 32"),
        (json!({"properties": {"k": "\u{1F600}"}}), "4 byte unicode"),
        (json!({"id": "xyz"}), "Invalid image id format"),
    ] {
        let reply = srv.put_json(PATH, &[], &json!({ "image": body }));
        reply.assert_error(400, "Failed to update image metadata");
        reply.assert_error(400, needle);
    }
    for body in ["{", "[]", "{}", "{\"image\": 1}"] {
        srv.request(
            "PUT",
            PATH,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .assert_error(400, "Failed to update image metadata");
    }
    assert_eq!(srv.get(PATH).json(200)["image"], stored);
}

#[test]
fn delete_returns_the_deleted_record_which_get_still_shows_but_lists_hide() {
    let srv = TestServer::start();
    let created = srv.create(full_image(ID));
    let other = srv.create(json!({"is_public": true}));
    let deleted = srv.delete(PATH).json(200)["image"].clone();
    assert_eq!(deleted["status"], "deleted");
    assert_eq!(deleted["deleted"], true);
    let deleted_at = time_of(&deleted, "deleted_at");
    assert!(deleted_at >= time_of(&created, "updated_at"), "{deleted}");
    assert_eq!(deleted["created_at"], created["created_at"]);
    for field in [
        "name",
        "size",
        "location",
        "properties",
        "owner",
        "checksum",
    ] {
        assert_eq!(deleted[field], created[field], "{field}");
    }
    assert_eq!(srv.get(PATH).json(200)["image"], deleted);
    for path in [
        "/images",
        "/images/detail",
        "/images?is_public=None",
        "/images?name=cirros-0.3.4-x86_64",
        "/images?property-os_distro=cirros",
        "/images?status=deleted",
    ] {
        assert!(
            !srv.list_ids(path).contains(&ID.to_string()),
            "{path} lists a deleted image"
        );
    }
    assert_eq!(srv.list_ids("/images"), vec![id_of(&other)]);
}

#[test]
fn delete_of_a_deleted_unknown_or_non_uuid_image_is_404() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID}));
    srv.delete(PATH).json(200);
    srv.delete(PATH).assert_error(404, "not found");
    srv.delete("/images/0b6e3c38-8b5c-4b55-9a8e-3f1fb1b5b2a1")
        .assert_error(404, "not found");
    srv.delete("/images/nope").assert_error(404, "not found");
}
