//! Image members (§5.8) through the Images API, in both deployment shapes: replace, add, update
//! `can_share`, remove, the images shared with a member, the member quota, malformed bodies,
//! deleted images, and the 405s of the members routes.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::support::{id_of, ImageServer, Payload};

acceptance! {
    members_are_replaced_added_updated_and_removed,
    shared_images_lists_the_images_shared_with_a_member,
    member_quota_limits_replace_and_add[("GLINT_IMAGE_MEMBER_QUOTA", "2")],
    malformed_member_bodies_are_400,
    members_of_unknown_or_deleted_images_are_404,
    members_routes_answer_405_with_allow,
}

fn members_path(id: &str) -> String {
    format!("/v1/images/{id}/members")
}

fn put_json(srv: &ImageServer, path: &str, body: Value) -> crate::support::Reply {
    let data = Bytes::from(serde_json::to_vec(&body).unwrap());
    srv.request(
        "PUT",
        path,
        &[("content-type", "application/json")],
        Payload::Sized(data),
    )
}

/// `(member_id, can_share)` pairs of an image, as the API lists them.
#[track_caller]
fn members(srv: &ImageServer, id: &str) -> Vec<(String, bool)> {
    let body = srv.get(&members_path(id)).json(200);
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["member_id"].as_str().unwrap().to_string(),
                m["can_share"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(m, c)| (m.to_string(), *c)).collect()
}

fn members_are_replaced_added_updated_and_removed(srv: &ImageServer) {
    let id = id_of(&srv.create(&[("x-image-meta-name", "shared")]));
    assert_eq!(members(srv, &id), pairs(&[]));
    let reply = put_json(
        srv,
        &members_path(&id),
        json!({"memberships": [
        {"member_id": "t1", "can_share": true}, {"member_id": "t2"}]}),
    );
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(members(srv, &id), pairs(&[("t1", true), ("t2", false)]));
    // Adding without a body keeps can_share of an existing member and gives false to a new one.
    let reply = srv.request(
        "PUT",
        &format!("{}/t1", members_path(&id)),
        &[],
        Payload::Empty,
    );
    assert_eq!(reply.status, 204);
    let reply = srv.request(
        "PUT",
        &format!("{}/t3", members_path(&id)),
        &[],
        Payload::Empty,
    );
    assert_eq!(reply.status, 204);
    let reply = put_json(
        srv,
        &format!("{}/t2", members_path(&id)),
        json!({"member": {"can_share": true}}),
    );
    assert_eq!(reply.status, 204);
    assert_eq!(
        members(srv, &id),
        pairs(&[("t1", true), ("t2", true), ("t3", false)])
    );
    // Replacing makes the set exactly the list; omitted can_share keeps the current value.
    let reply = put_json(
        srv,
        &members_path(&id),
        json!({"memberships": [{"member_id": "t2"}, {"member_id": "t4"}]}),
    );
    assert_eq!(reply.status, 204);
    assert_eq!(members(srv, &id), pairs(&[("t2", true), ("t4", false)]));
    let reply = srv.request(
        "DELETE",
        &format!("{}/t2", members_path(&id)),
        &[],
        Payload::Empty,
    );
    assert_eq!(reply.status, 204);
    assert_eq!(members(srv, &id), pairs(&[("t4", false)]));
    srv.request(
        "DELETE",
        &format!("{}/t2", members_path(&id)),
        &[],
        Payload::Empty,
    )
    .assert_error(404, "Membership could not be found.");
}

fn shared_images_lists_the_images_shared_with_a_member(srv: &ImageServer) {
    let a = id_of(&srv.create(&[("x-image-meta-name", "a")]));
    let b = id_of(&srv.create(&[("x-image-meta-name", "b")]));
    put_json(
        srv,
        &members_path(&a),
        json!({"memberships": [{"member_id": "tenant-x", "can_share": true}]}),
    );
    put_json(
        srv,
        &members_path(&b),
        json!({"memberships": [{"member_id": "tenant-x"}, {"member_id": "tenant-y"}]}),
    );
    let shared = srv.get("/v1/shared-images/tenant-x").json(200);
    let mut got: Vec<(String, bool)> = shared["shared_images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["image_id"].as_str().unwrap().to_string(),
                s["can_share"].as_bool().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![(a.clone(), true), (b.clone(), false)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(srv.delete(&a).status, 200);
    let shared = srv.get("/v1/shared-images/tenant-x").json(200);
    assert_eq!(
        shared["shared_images"].as_array().unwrap().len(),
        1,
        "deleted images drop out"
    );
    let none = srv.get("/v1/shared-images/nobody").json(200);
    assert_eq!(none, json!({"shared_images": []}));
}

fn member_quota_limits_replace_and_add(srv: &ImageServer) {
    let id = id_of(&srv.create(&[]));
    put_json(
        srv,
        &members_path(&id),
        json!({"memberships": [{"member_id": "a"}, {"member_id": "b"}, {"member_id": "c"}]}),
    )
    .assert_error(413, "Attempted: 3, Maximum: 2");
    assert_eq!(members(srv, &id), pairs(&[]));
    let reply = put_json(
        srv,
        &members_path(&id),
        json!({"memberships": [{"member_id": "a"}, {"member_id": "b"}]}),
    );
    assert_eq!(reply.status, 204);
    // Adding counts current + 1, even for a member that exists (§5.8).
    srv.request(
        "PUT",
        &format!("{}/c", members_path(&id)),
        &[],
        Payload::Empty,
    )
    .assert_error(413, "Maximum: 2");
    srv.request(
        "PUT",
        &format!("{}/a", members_path(&id)),
        &[],
        Payload::Empty,
    )
    .assert_error(413, "Maximum: 2");
}

fn malformed_member_bodies_are_400(srv: &ImageServer) {
    let id = id_of(&srv.create(&[]));
    for body in [
        json!({}),
        json!({"memberships": 5}),
        json!({"memberships": [{"can_share": true}]}),
        json!({"memberships": [{"member_id": "t", "can_share": "yes"}]}),
    ] {
        put_json(srv, &members_path(&id), body).assert_error(400, "Invalid membership association");
    }
    put_json(
        srv,
        &format!("{}/t1", members_path(&id)),
        json!({"other": 1}),
    )
    .assert_error(400, "Invalid membership association");
    assert_eq!(members(srv, &id), pairs(&[]));
}

fn members_of_unknown_or_deleted_images_are_404(srv: &ImageServer) {
    let unknown = "00000000-0000-4000-8000-000000000000";
    srv.get(&members_path(unknown))
        .assert_error(404, "not found");
    let id = id_of(&srv.create(&[]));
    assert_eq!(srv.delete(&id).status, 200);
    srv.get(&members_path(&id))
        .assert_error(404, "has been deleted");
    put_json(srv, &members_path(&id), json!({"memberships": []}))
        .assert_error(404, "has been deleted");
    srv.request(
        "PUT",
        &format!("{}/t1", members_path(&id)),
        &[],
        Payload::Empty,
    )
    .assert_error(404, "has been deleted");
}

fn members_routes_answer_405_with_allow(srv: &ImageServer) {
    let id = id_of(&srv.create(&[]));
    let reply = srv.request("POST", &members_path(&id), &[], Payload::Empty);
    assert_eq!(
        (reply.status.as_u16(), reply.header("allow")),
        (405, Some("GET, PUT"))
    );
    let reply = srv.get(&format!("{}/t1", members_path(&id)));
    assert_eq!(
        (reply.status.as_u16(), reply.header("allow")),
        (405, Some("GET, PUT, DELETE"))
    );
}
