//! The Swift store (OpenStack Swift; tempauth v1 or Keystone v3 auth): objects below the large-object size go as one
//! sized PUT streamed from the upload; larger ones, or ones of unknown size, as segments
//! `<object>-00001`, `<object>-00002`, … of at most the chunk size, each streamed from the upload
//! (sized when the upload's size is known, chunked otherwise), then a zero-byte manifest with
//! `X-Object-Manifest`. Memory does not grow with the segment size. Deleting a manifest deletes its
//! segments. The token is renewed when Swift answers 401 (once per request) and, before an upload
//! streams, when it is about to expire. Credentials never appear in a location, an error message
//! or a log line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;

use super::http_client::{self, HttpClient, OutBody, Span};
use super::{ByteRange, DataSource, Error, Location, Metered, Retrieved};

/// How the Swift store authenticates (`swift_store_auth_version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwiftAuth {
    /// `1`: tempauth/swauth, `X-Auth-User` and `X-Auth-Key` against the auth address.
    V1,
    /// `3`: Keystone v3 password authentication scoped to the project of `project:user`; the
    /// storage URL is the catalog's `object-store` endpoint.
    V3 {
        /// `swift_store_user_domain_name` (default `Default`).
        user_domain: String,
        /// `swift_store_project_domain_name` (default `Default`).
        project_domain: String,
        /// `swift_store_region`: the catalog region to take, if several.
        region: Option<String>,
        /// `swift_store_endpoint_type` as a v3 interface (`public`, `internal`, `admin`).
        interface: String,
    },
}

/// The Swift store's settings (`swift_store_*` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftConfig {
    /// Auth endpoint, e.g. `http://127.0.0.1:8080/auth/v1.0`, or the Keystone URL.
    pub auth_address: String,
    /// How to authenticate there.
    pub auth: SwiftAuth,
    /// `account:user` (v1) or `project:user` (v3).
    pub user: String,
    /// The user's key.
    pub key: String,
    /// Container that receives uploads.
    pub container: String,
    /// Create the container if it does not exist when uploading.
    pub create_container_on_put: bool,
    /// Objects of known size below this many bytes go as one PUT.
    pub large_object_size: u64,
    /// Segment size in bytes.
    pub chunk_size: u64,
}

/// Where an object lives: auth endpoint, container and object name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftLocation {
    /// The auth endpoint, with scheme (`http://host:port/auth/v1.0`).
    pub auth_address: String,
    /// The container.
    pub container: String,
    /// The object name.
    pub object: String,
}

/// The Swift store.
pub struct Swift {
    config: SwiftConfig,
    http: HttpClient,
    /// The last authentication's answer.
    session: Mutex<Option<Session>>,
}

/// What Swift's auth endpoint answered.
#[derive(Clone)]
struct Session {
    storage_url: String,
    token: String,
    /// When the token expires, if Swift said (`X-Auth-Token-Expires`).
    expires: Option<Instant>,
}

impl Session {
    /// Whether the token is still good for longer than `margin` after `now` (a token without an
    /// announced expiry is kept until Swift refuses it).
    fn lasts(&self, margin: Duration, now: Instant) -> bool {
        self.expires
            .is_none_or(|at| at.saturating_duration_since(now) > margin)
    }
}

/// A token that expires sooner than this is renewed before an upload streams with it: a streamed
/// body cannot be sent again after a 401.
const RENEW_MARGIN: Duration = Duration::from_secs(15 * 60);

#[derive(Deserialize)]
struct Listed {
    name: String,
}

/// The `object-store` endpoint of a token's catalog for `interface` (and `region`, if given).
fn storage_url(
    catalog: &[CatalogService],
    interface: &str,
    region: Option<&str>,
) -> Result<String, Error> {
    catalog
        .iter()
        .filter(|s| s.kind == "object-store")
        .flat_map(|s| &s.endpoints)
        .find(|e| {
            e.interface == interface
                && region.is_none_or(|r| {
                    e.region.as_deref() == Some(r) || e.region_id.as_deref() == Some(r)
                })
        })
        .map(|e| e.url.trim_end_matches('/').to_string())
        .ok_or_else(|| {
            Error::Backend(format!(
                "Keystone's catalog has no {interface} object-store endpoint{}",
                region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ))
        })
}

/// The parts of a Keystone v3 token body the store reads.
#[derive(Deserialize)]
struct KeystoneToken {
    token: KeystoneTokenInfo,
}

#[derive(Deserialize)]
struct KeystoneTokenInfo {
    expires_at: String,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Deserialize)]
struct CatalogEndpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

impl Swift {
    /// A store for `config` on the stores' shared client (authenticates on first use).
    pub fn new(config: SwiftConfig, http: HttpClient) -> Swift {
        Swift {
            config,
            http,
            session: Mutex::new(None),
        }
    }

    async fn authenticate(&self) -> Result<(String, String), Error> {
        let (storage_url, token, expires) = match &self.config.auth {
            SwiftAuth::V1 => self.authenticate_v1().await?,
            SwiftAuth::V3 { .. } => self.authenticate_v3().await?,
        };
        if let Ok(mut cached) = self.session.lock() {
            *cached = Some(Session {
                storage_url: storage_url.clone(),
                token: token.clone(),
                expires,
            });
        }
        Ok((storage_url, token))
    }

    /// Keystone v3: a project-scoped token and the `object-store` endpoint of its catalog.
    async fn authenticate_v3(&self) -> Result<(String, String, Option<Instant>), Error> {
        let SwiftAuth::V3 {
            user_domain,
            project_domain,
            region,
            interface,
        } = &self.config.auth
        else {
            return Err(Error::Backend("not a Keystone v3 store".into()));
        };
        let (project, user) = self.config.user.split_once(':').ok_or_else(|| {
            Error::BadLocation("swift_store_user must be project:user for auth version 3".into())
        })?;
        let base = self.config.auth_address.trim_end_matches('/');
        let url = if base.ends_with("/v3") {
            format!("{base}/auth/tokens")
        } else {
            format!("{base}/v3/auth/tokens")
        };
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": user_domain}, "password": self.config.key,
            }}},
            "scope": {"project": {"name": project, "domain": {"name": project_domain}}},
        }});
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header("content-type", "application/json")
            .body(http_client::full(body.to_string()))
            .map_err(|_| Error::BadLocation("swift_store_auth_address is not a URL".into()))?;
        let response = http_client::send(&self.http, request, "Keystone (Swift auth)").await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Forbidden(format!(
                "Keystone refused the credentials of Swift user {} ({status})",
                self.config.user
            )));
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer = http_client::answer_text(response).await;
        let (true, Some(token)) = (status.is_success(), token) else {
            return Err(Error::Backend(format!("Keystone auth answered {status}")));
        };
        let catalog: KeystoneToken = serde_json::from_slice(&answer).map_err(|e| {
            Error::Backend(format!("Keystone sent a token body glint cannot read: {e}"))
        })?;
        let storage_url = storage_url(&catalog.token.catalog, interface, region.as_deref())?;
        let expires = crate::timestamp::Timestamp::parse(&catalog.token.expires_at)
            .ok()
            .map(|at| {
                let left = at.as_micros() - crate::timestamp::Timestamp::now().as_micros();
                Instant::now() + Duration::from_micros(left.max(0) as u64)
            });
        Ok((storage_url, token, expires))
    }

    /// tempauth: `X-Auth-User` / `X-Auth-Key`, answered with `X-Storage-Url` and a token.
    async fn authenticate_v1(&self) -> Result<(String, String, Option<Instant>), Error> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(&self.config.auth_address)
            .header("x-auth-user", &self.config.user)
            .header("x-auth-key", &self.config.key)
            .body(http_client::empty())
            .map_err(|_| Error::BadLocation("swift_store_auth_address is not a URL".into()))?;
        let response = http_client::send(&self.http, request, "Swift auth").await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Forbidden(format!(
                "Swift refused the credentials of user {} ({status})",
                self.config.user
            )));
        }
        if !status.is_success() {
            return Err(Error::Backend(format!("Swift auth answered {status}")));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (storage_url, token) = header("x-storage-url")
            .zip(header("x-auth-token"))
            .ok_or_else(|| Error::Backend("Swift auth sent no storage URL or token".into()))?;
        let expires = header("x-auth-token-expires")
            .and_then(|secs| secs.trim().parse::<u64>().ok())
            .map(|secs| Instant::now() + Duration::from_secs(secs));
        Ok((storage_url, token, expires))
    }

    /// `(storage URL, token)`: the cached ones, unless `renew` asks for new ones or the token
    /// expires within `margin`.
    async fn session_lasting(
        &self,
        renew: bool,
        margin: Duration,
    ) -> Result<(String, String), Error> {
        if !renew {
            let cached = self.session.lock().ok().and_then(|s| s.clone());
            if let Some(s) = cached.filter(|s| s.lasts(margin, Instant::now())) {
                return Ok((s.storage_url, s.token));
            }
        }
        self.authenticate().await
    }

    async fn session(&self, renew: bool) -> Result<(String, String), Error> {
        self.session_lasting(renew, Duration::ZERO).await
    }

    /// Sends a request to `{storage}/{path}` with the token; on 401 re-authenticates once and
    /// retries (only for bodies that can be rebuilt).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: impl Fn() -> OutBody,
        headers: &[(&str, String)],
    ) -> Result<(StatusCode, Bytes, HeaderMap), Error> {
        for renew in [false, true] {
            let (storage, token) = self.session(renew).await?;
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(format!("{storage}/{path}"))
                .header("x-auth-token", token);
            for (name, value) in headers {
                builder = builder.header(*name, value);
            }
            let (status, bytes, headers) =
                http_client::call_with_headers(&self.http, builder, body(), "Swift").await?;
            if status == StatusCode::UNAUTHORIZED && !renew {
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(Error::Forbidden(format!(
                    "Swift refused the token of user {} even after re-authenticating",
                    self.config.user
                )));
            }
            return Ok((status, bytes, headers));
        }
        Err(Error::Backend("unreachable".into()))
    }

    fn location_of(&self, object: &str) -> Location {
        Location::Swift(SwiftLocation {
            auth_address: self.config.auth_address.clone(),
            container: self.config.container.clone(),
            object: object.to_string(),
        })
    }

    /// Streams `source` into the object `name`.
    pub async fn put<S: DataSource>(
        &self,
        name: &str,
        source: &mut Metered<'_, S>,
    ) -> Result<Location, Error> {
        // A streamed body cannot be sent twice, so the token and the container are checked (and
        // the token renewed if Swift refuses it) before the first byte of the image is read.
        let container = self.config.container.clone();
        if self.config.create_container_on_put {
            let (status, _, _) = self
                .call(Method::PUT, &container, http_client::empty, &[])
                .await?;
            if !status.is_success() {
                return Err(Error::Backend(format!(
                    "Swift refused to create container {container}: {status}"
                )));
            }
        } else {
            let (status, _, _) = self
                .call(Method::HEAD, &container, http_client::empty, &[])
                .await?;
            self.check_put(status, &container)?;
        }
        match source.size_hint() {
            Some(size) if size < self.config.large_object_size => {
                let path = format!("{container}/{name}");
                self.put_streamed(&path, source, Span::Exact(size)).await?;
            }
            _ => self.put_segmented(name, source).await?,
        }
        Ok(self.location_of(name))
    }

    /// PUTs the `span` of `source` that comes next as the object at `path`, streamed. Returns
    /// the bytes sent.
    async fn put_streamed<S: DataSource>(
        &self,
        path: &str,
        source: &mut Metered<'_, S>,
        span: Span,
    ) -> Result<u64, Error> {
        let (storage, token) = self.session_lasting(false, RENEW_MARGIN).await?;
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("{storage}/{path}"))
            .header("x-auth-token", token);
        let (sending, sent) =
            http_client::send_streamed(&self.http, request, source, span, "Swift").await?;
        let response = sending.answer().await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            // The token was revoked while the upload streamed: the bytes are gone, so the upload
            // fails, but the next request (the clean-up first) gets a fresh token.
            let _ = self.authenticate().await;
            return Err(Error::Forbidden(format!(
                "Swift refused the token of user {} while {path} was streaming; the token is \
                 renewed, retry the upload",
                self.config.user
            )));
        }
        self.check_put(status, path)?;
        Ok(sent)
    }

    fn check_put(&self, status: StatusCode, path: &str) -> Result<(), Error> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(Error::Unavailable(format!(
                "Swift container {} does not exist (set swift_store_create_container_on_put)",
                self.config.container
            ))),
            StatusCode::FORBIDDEN => Err(Error::Forbidden(format!("Swift refused writing {path}"))),
            s => Err(Error::Backend(format!("Swift refused writing {path}: {s}"))),
        }
    }

    async fn put_segmented<S: DataSource>(
        &self,
        name: &str,
        source: &mut Metered<'_, S>,
    ) -> Result<(), Error> {
        let mut written: Vec<String> = Vec::new();
        let result = self.write_segments(name, source, &mut written).await;
        if let Err(e) = result {
            for segment in &written {
                let path = format!("{}/{segment}", self.config.container);
                match self
                    .call(Method::DELETE, &path, http_client::empty, &[])
                    .await
                {
                    Ok((status, _, _))
                        if status.is_success() || status == StatusCode::NOT_FOUND => {}
                    Ok((status, _, _)) => crate::error!(
                        "could not remove Swift segment {segment} of a failed upload: {status}"
                    ),
                    Err(del) => crate::error!(
                        "could not remove Swift segment {segment} of a failed upload: {del}"
                    ),
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Streams the upload as segments `<name>-00001`, … of the chunk size (each sized when the
    /// upload's size is known, chunked otherwise), then PUTs the manifest. Every object it
    /// starts writing is recorded in `written`, so a failure can remove them.
    async fn write_segments<S: DataSource>(
        &self,
        name: &str,
        source: &mut Metered<'_, S>,
        written: &mut Vec<String>,
    ) -> Result<(), Error> {
        let chunk = self.config.chunk_size.max(1);
        let total = source.size_hint();
        let mut sent_total = 0u64;
        for number in 1u32.. {
            let length = total.map(|size| chunk.min(size - sent_total));
            if number > 1 {
                let more = match length {
                    Some(length) => length > 0,
                    None => match source.next_chunk().await? {
                        Some(first) => {
                            source.push_back(first);
                            true
                        }
                        None => false,
                    },
                };
                if !more {
                    break;
                }
            }
            let segment = format!("{name}-{number:05}");
            let path = format!("{}/{segment}", self.config.container);
            written.push(segment);
            let span = length.map_or(Span::UpTo(chunk), Span::Exact);
            let sent = self.put_streamed(&path, source, span).await?;
            sent_total += sent;
            if length.is_none() && sent < chunk {
                break;
            }
        }
        let manifest = format!("{}/{name}-", self.config.container);
        let path = format!("{}/{name}", self.config.container);
        written.push(name.to_string());
        let (status, _, _) = self
            .call(
                Method::PUT,
                &path,
                http_client::empty,
                &[
                    ("x-object-manifest", manifest),
                    ("content-length", "0".into()),
                ],
            )
            .await?;
        self.check_put(status, &path)?;
        Ok(())
    }

    /// Streams the object at `loc` (a manifest streams its segments).
    pub async fn get(
        &self,
        loc: &SwiftLocation,
        range: Option<ByteRange>,
    ) -> Result<Retrieved, Error> {
        for renew in [false, true] {
            let (storage, token) = self.session(renew).await?;
            let mut builder = Request::builder()
                .method(Method::GET)
                .uri(format!("{storage}/{}/{}", loc.container, loc.object))
                .header("x-auth-token", token);
            // Swift serves ranges of plain objects and of DLO/SLO manifests alike.
            if let Some(r) = range {
                builder = builder.header(hyper::header::RANGE, r.range_header());
            }
            let request = http_client::build(builder, http_client::empty(), "Swift")?;
            let response = http_client::send(&self.http, request, "Swift").await?;
            match response.status() {
                StatusCode::UNAUTHORIZED if !renew => continue,
                StatusCode::NOT_FOUND => {
                    return Err(Error::NotFound(format!(
                        "Swift object {}/{}",
                        loc.container, loc.object
                    )))
                }
                s if s.is_success() => {
                    return http_client::retrieved_range(response, range, "Swift")
                }
                s => {
                    return Err(Error::Backend(format!(
                        "Swift answered {s} reading {}/{}",
                        loc.container, loc.object
                    )))
                }
            }
        }
        Err(Error::Forbidden(format!(
            "Swift refused the token of user {}",
            self.config.user
        )))
    }

    /// Deletes the object at `loc`, and its segments if it is a manifest.
    pub async fn delete(&self, loc: &SwiftLocation) -> Result<(), Error> {
        let path = format!("{}/{}", loc.container, loc.object);
        let (status, _, headers) = self
            .call(Method::HEAD, &path, http_client::empty, &[])
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!("Swift object {path}")));
        }
        if let Some(manifest) = headers
            .get("x-object-manifest")
            .and_then(|v: &HeaderValue| v.to_str().ok())
        {
            let (container, prefix) = manifest
                .split_once('/')
                .unwrap_or((&loc.container, manifest));
            let query = format!("{container}?format=json&prefix={}", encode(prefix));
            let (status, body, _) = self
                .call(Method::GET, &query, http_client::empty, &[])
                .await?;
            if !status.is_success() {
                return Err(Error::Backend(format!(
                    "Swift answered {status} listing segments of {path}"
                )));
            }
            let segments: Vec<Listed> = serde_json::from_slice(&body).unwrap_or_default();
            for segment in segments {
                let segment_path = format!("{container}/{}", encode(&segment.name));
                let (status, _, _) = self
                    .call(Method::DELETE, &segment_path, http_client::empty, &[])
                    .await?;
                if !status.is_success() && status != StatusCode::NOT_FOUND {
                    return Err(Error::Backend(format!(
                        "Swift answered {status} deleting a segment of {path}"
                    )));
                }
            }
        }
        let (status, _, _) = self
            .call(Method::DELETE, &path, http_client::empty, &[])
            .await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(Error::NotFound(format!("Swift object {path}"))),
            s => Err(Error::Backend(format!(
                "Swift answered {s} deleting {path}"
            ))),
        }
    }

    /// Removes what an interrupted upload of `name` left in the configured container: the
    /// segments `<name>-NNNNN` it wrote and, when `with_object`, the object (or manifest) itself.
    /// Without `with_object` nothing is removed: the segments of a finished upload are its data.
    pub async fn remove_leftovers(&self, name: &str, with_object: bool) -> Result<(), Error> {
        if !with_object {
            return Ok(());
        }
        let container = self.config.container.clone();
        let query = format!(
            "{container}?format=json&prefix={}",
            encode(&format!("{name}-"))
        );
        let (status, body, _) = self
            .call(Method::GET, &query, http_client::empty, &[])
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(()); // no container, nothing written
        }
        if !status.is_success() {
            return Err(Error::Backend(format!(
                "Swift answered {status} listing the segments of {name}"
            )));
        }
        let segments: Vec<Listed> = serde_json::from_slice(&body)
            .map_err(|e| Error::Backend(format!("Swift sent a malformed listing: {e}")))?;
        let names = segments.into_iter().map(|s| s.name);
        for object in names.chain(std::iter::once(name.to_string())) {
            let path = format!("{container}/{}", encode(&object));
            let (status, _, _) = self
                .call(Method::DELETE, &path, http_client::empty, &[])
                .await?;
            if !status.is_success() && status != StatusCode::NOT_FOUND {
                return Err(Error::Backend(format!(
                    "Swift answered {status} deleting {object}"
                )));
            }
        }
        Ok(())
    }
}

/// Percent-encodes a query or path component.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: Option<Instant>) -> Session {
        Session {
            storage_url: "http://127.0.0.1:1/v1/AUTH_test".into(),
            token: "t".into(),
            expires,
        }
    }

    #[test]
    fn a_token_is_renewed_before_an_upload_once_it_expires_within_the_margin() {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        assert!(session(None).lasts(RENEW_MARGIN, now));
        assert!(session(Some(now + hour)).lasts(RENEW_MARGIN, now));
        assert!(!session(Some(now + RENEW_MARGIN / 2)).lasts(RENEW_MARGIN, now));
        assert!(!session(Some(now)).lasts(Duration::ZERO, now));
        // Ordinary requests (margin zero) keep a token until its announced end.
        assert!(session(Some(now + RENEW_MARGIN / 2)).lasts(Duration::ZERO, now));
    }
}
