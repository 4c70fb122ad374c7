//! The Swift store against Swift with tempauth: every test has its own container (created by
//! glint on the first upload, removed with its contents when the test ends) and its own
//! `glint serve`.

use std::io::{Read, Write};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::Bytes;

use super::{assert_clear_error, assert_download, assert_no_secret, assert_uploaded};
use crate::stores_support::{
    close, eventually, generated_md5, md5_hex, set_var, swift_config, swift_env, test_data,
    unique_name, Glint, Payload, SwiftDirect, SwiftEnv, MIB,
};

/// Large-object size (MiB) of the tests: uploads of known size below it go as one object.
const LARGE_MB: u64 = 16;

/// Segment size (MiB) of the tests.
const CHUNK_MB: u64 = 8;

/// Taken shared by every test of this file and exclusively by the one that expires the user's
/// token: all the tests log in as the same user, so they share one tempauth token, and an upload
/// streaming when it is expired would fail (a streamed body cannot be sent again).
static TOKEN: RwLock<()> = RwLock::new(());

/// A hold on [`TOKEN`].
#[allow(dead_code)] // held for its drop
enum TokenHold {
    Shared(RwLockReadGuard<'static, ()>),
    Exclusive(RwLockWriteGuard<'static, ()>),
}

/// A test's Swift world: glint over a fresh container, and a direct client of that container.
struct SwiftWorld {
    /// The service; dropped (killed) first.
    glint: Glint,
    /// The container as Swift sees it; removes it on drop.
    direct: SwiftDirect,
    /// The server's variables.
    env: SwiftEnv,
    /// The container's name.
    container: String,
    /// Released last, after the container is gone.
    _token: TokenHold,
}

/// glint (with `-d` when `debug`) over a fresh container, or `None` when the Swift server is
/// not configured (outside CI).
fn world(debug: bool) -> Option<SwiftWorld> {
    let hold = TokenHold::Shared(TOKEN.read().unwrap_or_else(|e| e.into_inner()));
    world_holding(debug, hold)
}

fn world_holding(debug: bool, hold: TokenHold) -> Option<SwiftWorld> {
    world_with_segments(debug, hold, CHUNK_MB)
}

/// Like [`world_holding`], with segments of `chunk_mb` MiB.
fn world_with_segments(debug: bool, hold: TokenHold, chunk_mb: u64) -> Option<SwiftWorld> {
    let env = swift_env()?;
    let container = unique_name();
    let direct = SwiftDirect::new(&env, &container);
    let glint = Glint::start(&swift_config(&env, &container, LARGE_MB, chunk_mb), debug);
    Some(SwiftWorld {
        glint,
        direct,
        env,
        container,
        _token: hold,
    })
}

/// The segment names of a large object `id` of `count` segments, then the manifest's name, in
/// Swift's (byte-wise) listing order.
fn segmented(id: &str, count: u64) -> Vec<String> {
    let mut names = vec![id.to_string()];
    names.extend((1..=count).map(|n| format!("{id}-{n:05}")));
    names
}

/// Asserts that Swift holds nothing for `id`: no object, no segment.
#[track_caller]
fn assert_nothing_in_swift(direct: &SwiftDirect, id: &str) {
    assert_eq!(
        direct.head(id).map(|_| ()),
        None,
        "object {id} is still in Swift"
    );
    assert_eq!(
        direct.list(id),
        Vec::<String>::new(),
        "objects or segments left for {id}"
    );
}

#[test]
fn swift_upload_with_content_length_is_one_object_reads_back_identical_and_delete_removes_it() {
    let Some(w) = world(false) else { return };
    let data = test_data((3 * MIB + 12_345) as usize, 11);
    let md5 = md5_hex(&data);
    let reply = w.glint.upload(
        "swift-sized",
        &[("x-image-meta-store", "swift")],
        Payload::Sized(Bytes::from(data.clone())),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);

    // One plain object named by the id (no manifest), whose ETag is its MD5.
    assert_eq!(w.direct.list(&id), vec![id.clone()]);
    let head = w.direct.head(&id).unwrap();
    assert_eq!(
        head.get("etag").and_then(|v| v.to_str().ok()),
        Some(md5.as_str())
    );
    assert!(head.get("x-object-manifest").is_none(), "{head:?}");
    let got = assert_download(&w.glint, &id, data.len() as u64, &md5, true).unwrap();
    assert!(
        got == data,
        "downloaded bytes differ from the uploaded ones"
    );

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    assert_nothing_in_swift(&w.direct, &id);
    assert_eq!(w.glint.download(&id, false).status.as_u16(), 404);
}

#[test]
fn swift_chunked_upload_is_a_manifest_and_segments_reads_back_identical_and_delete_removes_all() {
    let Some(w) = world(false) else { return };
    let data = test_data((2 * MIB + 4_321) as usize, 12);
    let md5 = md5_hex(&data);
    let cuts = [0, 1, 65_536, 65_537, 1_048_576 + 3, data.len()];
    let chunks: Vec<Bytes> = cuts
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect();
    let reply = w.glint.upload(
        "swift-chunked",
        &[("x-image-meta-store", "swift")],
        Payload::Chunked(chunks),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);

    // Unknown size: one segment plus a manifest pointing at the segments' prefix.
    assert_eq!(w.direct.list(&id), segmented(&id, 1));
    let head = w.direct.head(&id).unwrap();
    let manifest = format!("{}/{id}-", w.container);
    assert_eq!(
        head.get("x-object-manifest").and_then(|v| v.to_str().ok()),
        Some(manifest.as_str()),
        "{head:?}"
    );
    let got = assert_download(&w.glint, &id, data.len() as u64, &md5, true).unwrap();
    assert!(
        got == data,
        "downloaded bytes differ from the uploaded ones"
    );

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    assert_nothing_in_swift(&w.direct, &id);
}

#[test]
fn swift_chunked_upload_larger_than_a_segment_is_segmented_and_reads_back_identical() {
    let Some(w) = world(false) else { return };
    let len = 20 * MIB;
    let md5 = generated_md5(len, 13);
    let payload = Payload::Generated {
        len,
        seed: 13,
        chunked: true,
    };
    let reply = w.glint.upload(
        "swift-chunked-large",
        &[("x-image-meta-store", "swift")],
        payload,
    );
    let id = assert_uploaded(&reply, len, &md5);
    assert_eq!(w.direct.list(&id), segmented(&id, 3));
    assert_download(&w.glint, &id, len, &md5, false);
}

#[test]
fn swift_300_mib_uploads_stream_their_100_mib_segments_in_flat_memory_sized_or_chunked() {
    // Segments far larger than the memory glint may use: they must be streamed, not buffered.
    let chunk_mb = 100;
    let hold = TokenHold::Shared(TOKEN.read().unwrap_or_else(|e| e.into_inner()));
    let Some(w) = world_with_segments(false, hold, chunk_mb) else {
        return;
    };
    let len = 300 * MIB;
    for (seed, chunked) in [(14, false), (16, true)] {
        let how = if chunked { "chunked" } else { "sized" };
        let md5 = generated_md5(len, seed);
        let started = std::time::Instant::now();
        let payload = Payload::Generated { len, seed, chunked };
        let reply = w
            .glint
            .upload("swift-300", &[("x-image-meta-store", "swift")], payload);
        let id = assert_uploaded(&reply, len, &md5);
        let upload = started.elapsed();

        // 300 MiB in 100 MiB segments: exactly 3 segments (no empty fourth) and the manifest.
        assert_eq!(w.direct.list(&id), segmented(&id, 3), "{how}");
        let head = w.direct.head(&id).unwrap();
        assert!(head.get("x-object-manifest").is_some(), "{how}: {head:?}");
        let started = std::time::Instant::now();
        assert_download(&w.glint, &id, len, &md5, false);
        eprintln!(
            "swift 300 MiB {how}: upload {upload:?}, download {:?}",
            started.elapsed()
        );

        let deleted = w.glint.delete(&id);
        assert_eq!(deleted.status.as_u16(), 200, "{how}: {deleted:?}");
        assert_nothing_in_swift(&w.direct, &id);
    }

    // Memory stayed flat: not the image, and not even one segment.
    let peak = w.glint.peak_rss();
    eprintln!("swift 300 MiB: glint's peak RSS {} MiB", peak / MIB);
    assert!(
        peak < 64 * MIB,
        "glint's peak RSS was {} MiB for 300 MiB images in {chunk_mb} MiB segments",
        peak / MIB
    );
}

#[test]
fn swift_upload_to_a_missing_container_is_refused_with_503_naming_it_and_kills_the_image() {
    let _hold = TOKEN.read().unwrap_or_else(|e| e.into_inner());
    let Some(env) = swift_env() else { return };
    let container = unique_name();
    let direct = SwiftDirect::new(&env, &container);
    let mut config = swift_config(&env, &container, LARGE_MB, CHUNK_MB);
    set_var(
        &mut config,
        "GLINT_SWIFT_STORE_CREATE_CONTAINER_ON_PUT",
        "false",
    );
    let glint = Glint::start(&config, false);
    for (what, size) in [("one object", 256 << 10), ("segmented", 20 * MIB)] {
        let id = uuid::Uuid::new_v4().to_string();
        let reply = glint.upload_answered_early(
            &[
                ("x-image-meta-id", &id),
                ("x-image-meta-name", "swift-no-container"),
                ("x-image-meta-store", "swift"),
            ],
            size,
            17,
        );
        assert_clear_error(
            &reply,
            503,
            &[
                &container,
                "does not exist",
                "swift_store_create_container_on_put",
            ],
            &[&env.key],
        );
        assert_eq!(glint.status_of(&id), "killed", "{what}");
    }
    assert!(!direct.container_exists(), "the container was created");
}

#[test]
fn swift_client_disconnect_mid_upload_kills_the_image_and_leaves_no_object_or_segment() {
    let Some(w) = world(false) else { return };
    // At or above the large-object size (segments, removed), then below it (one streamed PUT).
    for (total, sent) in [(40 * MIB, 20 * MIB), (12 * MIB, 6 * MIB)] {
        let id = uuid::Uuid::new_v4().to_string();
        let upload = w.glint.start_upload(&id, "swift", total, sent);
        assert_eq!(
            w.glint.wait_status(&id, "saving", Duration::from_secs(30)),
            "saving"
        );
        if total >= LARGE_MB * MIB {
            // Segments are already in Swift when the client goes away.
            let first = format!("{id}-00002");
            let written = eventually(Duration::from_secs(30), || {
                w.direct.list(&id).contains(&first)
            });
            assert!(written, "no segments of {id} in Swift:\n{}", w.glint.log());
        }
        close(upload);
        let status = w.glint.wait_status(&id, "killed", Duration::from_secs(60));
        assert_eq!(
            status,
            "killed",
            "{total} bytes announced, {sent} sent; log:\n{}",
            w.glint.log()
        );
        assert_nothing_in_swift(&w.direct, &id);
        assert_eq!(w.glint.download(&id, false).status.as_u16(), 404);
    }
    assert_eq!(
        w.direct.list(""),
        Vec::<String>::new(),
        "container not empty"
    );
}

#[test]
fn swift_wrong_credentials_fail_the_upload_clearly_kill_the_image_and_never_show_the_key() {
    let Some(env) = swift_env() else { return };
    let wrong_key = "wrong-swift-k3y-for-glint";
    for (what, user, size) in [
        ("wrong key", env.user.clone(), 20 * MIB),
        ("unknown user", "test:nobody-here".to_string(), 256 << 10),
    ] {
        let container = unique_name();
        let direct = SwiftDirect::new(&env, &container);
        let mut config = swift_config(&env, &container, LARGE_MB, CHUNK_MB);
        set_var(&mut config, "GLINT_SWIFT_STORE_USER", &user);
        set_var(&mut config, "GLINT_SWIFT_STORE_KEY", wrong_key);
        let glint = Glint::start(&config, true);
        let id = uuid::Uuid::new_v4().to_string();
        let reply = glint.upload_answered_early(
            &[
                ("x-image-meta-id", &id),
                ("x-image-meta-name", "swift-denied"),
                ("x-image-meta-store", "swift"),
            ],
            size,
            15,
        );
        assert!(
            reply.status.is_client_error() || reply.status.is_server_error(),
            "{what}: {reply:?}"
        );
        assert_clear_error(
            &reply,
            403,
            &["Swift refused the credentials"],
            &[wrong_key, &env.key],
        );
        assert_eq!(glint.status_of(&id), "killed", "{what}");
        assert_eq!(super::status_in_detail(&glint, &id), "killed", "{what}");
        assert!(
            !direct.container_exists(),
            "{what}: the container was created"
        );
        let log = glint.log();
        drop(glint);
        assert_no_secret(&log, &[wrong_key], &format!("glint's log ({what})"));
    }
}

#[test]
fn swift_key_never_appears_in_api_responses_or_the_debug_log() {
    let Some(w) = world(true) else { return };
    let key = w.env.key.clone();
    let mut seen = Vec::new();

    let data = test_data((MIB + 7) as usize, 16);
    let md5 = md5_hex(&data);
    let posted = w.glint.upload(
        "swift-secret",
        &[
            ("x-image-meta-property-purpose", "secrecy"),
            ("x-image-meta-store", "swift"),
        ],
        Payload::Sized(Bytes::from(data.clone())),
    );
    let id = assert_uploaded(&posted, data.len() as u64, &md5);
    seen.push(posted);
    let updated = w.glint.request(
        "PUT",
        &format!("/v1/images/{id}"),
        &[("x-image-meta-property-purpose", "still-secret")],
        Payload::Empty,
    );
    updated.json(200);
    seen.push(updated);

    let queued = w.glint.post(&[
        ("x-image-meta-name", "swift-secret-put"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
    ]);
    let queued_id = queued.json(201)["image"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    seen.push(queued);
    let put = w.glint.request(
        "PUT",
        &format!("/v1/images/{queued_id}"),
        &[
            ("content-type", "application/octet-stream"),
            ("x-image-meta-store", "swift"),
        ],
        Payload::Chunked(vec![Bytes::from(data.clone())]),
    );
    assert_eq!(
        put.json(200)["image"]["checksum"].as_str(),
        Some(md5.as_str())
    );
    seen.push(put);

    // A Glance-style location with `account:user:key@`: registered, readable, never shown.
    let auth = w.env.auth_url.split_once("://").unwrap().1.to_string();
    let with_key = format!(
        "swift+http://{}:{key}@{auth}/{}/{id}",
        w.env.user, w.container
    );
    let registered = w.glint.post(&[
        ("x-image-meta-name", "swift-by-location"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
        ("x-image-meta-location", &with_key),
    ]);
    let image = registered.json(201)["image"].clone();
    assert_eq!(image["size"].as_u64(), Some(data.len() as u64), "{image}");
    let registered_id = image["id"].as_str().unwrap().to_string();
    seen.push(registered);
    let got = w.glint.download(&registered_id, true);
    assert_eq!(got.status.as_u16(), 200, "{got:?}");
    assert!(
        got.data.as_deref() == Some(&data[..]),
        "registered image reads differently"
    );

    for path in [
        format!("/v1/images/{id}"),
        format!("/v1/images/{registered_id}"),
        format!("/v1/images/{queued_id}"),
    ] {
        seen.push(w.glint.request("HEAD", &path, &[], Payload::Empty));
    }
    seen.push(w.glint.get("/v1/images"));
    seen.push(w.glint.get("/v1/images/detail"));
    seen.push(
        w.glint
            .get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=None"),
    );
    for id in [&id, &queued_id] {
        let deleted = w.glint.delete(id);
        assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
        seen.push(deleted);
    }
    assert_nothing_in_swift(&w.direct, &queued_id);

    for reply in &seen {
        assert_no_secret(&reply.everything(), &[&key], "an API reply");
    }
    let log = w.glint.log();
    assert!(log.contains("api POST /v1/images"), "no debug log:\n{log}");
    assert_no_secret(&log, &[&key], "glint's debug log");
}

#[test]
fn swift_as_default_store_takes_uploads_without_a_store_header() {
    let Some(env) = swift_env() else { return };
    let container = unique_name();
    let direct = SwiftDirect::new(&env, &container);
    let mut config = swift_config(&env, &container, LARGE_MB, CHUNK_MB);
    set_var(&mut config, "GLINT_DEFAULT_STORE", "swift");
    let glint = Glint::start(&config, false);
    let data = test_data(100_000, 17);
    let md5 = md5_hex(&data);
    let reply = glint.upload("swift-default", &[], Payload::Sized(Bytes::from(data)));
    let id = assert_uploaded(&reply, 100_000, &md5);
    assert_eq!(direct.list(&id), vec![id.clone()]);
}

#[test]
fn swift_checksum_mismatch_kills_the_image_and_removes_the_manifest_and_segments() {
    let Some(w) = world(false) else { return };
    let id = uuid::Uuid::new_v4().to_string();
    let payload = Payload::Generated {
        len: 20 * MIB,
        seed: 18,
        chunked: true,
    };
    let wrong = "0123456789abcdef0123456789abcdef";
    let reply = w.glint.upload(
        "swift-mismatch",
        &[
            ("x-image-meta-id", &id),
            ("x-image-meta-checksum", wrong),
            ("x-image-meta-store", "swift"),
        ],
        payload,
    );
    assert_clear_error(&reply, 400, &["checksum", wrong, "killed"], &[]);
    assert_eq!(w.glint.status_of(&id), "killed");
    assert_nothing_in_swift(&w.direct, &id);
}

/// The memcached of the Swift test server (where tempauth keeps its tokens), read from the proxy
/// configuration that `start-swift.sh` wrote under `SWIFT_STATE_DIR`.
fn swift_memcached() -> String {
    let dir = std::env::var("SWIFT_STATE_DIR")
        .expect("SWIFT_STATE_DIR is not set: start Swift with scripts/services/start-swift.sh");
    let conf = std::fs::read_to_string(format!("{dir}/etc/proxy-server.conf")).unwrap();
    conf.lines()
        .find_map(|l| l.trim().strip_prefix("memcache_servers"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(|servers| servers.split(',').next().unwrap_or("").trim().to_string())
        .expect("no memcache_servers in the Swift proxy configuration")
}

/// Removes `key` from memcached as Swift's memcache client names it (the hex MD5 of the key);
/// whether it was there.
fn memcached_delete(addr: &str, key: &str) -> bool {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(conn, "delete {}\r\n", md5_hex(key.as_bytes())).unwrap();
    let mut answer = [0u8; 64];
    let n = conn.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).trim().to_string();
    assert!(
        answer == "DELETED" || answer == "NOT_FOUND",
        "memcached answered {answer:?}"
    );
    answer == "DELETED"
}

/// Expires the user's current token the way tempauth does (its entries leave memcached) and
/// checks that Swift now refuses it; returns it.
#[track_caller]
fn expire_current_token(w: &SwiftWorld) -> String {
    let old = w.direct.login();
    let memcached = swift_memcached();
    assert!(
        memcached_delete(&memcached, &format!("AUTH_/token/{old}")),
        "the token was not in memcached: the test would prove nothing"
    );
    memcached_delete(&memcached, &format!("AUTH_/user/{}", w.env.user));
    let refused = w
        .direct
        .send_with_token(hyper::Method::HEAD, &w.container, &old);
    assert_eq!(
        refused.status.as_u16(),
        401,
        "the old token still works: {refused:?}"
    );
    old
}

#[test]
fn swift_expired_token_is_renewed_once_and_reads_uploads_and_deletes_go_on() {
    let hold = TokenHold::Exclusive(TOKEN.write().unwrap_or_else(|e| e.into_inner()));
    let Some(w) = world_holding(false, hold) else {
        return;
    };
    let data = test_data((MIB + 7) as usize, 23);
    let md5 = md5_hex(&data);
    let reply = w.glint.upload(
        "swift-token",
        &[("x-image-meta-store", "swift")],
        Payload::Sized(Bytes::from(data.clone())),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);

    // glint logged in as the tests' user, so it holds the user's current token.
    let first = expire_current_token(&w);
    // glint meets the 401, logs in again once and serves the download.
    let got = assert_download(&w.glint, &id, data.len() as u64, &md5, true).unwrap();
    assert!(
        got == data,
        "downloaded bytes differ after the token renewal"
    );

    // An upload streams its body once, so glint must renew before the first byte: its check of
    // the container meets the 401 and logs in again. Sized (one object) and chunked (segments).
    for (name, payload, seed) in [
        (
            "swift-token-sized",
            Payload::Sized(Bytes::from(test_data(3 * MIB as usize, 24))),
            24,
        ),
        (
            "swift-token-chunked",
            Payload::Generated {
                len: 20 * MIB,
                seed: 25,
                chunked: true,
            },
            25,
        ),
    ] {
        let (len, md5) = match &payload {
            Payload::Sized(b) => (b.len() as u64, md5_hex(b)),
            _ => (20 * MIB, generated_md5(20 * MIB, seed)),
        };
        let expired = expire_current_token(&w);
        assert_ne!(
            expired, first,
            "tempauth handed out the expired token again"
        );
        let reply = w
            .glint
            .upload(name, &[("x-image-meta-store", "swift")], payload);
        let uploaded = assert_uploaded(&reply, len, &md5);
        assert_download(&w.glint, &uploaded, len, &md5, false);
        let deleted = w.glint.delete(&uploaded);
        assert_eq!(deleted.status.as_u16(), 200, "{name}: {deleted:?}");
        assert_nothing_in_swift(&w.direct, &uploaded);
    }

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    assert_nothing_in_swift(&w.direct, &id);
}

/// The Swift store authenticating with Keystone v3 (`swift_store_auth_version = 3`) against the
/// Swift proxy that only knows Keystone tokens (scripts/services/start-swift.sh wires it): a
/// sized object and a segmented chunked upload read back identical and are deleted, and a wrong
/// password is refused clearly without showing it.
#[test]
fn swift_with_keystone_v3_auth_stores_reads_back_and_deletes() {
    let Some(v) = crate::stores_support::service_vars(
        "Swift with Keystone",
        "start-swift.sh",
        &[
            "SWIFT_KEYSTONE_AUTH_URL",
            "SWIFT_KEYSTONE_USER",
            "SWIFT_KEYSTONE_KEY",
            "SWIFT_KEYSTONE_PROJECT",
        ],
    ) else {
        return;
    };
    let (auth_url, user, key, project) = (&v[0], &v[1], &v[2], &v[3]);
    let config = |password: &str| {
        vec![
            (
                "GLINT_SWIFT_STORE_AUTH_VERSION".to_string(),
                "3".to_string(),
            ),
            (
                "GLINT_SWIFT_STORE_AUTH_ADDRESS".to_string(),
                auth_url.clone(),
            ),
            (
                "GLINT_SWIFT_STORE_USER".to_string(),
                format!("{project}:{user}"),
            ),
            ("GLINT_SWIFT_STORE_KEY".to_string(), password.to_string()),
            ("GLINT_SWIFT_STORE_CONTAINER".to_string(), unique_name()),
            (
                "GLINT_SWIFT_STORE_CREATE_CONTAINER_ON_PUT".to_string(),
                "true".to_string(),
            ),
            (
                "GLINT_SWIFT_STORE_LARGE_OBJECT_SIZE".to_string(),
                LARGE_MB.to_string(),
            ),
            (
                "GLINT_SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE".to_string(),
                CHUNK_MB.to_string(),
            ),
        ]
    };
    let glint = Glint::start(&config(key), true);
    let sized = test_data((MIB + 777) as usize, 31);
    let chunked = test_data((CHUNK_MB * MIB + 4321) as usize, 32);
    for (name, data, payload) in [
        (
            "ks-sized",
            &sized,
            Payload::Sized(Bytes::from(sized.clone())),
        ),
        (
            "ks-chunked",
            &chunked,
            Payload::Chunked(
                chunked
                    .chunks(1 << 20)
                    .map(Bytes::copy_from_slice)
                    .collect(),
            ),
        ),
    ] {
        let md5 = md5_hex(data);
        let reply = glint.upload(name, &[("x-image-meta-store", "swift")], payload);
        let id = assert_uploaded(&reply, data.len() as u64, &md5);
        let got = assert_download(&glint, &id, data.len() as u64, &md5, true).unwrap();
        assert!(got == *data, "{name}: downloaded bytes differ");
        assert_eq!(glint.delete(&id).status.as_u16(), 200);
        assert_eq!(glint.download(&id, false).status.as_u16(), 404);
    }
    let log = glint.log();
    drop(glint);
    assert_no_secret(&log, &[key.as_str()], "glint's log (Keystone Swift)");

    let wrong = "wrong-keystone-passw0rd";
    let glint = Glint::start(&config(wrong), true);
    let reply = glint.upload(
        "ks-denied",
        &[("x-image-meta-store", "swift")],
        Payload::Sized(Bytes::from(vec![7u8; 4096])),
    );
    assert_clear_error(
        &reply,
        403,
        &["Keystone refused the credentials"],
        &[wrong, key.as_str()],
    );
    let log = glint.log();
    drop(glint);
    assert_no_secret(&log, &[wrong], "glint's log (wrong Keystone password)");
}
