//! Routing and the error format: 404 versus 405 with `Allow` (§9.2, §5.0), error bodies (§5.9),
//! and the request body size limit.

use serde_json::json;

use super::every_id;
use crate::support::TestServer;

const ID: &str = "de2f2211-3ac7-4260-9142-41db0ecfb425";

/// Largest JSON request body the registry reads (4 MiB).
const MAX_BODY: usize = 4 << 20;

#[test]
fn wrong_method_is_405_with_the_exact_allow_header() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID}));
    let image = format!("/images/{ID}");
    let unknown = "/images/0b6e3c38-8b5c-4b55-9a8e-3f1fb1b5b2a1";
    let cases: [(&str, &[&str], &str); 6] = [
        ("/", &["POST", "PUT", "DELETE", "PATCH", "HEAD"], "GET"),
        ("/images", &["PUT", "DELETE", "PATCH", "HEAD"], "GET, POST"),
        ("/images?limit=1", &["DELETE"], "GET, POST"),
        (
            "/images/detail",
            &["POST", "PUT", "DELETE", "PATCH", "HEAD"],
            "GET",
        ),
        (
            &image,
            &["POST", "PATCH", "HEAD", "OPTIONS"],
            "GET, PUT, DELETE",
        ),
        (unknown, &["POST", "PATCH"], "GET, PUT, DELETE"),
    ];
    for (path, methods, allow) in cases {
        for method in methods {
            let reply = srv.request(method, path, &[], "{\"image\": {}}");
            assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text());
            assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
            if *method != "HEAD" {
                reply.assert_error(405, "not allowed");
            }
        }
    }
    assert_eq!(every_id(&srv), [ID], "a refused request stored something");
}

#[test]
fn unknown_paths_are_404() {
    let srv = TestServer::start();
    srv.create(json!({"id": ID, "is_public": true}));
    for path in [
        "/images/",
        "/images.json",
        "/images/detail/",
        "/v1/images",
        "/v1/",
        "/versions",
        "/imagesx",
        "/image",
        "/images//detail",
        "/images/a/b",
        &format!("/images/{ID}/"),
        &format!("/images/{ID}x"),
    ] {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            srv.request(method, path, &[], "{\"image\": {}}")
                .assert_error(404, "The resource could not be found.");
        }
    }
    // A suffix on `detail` makes it an image id that names no image (§14 #19: 404).
    for method in ["GET", "PUT", "DELETE"] {
        srv.request(method, "/images/detail.json", &[], "{\"image\": {}}")
            .assert_error(404, "not found");
    }
    assert_eq!(every_id(&srv), [ID]);
}

#[test]
fn error_body_is_the_status_line_a_blank_line_and_the_message() {
    let srv = TestServer::start();
    for (reply, title) in [
        (srv.get("/nowhere"), "404 Not Found\n\n"),
        (srv.get("/images?limit=-3"), "400 Bad Request\n\n"),
        (
            srv.post_raw("/images", "{\"image\": {\"id\": \"1\"}}"),
            "400 Bad Request\n\n",
        ),
        (
            srv.request("PATCH", "/images", &[], ""),
            "405 Method Not Allowed\n\n",
        ),
    ] {
        let text = reply.text();
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=UTF-8")
        );
        let message = text
            .strip_prefix(title)
            .and_then(|rest| rest.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("not `{title:?}<message>\\n`: {text:?}"));
        assert!(!message.trim().is_empty(), "{text:?}");
        assert!(!message.contains('\n'), "one message line: {text:?}");
    }
}

/// `{"image": {"name": "big"}}` padded with JSON whitespace to exactly `len` bytes.
fn padded_body(len: usize) -> String {
    let mut body = String::from("{\"image\": {\"name\": \"big\"}");
    body.push_str(&" ".repeat(len - body.len() - 1));
    body.push('}');
    assert_eq!(body.len(), len);
    body
}

#[test]
fn json_body_over_4_mib_is_413_and_4_mib_is_accepted() {
    let srv = TestServer::start();
    srv.post_raw("/images", padded_body(MAX_BODY + 1))
        .assert_error(413, "larger than");
    assert!(every_id(&srv).is_empty());
    let image = srv.post_raw("/images", padded_body(MAX_BODY)).json(200);
    assert_eq!(image["image"]["name"], "big");
    let path = format!("/images/{}", image["image"]["id"].as_str().unwrap());
    srv.request(
        "PUT",
        &path,
        &[("content-type", "application/json")],
        padded_body(MAX_BODY + 1),
    )
    .assert_error(413, "larger than");
    assert_eq!(srv.get(&path).json(200)["image"]["name"], "big");
}

/// The Registry API answers `/healthcheck` like the Images API, and sends a request id.
#[test]
fn registry_healthcheck_is_ok_and_responses_carry_request_ids() {
    let srv = crate::support::TestServer::start();
    let reply = srv.get("/healthcheck");
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.text(), "OK");
    let id = reply.header("x-openstack-request-id").unwrap_or_default();
    assert!(id.starts_with("req-") && id.len() == 40, "{id:?}");
}
