//! The conversion options: `[image_conversion] output_format` and `[image_import_opts]
//! image_import_plugins` by Glance's names, and glint's bounds on each `qemu-img` run.

use std::path::Path;
use std::time::Duration;

use super::{parse, ConfigError, RawConfig};
use crate::convert::{self, Limits, Options};

/// Options of `[image_conversion]` and `[image_import_opts]`, for [`super::raw`].
pub(super) const OPTIONS: &[&str] = &[
    "output_format",
    "image_import_plugins",
    "qemu_img_address_space_mb",
    "qemu_img_cpu_time",
    "qemu_img_timeout",
];

/// The import plugins glint runs: Glance's `no_op` (nothing) and `image_conversion`.
const PLUGINS: &[&str] = &["no_op", "image_conversion"];

/// The conversion options, with the temporary files under `data_dir`.
pub(super) fn resolve(raw: &RawConfig, data_dir: &Path) -> Result<Options, ConfigError> {
    let output_format = parse(
        raw,
        "output_format",
        "raw",
        &format!("one of {}", convert::names()),
        convert::convertible,
    )?;
    let plugins = parse(
        raw,
        "image_import_plugins",
        "[]",
        &format!(
            "a list of import plugins glint runs, e.g. ['image_conversion'] (known: {})",
            PLUGINS.join(", ")
        ),
        parse_plugins,
    )?;
    let positive = |v: &str| v.parse::<u64>().ok().filter(|n| *n > 0);
    let limits = Limits {
        address_space: parse(
            raw,
            "qemu_img_address_space_mb",
            "4096",
            "a positive size in MiB",
            |v| positive(v).and_then(|n| n.checked_mul(1 << 20)),
        )?,
        cpu_seconds: parse(
            raw,
            "qemu_img_cpu_time",
            "600",
            "a positive number of seconds",
            positive,
        )?,
        timeout: parse(
            raw,
            "qemu_img_timeout",
            "1800",
            "a positive number of seconds",
            |v| positive(v).map(Duration::from_secs),
        )?,
    };
    Ok(Options {
        dir: data_dir.join("convert"),
        limits,
        import_output_format: plugins
            .iter()
            .any(|p| p == "image_conversion")
            .then_some(output_format),
    })
}

/// oslo.config's bracketed list (`['image_conversion', no_op]`), or a bare comma-separated one;
/// `None` if it names a plugin glint does not have.
fn parse_plugins(v: &str) -> Option<Vec<String>> {
    let inner = v.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    let inner = match inner {
        Some(inner) => inner,
        None if v.contains(['[', ']']) => return None,
        None => v,
    };
    let names: Vec<String> = inner
        .split(',')
        .map(|p| p.trim().trim_matches(['\'', '"']).to_string())
        .filter(|p| !p.is_empty())
        .collect();
    names
        .iter()
        .all(|p| PLUGINS.contains(&p.as_str()))
        .then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::Format;

    fn resolved(pairs: &[(&str, &str)]) -> Result<Options, ConfigError> {
        let mut raw = RawConfig::default();
        for (k, v) in pairs {
            raw.set_flag(k, v);
        }
        resolve(&raw, Path::new("/d"))
    }

    #[test]
    fn conversion_on_import_only_with_the_plugin() {
        let off = resolved(&[]).unwrap();
        assert_eq!(off.import_output_format, None);
        assert_eq!(off.dir, Path::new("/d/convert"));
        assert_eq!(off.limits, Limits::default());
        let on = resolved(&[("image_import_plugins", "['image_conversion']")]).unwrap();
        assert_eq!(
            on.import_output_format,
            Some(Format::Raw),
            "Glance's default"
        );
        let qcow2 = resolved(&[
            ("image_import_plugins", "[no_op, \"image_conversion\"]"),
            ("output_format", "qcow2"),
        ])
        .unwrap();
        assert_eq!(qcow2.import_output_format, Some(Format::Qcow2));
        let bare = resolved(&[
            ("image_import_plugins", "image_conversion"),
            ("output_format", "vhd"),
        ])
        .unwrap();
        assert_eq!(bare.import_output_format, Some(Format::Vhd));
        assert_eq!(
            resolved(&[("image_import_plugins", "[]")])
                .unwrap()
                .import_output_format,
            None
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        for (option, value) in [
            ("output_format", "vpc"),
            ("output_format", "iso"),
            ("image_import_plugins", "['image_decompression']"),
            ("image_import_plugins", "[image_conversion"),
            ("qemu_img_cpu_time", "0"),
            ("qemu_img_timeout", "soon"),
            ("qemu_img_address_space_mb", "99999999999999999"),
        ] {
            let err = resolved(&[(option, value)]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidValue { option: o, .. } if o == option),
                "{option}={value}: {err:?}"
            );
        }
    }
}
