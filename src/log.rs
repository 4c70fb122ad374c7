//! Logging through `tracing`: levelled lines on stderr (`verbose` → info, `debug` → debug),
//! plain text by default or one JSON object per line (`use_json`, oslo.log's name). Every
//! request runs in a `request` span carrying its `x-openstack-request-id`, so each line logged
//! while serving it (store and registry calls included) names the request.
//!
//! The crate logs through its own `error!`, `warn!`, `info!` and `debug!` macros, thin wrappers
//! over `tracing`'s, so the framework is chosen in this one file.

#[doc(hidden)]
pub use tracing as __tracing;

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

impl Level {
    fn filter(self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self {
            Level::Error => LevelFilter::ERROR,
            Level::Warn => LevelFilter::WARN,
            Level::Info => LevelFilter::INFO,
            Level::Debug => LevelFilter::DEBUG,
        }
    }
}

/// Installs the process's logger: lines at `level` and above on stderr, as JSON when `json`.
/// Only the first call in a process takes effect.
pub fn init(level: Level, json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level.filter());
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The span a request is served in: its id goes on every line logged under it. At error level,
/// so that it is there whatever the configured level lets through.
pub fn request_span(request_id: &str) -> tracing::Span {
    tracing::error_span!("request", id = %request_id)
}

/// Logs at error level.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::__tracing::error!($($t)*) } }
/// Logs at warning level.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::__tracing::warn!($($t)*) } }
/// Logs at info level.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::__tracing::info!($($t)*) } }
/// Logs at debug level.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::__tracing::debug!($($t)*) } }
