//! Configuration in two stages: [`RawConfig`] holds what the operator typed (a Glance-style INI
//! file, `GLINT_*` environment variables, flags; every value an optional string), and
//! [`Config::resolve`] applies precedence (defaults < file < environment < flags), validates every
//! value once and returns types that cannot be invalid.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::log::Level;
use crate::registry::Limits;

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

/// Options glint reads, by their Glance names.
const KNOWN_OPTIONS: &[&str] = &[
    "bind_host",
    "bind_port",
    "registry_host",
    "registry_port",
    "registry_url",
    "api_port",
    "data_dir",
    "limit_param_default",
    "api_limit_max",
    "verbose",
    "debug",
    "default_store",
    "filesystem_store_datadir",
    "image_size_cap",
    "image_property_quota",
    "image_member_quota",
    "public_endpoint",
    "s3_store_host",
    "s3_store_access_key",
    "s3_store_secret_key",
    "s3_store_bucket",
    "s3_store_create_bucket_on_put",
    "s3_store_region",
    "s3_store_bucket_url_format",
    "s3_store_large_object_size",
    "s3_store_large_object_chunk_size",
    "swift_store_auth_address",
    "swift_store_user",
    "swift_store_key",
    "swift_store_container",
    "swift_store_create_container_on_put",
    "swift_store_large_object_size",
    "swift_store_large_object_chunk_size",
    "swift_store_auth_version",
    "https_ca_certificates_file",
];

/// Glance options that glint accepts without acting on them (yet): no warning for these.
const ACCEPTED_OPTIONS: &[&str] = &[
    "sql_connection",
    "sql_idle_timeout",
    "log_file",
    "log_dir",
    "log_date_format",
    "use_syslog",
    "workers",
    "backlog",
];

/// A start-up configuration problem; the text names the option and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// An option value and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    value: String,
    origin: String,
}

/// Options as typed, before validation. Later sources override earlier ones.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    settings: BTreeMap<String, Setting>,
    /// Problems that are not fatal (unknown options), reported once logging is set up.
    pub warnings: Vec<String>,
}

impl RawConfig {
    /// Sets `option` from a command-line flag.
    pub fn set_flag(&mut self, option: &str, value: &str) {
        self.set(
            option,
            value,
            format!("flag --{}", option.replace('_', "-")),
        );
    }

    fn set(&mut self, option: &str, value: &str, origin: String) {
        self.settings.insert(
            option.to_string(),
            Setting {
                value: value.to_string(),
                origin,
            },
        );
    }

    /// Reads a Glance-style INI file: `[DEFAULT]` first, then the sections of `app`
    /// (`[app:glance-registry]` or `[glance-registry]`, likewise for the API), which override it.
    pub fn load_file(&mut self, path: &Path, app: App) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let sections = parse_ini(&text)
            .map_err(|(line, why)| ConfigError(format!("{}:{line}: {why}", path.display())))?;
        let origin = |section: &str, key: &str| format!("{} [{section}] {key}", path.display());
        let app_sections: &[&str] = match app {
            App::Registry => &["app:glance-registry", "glance-registry", "registry"],
            App::Serve => &[
                "app:glance-api",
                "glance-api",
                "api",
                "app:glance-registry",
                "glance-registry",
                "registry",
            ],
            App::Api => &["app:glance-api", "glance-api", "api"],
        };
        for (name, entries) in &sections {
            if name != "DEFAULT" && name != "glint" && !app_sections.contains(&name.as_str()) {
                continue;
            }
            for (key, _) in entries {
                if !KNOWN_OPTIONS.contains(&key.as_str())
                    && !ACCEPTED_OPTIONS.contains(&key.as_str())
                {
                    self.warnings.push(format!(
                        "ignoring unknown option '{key}' in [{name}] of {}",
                        path.display()
                    ));
                }
            }
        }
        let mut apply = |section: &str, rename_bind: Option<&str>| {
            if let Some(entries) = sections.iter().find(|(n, _)| n == section).map(|(_, e)| e) {
                for (key, value) in entries {
                    let key = match (key.as_str(), rename_bind) {
                        ("bind_port", Some(port_option)) => port_option,
                        (k, _) => k,
                    };
                    self.set(key, value, origin(section, key));
                }
            }
        };
        let default_port = match app {
            App::Registry => "registry_port",
            App::Serve | App::Api => "api_port",
        };
        apply("DEFAULT", Some(default_port));
        apply("glint", Some(default_port));
        if app != App::Api {
            for section in ["app:glance-registry", "glance-registry", "registry"] {
                apply(section, Some("registry_port"));
            }
        }
        if app != App::Registry {
            for section in ["app:glance-api", "glance-api", "api"] {
                apply(section, Some("api_port"));
            }
        }
        Ok(())
    }

    /// Reads `GLINT_<OPTION>` variables (e.g. `GLINT_REGISTRY_PORT`) for every known option.
    pub fn load_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            if let Some(option) = name.strip_prefix("GLINT_") {
                let option = option.to_ascii_lowercase();
                if KNOWN_OPTIONS.contains(&option.as_str())
                    || ACCEPTED_OPTIONS.contains(&option.as_str())
                {
                    self.set(&option, &value, format!("environment {name}"));
                }
            }
        }
    }

    /// The options set so far and their values.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings
            .iter()
            .map(|(k, s)| (k.as_str(), s.value.as_str()))
    }

    fn get(&self, option: &str) -> Option<&Setting> {
        self.settings.get(option)
    }
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
}

impl Config {
    /// Applies defaults to `raw` and validates every value.
    pub fn resolve(raw: &RawConfig) -> Result<Config, ConfigError> {
        let bind_host = parse(raw, "bind_host", "0.0.0.0", "an IP address", |v| {
            v.parse().ok()
        })?;
        let registry_port = parse(
            raw,
            "registry_port",
            "9191",
            "a port number (0-65535)",
            |v| v.parse().ok(),
        )?;
        let api_port = parse(raw, "api_port", "9292", "a port number (0-65535)", |v| {
            v.parse().ok()
        })?;
        let data_dir = parse(raw, "data_dir", "./glint-data", "a directory path", |v| {
            (!v.is_empty()).then(|| PathBuf::from(v))
        })?;
        let default = parse(
            raw,
            "limit_param_default",
            "25",
            "a positive integer",
            |v| v.parse::<usize>().ok().filter(|n| *n > 0),
        )?;
        let max = parse(raw, "api_limit_max", "1000", "a positive integer", |v| {
            v.parse::<usize>().ok().filter(|n| *n > 0)
        })?;
        let default_store = parse(
            raw,
            "default_store",
            "file",
            "a store name (file, s3, swift)",
            |v| {
                crate::store::STORE_NAMES
                    .contains(&v)
                    .then(|| v.to_string())
            },
        )?;
        let filesystem_store_datadir = match raw.get("filesystem_store_datadir") {
            Some(_) => parse(
                raw,
                "filesystem_store_datadir",
                "",
                "a directory path",
                |v| (!v.is_empty()).then(|| PathBuf::from(v)),
            )?,
            None => data_dir.join("images"),
        };
        let image_size_cap = parse(
            raw,
            "image_size_cap",
            "1099511627776",
            "a size in bytes",
            |v| v.parse::<u64>().ok().filter(|n| *n <= i64::MAX as u64),
        )?;
        let image_property_quota = parse(
            raw,
            "image_property_quota",
            "128",
            "an integer (negative: unlimited)",
            |v| v.parse::<i64>().ok().map(|n| usize::try_from(n).ok()),
        )?;
        let image_member_quota = parse(
            raw,
            "image_member_quota",
            "128",
            "an integer (negative: unlimited)",
            |v| v.parse::<i64>().ok().map(|n| usize::try_from(n).ok()),
        )?;
        let public_endpoint = parse(raw, "public_endpoint", "", "an http(s) URL", |v| {
            if v.is_empty() {
                Some(None)
            } else if v.starts_with("http://") || v.starts_with("https://") {
                Some(Some(v.trim_end_matches('/').to_string()))
            } else {
                None
            }
        })?;
        let registry_host = parse(
            raw,
            "registry_host",
            "127.0.0.1",
            "a host name or address",
            |v| (!v.is_empty() && !v.contains(['/', ' '])).then(|| v.to_string()),
        )?;
        let registry_url = parse(raw, "registry_url", "", "an http:// URL", |v| {
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
        })?;
        let s3 = resolve_s3(raw)?;
        let swift = resolve_swift(raw)?;
        let trust_roots = match raw.get("https_ca_certificates_file") {
            None => crate::store::http_client::TrustRoots::System,
            Some(_) => parse(
                raw,
                "https_ca_certificates_file",
                "",
                "a readable PEM file",
                |v| {
                    std::path::Path::new(v)
                        .is_file()
                        .then(|| crate::store::http_client::TrustRoots::Bundle(PathBuf::from(v)))
                },
            )?,
        };
        let verbose = parse(raw, "verbose", "false", "true or false", parse_bool)?;
        let debug = parse(raw, "debug", "false", "true or false", parse_bool)?;
        Ok(Config {
            bind_host,
            registry_port,
            api_port,
            data_dir,
            limits: Limits { default, max },
            log_level: if debug {
                Level::Debug
            } else if verbose {
                Level::Info
            } else {
                Level::Warn
            },
            default_store,
            filesystem_store_datadir,
            image_size_cap,
            image_property_quota,
            image_member_quota,
            public_endpoint,
            registry_url,
            s3,
            swift,
            trust_roots,
        })
    }

    /// Where the registry's sled database lives.
    pub fn registry_dir(&self) -> PathBuf {
        self.data_dir.join("registry")
    }
}

/// The S3 store's settings: present when `s3_store_host` is set, and then complete.
fn resolve_s3(raw: &RawConfig) -> Result<Option<crate::store::S3Config>, ConfigError> {
    let Some(host) = raw.get("s3_store_host").map(|s| s.value.trim().to_string()) else {
        return Ok(None);
    };
    let endpoint = if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", host.trim_end_matches('/'))
    };
    let required = |option: &str| {
        parse(
            raw,
            option,
            "",
            "a non-empty value (the S3 store is configured)",
            |v| (!v.is_empty()).then(|| v.to_string()),
        )
    };
    let mb = |option: &str, default: &str, min: u64| {
        parse(
            raw,
            option,
            default,
            &format!("a size in MB, at least {min}"),
            |v| v.parse::<u64>().ok().filter(|n| *n >= min).map(|n| n << 20),
        )
    };
    Ok(Some(crate::store::S3Config {
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
fn resolve_swift(raw: &RawConfig) -> Result<Option<crate::store::SwiftConfig>, ConfigError> {
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
    let required = |option: &str| {
        parse(
            raw,
            option,
            "",
            "a non-empty value (the Swift store is configured)",
            |v| (!v.is_empty()).then(|| v.to_string()),
        )
    };
    let mb = |option: &str, default: &str| {
        parse(raw, option, default, "a size in MB, at least 1", |v| {
            v.parse::<u64>().ok().filter(|n| *n >= 1).map(|n| n << 20)
        })
    };
    Ok(Some(crate::store::SwiftConfig {
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

fn parse<T>(
    raw: &RawConfig,
    option: &str,
    default: &str,
    expected: &str,
    f: impl Fn(&str) -> Option<T>,
) -> Result<T, ConfigError> {
    match raw.get(option) {
        None => f(default).ok_or_else(|| ConfigError(format!("bad default for {option}"))),
        Some(s) => f(s.value.trim()).ok_or_else(|| {
            ConfigError(format!(
                "invalid value '{}' for option {option} (from {}): expected {expected}",
                s.value, s.origin
            ))
        }),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" | "" => Some(false),
        _ => None,
    }
}

type Sections = Vec<(String, Vec<(String, String)>)>;

/// Parses INI text: `[section]` headers, `key = value` or `key: value` lines, `#`/`;` comments.
/// Keys before any header belong to `DEFAULT`. Errors carry the 1-based line number.
fn parse_ini(text: &str) -> Result<Sections, (usize, String)> {
    let mut sections: Sections = vec![("DEFAULT".to_string(), Vec::new())];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or((n + 1, format!("unterminated section header '{line}'")))?
                .trim()
                .to_string();
            if !sections.iter().any(|(s, _)| *s == name) {
                sections.push((name.clone(), Vec::new()));
            }
            let idx = sections.iter().position(|(s, _)| *s == name).unwrap_or(0);
            let entry = sections.remove(idx);
            sections.push(entry);
            continue;
        }
        let split = line
            .find(['=', ':'])
            .ok_or((n + 1, format!("expected 'option = value', got '{line}'")))?;
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        if key.is_empty() {
            return Err((n + 1, format!("missing option name in '{line}'")));
        }
        if let Some((_, entries)) = sections.last_mut() {
            entries.push((key.to_string(), value.to_string()));
        }
    }
    Ok(sections)
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

    #[test]
    fn invalid_values_name_the_option_and_origin() {
        let mut raw = RawConfig::default();
        raw.load_env([("GLINT_REGISTRY_PORT".to_string(), "http".to_string())]);
        let err = Config::resolve(&raw).unwrap_err().0;
        assert!(
            err.contains("registry_port")
                && err.contains("GLINT_REGISTRY_PORT")
                && err.contains("'http'"),
            "{err}"
        );
        let f = write_file("[DEFAULT]\nverbose = perhaps\n");
        let mut raw = RawConfig::default();
        raw.load_file(f.path(), App::Serve).unwrap();
        let err = Config::resolve(&raw).unwrap_err().0;
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
            .unwrap_err()
            .0;
        assert!(
            err.ends_with(":2: expected 'option = value', got 'this line is wrong'"),
            "{err}"
        );
    }
}
