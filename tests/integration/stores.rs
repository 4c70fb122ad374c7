//! The image data stores against real servers on loopback (issue 4): S3 (Ceph radosgw), Swift
//! (tempauth) and the read-only http store (nginx), each driven through glint's Images API, with
//! what glint left in the real server checked with the server's own API.
//!
//! The servers come from `scripts/services/start-*.sh` (started by `scripts/test.sh`); their
//! variables are read from the environment. A missing server fails the test when
//! `GLINT_REQUIRE_STORES=1` (CI) and is reported with a loud `SKIPPED:` line otherwise.
//!
//! * `s3` – uploads (Content-Length, chunked), multipart, delete, disconnect, credentials.
//! * `swift` – the same for Swift, with segments and manifests.
//! * `http` – registration by `http://` location, redirects, origin failures, read-only.

mod http;
mod https;
mod s3;
mod swift;

use crate::stores_support::{Api, Glint, Reply};

/// The image of a `201` upload: asserts it is active with `size` and `md5` as checksum, and the
/// response's `ETag`; returns its id.
#[track_caller]
fn assert_uploaded(reply: &Reply, size: u64, md5: &str) -> String {
    let image = reply.json(201)["image"].clone();
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["size"].as_u64(), Some(size), "{image}");
    assert_eq!(image["checksum"].as_str(), Some(md5), "{image}");
    assert_eq!(reply.header("etag"), Some(md5), "{reply:?}");
    image["id"].as_str().unwrap().to_string()
}

/// Downloads `id` and asserts `200`, `size` bytes with MD5 `md5` (= ETag, = checksum header,
/// = Content-Length); answers the bytes when `keep`.
#[track_caller]
fn assert_download(api: &Api, id: &str, size: u64, md5: &str, keep: bool) -> Option<Vec<u8>> {
    let got = api.download(id, keep);
    assert_eq!(got.status.as_u16(), 200, "GET {id}: {got:?}");
    let size_text = size.to_string();
    assert_eq!(got.header("content-length"), Some(size_text.as_str()));
    assert_eq!(got.len, size, "bytes received for {id}");
    assert_eq!(got.md5, md5, "MD5 of the download of {id}");
    assert_eq!(
        got.header("etag"),
        Some(md5),
        "ETag of the download of {id}"
    );
    assert_eq!(got.header("x-image-meta-checksum"), Some(md5));
    got.data
}

/// Asserts an error reply: `status`, glint's error format, a message that contains every one of
/// `needles` and none of `secrets`.
#[track_caller]
fn assert_clear_error(reply: &Reply, status: u16, needles: &[&str], secrets: &[&str]) {
    let text = reply.text();
    assert_eq!(reply.status.as_u16(), status, "body: {text}");
    let title = format!(
        "{status} {}\n\n",
        reply.status.canonical_reason().unwrap_or("")
    );
    assert!(
        text.starts_with(&title),
        "expected {title:?} first: {text:?}"
    );
    for needle in needles {
        assert!(text.contains(needle), "expected {needle:?} in {text:?}");
    }
    assert_no_secret(&reply.everything(), secrets, "the error reply");
}

/// Asserts that none of `secrets` occurs in `text` (`what` names the text).
#[track_caller]
fn assert_no_secret(text: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

/// The status of `id` as the detail list shows it (killed images included).
#[track_caller]
fn status_in_detail(api: &Api, id: &str) -> String {
    let image = api
        .detail_of(id)
        .unwrap_or_else(|| panic!("{id} is not in the detail list"));
    image["status"].as_str().unwrap().to_string()
}

#[test]
fn uploads_to_an_unconfigured_store_and_its_locations_are_refused_with_400() {
    let glint = Glint::start(&[], false);
    let id = uuid::Uuid::new_v4().to_string();
    for store in ["s3", "swift"] {
        let reply = glint.upload(
            "nowhere",
            &[("x-image-meta-store", store), ("x-image-meta-id", &id)],
            crate::stores_support::Payload::Sized(vec![1u8; 1000].into()),
        );
        assert_clear_error(&reply, 400, &[store, "invalid"], &[]);
    }
    for location in [
        "s3://127.0.0.1:17480/glance/x",
        "swift+http://127.0.0.1:18080/auth/v1.0/glance/x",
    ] {
        let reply = glint.post(&[
            ("x-image-meta-name", "nowhere"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-location", location),
        ]);
        assert_clear_error(&reply, 400, &["External sources are not supported"], &[]);
    }
    // Nothing was created by any of the refused requests.
    assert!(glint.detail_of(&id).is_none());
    let all = glint.get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=None");
    assert_eq!(all.json(200)["images"], serde_json::json!([]));
}
