//! What operators rely on (issue 17): `x-openstack-request-id` on every response, echoed when
//! the client sent a valid one and named in the log lines of that request; `/healthcheck` on
//! both ports, flipping to 503 while the disable file exists or the store directory is
//! unusable, and back; JSON log lines on request.

use std::time::Duration;

use crate::support::{ImageServer, Payload, Reply, Shape};

acceptance! {
    every_response_carries_a_request_id_that_names_its_log_lines [("GLINT_DEBUG", "true")],
    json_logs_are_one_object_per_line_with_the_request_id [
        ("GLINT_DEBUG", "true"), ("GLINT_USE_JSON", "true"),
    ],
}

fn request_id(reply: &Reply) -> String {
    let id = reply
        .header("x-openstack-request-id")
        .unwrap_or_else(|| panic!("no request id: {reply:?}"))
        .to_string();
    let uuid = id.strip_prefix("req-").unwrap_or_else(|| panic!("{id}"));
    assert!(
        uuid::Uuid::try_parse(uuid).is_ok() && uuid.len() == 36,
        "{id}"
    );
    id
}

/// Waits until the servers' logs hold `needle` (lines are read by another thread).
fn logged(srv: &ImageServer, needle: &str) -> bool {
    for _ in 0..50 {
        if srv.logs().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn every_response_carries_a_request_id_that_names_its_log_lines(srv: &ImageServer) {
    let ok = srv.get("/v1/images");
    let missing = srv.get("/v1/images/00000000-0000-0000-0000-00000000abcd");
    let refused = srv.request("PATCH", "/v2/images/x", &[], Payload::Empty);
    let (a, b, c) = (request_id(&ok), request_id(&missing), request_id(&refused));
    assert!(a != b && b != c && a != c, "ids are new per request");
    let mine = "req-6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f";
    let echoed = srv.get_with("/v2/images", &[("x-openstack-request-id", mine)]);
    assert_eq!(request_id(&echoed), mine);
    let bogus = srv.get_with("/v2/images", &[("x-openstack-request-id", "req-<script>")]);
    assert_ne!(
        request_id(&bogus),
        "req-<script>",
        "an invalid id is replaced"
    );
    // The request's log line names it.
    assert!(
        logged(srv, mine),
        "no log line names {mine}:\n{}",
        srv.logs()
    );
    assert!(logged(srv, &b), "no log line names {b}:\n{}", srv.logs());
}

/// Each shape with its own disable file (the tests run in parallel).
#[test]
fn healthcheck_follows_the_disable_file_and_the_store_directory() {
    for shape in [Shape::Serve, Shape::Split] {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("healthcheck_disable");
        let srv = ImageServer::start(
            shape,
            &[("GLINT_DISABLE_BY_FILE_PATH", flag.to_str().unwrap())],
        );
        healthcheck_flips(&srv, &flag);
    }
}

fn healthcheck_flips(srv: &ImageServer, flag: &std::path::Path) {
    let ok = srv.get("/healthcheck");
    assert_eq!((ok.status.as_u16(), ok.text().as_str()), (200, "OK"));
    let head = srv.request("HEAD", "/healthcheck", &[], Payload::Empty);
    assert_eq!(head.status.as_u16(), 204);

    std::fs::write(flag, "draining").unwrap();
    let disabled = srv.get("/healthcheck");
    assert_eq!(disabled.status.as_u16(), 503);
    assert!(
        disabled.text().contains("DISABLED BY FILE"),
        "{}",
        disabled.text()
    );
    std::fs::remove_file(flag).unwrap();
    assert_eq!(srv.get("/healthcheck").status.as_u16(), 200);

    // The store directory replaced by a file: uploads cannot work, so the check fails (a
    // permission change would not do: the tests run as root), and recovers once it is back.
    let images = srv.images_dir();
    let aside = images.with_extension("aside");
    std::fs::rename(&images, &aside).unwrap();
    std::fs::write(&images, "not a directory").unwrap();
    let broken = srv.get("/healthcheck");
    std::fs::remove_file(&images).unwrap();
    std::fs::rename(&aside, &images).unwrap();
    assert_eq!(broken.status.as_u16(), 503, "{}", broken.text());
    assert!(
        broken.text().contains("default store unusable"),
        "{}",
        broken.text()
    );
    assert_eq!(srv.get("/healthcheck").status.as_u16(), 200);
}

fn json_logs_are_one_object_per_line_with_the_request_id(srv: &ImageServer) {
    let reply = srv.get("/v1/images");
    let id = request_id(&reply);
    assert!(logged(srv, &id), "{}", srv.logs());
    let line = srv
        .logs()
        .lines()
        .find(|l| l.contains(&id))
        .unwrap()
        .to_string();
    let line = line.trim_start_matches("api:").trim();
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(value["span"]["id"], id.as_str(), "{value}");
    assert_eq!(value["level"], "DEBUG", "{value}");
}

/// The value of the sample `name` (labels included, as exposed) in a `/metrics` text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// `/metrics` after known traffic: requests by route and status, the bytes into and out of the
/// filesystem store, no upload in flight, images by status, and registry flushes.
#[test]
fn metrics_count_known_traffic() {
    let srv = ImageServer::start(Shape::Serve, &[]);
    let data = vec![7u8; 100_000];
    let image = srv.create_with_data(&[], &data);
    let id = crate::support::id_of(&image);
    for _ in 0..2 {
        assert_eq!(srv.download(&id).status.as_u16(), 200);
    }
    assert_eq!(
        srv.head("00000000-0000-0000-0000-000000000000")
            .status
            .as_u16(),
        404
    );
    let reply = srv.get("/metrics");
    assert_eq!(reply.status.as_u16(), 200);
    assert!(reply
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/openmetrics-text"));
    let text = reply.text();
    let want = [
        ("glint_http_requests_total{server=\"api\",route=\"v1.create\",method=\"POST\",status=\"201\"}", 1.0),
        ("glint_http_requests_total{server=\"api\",route=\"v1.download\",method=\"GET\",status=\"200\"}", 2.0),
        ("glint_http_requests_total{server=\"api\",route=\"v1.head\",method=\"HEAD\",status=\"404\"}", 1.0),
        ("glint_store_bytes_total{store=\"file\",direction=\"in\"}", 100_000.0),
        ("glint_store_bytes_total{store=\"file\",direction=\"out\"}", 200_000.0),
        ("glint_uploads_in_flight", 0.0),
        ("glint_images{status=\"active\"}", 1.0),
        ("glint_http_request_duration_seconds_count{server=\"api\",route=\"v1.download\"}", 2.0),
    ];
    for (name, value) in want {
        assert_eq!(sample(&text, name), Some(value), "{name} in:\n{text}");
    }
    let flushes = sample(&text, "glint_registry_flush_duration_seconds_count").unwrap_or(0.0);
    assert!(flushes >= 1.0, "no registry flush counted:\n{text}");
}
