//! The Swift store against Swift with tempauth: the shared store tests over [`SwiftDirect`], and
//! the Swift-only ones (default store, token renewal, Keystone v3). Every test has its own
//! container (created by glint on the first upload, removed with its contents when the test
//! ends) and its own `glint serve`.

use std::io::{Read, Write};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::Bytes;

use super::shared::{world_holding, World};
use super::{
    assert_clear_error, assert_download, assert_no_secret, assert_uploaded, CredentialCase,
    RealStore, LARGE_MB, PIECE_MB,
};
use crate::support::services::{
    service_vars, set_var, swift_config, swift_env, unique_name, SwiftDirect, SwiftEnv,
};
use crate::support::{generated_md5, md5_hex, test_data, ImageServer, Payload, MIB};

/// The wrong key of the wrong-credentials test.
const WRONG_KEY: &str = "wrong-swift-k3y-for-glint";

/// Taken shared by every test of this file and exclusively by the one that expires the user's
/// token: all the tests log in as the same user, so they share one tempauth token, and an upload
/// streaming when it is expired would fail (a streamed body cannot be sent again).
static TOKEN: RwLock<()> = RwLock::new(());

/// A hold on [`TOKEN`].
#[allow(dead_code)] // held for its drop
pub enum TokenHold {
    Shared(RwLockReadGuard<'static, ()>),
    Exclusive(RwLockWriteGuard<'static, ()>),
}

impl RealStore for SwiftDirect {
    const NAME: &'static str = "swift";
    const STORE_METRIC: &'static str = "swift";
    const SEED: u64 = 10;
    const DEFAULT_HEADERS: &'static [(&'static str, &'static str)] =
        &[("x-image-meta-store", "swift")];
    const CREATE_OPTION: &'static str = "swift_store_create_container_on_put";
    const BIG_UPLOADS: &'static [(u64, bool)] = &[(14, false), (16, true)];
    const PUT_CHUNKED: bool = true;
    const CHECKS_LOCATION_SECRET: bool = false;
    type Env = SwiftEnv;
    type Hold = TokenHold;

    fn env() -> Option<SwiftEnv> {
        swift_env()
    }

    fn hold() -> TokenHold {
        TokenHold::Shared(TOKEN.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn config(env: &SwiftEnv, container: &str, chunk_mb: u64) -> Vec<(String, String)> {
        swift_config(env, container, LARGE_MB, chunk_mb)
    }

    fn direct(env: &SwiftEnv, container: &str) -> SwiftDirect {
        SwiftDirect::new(env, container)
    }

    fn secret(env: &SwiftEnv) -> String {
        env.key.clone()
    }

    fn location_with_secret(env: &SwiftEnv, container: &str, id: &str, secret: &str) -> String {
        // `account:user:key@` before the tempauth address.
        let auth = env.auth_url.split_once("://").unwrap().1;
        format!("swift+http://{}:{secret}@{auth}/{container}/{id}", env.user)
    }

    fn credential_cases(env: &SwiftEnv) -> Vec<CredentialCase> {
        let case = |what, user: &str, size| CredentialCase {
            what,
            set: vec![
                ("GLINT_SWIFT_STORE_USER".into(), user.to_string()),
                ("GLINT_SWIFT_STORE_KEY".into(), WRONG_KEY.into()),
            ],
            fresh: true,
            size,
            needles: vec!["Swift refused the credentials"],
        };
        vec![
            case("wrong key", &env.user, 20 * MIB),
            case("unknown user", "test:nobody-here", 256 << 10),
        ]
    }

    fn credential_secrets(env: &SwiftEnv) -> Vec<String> {
        vec![WRONG_KEY.into(), env.key.clone()]
    }

    fn create_container(&self) {
        self.create();
    }

    fn container_exists(&self) -> bool {
        SwiftDirect::container_exists(self)
    }

    fn assert_one_object(&self, id: &str, md5: &str) {
        // One plain object named by the id (no manifest), whose ETag is its MD5.
        assert_eq!(self.list(id), vec![id.to_string()]);
        let head = self.head(id).unwrap();
        assert_eq!(head.get("etag").and_then(|v| v.to_str().ok()), Some(md5));
        assert!(head.get("x-object-manifest").is_none(), "{head:?}");
    }

    fn assert_small_chunked(&self, id: &str) {
        // Unknown size: one segment plus a manifest pointing at the segments' prefix.
        assert_eq!(self.list(id), segmented(id, 1));
        let head = self.head(id).unwrap();
        let manifest = format!("{}/{id}-", self.container());
        assert_eq!(
            head.get("x-object-manifest").and_then(|v| v.to_str().ok()),
            Some(manifest.as_str()),
            "{head:?}"
        );
    }

    fn assert_pieces(&self, id: &str, count: u64) {
        // Exactly `count` segments (no empty one after them) and the manifest.
        assert_eq!(self.list(id), segmented(id, count));
        let head = self.head(id).unwrap();
        assert!(head.get("x-object-manifest").is_some(), "{head:?}");
    }

    fn upload_under_way(&self, id: &str) -> bool {
        self.list(id).contains(&format!("{id}-00002"))
    }

    fn assert_nothing_for(&self, id: &str) {
        // No object, no segment.
        assert_eq!(
            self.head(id).map(|_| ()),
            None,
            "object {id} is still in Swift"
        );
        assert_eq!(
            self.list(id),
            Vec::<String>::new(),
            "objects or segments left for {id}"
        );
    }

    fn assert_empty(&self) {
        assert_eq!(self.list(""), Vec::<String>::new(), "container not empty");
    }
}

store_tests! {SwiftDirect:
    upload_with_content_length_is_one_object_reads_back_identical_and_delete_removes_it,
    chunked_upload_smaller_than_a_piece_reads_back_identical_and_delete_removes_all,
    chunked_upload_larger_than_a_piece_goes_in_pieces_and_reads_back_identical,
    upload_of_300_mib_streams_its_100_mib_pieces_in_flat_memory_and_reads_back,
    upload_to_a_missing_container_is_refused_with_503_naming_it_and_kills_the_image,
    client_disconnect_mid_upload_kills_the_image_and_leaves_nothing,
    kill_9_mid_upload_then_restart_kills_the_image_and_leaves_nothing,
    wrong_credentials_fail_the_upload_clearly_kill_the_image_and_never_show_the_secrets,
    secret_never_appears_in_api_responses_or_the_debug_log,
    checksum_mismatch_kills_the_image_and_removes_what_was_stored,
    ranged_downloads_read_only_the_range_from_the_store_across_pieces,
}

/// The segment names of a large object `id` of `count` segments, then the manifest's name, in
/// Swift's (byte-wise) listing order.
fn segmented(id: &str, count: u64) -> Vec<String> {
    let mut names = vec![id.to_string()];
    names.extend((1..=count).map(|n| format!("{id}-{n:05}")));
    names
}

#[test]
fn swift_as_default_store_takes_uploads_without_a_store_header() {
    let Some(env) = swift_env() else { return };
    let container = unique_name();
    let direct = SwiftDirect::new(&env, &container);
    let mut config = swift_config(&env, &container, LARGE_MB, PIECE_MB);
    set_var(&mut config, "GLINT_DEFAULT_STORE", "swift");
    let glint = ImageServer::serve(&config, false);
    let data = test_data(100_000, 17);
    let md5 = md5_hex(&data);
    let reply = glint.upload("swift-default", &[], Payload::Sized(Bytes::from(data)));
    let id = assert_uploaded(&reply, 100_000, &md5);
    assert_eq!(direct.list(&id), vec![id.clone()]);
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
fn expire_current_token(w: &World<SwiftDirect>) -> String {
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
    let Some(w) = world_holding::<SwiftDirect>(false, PIECE_MB, hold) else {
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
        w.direct.assert_nothing_for(&uploaded);
    }

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    w.direct.assert_nothing_for(&id);
}

/// The Swift store authenticating with Keystone v3 (`swift_store_auth_version = 3`) against the
/// Swift proxy that only knows Keystone tokens (scripts/services/start-swift.sh wires it): a
/// sized object and a segmented chunked upload read back identical and are deleted, and a wrong
/// password is refused clearly without showing it.
#[test]
fn swift_with_keystone_v3_auth_stores_reads_back_and_deletes() {
    let Some(v) = service_vars(
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
                PIECE_MB.to_string(),
            ),
        ]
    };
    let glint = ImageServer::serve(&config(key), true);
    let sized = test_data((MIB + 777) as usize, 31);
    let chunked = test_data((PIECE_MB * MIB + 4321) as usize, 32);
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
        assert_eq!(glint.download_hashed(&id, false).status.as_u16(), 404);
    }
    let log = glint.logs();
    drop(glint);
    assert_no_secret(&log, &[key.as_str()], "glint's log (Keystone Swift)");

    let wrong = "wrong-keystone-passw0rd";
    let glint = ImageServer::serve(&config(wrong), true);
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
    let log = glint.logs();
    drop(glint);
    assert_no_secret(&log, &[wrong], "glint's log (wrong Keystone password)");
}
