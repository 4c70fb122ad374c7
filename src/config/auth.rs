//! The identity options: `[paste_deploy] flavor`, `[keystone_authtoken]` (stored with a
//! `keystone_authtoken_` prefix, so `GLINT_KEYSTONE_AUTHTOKEN_AUTH_URL` sets `auth_url`),
//! `static_tokens_file`, `owner_is_tenant`, `admin_role`, `allow_anonymous_access`,
//! `[oslo_policy] policy_file` and `registry_trusted_clients`.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{
    non_empty_path, optional_url as url, parse, parse_bool, required, ConfigError, RawConfig,
};
use crate::auth::{AuthSettings, KeystoneSettings};

/// The prefix under which `[keystone_authtoken]` options are kept.
pub(super) const KEYSTONE_PREFIX: &str = "keystone_authtoken_";

/// The `[keystone_authtoken]` options glint reads.
pub(super) const KEYSTONE_OPTIONS: &[&str] = &[
    "auth_url",
    "www_authenticate_uri",
    "auth_uri",
    "auth_type",
    "username",
    "password",
    "project_name",
    "user_domain_name",
    "project_domain_name",
    "token_cache_time",
    "token_cache_size",
];

/// Options of `[keystone_authtoken]` accepted without effect (glint caches in-process).
pub(super) const KEYSTONE_ACCEPTED: &[&str] = &[
    "memcached_servers",
    "service_token_roles_required",
    "delay_auth_decision",
    "region_name",
    "interface",
];

/// How requests are authenticated and authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Whether `flavor` asks for authentication (`keystone`); otherwise no-auth (§13).
    pub enabled: bool,
    /// `static_tokens_file`.
    pub static_tokens_file: Option<PathBuf>,
    /// `[keystone_authtoken]`, when `auth_url` is set.
    pub keystone: Option<KeystoneSettings>,
    /// How a token's holder becomes a context.
    pub settings: AuthSettings,
    /// `[oslo_policy] policy_file`; `None` uses Glance's defaults.
    pub policy_file: Option<PathBuf>,
    /// Addresses whose context headers `glint registry` believes (`registry_trusted_clients`).
    pub registry_trusted_clients: Vec<IpAddr>,
}

/// Resolves the identity options.
pub(super) fn resolve(raw: &RawConfig) -> Result<AuthConfig, ConfigError> {
    let enabled = parse(
        raw,
        "flavor",
        "",
        "empty (no authentication) or keystone",
        |v| match v {
            "" => Some(false),
            v if v == "keystone" || v.starts_with("keystone+") => Some(true),
            _ => None,
        },
    )?;
    let static_tokens_file = parse(raw, "static_tokens_file", "", "a file path", |v| {
        Some(non_empty_path(v))
    })?;
    let keystone = match raw.get(&format!("{KEYSTONE_PREFIX}auth_url")) {
        None => None,
        Some(_) => Some(keystone(raw)?),
    };
    if enabled && keystone.is_none() && static_tokens_file.is_none() {
        return Err(ConfigError::Missing {
            option: "keystone_authtoken auth_url".into(),
            expected: "the Keystone v3 URL (or a static_tokens_file) when flavor = keystone".into(),
        });
    }
    let settings = auth_settings(raw, keystone.as_ref())?;
    let policy_file =
        parse(
            raw,
            "policy_file",
            "",
            "a readable policy file",
            |v| match non_empty_path(v) {
                None => Some(None),
                Some(p) => p.is_file().then_some(Some(p)),
            },
        )?;
    let registry_trusted_clients = parse(
        raw,
        "registry_trusted_clients",
        "",
        "comma-separated IP addresses",
        |v| {
            v.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().ok())
                .collect()
        },
    )?;
    Ok(AuthConfig {
        enabled,
        static_tokens_file,
        keystone: if enabled { keystone } else { None },
        settings,
        policy_file,
        registry_trusted_clients,
    })
}

fn k(option: &str) -> String {
    format!("{KEYSTONE_PREFIX}{option}")
}

fn keystone(raw: &RawConfig) -> Result<KeystoneSettings, ConfigError> {
    let auth_url = parse(
        raw,
        &k("auth_url"),
        "",
        "the Keystone URL (http or https)",
        |v| url(v).flatten(),
    )?;
    // keystonemiddleware takes the identity root or its /v3; glint speaks v3 only.
    let auth_url = if auth_url.ends_with("/v3") {
        auth_url
    } else {
        format!("{auth_url}/v3")
    };
    parse(raw, &k("auth_type"), "password", "password", |v| {
        (v == "password").then_some(())
    })?;
    let name = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let needed = "set in [keystone_authtoken] for the service user";
    Ok(KeystoneSettings {
        auth_url,
        username: required(raw, &k("username"), needed)?,
        password: required(raw, &k("password"), needed)?,
        project_name: required(raw, &k("project_name"), needed)?,
        user_domain_name: parse(
            raw,
            &k("user_domain_name"),
            "Default",
            "a domain name",
            name,
        )?,
        project_domain_name: parse(
            raw,
            &k("project_domain_name"),
            "Default",
            "a domain name",
            name,
        )?,
        cache_time_secs: parse(raw, &k("token_cache_time"), "300", "seconds", |v| {
            v.parse().ok()
        })?,
        cache_size: parse(raw, &k("token_cache_size"), "10000", "a count", |v| {
            v.parse().ok()
        })?,
    })
}

/// How a token's holder becomes a context, and what a 401 names.
fn auth_settings(
    raw: &RawConfig,
    keystone: Option<&KeystoneSettings>,
) -> Result<AuthSettings, ConfigError> {
    let www_authenticate_uri =
        match parse(raw, &k("www_authenticate_uri"), "", "an http(s) URL", url)? {
            Some(uri) => Some(uri),
            None => parse(raw, &k("auth_uri"), "", "an http(s) URL", url)?,
        };
    let www_authenticate_uri = www_authenticate_uri
        .or_else(|| keystone.map(|k| k.auth_url.trim_end_matches("/v3").to_string()));
    Ok(AuthSettings {
        owner_is_tenant: parse(raw, "owner_is_tenant", "true", "true or false", parse_bool)?,
        admin_role: parse(raw, "admin_role", "admin", "a role name", |v| {
            (!v.is_empty()).then(|| v.to_string())
        })?,
        allow_anonymous_access: parse(
            raw,
            "allow_anonymous_access",
            "false",
            "true or false",
            parse_bool,
        )?,
        www_authenticate_uri,
    })
}
