//! [`ConfigError`]: why the configuration could not be read or resolved.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::ini::SyntaxError;

/// A start-up configuration problem; the message names the option (or file line) and what was
/// wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of the config file is not INI.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        error: SyntaxError,
    },
    /// An option has a value glint cannot use.
    InvalidValue {
        /// The option's Glance name.
        option: String,
        /// The value as typed.
        value: String,
        /// Where it was set: a flag, an environment variable or a file section.
        origin: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// An option that a configured store needs is not set.
    Missing {
        /// The option's Glance name.
        option: String,
        /// What a valid value looks like, and why it is needed.
        expected: String,
    },
    /// A built-in default does not pass its own validation (a bug in glint).
    BadDefault {
        /// The option's Glance name.
        option: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Syntax { path, error } => write!(f, "{}:{error}", path.display()),
            ConfigError::InvalidValue {
                option,
                value,
                origin,
                expected,
            } => write!(
                f,
                "invalid value '{value}' for option {option} (from {origin}): expected {expected}"
            ),
            ConfigError::Missing { option, expected } => {
                write!(f, "option {option} is not set: expected {expected}")
            }
            ConfigError::BadDefault { option } => write!(f, "bad default for {option}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Syntax { error, .. } => Some(error),
            _ => None,
        }
    }
}
