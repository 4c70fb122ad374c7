//! Token validation against Keystone v3, as keystonemiddleware's `auth_token` does it: the
//! service authenticates itself with a password (`[keystone_authtoken]`), then asks
//! `GET /v3/auth/tokens` with `X-Subject-Token` about each caller's token. Valid answers are
//! cached (bounded, for at most `token_cache_time` and never past the token's expiry), keyed
//! by a SHA-256 of the token so that the cache holds no token.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Identity;
use crate::store::http_client::{self, HttpClient, TrustRoots};
use crate::timestamp::Timestamp;

/// The `[keystone_authtoken]` options glint uses.
#[derive(Clone, PartialEq, Eq)]
pub struct KeystoneSettings {
    /// The Identity v3 endpoint (`auth_url`), ending in `/v3`.
    pub auth_url: String,
    /// The service user (`username`).
    pub username: String,
    /// Its password (`password`); never logged or shown.
    pub password: String,
    /// Its project (`project_name`).
    pub project_name: String,
    /// `user_domain_name` (default `Default`).
    pub user_domain_name: String,
    /// `project_domain_name` (default `Default`).
    pub project_domain_name: String,
    /// Longest time a validation is trusted without asking again (`token_cache_time`, seconds).
    pub cache_time_secs: u64,
    /// Most validations kept (`token_cache_size`).
    pub cache_size: usize,
}

impl fmt::Debug for KeystoneSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoneSettings")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("project_name", &self.project_name)
            .finish_non_exhaustive()
    }
}

/// Keystone could not be asked, or answered what it should not; the text never holds a token
/// or password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneError(pub String);

impl fmt::Display for KeystoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Keystone v3 token validator.
pub struct Keystone {
    settings: KeystoneSettings,
    http: HttpClient,
    /// The service's own token and when it expires.
    service_token: Mutex<Option<(String, Timestamp)>>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

struct Cached {
    identity: Identity,
    /// Valid in the cache until then.
    until: Timestamp,
}

/// The part of a token body glint reads.
#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: String,
    #[serde(default)]
    user: Option<Named>,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

impl Keystone {
    /// A validator; fails only when the trust roots cannot be read.
    pub fn new(settings: KeystoneSettings, roots: &TrustRoots) -> Result<Keystone, KeystoneError> {
        let http = http_client::new(roots).map_err(|e| KeystoneError(e.to_string()))?;
        Ok(Keystone {
            settings,
            http,
            service_token: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The holder of `token`, or `None` if Keystone does not know it or it has expired.
    pub async fn validate(&self, token: &str) -> Result<Option<Identity>, KeystoneError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Timestamp::now();
        if let Some(identity) = self.cached(&key, now) {
            return Ok(Some(identity));
        }
        let mut retried = false;
        loop {
            let service = self.service_token().await?;
            let (status, body) = self.ask(&service, token).await?;
            match status {
                StatusCode::OK => {
                    let identity = identity_of(&body)?;
                    if identity.expires_at.is_some_and(|t| t <= now) {
                        return Ok(None);
                    }
                    self.remember(key, &identity, now);
                    return Ok(Some(identity));
                }
                StatusCode::NOT_FOUND => return Ok(None),
                // The service token itself expired or was revoked: get a new one, once.
                StatusCode::UNAUTHORIZED if !retried => {
                    retried = true;
                    self.forget_service_token();
                }
                other => {
                    return Err(KeystoneError(format!(
                        "Keystone answered {} to a token validation",
                        other.as_u16()
                    )))
                }
            }
        }
    }

    fn cached(&self, key: &[u8; 32], now: Timestamp) -> Option<Identity> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|c| c.until > now)
            .map(|c| c.identity.clone())
    }

    fn remember(&self, key: [u8; 32], identity: &Identity, now: Timestamp) {
        let horizon = Timestamp::from_micros(
            now.as_micros() + self.settings.cache_time_secs as i64 * 1_000_000,
        );
        let until = identity.expires_at.map_or(horizon, |t| t.min(horizon));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.settings.cache_size {
            cache.retain(|_, c| c.until > now);
        }
        if cache.len() >= self.settings.cache_size {
            // Still full of live entries: drop the one that would leave soonest.
            let soonest = cache.iter().min_by_key(|(_, c)| c.until).map(|(k, _)| *k);
            if let Some(k) = soonest {
                cache.remove(&k);
            }
        }
        if self.settings.cache_size > 0 {
            cache.insert(
                key,
                Cached {
                    identity: identity.clone(),
                    until,
                },
            );
        }
    }

    /// Cached validations (for tests and metrics).
    pub fn cached_count(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    async fn ask(&self, service: &str, token: &str) -> Result<(StatusCode, Bytes), KeystoneError> {
        let url = format!("{}/auth/tokens", self.settings.auth_url);
        let request = Request::builder()
            .method(Method::GET)
            .uri(&url)
            .header("x-auth-token", header_value(service)?)
            .header("x-subject-token", header_value(token)?)
            .body(http_client::empty())
            .map_err(|e| KeystoneError(format!("cannot build the validation request: {e}")))?;
        let (status, _, bytes) = self.send(request).await?;
        Ok((status, bytes))
    }

    fn forget_service_token(&self) {
        *self.service_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The service's own token, fetched again a minute before it expires.
    async fn service_token(&self) -> Result<String, KeystoneError> {
        let soon = Timestamp::from_micros(Timestamp::now().as_micros() + 60_000_000);
        if let Some((token, expires)) =
            &*self.service_token.lock().unwrap_or_else(|p| p.into_inner())
        {
            if *expires > soon {
                return Ok(token.clone());
            }
        }
        let s = &self.settings;
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.username, "domain": {"name": s.user_domain_name}, "password": s.password,
            }}},
            "scope": {"project": {"name": s.project_name, "domain": {"name": s.project_domain_name}}},
        }});
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/auth/tokens", s.auth_url))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(http_client::full(body.to_string()))
            .map_err(|e| KeystoneError(format!("cannot build the service authentication: {e}")))?;
        let (status, headers, bytes) = self.send(request).await?;
        let token = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (StatusCode::CREATED | StatusCode::OK, Some(token)) = (status, token) else {
            return Err(KeystoneError(format!(
                "Keystone at {} refused the service user \"{}\" ({})",
                s.auth_url,
                s.username,
                status.as_u16()
            )));
        };
        let expires = serde_json::from_slice::<TokenBody>(&bytes)
            .ok()
            .and_then(|b| Timestamp::parse(&b.token.expires_at).ok())
            .unwrap_or(soon);
        *self.service_token.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((token.clone(), expires));
        Ok(token)
    }

    /// Sends a request to Keystone and reads its (small) answer.
    async fn send(
        &self,
        request: Request<http_client::OutBody>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), KeystoneError> {
        let url = format!("{}/auth/tokens", self.settings.auth_url);
        let response = self.http.request(request).await.map_err(|e| {
            KeystoneError(format!(
                "Keystone at {url} is unreachable: {}",
                http_client::describe(&e)
            ))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| KeystoneError(format!("reading Keystone's answer failed: {e}")))?
            .to_bytes();
        Ok((status, headers, bytes))
    }
}

fn header_value(token: &str) -> Result<HeaderValue, KeystoneError> {
    let mut value = HeaderValue::from_str(token)
        .map_err(|_| KeystoneError("a token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The identity in a validation answer.
fn identity_of(body: &[u8]) -> Result<Identity, KeystoneError> {
    let body: TokenBody = serde_json::from_slice(body)
        .map_err(|e| KeystoneError(format!("Keystone sent a token body glint cannot read: {e}")))?;
    let info = body.token;
    let expires_at = Timestamp::parse(&info.expires_at)
        .map_err(|_| KeystoneError("Keystone sent a token without a valid expires_at".into()))?;
    Ok(Identity {
        project_id: info.project.map(|p| p.id).unwrap_or_default(),
        user_id: info.user.map(|u| u.id).unwrap_or_default(),
        roles: info.roles.into_iter().map(|r| r.name).collect(),
        expires_at: Some(expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_body_gives_project_user_roles_and_expiry() {
        let body = br#"{"token": {"expires_at": "2030-01-02T03:04:05.000000Z",
            "user": {"id": "u1", "name": "alice"}, "project": {"id": "p1", "name": "demo"},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]}}"#;
        let identity = identity_of(body).unwrap();
        assert_eq!(identity.project_id, "p1");
        assert_eq!(identity.user_id, "u1");
        assert_eq!(identity.roles, ["member", "reader"]);
        assert_eq!(
            identity.expires_at,
            Some(Timestamp::parse("2030-01-02T03:04:05Z").unwrap())
        );
        assert!(identity_of(br#"{"token": {}}"#).is_err());
    }

    #[test]
    fn settings_never_print_the_password() {
        let s = KeystoneSettings {
            auth_url: "http://k/v3".into(),
            username: "glint".into(),
            password: "s3cret".into(),
            project_name: "service".into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            cache_time_secs: 300,
            cache_size: 10,
        };
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
