//! Diagnostics setup: a `tracing` subscriber writing text or JSON to stderr,
//! filtered by `log.filter` (or `RUST_LOG`), with a handle to change the
//! filter while running; plus, when `tracing.otlp_endpoint` is set, the
//! OpenTelemetry layer exporting the spans of [`SPAN_TARGET`].
//!
//! JSON logs are one object per line; an event inside a traced span also
//! carries `trace_id` and `span_id`, so a log line leads to its trace.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use crate::config::{LogConfig, TracingConfig};
use crate::telemetry::{Telemetry, TelemetryError, SPAN_TARGET};

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
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
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

/// Installs the global subscriber without tracing. `RUST_LOG`, when set and
/// not empty, replaces `cfg.filter`. Calling it again returns
/// [`LogError::AlreadyInitialized`] and changes nothing.
pub fn init(cfg: &LogConfig) -> Result<LogHandle, LogError> {
    init_with_tracing(cfg, &TracingConfig::default()).map(|(handle, _)| handle)
}

/// [`init`], plus the OpenTelemetry exporter when `tracing.otlp_endpoint`
/// is set: keep the returned [`Telemetry`] and shut it down at exit.
pub fn init_with_tracing(
    cfg: &LogConfig,
    tracing_cfg: &TracingConfig,
) -> Result<(LogHandle, Option<Telemetry>), LogError> {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match &rust_log {
        Some(directive) => parse_filter(directive, "RUST_LOG")?,
        None => parse_filter(&cfg.filter, "log.filter")?,
    };
    let telemetry = Telemetry::start(tracing_cfg)?;
    let (dispatch, handle) = build(cfg, filter, telemetry.as_ref(), std::io::stderr)?;
    dispatch
        .try_init()
        .map_err(|_| LogError::AlreadyInitialized)?;
    Ok((LogHandle { filter: handle }, telemetry))
}

/// The subscriber: the log layer (text or JSON to `writer`, filtered by
/// `filter`, never seeing trace spans) and the OpenTelemetry layer (trace
/// spans, and warnings as span events) when `telemetry` is on.
fn build<W>(
    cfg: &LogConfig,
    filter: EnvFilter,
    telemetry: Option<&Telemetry>,
    writer: W,
) -> Result<(Dispatch, reload::Handle<EnvFilter, Registry>), LogError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let json = match cfg.format.as_str() {
        "text" => false,
        "json" => true,
        other => return Err(LogError::BadFormat(other.to_owned())),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let dispatch_slot = Arc::new(OnceLock::new());
    let log_layer: Box<dyn Layer<Registry> + Send + Sync> = if json {
        let format = WithTraceIds {
            inner: format::Format::default().json(),
            dispatch: dispatch_slot.clone(),
        };
        fmt::layer()
            .json()
            .event_format(format)
            .with_writer(writer)
            .boxed()
    } else {
        fmt::layer()
            .with_writer(writer)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed()
    };
    let log_filter = filter.and(filter_fn(|m| !is_trace_span(m)));
    let logs = tracing_subscriber::registry().with(log_layer.with_filter(log_filter));
    // Two concrete subscribers rather than an `Option` layer: with a `None`
    // layer the trace spans would still be enabled (built for nobody).
    let dispatch = match telemetry {
        Some(t) => {
            let otel = tracing_opentelemetry::layer()
                .with_tracer(t.tracer())
                .with_filter(filter_fn(|m| {
                    is_trace_span(m) || (m.is_event() && *m.level() <= tracing::Level::WARN)
                }));
            Dispatch::new(logs.with(otel))
        }
        None => Dispatch::new(logs),
    };
    // The formatter finds the trace of an event through the dispatch it
    // runs in (a weak handle: the dispatch owns the formatter).
    let _ = dispatch_slot.set(dispatch.downgrade());
    Ok((dispatch, handle))
}

fn is_trace_span(m: &Metadata<'_>) -> bool {
    m.is_span() && m.target() == SPAN_TARGET
}

/// JSON event format with `trace_id` and `span_id` appended when the event
/// happens inside a span that belongs to a trace.
struct WithTraceIds<F> {
    inner: F,
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = self.trace_of(event) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.trim_end().strip_suffix('}') {
            Some(head) => {
                writeln!(
                    writer,
                    "{head},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
                )
            }
            None => writer.write_str(&line),
        }
    }
}

impl<F> WithTraceIds<F> {
    /// Trace and span ids of the innermost traced span around `event`.
    fn trace_of(&self, event: &Event<'_>) -> Option<(String, String)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let id = match event.parent() {
            Some(id) => id.clone(),
            None if event.is_contextual() => dispatch.current_span().id()?.clone(),
            None => return None,
        };
        let registry = dispatch.downcast_ref::<Registry>()?;
        let scope: Vec<_> = registry.span(&id)?.scope().map(|s| s.id()).collect();
        scope.iter().find_map(|id| {
            let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
            let span = cx.span();
            let sc = span.span_context();
            sc.is_valid()
                .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
        })
    }
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
    /// A writer into a shared buffer, for reading back what was logged.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn json_lines(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect()
        }
    }

    fn json_cfg() -> LogConfig {
        LogConfig {
            filter: "info".into(),
            format: "json".into(),
        }
    }

    #[test]
    fn json_lines_inside_a_traced_span_carry_its_ids() {
        let out = Captured::default();
        let telemetry = Telemetry::without_exporter();
        let (dispatch, _) = build(
            &json_cfg(),
            EnvFilter::new("info"),
            Some(&telemetry),
            out.clone(),
        )
        .unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(user = "alice", "outside");
            let span = tracing::info_span!(target: SPAN_TARGET, "send", user = "alice");
            assert!(!span.is_disabled());
            let _in = span.enter();
            let inner = tracing::info_span!(target: SPAN_TARGET, "validate");
            let _in2 = inner.enter();
            tracing::info!(user = "alice", conv = "d:alice:bob", "inside");
        });
        let lines = out.json_lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
        let inside = &lines[1];
        assert_eq!(inside["fields"]["conv"], "d:alice:bob", "{inside}");
        let trace = inside["trace_id"].as_str().unwrap();
        let span = inside["span_id"].as_str().unwrap();
        assert_eq!(trace.len(), 32, "{inside}");
        assert_eq!(span.len(), 16, "{inside}");
        assert!(trace.chars().all(|c| c.is_ascii_hexdigit()) && trace != "0".repeat(32));
    }

    #[test]
    fn trace_spans_are_disabled_without_tracing() {
        let out = Captured::default();
        let (dispatch, _) = build(&json_cfg(), EnvFilter::new("trace"), None, out.clone()).unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!(target: SPAN_TARGET, "send");
            assert!(span.is_disabled());
            let _in = span.enter();
            tracing::info!("no trace");
        });
        let lines = out.json_lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].get("trace_id").is_none());
    }
}
