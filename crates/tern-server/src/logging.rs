//! Diagnostics setup: a `tracing` subscriber writing text or JSON to stderr,
//! filtered by `log.filter` (or `RUST_LOG`), with a handle to change the
//! filter while running.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::LogConfig;

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log filter {filter:?} (from {origin}): {error}")]
    BadFilter {
        filter: String,
        /// Where the filter came from: `log.filter`, `RUST_LOG` or `reload`.
        origin: &'static str,
        error: tracing_subscriber::filter::ParseError,
    },
    #[error("unknown log format {0:?}: expected `text` or `json`")]
    BadFormat(String),
    /// A global subscriber is already installed (e.g. a second `init` in tests).
    #[error("logging is already initialized")]
    AlreadyInitialized,
    /// The subscriber holding the filter is gone.
    #[error("cannot change the log filter: {0}")]
    Reload(String),
}

/// Handle on the installed subscriber, kept for hot reload of the filter.
#[derive(Clone, Debug)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    /// Replaces the filter with `directive` (same syntax as `log.filter`).
    /// An explicit reload wins over `RUST_LOG`.
    pub fn set_filter(&self, directive: &str) -> Result<(), LogError> {
        let filter = parse_filter(directive, "reload")?;
        self.filter
            .reload(filter)
            .map_err(|e| LogError::Reload(e.to_string()))
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set and not empty,
/// replaces `cfg.filter`. Calling it again returns
/// [`LogError::AlreadyInitialized`] and changes nothing.
pub fn init(cfg: &LogConfig) -> Result<LogHandle, LogError> {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match &rust_log {
        Some(directive) => parse_filter(directive, "RUST_LOG")?,
        None => parse_filter(&cfg.filter, "log.filter")?,
    };
    let json = match cfg.format.as_str() {
        "text" => false,
        "json" => true,
        other => return Err(LogError::BadFormat(other.to_owned())),
    };
    let (filter_layer, handle) = reload::Layer::new(filter);
    // Exactly one of the two formatting layers is present.
    let text_layer = (!json).then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let json_layer = json.then(|| fmt::layer().json().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter_layer)
        .with(text_layer)
        .with(json_layer)
        .try_init()
        .map_err(|_| LogError::AlreadyInitialized)?;
    Ok(LogHandle { filter: handle })
}

/// Parses a filter directive, reporting syntax errors instead of ignoring
/// them (`EnvFilter::new` silently drops bad directives).
fn parse_filter(directive: &str, origin: &'static str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(directive).map_err(|error| LogError::BadFilter {
        filter: directive.to_owned(),
        origin,
        error,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_filter_and_format_are_errors() {
        assert!(matches!(
            parse_filter("tern=loud", "log.filter"),
            Err(LogError::BadFilter { .. })
        ));
        let cfg = LogConfig {
            filter: "info".into(),
            format: "xml".into(),
        };
        assert!(matches!(init(&cfg), Err(LogError::BadFormat(_))));
    }

    #[test]
    fn init_twice_does_not_panic_and_reload_works() {
        let cfg = LogConfig::default();
        // Another test in this process may have installed a subscriber first.
        match init(&cfg) {
            Ok(handle) => {
                handle.set_filter("debug,tern_server=trace").unwrap();
                assert!(handle.set_filter("tern=loud").is_err());
            }
            Err(e) => assert!(matches!(e, LogError::AlreadyInitialized)),
        }
        assert!(matches!(init(&cfg), Err(LogError::AlreadyInitialized)));
    }
}
