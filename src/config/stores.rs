//! The store options: the S3 and Swift settings, each present when its endpoint option is set
//! and then complete.

use super::{parse, parse_bool, required, ConfigError, RawConfig};
use crate::store::{S3Config, SwiftConfig};

/// The S3 store's settings: present when `s3_store_host` is set, and then complete.
pub(super) fn resolve_s3(raw: &RawConfig) -> Result<Option<S3Config>, ConfigError> {
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
    }))
}

/// The Swift store's settings: present when `swift_store_auth_address` is set, and then
/// complete. Only tempauth (auth version 1) is supported so far.
pub(super) fn resolve_swift(raw: &RawConfig) -> Result<Option<SwiftConfig>, ConfigError> {
    let Some(address) = raw
        .get("swift_store_auth_address")
        .map(|s| s.value.trim().to_string())
    else {
        return Ok(None);
    };
    parse(
        raw,
        "swift_store_auth_version",
        "1",
        "1 (tempauth; keystone v2/v3 are not supported yet)",
        |v| (v == "1" || v == "1.0").then_some(()),
    )?;
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
        user: required("swift_store_user")?,
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
