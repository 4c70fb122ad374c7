//! Routing answers (§5.0, §5.4): unknown or malformed ids and unknown paths are 404, a download
//! of an image that is not active is 404, and a known path with the wrong method is 405 with
//! `Allow`.

use crate::support::{id_of, ImageServer, Payload};

acceptance! {
    download_of_an_image_that_is_not_active_is_404,
    unknown_or_malformed_ids_are_404,
    non_canonical_ids_in_the_path_find_the_image,
    wrong_methods_are_405_with_allow,
    unknown_paths_under_v1_are_404,
}

fn download_of_an_image_that_is_not_active_is_404(srv: &ImageServer) {
    let queued = srv.create(&[]);
    let id = id_of(&queued);
    srv.download(&id)
        .assert_error(404, &format!("Image {id} is not active"));
    let deleted = srv.create_with_data(&[], b"gone");
    let deleted_id = id_of(&deleted);
    assert_eq!(srv.delete(&deleted_id).status.as_u16(), 200);
    srv.download(&deleted_id).assert_error(404, "not active");
}

fn unknown_or_malformed_ids_are_404(srv: &ImageServer) {
    let unknown = "3f2b1a6e-0000-4000-8000-000000000000";
    let longer = format!("{unknown}0");
    for id in [unknown, "not-a-uuid", "42", longer.as_str()] {
        let head = srv.head(id);
        assert_eq!(head.status.as_u16(), 404, "HEAD {id}: {head:?}");
        assert!(head.body.is_empty(), "HEAD has no body");
        srv.download(id).assert_error(404, "");
        srv.put(id, &[("x-image-meta-name", "x")])
            .assert_error(404, "");
        srv.delete(id).assert_error(404, "");
    }
    srv.download(unknown)
        .assert_error(404, &format!("Image with identifier {unknown} not found"));
    srv.put_data(unknown, &super::RAW_BARE, b"data")
        .assert_error(404, "not found");
    assert!(srv.image_files().is_empty());
}

fn wrong_methods_are_405_with_allow(srv: &ImageServer) {
    let id = id_of(&srv.create(&[]));
    let item = format!("/v1/images/{id}");
    let cases: Vec<(&str, &str, &str)> = vec![
        ("HEAD", "/v1/images/detail", "GET"),
        ("POST", "/v1/images/detail", "GET, HEAD"),
        ("DELETE", "/v1/images/detail", "GET, HEAD"),
        ("PUT", "/v1/images", "GET, POST"),
        ("DELETE", "/v1/images", "GET, POST"),
        ("POST", &item, "GET, HEAD, PUT, DELETE"),
        ("PATCH", &item, "GET, HEAD, PUT, DELETE"),
        ("POST", "/v1/", "GET"),
    ];
    for (method, path, allow) in cases {
        let reply = srv.request(method, path, &[], Payload::Empty);
        assert_eq!(reply.status.as_u16(), 405, "{method} {path}: {reply:?}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        if method != "HEAD" {
            reply.assert_error(405, "");
        }
    }
}

fn unknown_paths_under_v1_are_404(srv: &ImageServer) {
    let id = id_of(&srv.create(&[]));
    for path in [
        "/v1/images.json".to_string(),
        "/v1/images/".to_string(),
        "/v1/images/detail.json".to_string(),
        format!("/v1/images/{id}/extra"),
        "/v1/nothing".to_string(),
    ] {
        srv.get(&path).assert_error(404, "");
    }
}

fn non_canonical_ids_in_the_path_find_the_image(srv: &ImageServer) {
    let image = srv.create_with_data(&[], b"by any spelling");
    let id = id_of(&image);
    // §14 #18: upper case and no dashes are accepted and looked up in canonical form.
    for spelling in [id.to_uppercase(), id.replace('-', "")] {
        let head = srv.head(&spelling);
        assert_eq!(head.status.as_u16(), 200, "{spelling}: {head:?}");
        assert_eq!(head.header("x-image-meta-id"), Some(id.as_str()));
        assert_eq!(srv.download(&spelling).body.as_ref(), b"by any spelling");
    }
}
