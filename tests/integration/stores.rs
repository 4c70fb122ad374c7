//! The image data stores against real servers on loopback (issue 4): S3 (Ceph radosgw), Swift
//! (tempauth, and Keystone v3) and the read-only http store (nginx), each driven through glint's
//! Images API, with what glint left in the real server checked with the server's own API.
//!
//! The servers come from `scripts/services/start-*.sh` (started by `scripts/test.sh`); their
//! variables are read from the environment. A missing server fails the test when
//! `GLINT_REQUIRE_STORES=1` (CI) and is reported with a loud `SKIPPED:` line otherwise.
//!
//! * `shared` – the tests of every object store, written once over [`RealStore`]: uploads
//!   (Content-Length, chunked, in parts, 300 MiB in flat memory), delete, a missing bucket or
//!   container, client disconnect, wrong credentials, secrets, checksum mismatch, ranged reads
//!   across pieces that read only the range from the server.
//! * `s3`, `swift` – each store's [`RealStore`] (how to configure glint for it and how to see
//!   what glint left in the server), the shared tests instantiated by [`store_tests!`], and the
//!   tests only that store has (S3: a location in another bucket; Swift: default store, token
//!   renewal, Keystone v3).
//! * `http`, `https` – registration by `http://` and `https://` location, redirects, origin
//!   failures, read-only, ranged reads (and an origin that ignores Range).

use crate::support::{ApiClient, ImageServer, Payload, Reply, ALL_IMAGES};

/// Instantiates the shared tests (functions of `shared`, generic over [`RealStore`]) for one
/// store type, as `#[test]`s of the invoking module.
macro_rules! store_tests {
    ($store:ty: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::shared::$name::<$store>();
            }
        )*
    };
}

mod http;
mod https;
mod s3;
mod shared;
mod swift;

/// Size (MiB) from which uploads of known size go in parts or segments, in every store test.
const LARGE_MB: u64 = 16;

/// Part or segment size (MiB) of the store tests.
const PIECE_MB: u64 = 8;

/// A real object store as the shared tests see it: a direct client of one bucket or container
/// (which removes it with its contents on drop), and what differs per store.
trait RealStore: Sized {
    /// The store's name in `x-image-meta-store`.
    const NAME: &'static str;
    /// The store's `store` label in glint's metrics.
    const STORE_METRIC: &'static str;
    /// Added to the seeds of the shared tests, so that each store gets its own data.
    const SEED: u64;
    /// Headers that send an upload to this store when the test relies on the configured
    /// default (none for S3, the default store of its configuration).
    const DEFAULT_HEADERS: &'static [(&'static str, &'static str)];
    /// glint's option that creates the bucket or container on the first upload.
    const CREATE_OPTION: &'static str;
    /// `(seed, chunked)` of the 300 MiB uploads.
    const BIG_UPLOADS: &'static [(u64, bool)];
    /// Whether the `PUT` of data to a queued image in the secrets test is chunked.
    const PUT_CHUNKED: bool;
    /// The server's variables.
    type Env: Clone;
    /// Held for the whole test (Swift: the shared tempauth token).
    type Hold;

    /// The server's variables, or `None` (after a `SKIPPED:` line) outside CI.
    fn env() -> Option<Self::Env>;
    /// Takes what every test of this store holds.
    fn hold() -> Self::Hold;
    /// glint's variables for `container`, pieces of `piece_mb` MiB from [`LARGE_MB`] on.
    fn config(env: &Self::Env, container: &str, piece_mb: u64) -> Vec<(String, String)>;
    /// A direct client of `container` (which need not exist yet).
    fn direct(env: &Self::Env, container: &str) -> Self;
    /// The server's secret (never to be shown by glint).
    fn secret(env: &Self::Env) -> String;
    /// A Glance-style location of `id` in `container` that carries the credentials with
    /// `secret` as the secret.
    fn location_with_secret(env: &Self::Env, container: &str, id: &str, secret: &str) -> String;
    /// Whether a location with a wrong secret is checked (and refused) at registration.
    const CHECKS_LOCATION_SECRET: bool;
    /// The cases of the wrong-credentials test.
    fn credential_cases(env: &Self::Env) -> Vec<CredentialCase>;
    /// Every secret of the wrong-credentials test, right and wrong ones.
    fn credential_secrets(env: &Self::Env) -> Vec<String>;

    /// Creates the bucket or container.
    fn create_container(&self);
    /// Whether the bucket or container exists.
    fn container_exists(&self) -> bool;
    /// Asserts that `id` is one plain object whose ETag is `md5`.
    fn assert_one_object(&self, id: &str, md5: &str);
    /// Asserts what a small chunked upload of `id` (unknown size, one piece) left.
    fn assert_small_chunked(&self, id: &str);
    /// Asserts that `id` is stored in exactly `count` parts or segments.
    fn assert_pieces(&self, id: &str, count: u64);
    /// Whether an upload of `id` in pieces is under way in the server.
    fn upload_under_way(&self, id: &str) -> bool;
    /// Asserts that the server holds nothing for `id`, neither object nor piece.
    fn assert_nothing_for(&self, id: &str);
    /// Asserts that the bucket or container holds nothing at all.
    fn assert_empty(&self);
}

/// One case of the wrong-credentials test.
struct CredentialCase {
    /// What the case is, for messages.
    what: &'static str,
    /// glint's variables set over the store's configuration.
    set: Vec<(String, String)>,
    /// Whether glint uses a fresh bucket or container (and must not create it) rather than an
    /// existing one.
    fresh: bool,
    /// The upload's size.
    size: u64,
    /// What the error message must say.
    needles: Vec<&'static str>,
}

/// The image of a `201` upload: asserts it is active with `size` and `md5` as checksum, and the
/// response's `ETag`; returns its id.
#[track_caller]
fn assert_uploaded(reply: &Reply, size: u64, md5: &str) -> String {
    let image = reply.json(201)["image"].clone();
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["size"].as_u64(), Some(size), "{image}");
    assert_eq!(image["checksum"].as_str(), Some(md5), "{image}");
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{md5}\"").as_str()),
        "{reply:?}"
    );
    image["id"].as_str().unwrap().to_string()
}

/// Downloads `id` and asserts `200`, `size` bytes with MD5 `md5` (= ETag, = checksum header,
/// = Content-Length); answers the bytes when `keep`.
#[track_caller]
fn assert_download(api: &ApiClient, id: &str, size: u64, md5: &str, keep: bool) -> Option<Vec<u8>> {
    let got = api.download_hashed(id, keep);
    assert_eq!(got.status.as_u16(), 200, "GET {id}: {got:?}");
    let size_text = size.to_string();
    assert_eq!(got.header("content-length"), Some(size_text.as_str()));
    assert_eq!(got.len, size, "bytes received for {id}");
    assert_eq!(got.md5, md5, "MD5 of the download of {id}");
    assert_eq!(
        got.header("etag"),
        Some(format!("\"{md5}\"").as_str()),
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
fn status_in_detail(api: &ApiClient, id: &str) -> String {
    let image = api
        .detail_of(id)
        .unwrap_or_else(|| panic!("{id} is not in the detail list"));
    image["status"].as_str().unwrap().to_string()
}

/// `POST /v1/images` registering `location` (raw/bare, named `name`).
#[track_caller]
fn register(api: &ApiClient, name: &str, location: &str) -> Reply {
    api.post(&[
        ("x-image-meta-name", name),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
        ("x-image-meta-location", location),
    ])
}

/// Asserts that glint holds no image at all.
#[track_caller]
fn assert_no_images(api: &ApiClient) {
    assert_eq!(api.list(ALL_IMAGES), Vec::<serde_json::Value>::new());
}

#[test]
fn uploads_to_an_unconfigured_store_and_its_locations_are_refused_with_400() {
    let glint = ImageServer::serve(&[], false);
    let id = uuid::Uuid::new_v4().to_string();
    for store in ["s3", "swift"] {
        let reply = glint.upload(
            "nowhere",
            &[("x-image-meta-store", store), ("x-image-meta-id", &id)],
            Payload::Sized(vec![1u8; 1000].into()),
        );
        assert_clear_error(&reply, 400, &[store, "invalid"], &[]);
    }
    for location in [
        "s3://127.0.0.1:17480/glance/x",
        "swift+http://127.0.0.1:18080/auth/v1.0/glance/x",
    ] {
        let reply = register(&glint, "nowhere", location);
        assert_clear_error(&reply, 400, &["External sources are not supported"], &[]);
    }
    // Nothing was created by any of the refused requests.
    assert!(glint.detail_of(&id).is_none());
    assert_no_images(&glint);
}
