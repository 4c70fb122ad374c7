//! The store options: the S3 and Swift settings, each present when its endpoint option is set
//! and then complete.

use std::path::Path;

use super::{parse, parse_bool, required, ConfigError, RawConfig};
use crate::store::{S3Config, SwiftAuth, SwiftConfig};

/// The S3 store's settings: present when `s3_store_host` is set, and then complete. Parts of
/// uploads of unknown size are spooled under `data_dir`.
pub(super) fn resolve_s3(
    raw: &RawConfig,
    data_dir: &Path,
) -> Result<Option<S3Config>, ConfigError> {
    let Some(host) = raw.get("s3_store_host").map(|s| s.value.trim().to_string()) else {
        return Ok(None);
    };
    let endpoint = if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", host.trim_end_matches('/'))
    };
    let required = |option| {
        required(
            raw,
            option,
            "a non-empty value (the S3 store is configured)",
        )
    };
    let mb = |option, default, min: u64| {
        parse(
            raw,
            option,
            default,
            &format!("a size in MB, at least {min}"),
            |v| v.parse::<u64>().ok().filter(|n| *n >= min).map(|n| n << 20),
        )
    };
    Ok(Some(S3Config {
        endpoint,
        access_key: required("s3_store_access_key")?,
        secret_key: required("s3_store_secret_key")?,
        bucket: required("s3_store_bucket")?,
        region: parse(raw, "s3_store_region", "us-east-1", "a region name", |v| {
            (!v.is_empty()).then(|| v.to_string())
        })?,
        path_style: parse(
            raw,
            "s3_store_bucket_url_format",
            "path",
            "path or virtual",
            |v| match v {
                "path" | "auto" => Some(true),
                "virtual" => Some(false),
                _ => None,
            },
        )?,
        create_bucket_on_put: parse(
            raw,
            "s3_store_create_bucket_on_put",
            "false",
            "true or false",
            parse_bool,
        )?,
        multipart_threshold: mb("s3_store_large_object_size", "100", 0)?,
        part_size: mb("s3_store_large_object_chunk_size", "10", 5)?,
        spool_dir: data_dir.join("spool"),
    }))
}

/// The Swift store's settings: present when `swift_store_auth_address` is set, and then
/// complete. Auth version 1 (tempauth) or 3 (Keystone v3).
pub(super) fn resolve_swift(raw: &RawConfig) -> Result<Option<SwiftConfig>, ConfigError> {
    let Some(address) = raw
        .get("swift_store_auth_address")
        .map(|s| s.value.trim().to_string())
    else {
        return Ok(None);
    };
    let v3 = parse(
        raw,
        "swift_store_auth_version",
        "1",
        "1 (tempauth) or 3 (Keystone v3; v2 is gone from Keystone)",
        |v| match v {
            "1" | "1.0" => Some(false),
            "3" => Some(true),
            _ => None,
        },
    )?;
    let auth = if v3 { swift_v3(raw)? } else { SwiftAuth::V1 };
    let auth_address = if address.starts_with("http://") || address.starts_with("https://") {
        address
    } else {
        format!("https://{address}")
    };
    let required = |option| {
        required(
            raw,
            option,
            "a non-empty value (the Swift store is configured)",
        )
    };
    let mb = |option, default| {
        parse(raw, option, default, "a size in MB, at least 1", |v| {
            v.parse::<u64>().ok().filter(|n| *n >= 1).map(|n| n << 20)
        })
    };
    Ok(Some(SwiftConfig {
        auth_address: auth_address.trim_end_matches('/').to_string(),
        user: {
            let user = required("swift_store_user")?;
            if matches!(auth, SwiftAuth::V3 { .. }) && !user.contains(':') {
                return Err(ConfigError::InvalidValue {
                    option: "swift_store_user".into(),
                    value: user,
                    origin: raw
                        .get("swift_store_user")
                        .map(|s| s.origin.clone())
                        .unwrap_or_default(),
                    expected: "project:user (swift_store_auth_version = 3)".into(),
                });
            }
            user
        },
        auth,
        key: required("swift_store_key")?,
        container: parse(
            raw,
            "swift_store_container",
            "glance",
            "a container name",
            |v| (!v.is_empty() && !v.contains('/')).then(|| v.to_string()),
        )?,
        create_container_on_put: parse(
            raw,
            "swift_store_create_container_on_put",
            "false",
            "true or false",
            parse_bool,
        )?,
        large_object_size: mb("swift_store_large_object_size", "5120")?,
        chunk_size: mb("swift_store_large_object_chunk_size", "200")?,
    }))
}

/// The Keystone v3 options of the Swift store (glance_store's names).
fn swift_v3(raw: &RawConfig) -> Result<SwiftAuth, ConfigError> {
    let name = |v: &str| (!v.is_empty()).then(|| v.to_string());
    Ok(SwiftAuth::V3 {
        user_domain: parse(
            raw,
            "swift_store_user_domain_name",
            "Default",
            "a domain name",
            name,
        )?,
        project_domain: parse(
            raw,
            "swift_store_project_domain_name",
            "Default",
            "a domain name",
            name,
        )?,
        region: parse(raw, "swift_store_region", "", "a region name", |v| {
            Some(name(v))
        })?,
        interface: parse(
            raw,
            "swift_store_endpoint_type",
            "publicURL",
            "publicURL, internalURL or adminURL",
            |v| match v {
                "publicURL" | "public" => Some("public".to_string()),
                "internalURL" | "internal" => Some("internal".to_string()),
                "adminURL" | "admin" => Some("admin".to_string()),
                _ => None,
            },
        )?,
    })
}
