//! Version negotiation (§2.3): `/versions` is 200, unversioned or unknown versions are 300 with
//! the versions document (v2.7 CURRENT down to v2.0, then v1.1 and v1.0 SUPPORTED), `/v1`,
//! `/v1.0` and `/v1.1` all reach v1, and so does the `Accept` media type on an unprefixed path.

use serde_json::{json, Value};

use super::PUBLIC;
use crate::support::{id_of, ImageServer, Payload, Reply};

acceptance! {
    versions_is_200_with_the_v1_entries,
    unversioned_and_unknown_version_paths_are_300_with_the_versions_document,
    v1_v1_0_and_v1_1_prefixes_reach_the_same_images,
    accept_media_type_selects_v1_on_an_unprefixed_path,
}

/// The versions document of a server at `srv`: every v2 minor version glint serves, newest
/// (CURRENT) first, then v1.
fn versions_document(srv: &ImageServer) -> Value {
    let link = |v: &str| json!([{"rel": "self", "href": format!("http://{}/{v}/", srv.addr())}]);
    let mut versions: Vec<Value> = (0..=7)
        .rev()
        .map(|minor| {
            let status = if minor == 7 { "CURRENT" } else { "SUPPORTED" };
            json!({"id": format!("v2.{minor}"), "status": status, "links": link("v2")})
        })
        .collect();
    for id in ["v1.1", "v1.0"] {
        versions.push(json!({"id": id, "status": "SUPPORTED", "links": link("v1")}));
    }
    json!({ "versions": versions })
}

#[track_caller]
fn assert_versions(reply: &Reply, status: u16, srv: &ImageServer) {
    assert_eq!(reply.json(status), versions_document(srv), "{reply:?}");
}

fn versions_is_200_with_the_v1_entries(srv: &ImageServer) {
    assert_versions(&srv.get("/versions"), 200, srv);
}

fn unversioned_and_unknown_version_paths_are_300_with_the_versions_document(srv: &ImageServer) {
    for path in [
        "/",
        "/images",
        "/images/detail",
        "/v2.0/images",
        "/v1.2/images",
        "/V1/images",
        "/v3/images",
        "/x",
    ] {
        assert_versions(&srv.get(path), 300, srv);
    }
    // Whatever the method (§2.3 rule 4).
    let post = srv.request("POST", "/images", &[], Payload::Empty);
    assert_versions(&post, 300, srv);
    let delete = srv.request("DELETE", "/v3/images/x", &[], Payload::Empty);
    assert_versions(&delete, 300, srv);
}

fn v1_v1_0_and_v1_1_prefixes_reach_the_same_images(srv: &ImageServer) {
    let image = srv.create(&[PUBLIC, ("x-image-meta-name", "prefixed")]);
    let id = id_of(&image);
    for prefix in ["/v1", "/v1.0", "/v1.1"] {
        for list in [format!("{prefix}/images"), format!("{prefix}/")] {
            assert_eq!(srv.list_ids(&list), std::slice::from_ref(&id), "{list}");
        }
        let detail = srv.list(&format!("{prefix}/images/detail"));
        assert_eq!(detail, std::slice::from_ref(&image), "{prefix}");
        let head = srv.request(
            "HEAD",
            &format!("{prefix}/images/{id}"),
            &[],
            Payload::Empty,
        );
        assert_eq!(head.status.as_u16(), 200, "{prefix}: {head:?}");
        assert_eq!(head.header("x-image-meta-name"), Some("prefixed"));
    }
    // `/v1` alone is the v1 root, the image list.
    assert_eq!(srv.list_ids("/v1"), [id]);
}

fn accept_media_type_selects_v1_on_an_unprefixed_path(srv: &ImageServer) {
    let image = srv.create(&[PUBLIC]);
    let id = id_of(&image);
    for version in ["v1", "v1.0", "v1.1"] {
        let accept = format!("application/vnd.openstack.images-{version}");
        let list = srv.get_with("/images", &[("accept", &accept)]);
        assert_eq!(list.json(200)["images"][0]["id"], image["id"], "{version}");
        let head = srv.request(
            "HEAD",
            &format!("/images/{id}"),
            &[("accept", &accept)],
            Payload::Empty,
        );
        assert_eq!(head.status.as_u16(), 200, "{version}: {head:?}");
    }
    // Any other version through Accept is not v1.
    for accept in [
        "application/vnd.openstack.images-v2",
        "application/vnd.openstack.images-v1.2",
        "application/json",
    ] {
        assert_versions(&srv.get_with("/images", &[("accept", accept)]), 300, srv);
    }
}
