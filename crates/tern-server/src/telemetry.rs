//! OpenTelemetry traces: the tracer provider that exports spans over
//! OTLP/HTTP (protobuf) when `tracing.otlp_endpoint` is set, the span target
//! every traced span uses, and W3C `traceparent` extraction for HTTP.
//!
//! Spans meant for traces are `tracing` spans with target [`SPAN_TARGET`].
//! The log layer never sees them and, with tracing off, no layer wants them,
//! so their callsites are disabled and cost one cached interest check.

use std::time::Duration;

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::config::TracingConfig;

/// Target of every span exported as a trace (`tracing::info_span!(target:
/// SPAN_TARGET, …)`). tern-store uses the same literal for its store spans.
pub const SPAN_TARGET: &str = "tern::trace";

/// Path of the OTLP/HTTP traces endpoint under the collector's base URL.
const TRACES_PATH: &str = "/v1/traces";
/// Longest wait for one export POST.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait at shutdown for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the OTLP exporter for {endpoint}: {reason}")]
pub struct TelemetryError {
    endpoint: String,
    reason: String,
}

/// The running tracer provider: spans are batched and POSTed by its own
/// thread. Keep it for the life of the process and call
/// [`Telemetry::shutdown`] at exit (outside the async runtime: it blocks).
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts the exporter, or `None` when `otlp_endpoint` is empty.
    pub fn start(cfg: &TracingConfig) -> Result<Option<Self>, TelemetryError> {
        if cfg.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let endpoint = traces_url(&cfg.otlp_endpoint);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| TelemetryError {
                endpoint: endpoint.clone(),
                reason: e.to_string(),
            })?;
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio)));
        let resource = Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        Ok(Some(Self { provider }))
    }

    /// A provider that exports nothing (spans still get ids), for tests.
    #[cfg(test)]
    pub(crate) fn without_exporter() -> Self {
        Self {
            provider: SdkTracerProvider::builder().build(),
        }
    }

    /// The tracer behind the `tracing` layer.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("tern")
    }

    /// Exports every finished span now (blocks until the POST is done).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing spans failed");
        }
    }

    /// Exports what is left and stops the exporter thread (blocks).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "stopping the span exporter failed");
        }
    }
}

/// The URL spans are POSTed to: `<base>/v1/traces`, unless `base` names it.
pub fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

/// The remote parent a request names in its W3C `traceparent` header (an
/// empty context when it names none, or tracing is off).
pub fn remote_parent(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c/v1/traces"), "http://c/v1/traces");
    }

    #[test]
    fn off_without_an_endpoint() {
        assert!(Telemetry::start(&TracingConfig::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn traceparent_is_extracted() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = remote_parent(&h);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(!remote_parent(&HeaderMap::new())
            .span()
            .span_context()
            .is_valid());
    }
}
