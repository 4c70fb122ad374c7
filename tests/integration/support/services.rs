//! The real servers the tests reach (see `scripts/services/README.md`): their variables from the
//! environment ([`service_vars`]: a missing server fails the test when `GLINT_REQUIRE_STORES=1`,
//! as in CI, and prints a loud `SKIPPED:` line otherwise), glint's configuration for each store,
//! and direct clients of the S3 and Swift servers to see what glint left there ([`S3Direct`],
//! [`SwiftDirect`]), which also remove the test's bucket or container when dropped.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use hyper::{HeaderMap, Method, StatusCode};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::Value;
use tokio::runtime::Runtime;

use super::http::{fetch_url, runtime, Reply};

/// Set to `1` by `scripts/test.sh` (CI): a missing store server fails the test.
pub const REQUIRE_STORES: &str = "GLINT_REQUIRE_STORES";

// ---------------------------------------------------------------------------------------------
// The servers' variables

/// Reads `vars` from the environment. When one is missing, the test fails if
/// `GLINT_REQUIRE_STORES=1`, and otherwise prints a loud `SKIPPED:` line and gets `None`.
#[track_caller]
pub fn service_vars(service: &str, script: &str, vars: &[&str]) -> Option<Vec<String>> {
    let missing: Vec<&str> = vars
        .iter()
        .copied()
        .filter(|v| std::env::var(v).map_or(true, |s| s.trim().is_empty()))
        .collect();
    if missing.is_empty() {
        return Some(vars.iter().map(|v| std::env::var(v).unwrap()).collect());
    }
    let why = format!(
        "the {service} test server is missing: {} not set (start it with \
         `out=$(scripts/services/{script}) && eval \"$out\"`, or run scripts/test.sh)",
        missing.join(", ")
    );
    if std::env::var(REQUIRE_STORES).as_deref() == Ok("1") {
        panic!("{REQUIRE_STORES}=1 but {why}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("store test")
        .to_string();
    // Straight to the process's stderr, in one write: libtest captures `eprintln!` of passing
    // tests, and a skip must be seen.
    let banner = format!(
        "\n************************************************************\n\
         SKIPPED: {test}: {why}\n\
         ************************************************************\n"
    );
    let _ = std::io::stderr().lock().write_all(banner.as_bytes());
    None
}

/// The Keystone service user's variables: `KEYSTONE_URL` (with `/v3`), then its user name,
/// password and project.
pub const KEYSTONE_SERVICE_VARS: [&str; 4] = [
    "KEYSTONE_URL",
    "KEYSTONE_SERVICE_USER",
    "KEYSTONE_SERVICE_PASSWORD",
    "KEYSTONE_SERVICE_PROJECT",
];

/// The S3 server (radosgw): `S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_REGION`.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// `http://host:port`.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Signing region.
    pub region: String,
}

/// The S3 server's variables, or `None` (after a `SKIPPED:` line) outside CI.
#[track_caller]
pub fn s3_env() -> Option<S3Env> {
    let v = service_vars(
        "S3",
        "start-s3.sh",
        &["S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION"],
    )?;
    Some(S3Env {
        endpoint: v[0].trim_end_matches('/').to_string(),
        access_key: v[1].clone(),
        secret_key: v[2].clone(),
        region: v[3].clone(),
    })
}

/// The Swift server (tempauth): `SWIFT_AUTH_URL`, `SWIFT_USER`, `SWIFT_KEY`.
#[derive(Debug, Clone)]
pub struct SwiftEnv {
    /// The tempauth v1 endpoint.
    pub auth_url: String,
    /// `account:user`.
    pub user: String,
    /// The user's key.
    pub key: String,
}

/// The Swift server's variables, or `None` (after a `SKIPPED:` line) outside CI.
#[track_caller]
pub fn swift_env() -> Option<SwiftEnv> {
    let v = service_vars(
        "Swift",
        "start-swift.sh",
        &["SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY"],
    )?;
    Some(SwiftEnv {
        auth_url: v[0].clone(),
        user: v[1].clone(),
        key: v[2].clone(),
    })
}

/// The nginx of the http store: `HTTP_STORE_URL` (ends with `/`) and `HTTP_STORE_ROOT`.
#[derive(Debug, Clone)]
pub struct HttpEnv {
    /// Base URL, with a trailing slash.
    pub url: String,
    /// The directory nginx serves.
    pub root: std::path::PathBuf,
}

impl HttpEnv {
    /// The URL of `name` in the served directory.
    pub fn url_of(&self, name: &str) -> String {
        format!("{}{name}", self.url)
    }

    /// The URL that nginx redirects (302) to `name`.
    pub fn redirect_to(&self, name: &str) -> String {
        format!("{}redirect/{name}", self.url)
    }
}

/// The http store's nginx, or `None` (after a `SKIPPED:` line) outside CI.
#[track_caller]
pub fn http_env() -> Option<HttpEnv> {
    let v = service_vars(
        "HTTP",
        "start-http.sh",
        &["HTTP_STORE_URL", "HTTP_STORE_ROOT"],
    )?;
    let url = if v[0].ends_with('/') {
        v[0].clone()
    } else {
        format!("{}/", v[0])
    };
    Some(HttpEnv {
        url,
        root: v[1].clone().into(),
    })
}

/// A fresh name for a bucket or container: `glint-test-<12 hex digits>`.
pub fn unique_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("glint-test-{}", &id[..12])
}

/// The `GLINT_*` variables that configure the S3 store with `bucket`, uploads of known size up to
/// `threshold_mb` MiB in one PUT and parts of `part_mb` MiB, uploads going to S3 by default.
pub fn s3_config(
    env: &S3Env,
    bucket: &str,
    threshold_mb: u64,
    part_mb: u64,
) -> Vec<(String, String)> {
    vars(&[
        ("GLINT_S3_STORE_HOST", &env.endpoint),
        ("GLINT_S3_STORE_ACCESS_KEY", &env.access_key),
        ("GLINT_S3_STORE_SECRET_KEY", &env.secret_key),
        ("GLINT_S3_STORE_BUCKET", bucket),
        ("GLINT_S3_STORE_CREATE_BUCKET_ON_PUT", "true"),
        ("GLINT_S3_STORE_REGION", &env.region),
        (
            "GLINT_S3_STORE_LARGE_OBJECT_SIZE",
            &threshold_mb.to_string(),
        ),
        (
            "GLINT_S3_STORE_LARGE_OBJECT_CHUNK_SIZE",
            &part_mb.to_string(),
        ),
        ("GLINT_DEFAULT_STORE", "s3"),
    ])
}

/// The `GLINT_*` variables that configure the Swift store with `container`, objects of
/// `large_mb` MiB or more as segments of `chunk_mb` MiB (uploads name the store).
pub fn swift_config(
    env: &SwiftEnv,
    container: &str,
    large_mb: u64,
    chunk_mb: u64,
) -> Vec<(String, String)> {
    vars(&[
        ("GLINT_SWIFT_STORE_AUTH_ADDRESS", &env.auth_url),
        ("GLINT_SWIFT_STORE_USER", &env.user),
        ("GLINT_SWIFT_STORE_KEY", &env.key),
        ("GLINT_SWIFT_STORE_CONTAINER", container),
        ("GLINT_SWIFT_STORE_CREATE_CONTAINER_ON_PUT", "true"),
        ("GLINT_SWIFT_STORE_LARGE_OBJECT_SIZE", &large_mb.to_string()),
        (
            "GLINT_SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE",
            &chunk_mb.to_string(),
        ),
    ])
}

/// Owned copies of `pairs`.
pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replaces (or adds) `name` in `env`.
pub fn set_var(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    env.retain(|(k, _)| k != name);
    env.push((name.to_string(), value.to_string()));
}

// ---------------------------------------------------------------------------------------------
// The real S3 server

/// Presigned requests straight to the S3 server, to see what glint stored. Dropping it removes
/// the bucket with everything in it (unfinished multipart uploads included).
pub struct S3Direct {
    bucket: Bucket,
    credentials: Credentials,
    rt: Runtime,
}

/// How long a presigned URL of the tests stays valid.
const SIGN_TTL: Duration = Duration::from_secs(600);

impl S3Direct {
    /// A client of `bucket` (which need not exist yet) with the server's real credentials.
    pub fn new(env: &S3Env, bucket: &str) -> S3Direct {
        let endpoint: url::Url = env.endpoint.parse().unwrap();
        S3Direct {
            bucket: Bucket::new(
                endpoint,
                UrlStyle::Path,
                bucket.to_string(),
                env.region.clone(),
            )
            .unwrap(),
            credentials: Credentials::new(env.access_key.clone(), env.secret_key.clone()),
            rt: runtime(),
        }
    }

    fn send(&self, method: Method, url: &url::Url) -> Reply {
        fetch_url(&self.rt, method, url.as_str(), &[], Bytes::new())
    }

    /// Creates the bucket (an existing one is fine).
    #[track_caller]
    pub fn create_bucket(&self) {
        let url = self.bucket.create_bucket(&self.credentials).sign(SIGN_TTL);
        let r = fetch_url(&self.rt, Method::PUT, url.as_str(), &[], Bytes::new());
        assert!(
            r.status.is_success() || r.status == StatusCode::CONFLICT,
            "creating bucket {}: {r:?}",
            self.bucket.name()
        );
    }

    /// Whether the bucket exists.
    pub fn bucket_exists(&self) -> bool {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(SIGN_TTL);
        let r = self.send(Method::HEAD, &url);
        assert!(
            r.status.is_success() || r.status == StatusCode::NOT_FOUND,
            "HEAD bucket: {r:?}"
        );
        r.status.is_success()
    }

    /// `HEAD` of `key`: its headers, or `None` when S3 answers 404.
    #[track_caller]
    pub fn head(&self, key: &str) -> Option<HeaderMap> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), key)
            .sign(SIGN_TTL);
        let r = self.send(Method::HEAD, &url);
        match r.status {
            StatusCode::NOT_FOUND => None,
            s if s.is_success() => Some(r.headers),
            _ => panic!("HEAD {key}: {r:?}"),
        }
    }

    /// The ETag of `key` without its quotes, or `None` when there is no such object.
    #[track_caller]
    pub fn etag(&self, key: &str) -> Option<String> {
        self.head(key).map(|h| {
            h.get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no ETag for {key}: {h:?}"))
                .trim_matches('"')
                .to_string()
        })
    }

    /// Keys of the objects whose name starts with `prefix` (an absent bucket has none).
    #[track_caller]
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        action.with_prefix(prefix);
        let url = action.sign(SIGN_TTL);
        let r = self.send(Method::GET, &url);
        if r.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        assert!(r.status.is_success(), "listing {prefix}: {r:?}");
        let listing = rusty_s3::actions::ListObjectsV2::parse_response(&r.text())
            .unwrap_or_else(|e| panic!("unreadable listing ({e}): {}", r.text()));
        listing.contents.into_iter().map(|c| c.key).collect()
    }

    /// `(key, upload id)` of every unfinished multipart upload in the bucket
    /// (`GET /<bucket>?uploads`).
    #[track_caller]
    pub fn unfinished_uploads(&self) -> Vec<(String, String)> {
        // rusty-s3 has no ListMultipartUploads: presign a GET of the bucket itself (the object
        // with an empty key, `/<bucket>/`) with the `uploads` sub-resource.
        let mut action = self.bucket.get_object(Some(&self.credentials), "");
        action.query_mut().insert("uploads", "");
        let url = action.sign(SIGN_TTL);
        let r = self.send(Method::GET, &url);
        if r.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let text = r.text();
        assert!(
            r.status.is_success() && text.contains("ListMultipartUploadsResult"),
            "listing multipart uploads: {r:?}"
        );
        text.split("<Upload>")
            .skip(1)
            .map(|upload| (xml_field(upload, "Key"), xml_field(upload, "UploadId")))
            .collect()
    }

    /// Stores `data` as `key` (one plain PUT).
    #[track_caller]
    pub fn put(&self, key: &str, data: &[u8]) {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGN_TTL);
        let body = Bytes::copy_from_slice(data);
        let r = fetch_url(&self.rt, Method::PUT, url.as_str(), &[], body);
        assert!(r.status.is_success(), "PUT {key}: {r:?}");
    }

    /// Removes every object and unfinished upload, then the bucket; failures are ignored.
    fn destroy(&self) {
        for (key, upload) in self.unfinished_uploads() {
            let url = self
                .bucket
                .abort_multipart_upload(Some(&self.credentials), &key, &upload)
                .sign(SIGN_TTL);
            let _ = self.send(Method::DELETE, &url);
        }
        for key in self.list("") {
            let url = self
                .bucket
                .delete_object(Some(&self.credentials), &key)
                .sign(SIGN_TTL);
            let _ = self.send(Method::DELETE, &url);
        }
        let url = self.bucket.delete_bucket(&self.credentials).sign(SIGN_TTL);
        let _ = self.send(Method::DELETE, &url);
    }
}

impl Drop for S3Direct {
    fn drop(&mut self) {
        // Best effort, and never a second panic while a failed assertion unwinds.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.destroy()));
    }
}

fn xml_field(xml: &str, name: &str) -> String {
    xml.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("</{name}>")).next())
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The real Swift server

/// Requests straight to Swift with a tempauth token, to see what glint stored. Dropping it
/// removes the container with everything in it.
pub struct SwiftDirect {
    env: SwiftEnv,
    storage: String,
    /// Renewed when Swift answers 401 (a test may expire it on purpose).
    token: std::sync::Mutex<String>,
    container: String,
    rt: Runtime,
}

impl SwiftDirect {
    /// Authenticates as the configured user; `container` need not exist yet.
    #[track_caller]
    pub fn new(env: &SwiftEnv, container: &str) -> SwiftDirect {
        let rt = runtime();
        let (storage, token) = swift_login(&rt, env);
        SwiftDirect {
            env: env.clone(),
            storage,
            token: std::sync::Mutex::new(token),
            container: container.to_string(),
            rt,
        }
    }

    /// The token in use.
    pub fn token(&self) -> String {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Logs in again and returns the user's current token (tempauth hands every login of a
    /// user the same token until it expires).
    pub fn login(&self) -> String {
        let (_, token) = swift_login(&self.rt, &self.env);
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        token
    }

    /// A request with the token; on 401 one new login and one retry.
    fn send(&self, method: Method, path: &str) -> Reply {
        let url = format!("{}/{path}", self.storage);
        let reply = self.send_with(method.clone(), &url, &self.token());
        if reply.status != StatusCode::UNAUTHORIZED {
            return reply;
        }
        let (_, token) = swift_login(&self.rt, &self.env);
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        self.send_with(method, &url, &token)
    }

    /// A request to `{storage}/{path}` with exactly `token`, never renewed.
    pub fn send_with_token(&self, method: Method, path: &str, token: &str) -> Reply {
        self.send_with(method, &format!("{}/{path}", self.storage), token)
    }

    fn send_with(&self, method: Method, url: &str, token: &str) -> Reply {
        fetch_url(
            &self.rt,
            method,
            url,
            &[("x-auth-token", token)],
            Bytes::new(),
        )
    }

    /// Names in the container that start with `prefix`, in Swift's order (an absent container
    /// has none).
    #[track_caller]
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let r = self.send(
            Method::GET,
            &format!("{}?format=json&prefix={prefix}", self.container),
        );
        if r.status == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        assert!(r.status.is_success(), "listing {prefix}: {r:?}");
        if r.status == StatusCode::NO_CONTENT {
            return Vec::new();
        }
        let listed: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
        listed
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// `HEAD` of `object`: its headers, or `None` when Swift answers 404.
    #[track_caller]
    pub fn head(&self, object: &str) -> Option<HeaderMap> {
        let r = self.send(Method::HEAD, &format!("{}/{object}", self.container));
        match r.status {
            StatusCode::NOT_FOUND => None,
            s if s.is_success() => Some(r.headers),
            _ => panic!("HEAD {object}: {r:?}"),
        }
    }

    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Creates the container (an existing one is fine).
    #[track_caller]
    pub fn create(&self) {
        let r = self.send(Method::PUT, &self.container);
        assert!(
            r.status.is_success(),
            "creating container {}: {r:?}",
            self.container
        );
    }

    /// Whether the container exists.
    pub fn container_exists(&self) -> bool {
        let r = self.send(Method::HEAD, &self.container);
        r.status.is_success()
    }

    /// Removes every object, then the container; failures are ignored.
    fn destroy(&self) {
        for name in self.list("") {
            let _ = self.send(Method::DELETE, &format!("{}/{name}", self.container));
        }
        let _ = self.send(Method::DELETE, &self.container);
    }
}

/// Logs in with tempauth v1: the storage URL and a token (tempauth hands out the user's current
/// token while it is valid).
#[track_caller]
pub fn swift_login(rt: &Runtime, env: &SwiftEnv) -> (String, String) {
    let r = fetch_url(
        rt,
        Method::GET,
        &env.auth_url,
        &[("x-auth-user", &env.user), ("x-auth-key", &env.key)],
        Bytes::new(),
    );
    assert!(r.status.is_success(), "tempauth: {r:?}");
    (
        r.header("x-storage-url").unwrap().to_string(),
        r.header("x-auth-token").unwrap().to_string(),
    )
}

impl Drop for SwiftDirect {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.destroy()));
    }
}
