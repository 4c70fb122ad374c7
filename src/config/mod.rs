//! Configuration in two stages: [`RawConfig`] holds what the operator typed (a Glance-style INI
//! file, `GLINT_*` environment variables, flags; every value an optional string), and
//! [`Config::resolve`] applies precedence (defaults < file < environment < flags), validates every
//! value once and returns types that cannot be invalid.
//!
//! Layout: `raw` (the sources), `ini` (the file parser), `stores` (the S3 and Swift options),
//! `error` ([`ConfigError`]); this file holds the resolved [`Config`] and the value checks.

mod auth;
mod conversion;
mod error;
mod ini;
mod raw;
mod stores;

use std::net::IpAddr;
use std::path::PathBuf;

pub use auth::AuthConfig;
pub use error::ConfigError;
pub use ini::{SyntaxError, SyntaxErrorKind};
pub use raw::RawConfig;

use crate::log::Level;
use crate::registry::Limits;
use crate::store::http_client::TrustRoots;

/// Which program the configuration is for: decides which INI sections apply and what the
/// unqualified `bind_host` / `bind_port` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// `glint serve`: API and registry in one process.
    Serve,
    /// `glint registry`: the Registry API alone.
    Registry,
    /// `glint api`: the Images API over a remote registry.
    Api,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address every server listens on.
    pub bind_host: IpAddr,
    /// Registry API port.
    pub registry_port: u16,
    /// Images API port.
    pub api_port: u16,
    /// Directory that holds all state.
    pub data_dir: PathBuf,
    /// Paging defaults.
    pub limits: Limits,
    /// Most detailed log level printed.
    pub log_level: Level,
    /// One JSON object per log line (`use_json`, oslo.log's option) instead of plain text.
    pub log_json: bool,
    /// Store that takes uploads without `x-image-meta-store`.
    pub default_store: String,
    /// Directory of the filesystem store.
    pub filesystem_store_datadir: PathBuf,
    /// Largest image accepted, in bytes.
    pub image_size_cap: u64,
    /// Most properties per image; `None` is unlimited (a negative value in the file).
    pub image_property_quota: Option<usize>,
    /// Most members per image; `None` is unlimited (a negative value in the file).
    pub image_member_quota: Option<usize>,
    /// Base URL of the Images API as clients see it (versions document, `Location`).
    pub public_endpoint: Option<String>,
    /// Where `glint api` finds the registry (`registry_url`, or `registry_host:registry_port`).
    pub registry_url: String,
    /// The S3 store, when `s3_store_host` is set.
    pub s3: Option<crate::store::S3Config>,
    /// The Swift store, when `swift_store_auth_address` is set.
    pub swift: Option<crate::store::SwiftConfig>,
    /// Certificate authorities for https store endpoints (`https_ca_certificates_file`).
    pub trust_roots: crate::store::http_client::TrustRoots,
    /// Authentication and policy.
    pub auth: AuthConfig,
    /// While this file exists, `/healthcheck` answers 503 (`[healthcheck] disable_by_file_path`).
    pub health_disable_file: Option<PathBuf>,
    /// `[image_format] require_image_format_match` (default true).
    pub require_image_format_match: bool,
    /// `[image_format] disk_formats` and `container_formats` (default: every known format).
    pub enabled_formats: crate::model::EnabledFormats,
    /// What the servers allow their clients (timeouts, connections, header sizes).
    pub client_limits: crate::server::ClientLimits,
    /// Bytes of sled's page cache for the registry (`registry_cache_size`).
    pub registry_cache_size: u64,
    /// Free bytes the registry's disk must keep for writes to be taken
    /// (`registry_reserved_space`).
    pub registry_reserved_space: u64,
    /// `max-age` of image data responses in seconds (`image_cache_max_age`, glint's own).
    pub image_cache_max_age: u64,
    /// Image conversion: its temporary files, the bounds on `qemu-img`, the import plugin.
    pub conversion: crate::convert::Options,
}

impl Config {
    /// Applies defaults to `raw` and validates every value.
    pub fn resolve(raw: &RawConfig) -> Result<Config, ConfigError> {
        // Checked in this order, so the first bad option reported does not depend on the layout.
        let bind_host = parse(raw, "bind_host", "0.0.0.0", "an IP address", |v| {
            v.parse().ok()
        })?;
        let registry_port = port(raw, "registry_port", "9191")?;
        let api_port = port(raw, "api_port", "9292")?;
        let data_dir = parse(
            raw,
            "data_dir",
            "./glint-data",
            "a directory path",
            non_empty_path,
        )?;
        Ok(Config {
            bind_host,
            registry_port,
            api_port,
            limits: limits(raw)?,
            default_store: parse(
                raw,
                "default_store",
                "file",
                "a store name (file, s3, swift)",
                |v| {
                    crate::store::STORE_NAMES
                        .contains(&v)
                        .then(|| v.to_string())
                },
            )?,
            filesystem_store_datadir: match raw.get("filesystem_store_datadir") {
                Some(_) => parse(
                    raw,
                    "filesystem_store_datadir",
                    "",
                    "a directory path",
                    non_empty_path,
                )?,
                None => data_dir.join("images"),
            },
            conversion: conversion::resolve(raw, &data_dir)?,
            s3: stores::resolve_s3(raw, &data_dir)?,
            data_dir,
            image_size_cap: parse(
                raw,
                "image_size_cap",
                "1099511627776",
                "a size in bytes",
                |v| v.parse::<u64>().ok().filter(|n| *n <= i64::MAX as u64),
            )?,
            image_property_quota: quota(raw, "image_property_quota")?,
            image_member_quota: quota(raw, "image_member_quota")?,
            public_endpoint: public_endpoint(raw)?,
            registry_url: registry_url(raw, registry_port)?,
            swift: stores::resolve_swift(raw)?,
            trust_roots: trust_roots(raw)?,
            log_level: log_level(raw)?,
            log_json: parse(raw, "use_json", "false", "true or false", parse_bool)?,
            auth: auth::resolve(raw)?,
            require_image_format_match: parse(
                raw,
                "require_image_format_match",
                "true",
                "true or false",
                parse_bool,
            )?,
            enabled_formats: crate::model::EnabledFormats {
                disk: format_list(raw, "disk_formats", crate::model::DISK_FORMATS)?,
                container: format_list(raw, "container_formats", crate::model::CONTAINER_FORMATS)?,
            },
            image_cache_max_age: parse(
                raw,
                "image_cache_max_age",
                "60",
                "a number of seconds",
                |v| v.parse::<u64>().ok().filter(|n| *n <= i32::MAX as u64),
            )?,
            health_disable_file: parse(raw, "disable_by_file_path", "", "a file path", |v| {
                Some(non_empty_path(v))
            })?,
            client_limits: client_limits(raw)?,
            registry_cache_size: parse(
                raw,
                "registry_cache_size",
                "16777216",
                "a size in bytes (at least 1048576)",
                |v| v.parse::<u64>().ok().filter(|n| *n >= 1 << 20),
            )?,
            registry_reserved_space: parse(
                raw,
                "registry_reserved_space",
                "67108864",
                "a size in bytes (0: no reserve)",
                |v| v.parse::<u64>().ok(),
            )?,
        })
    }

    /// Where the registry's sled database lives.
    pub fn registry_dir(&self) -> PathBuf {
        self.data_dir.join("registry")
    }
}

fn port(raw: &RawConfig, option: &str, default: &str) -> Result<u16, ConfigError> {
    parse(raw, option, default, "a port number (0-65535)", |v| {
        v.parse().ok()
    })
}

fn non_empty_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

fn limits(raw: &RawConfig) -> Result<Limits, ConfigError> {
    let positive = |v: &str| v.parse::<usize>().ok().filter(|n| *n > 0);
    Ok(Limits {
        default: parse(
            raw,
            "limit_param_default",
            "25",
            "a positive integer",
            positive,
        )?,
        max: parse(raw, "api_limit_max", "1000", "a positive integer", positive)?,
    })
}

/// What a server allows its clients: Glance's `client_socket_timeout` (seconds a connection may
/// stay silent; 0 waits forever) and `max_header_line`, and glint's `client_header_timeout`
/// (seconds to send the request headers, slowloris guard) and `max_connections` (0: no limit).
fn client_limits(raw: &RawConfig) -> Result<crate::server::ClientLimits, ConfigError> {
    use std::time::Duration;
    let seconds = |v: &str| v.parse::<u64>().ok();
    let socket = parse(
        raw,
        "client_socket_timeout",
        "900",
        "a number of seconds (0: none)",
        seconds,
    )?;
    let header = parse(
        raw,
        "client_header_timeout",
        "30",
        "a positive number of seconds",
        |v| seconds(v).filter(|n| *n > 0),
    )?;
    Ok(crate::server::ClientLimits {
        header_timeout: Duration::from_secs(header),
        socket_timeout: (socket > 0).then(|| Duration::from_secs(socket)),
        max_connections: parse(
            raw,
            "max_connections",
            "4096",
            "a number of connections (0: no limit)",
            |v| v.parse().ok(),
        )?,
        max_header_line: parse(
            raw,
            "max_header_line",
            "16384",
            "a size in bytes (at least 1024)",
            |v| v.parse::<usize>().ok().filter(|n| *n >= 1024),
        )?,
        ..Default::default()
    })
}

/// `debug` wins over `verbose`; neither prints warnings only.
fn log_level(raw: &RawConfig) -> Result<Level, ConfigError> {
    let verbose = parse(raw, "verbose", "false", "true or false", parse_bool)?;
    let debug = parse(raw, "debug", "false", "true or false", parse_bool)?;
    Ok(if debug {
        Level::Debug
    } else if verbose {
        Level::Info
    } else {
        Level::Warn
    })
}

/// A count limit where a negative value means unlimited (`None`).
fn quota(raw: &RawConfig, option: &str) -> Result<Option<usize>, ConfigError> {
    parse(
        raw,
        option,
        "128",
        "an integer (negative: unlimited)",
        |v| v.parse::<i64>().ok().map(|n| usize::try_from(n).ok()),
    )
}

fn public_endpoint(raw: &RawConfig) -> Result<Option<String>, ConfigError> {
    parse(raw, "public_endpoint", "", "an http(s) URL", optional_url)
}

/// An empty value (none), or an http(s) URL without its trailing slashes.
fn optional_url(v: &str) -> Option<Option<String>> {
    if v.is_empty() {
        Some(None)
    } else if v.starts_with("http://") || v.starts_with("https://") {
        Some(Some(v.trim_end_matches('/').to_string()))
    } else {
        None
    }
}

/// `registry_url` if set, else `http://registry_host:registry_port` (a wildcard host meaning
/// this machine).
fn registry_url(raw: &RawConfig, registry_port: u16) -> Result<String, ConfigError> {
    let registry_host = parse(
        raw,
        "registry_host",
        "127.0.0.1",
        "a host name or address",
        |v| (!v.is_empty() && !v.contains(['/', ' '])).then(|| v.to_string()),
    )?;
    parse(raw, "registry_url", "", "an http:// URL", |v| {
        if v.is_empty() {
            let host = if registry_host == "0.0.0.0" {
                "127.0.0.1"
            } else {
                registry_host.as_str()
            };
            Some(format!("http://{host}:{registry_port}"))
        } else {
            v.starts_with("http://")
                .then(|| v.trim_end_matches('/').to_string())
        }
    })
}

fn trust_roots(raw: &RawConfig) -> Result<TrustRoots, ConfigError> {
    match raw.get("https_ca_certificates_file") {
        None => Ok(TrustRoots::System),
        Some(_) => parse(
            raw,
            "https_ca_certificates_file",
            "",
            "a readable PEM file",
            |v| {
                std::path::Path::new(v)
                    .is_file()
                    .then(|| TrustRoots::Bundle(PathBuf::from(v)))
            },
        ),
    }
}

/// The value of `option` (or `default` when unset) checked and converted by `f`.
/// A comma-separated list of formats, each one of `known` (every one of them by default).
fn format_list(raw: &RawConfig, option: &str, known: &[&str]) -> Result<Vec<String>, ConfigError> {
    let expected = format!("a comma-separated list of: {}", known.join(", "));
    parse(raw, option, &known.join(","), &expected, |v| {
        let formats: Vec<String> = v
            .split(',')
            .map(|f| f.trim().to_ascii_lowercase())
            .filter(|f| !f.is_empty())
            .collect();
        let all_known = formats.iter().all(|f| known.contains(&f.as_str()));
        (all_known && !formats.is_empty()).then_some(formats)
    })
}

fn parse<T>(
    raw: &RawConfig,
    option: &str,
    default: &str,
    expected: &str,
    f: impl Fn(&str) -> Option<T>,
) -> Result<T, ConfigError> {
    match raw.get(option) {
        None => f(default).ok_or_else(|| ConfigError::BadDefault {
            option: option.to_string(),
        }),
        Some(s) => f(s.value.trim()).ok_or_else(|| ConfigError::InvalidValue {
            option: option.to_string(),
            value: s.value.clone(),
            origin: s.origin.clone(),
            expected: expected.to_string(),
        }),
    }
}

/// The non-empty value of `option`, which must be set.
fn required(raw: &RawConfig, option: &str, expected: &str) -> Result<String, ConfigError> {
    if raw.get(option).is_none() {
        return Err(ConfigError::Missing {
            option: option.to_string(),
            expected: expected.to_string(),
        });
    }
    parse(raw, option, "", expected, |v| {
        (!v.is_empty()).then(|| v.to_string())
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(&RawConfig::default()).unwrap();
        assert_eq!(c.bind_host.to_string(), "0.0.0.0");
        assert_eq!((c.registry_port, c.api_port), (9191, 9292));
        assert_eq!(c.data_dir, PathBuf::from("./glint-data"));
        assert_eq!(
            c.limits,
            Limits {
                default: 25,
                max: 1000
            }
        );
        assert_eq!(c.log_level, Level::Warn);
    }

    #[test]
    fn file_then_env_then_flags() {
        let f = write_file(
            "# glance-registry.conf\n[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = 9000\n\
             limit_param_default = 10\nsql_connection = sqlite:///x\nfancy = 1\n\
             [app:glance-registry]\napi_limit_max: 50\n",
        );
        let mut raw = RawConfig::default();
        raw.load_file(f.path(), App::Registry).unwrap();
        let c = Config::resolve(&raw).unwrap();
        assert_eq!(
            c.registry_port, 9000,
            "DEFAULT bind_port is the registry port"
        );
        assert_eq!(
            c.limits,
            Limits {
                default: 10,
                max: 50
            }
        );
        assert_eq!(raw.warnings.len(), 1, "{:?}", raw.warnings);
        assert!(raw.warnings[0].contains("fancy"));
        raw.load_env([("GLINT_REGISTRY_PORT".to_string(), "9001".to_string())]);
        assert_eq!(Config::resolve(&raw).unwrap().registry_port, 9001);
        raw.set_flag("registry_port", "9002");
        assert_eq!(Config::resolve(&raw).unwrap().registry_port, 9002);
    }

    /// `disk_formats` and `container_formats` take a list of known formats (any case, spaces
    /// allowed), default to all of them, and refuse an unknown or empty list.
    #[test]
    fn enabled_formats_are_lists_of_known_formats() {
        let defaults = Config::resolve(&RawConfig::default()).unwrap();
        assert_eq!(
            defaults.enabled_formats,
            crate::model::EnabledFormats::default()
        );
        let mut raw = RawConfig::default();
        raw.load_env([
            ("GLINT_DISK_FORMATS".to_string(), " raw, QCOW2 ".to_string()),
            ("GLINT_CONTAINER_FORMATS".to_string(), "bare".to_string()),
        ]);
        let c = Config::resolve(&raw).unwrap();
        assert_eq!(c.enabled_formats.disk, ["raw", "qcow2"]);
        assert_eq!(c.enabled_formats.container, ["bare"]);
        for (option, value) in [
            ("disk_formats", "raw,floppy"),
            ("disk_formats", " , "),
            ("container_formats", "tar"),
        ] {
            let mut raw = RawConfig::default();
            raw.load_env([(
                format!("GLINT_{}", option.to_uppercase()),
                value.to_string(),
            )]);
            let err = Config::resolve(&raw).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidValue { option: o, .. } if o == option),
                "{option}={value}: {err:?}"
            );
        }
    }

    #[test]
    fn invalid_values_name_the_option_and_origin() {
        let mut raw = RawConfig::default();
        raw.load_env([("GLINT_REGISTRY_PORT".to_string(), "http".to_string())]);
        let err = Config::resolve(&raw).unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidValue { option, .. } if option == "registry_port"),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.contains("registry_port")
                && err.contains("GLINT_REGISTRY_PORT")
                && err.contains("'http'"),
            "{err}"
        );
        let f = write_file("[DEFAULT]\nverbose = perhaps\n");
        let mut raw = RawConfig::default();
        raw.load_file(f.path(), App::Serve).unwrap();
        let err = Config::resolve(&raw).unwrap_err().to_string();
        assert!(
            err.contains("verbose") && err.contains("[DEFAULT]"),
            "{err}"
        );
    }

    #[test]
    fn malformed_ini_reports_the_line() {
        let f = write_file("[DEFAULT]\nthis line is wrong\n");
        let err = RawConfig::default()
            .load_file(f.path(), App::Serve)
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Syntax { error, .. } if error.line == 2),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.ends_with(":2: expected 'option = value', got 'this line is wrong'"),
            "{err}"
        );
    }

    #[test]
    fn a_configured_store_names_its_missing_option() {
        let mut raw = RawConfig::default();
        raw.set_flag("s3_store_host", "127.0.0.1:9000");
        let err = Config::resolve(&raw).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Missing { option, .. } if option == "s3_store_access_key"),
            "{err:?}"
        );
    }
}
