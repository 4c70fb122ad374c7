//! [`RawConfig`]: the options as the operator typed them, from the INI file, the `GLINT_*`
//! environment and flags, each with where it came from.

use std::collections::BTreeMap;
use std::path::Path;

use super::ini::{self, Sections};
use super::{App, ConfigError};

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
    "image_cache_max_age",
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
    "swift_store_user_domain_name",
    "swift_store_project_domain_name",
    "swift_store_region",
    "swift_store_endpoint_type",
    "https_ca_certificates_file",
    "flavor",
    "use_json",
    "disable_by_file_path",
    "require_image_format_match",
    "disk_formats",
    "container_formats",
    "static_tokens_file",
    "owner_is_tenant",
    "admin_role",
    "allow_anonymous_access",
    "policy_file",
    "registry_trusted_clients",
    "client_socket_timeout",
    "client_header_timeout",
    "max_connections",
    "max_header_line",
    "registry_cache_size",
    "registry_reserved_space",
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

fn is_known(option: &str) -> bool {
    if let Some(k) = option.strip_prefix(super::auth::KEYSTONE_PREFIX) {
        return super::auth::KEYSTONE_OPTIONS.contains(&k)
            || super::auth::KEYSTONE_ACCEPTED.contains(&k);
    }
    KNOWN_OPTIONS.contains(&option)
        || ACCEPTED_OPTIONS.contains(&option)
        || super::conversion::OPTIONS.contains(&option)
}

/// An option value and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub(super) value: String,
    pub(super) origin: String,
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
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let sections = ini::parse_ini(&text).map_err(|error| ConfigError::Syntax {
            path: path.to_path_buf(),
            error,
        })?;
        self.warn_unknown(path, app, &sections);
        // The unqualified `bind_port` is the port of the section's own program; in `[DEFAULT]`
        // it is the port of the program being started.
        let default_port = match app {
            App::Registry => "registry_port",
            App::Serve | App::Api => "api_port",
        };
        self.apply(path, &sections, "DEFAULT", default_port);
        self.apply(path, &sections, "glint", default_port);
        // Identity sections of every program (keystonemiddleware's and oslo's names).
        self.apply(path, &sections, "paste_deploy", default_port);
        self.apply(path, &sections, "oslo_policy", default_port);
        self.apply(path, &sections, "healthcheck", default_port);
        self.apply(path, &sections, "image_format", default_port);
        self.apply(path, &sections, "image_conversion", default_port);
        self.apply(path, &sections, "image_import_opts", default_port);
        self.apply_prefixed(
            path,
            &sections,
            "keystone_authtoken",
            super::auth::KEYSTONE_PREFIX,
        );
        if app != App::Api {
            for section in ini::REGISTRY_SECTIONS {
                self.apply(path, &sections, section, "registry_port");
            }
        }
        if app != App::Registry {
            for section in ini::API_SECTIONS {
                self.apply(path, &sections, section, "api_port");
            }
        }
        Ok(())
    }

    /// Warns of every unknown option in a section that applies to `app`.
    fn warn_unknown(&mut self, path: &Path, app: App, sections: &Sections) {
        let app_sections = ini::app_sections(app);
        for (name, entries) in sections {
            if name != "DEFAULT" && name != "glint" && !app_sections.contains(&name.as_str()) {
                continue;
            }
            for (key, _) in entries {
                if !is_known(key) {
                    self.warnings.push(format!(
                        "ignoring unknown option '{key}' in [{name}] of {}",
                        path.display()
                    ));
                }
            }
        }
    }

    /// Sets every entry of `section` (if the file has it), `bind_port` as `port_option`.
    fn apply(&mut self, path: &Path, sections: &Sections, section: &str, port_option: &str) {
        let Some((_, entries)) = sections.iter().find(|(n, _)| n == section) else {
            return;
        };
        for (key, value) in entries {
            let key = if key == "bind_port" { port_option } else { key };
            let origin = format!("{} [{section}] {key}", path.display());
            self.set(key, value, origin);
        }
    }

    /// Sets every entry of `section` as `prefix` + its key (sections whose keys would clash
    /// with others, like `[keystone_authtoken] password`).
    fn apply_prefixed(&mut self, path: &Path, sections: &Sections, section: &str, prefix: &str) {
        let Some((_, entries)) = sections.iter().find(|(n, _)| n == section) else {
            return;
        };
        for (key, value) in entries {
            if !is_known(&format!("{prefix}{key}")) {
                self.warnings.push(format!(
                    "ignoring unknown option '{key}' in [{section}] of {}",
                    path.display()
                ));
                continue;
            }
            let origin = format!("{} [{section}] {key}", path.display());
            self.set(&format!("{prefix}{key}"), value, origin);
        }
    }

    /// Reads `GLINT_<OPTION>` variables (e.g. `GLINT_REGISTRY_PORT`) for every known option.
    pub fn load_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            if let Some(option) = name.strip_prefix("GLINT_") {
                let option = option.to_ascii_lowercase();
                if is_known(&option) {
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

    pub(super) fn get(&self, option: &str) -> Option<&Setting> {
        self.settings.get(option)
    }
}
