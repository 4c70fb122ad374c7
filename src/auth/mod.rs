//! Who is calling, and what they may do (spec §13): the request context, how a token becomes
//! one (a static tokens file or Keystone v3), the policy rules, and the visibility and
//! mutability of images. The API services ask this module; it knows nothing of their routes.

pub mod access;
pub mod keystone;
pub mod policy;
pub mod tokens_file;

use std::fmt;

use hyper::header::HeaderMap;

use crate::timestamp::Timestamp;
pub use keystone::{Keystone, KeystoneSettings};
pub use policy::{Policy, PolicyFile, Target};
pub use tokens_file::TokensFile;

/// The header a client sends its token in.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// A configuration file of this module (policy, tokens) that cannot be used; the text says
/// which file and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The project the token is scoped to (empty for an unscoped token).
    pub project_id: String,
    /// The user.
    pub user_id: String,
    /// Role names on the project.
    pub roles: Vec<String>,
    /// When the token stops being valid; `None` for tokens-file tokens.
    pub expires_at: Option<Timestamp>,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The user, when authenticated.
    pub user_id: Option<String>,
    /// The project, when authenticated with a scoped token.
    pub project_id: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Whether the caller holds the admin role (or runs without authentication).
    pub is_admin: bool,
    /// Anonymous callers may only read.
    pub read_only: bool,
    /// Who owns what this caller creates, and whose images it may change: the project, or the
    /// user when `owner_is_tenant` is false.
    pub owner: Option<String>,
}

impl Context {
    /// The no-auth deployment (§13): every request is an admin with no owner, holding the
    /// admin role so that `role:admin` rules pass as well.
    pub fn no_auth() -> Context {
        Context {
            user_id: None,
            project_id: None,
            roles: vec!["admin".to_string()],
            is_admin: true,
            read_only: false,
            owner: None,
        }
    }

    /// An unauthenticated caller where anonymous access is allowed: read-only, no owner.
    pub fn anonymous() -> Context {
        Context {
            user_id: None,
            project_id: None,
            roles: Vec::new(),
            is_admin: false,
            read_only: true,
            owner: None,
        }
    }

    /// The context of a token's holder.
    pub fn authenticated(identity: &Identity, settings: &AuthSettings) -> Context {
        let project = Some(identity.project_id.clone()).filter(|p| !p.is_empty());
        let user = Some(identity.user_id.clone()).filter(|u| !u.is_empty());
        let is_admin = identity
            .roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&settings.admin_role));
        let owner = if settings.owner_is_tenant {
            project.clone()
        } else {
            user.clone()
        };
        Context {
            user_id: user,
            project_id: project,
            roles: identity.roles.clone(),
            is_admin,
            read_only: false,
            owner,
        }
    }
}

/// How contexts are made, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// `owner_is_tenant` (default true): images belong to projects, not users.
    pub owner_is_tenant: bool,
    /// `admin_role` (default `admin`).
    pub admin_role: String,
    /// `allow_anonymous_access` (default false): callers without a token get a read-only
    /// context instead of 401.
    pub allow_anonymous_access: bool,
    /// The identity endpoint named in `WWW-Authenticate` on 401 (`www_authenticate_uri`).
    pub www_authenticate_uri: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            owner_is_tenant: true,
            admin_role: "admin".into(),
            allow_anonymous_access: false,
            www_authenticate_uri: None,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token, or one no source knows or that has expired: 401.
    Unauthorized {
        /// What to tell the client (never the token).
        message: String,
        /// The identity endpoint for `WWW-Authenticate`.
        www_authenticate: Option<String>,
    },
    /// The identity service could not be asked: 503.
    Unavailable(String),
}

/// Turns the token of a request into a context.
pub enum Authenticator {
    /// No authentication: every caller is [`Context::no_auth`].
    NoAuth,
    /// Tokens are checked against a tokens file, Keystone, or both (the file first).
    Tokens {
        /// `static_tokens_file`.
        file: Option<TokensFile>,
        /// `[keystone_authtoken]`.
        keystone: Option<Box<Keystone>>,
        /// How contexts are made.
        settings: AuthSettings,
    },
}

impl Authenticator {
    /// Whether requests are authenticated at all.
    pub fn enabled(&self) -> bool {
        !matches!(self, Authenticator::NoAuth)
    }

    /// The context of a request with these headers.
    pub async fn context(&self, headers: &HeaderMap) -> Result<Context, AuthFailure> {
        let (file, keystone, settings) = match self {
            Authenticator::NoAuth => return Ok(Context::no_auth()),
            Authenticator::Tokens {
                file,
                keystone,
                settings,
            } => (file, keystone, settings),
        };
        let unauthorized = |message: &str| AuthFailure::Unauthorized {
            message: message.to_string(),
            www_authenticate: settings.www_authenticate_uri.clone(),
        };
        let token = headers
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            if settings.allow_anonymous_access {
                return Ok(Context::anonymous());
            }
            return Err(unauthorized("This server could not verify that you are authorized to access the document you requested: no X-Auth-Token was given."));
        };
        if let Some(identity) = file.as_ref().and_then(|f| f.lookup(token)) {
            return Ok(Context::authenticated(&identity, settings));
        }
        if let Some(keystone) = keystone {
            return match keystone.validate(token).await {
                Ok(Some(identity)) => Ok(Context::authenticated(&identity, settings)),
                Ok(None) => Err(unauthorized(
                    "The token is invalid or has expired; authenticate again.",
                )),
                Err(e) => Err(AuthFailure::Unavailable(e.to_string())),
            };
        }
        Err(unauthorized(
            "The token is invalid or has expired; authenticate again.",
        ))
    }

    /// Reads the tokens file again (SIGHUP).
    pub fn reload(&self) {
        if let Authenticator::Tokens {
            file: Some(file), ..
        } = self
        {
            match file.reload() {
                Ok(n) => crate::info!("tokens file reloaded: {n} tokens"),
                Err(e) => crate::error!("tokens file not reloaded, the old tokens stay: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_auth(text: &str, anonymous: bool) -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, text).unwrap();
        let auth = Authenticator::Tokens {
            file: Some(TokensFile::open(&path).unwrap()),
            keystone: None,
            settings: AuthSettings {
                allow_anonymous_access: anonymous,
                www_authenticate_uri: Some("http://id.example/".into()),
                ..AuthSettings::default()
            },
        };
        (dir, auth)
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(AUTH_TOKEN_HEADER, t.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn tokens_give_contexts_with_owner_and_admin_flag() {
        let (_dir, auth) = file_auth("adm p1 u1 admin\nmem p2 u2 member,reader\n", false);
        let admin = auth.context(&headers(Some("adm"))).await.unwrap();
        assert!(admin.is_admin && admin.owner.as_deref() == Some("p1"));
        let member = auth.context(&headers(Some("mem"))).await.unwrap();
        assert!(!member.is_admin && !member.read_only);
        assert_eq!(member.owner.as_deref(), Some("p2"));
        assert_eq!(member.user_id.as_deref(), Some("u2"));
    }

    #[tokio::test]
    async fn missing_and_unknown_tokens_are_401_unless_anonymous_is_allowed() {
        let (_dir, auth) = file_auth("t p u member\n", false);
        for token in [None, Some("nope")] {
            match auth.context(&headers(token)).await {
                Err(AuthFailure::Unauthorized {
                    message,
                    www_authenticate,
                }) => {
                    assert_eq!(www_authenticate.as_deref(), Some("http://id.example/"));
                    assert!(!message.contains("nope"), "never echo a token: {message}");
                }
                other => panic!("{token:?}: {other:?}"),
            }
        }
        let (_dir, anon) = file_auth("t p u member\n", true);
        let ctx = anon.context(&headers(None)).await.unwrap();
        assert!(ctx.read_only && ctx.owner.is_none() && !ctx.is_admin);
        assert!(anon.context(&headers(Some("bad"))).await.is_err());
    }

    #[test]
    fn owner_is_the_user_when_owner_is_tenant_is_false() {
        let identity = Identity {
            project_id: "p".into(),
            user_id: "u".into(),
            roles: vec!["Admin".into()],
            expires_at: None,
        };
        let settings = AuthSettings {
            owner_is_tenant: false,
            ..AuthSettings::default()
        };
        let ctx = Context::authenticated(&identity, &settings);
        assert_eq!(ctx.owner.as_deref(), Some("u"));
        assert!(ctx.is_admin, "roles compare without case");
    }
}
