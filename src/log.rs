//! Minimal leveled logging to stderr (`verbose` → info, `debug` → debug), so the binary needs no
//! logging framework. Lines carry a UTC timestamp and the level.

use std::sync::atomic::{AtomicU8, Ordering};

/// How much is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Failures that need an operator.
    Error = 0,
    /// Surprises that glint works around.
    Warn = 1,
    /// Life-cycle events (the `verbose` option).
    Info = 2,
    /// Every request (the `debug` option).
    Debug = 3,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// Sets the most detailed level that is printed.
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages at `level` are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Prints one log line (use the macros instead).
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let name = match level {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        };
        eprintln!("{} {name} {args}", crate::timestamp::Timestamp::now());
    }
}

/// Logs at error level.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) } }
/// Logs at warning level.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) } }
/// Logs at info level.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) } }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) } }
