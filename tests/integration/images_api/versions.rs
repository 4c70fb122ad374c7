//! Version negotiation (§2.3): `/versions` is 200, unversioned or unknown versions are 300 with
//! the versions document, `/v1`, `/v1.0` and `/v1.1` all reach v1, and so does the `Accept` media
//! type on an unprefixed path.

use serde_json::{json, Value};

use super::PUBLIC;
use crate::images_support::{id_of, ImageServer, Payload, Reply};

acceptance! {
    versions_is_200_with_the_v1_entries,
    unversioned_and_unknown_version_paths_are_300_with_the_versions_document,
    v1_v1_0_and_v1_1_prefixes_reach_the_same_images,
    accept_media_type_selects_v1_on_an_unprefixed_path,
}

/// The versions document of a server at `srv` (§2.3, v2 disabled).
fn versions_document(srv: &ImageServer) -> Value {
    let href = format!("http://{}/v1/", srv.addr());
    json!({"versions": [
        {"id": "v1.1", "status": "DEPRECATED", "links": [{"rel": "self", "href": href}]},
        {"id": "v1.0", "status": "DEPRECATED", "links": [{"rel": "self", "href": href}]},
    ]})
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
        "/v2/x",
        "/v2/images",
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
    let delete = srv.request("DELETE", "/v2/images/x", &[], Payload::Empty);
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
