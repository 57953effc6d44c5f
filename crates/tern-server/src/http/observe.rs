//! Middleware observing every HTTP request: `tern_http_requests_total` and
//! `tern_http_request_duration_seconds` by method, route template (axum's
//! `MatchedPath`, never the raw path, so ids in paths cannot blow up the
//! series count) and status class; and an `http.request` trace span, child
//! of the caller's W3C `traceparent` when it sends one.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TraceContextExt;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics as m;
use crate::telemetry::{self, SPAN_TARGET};

/// Route label of requests that matched no route (404s of unknown paths).
const UNMATCHED: &str = "unmatched";
/// Scraped and probed every few seconds: counted, but not traced.
const UNTRACED: &[&str] = &["/metrics", "/healthz", "/readyz"];

/// Counts, times and traces one request (`middleware::from_fn`).
pub async fn observe(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let span = request_span(&req, method, &route);
    let started = Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status();
    span.record("http.response.status_code", status.as_u16());
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status_class", status_class(status).to_owned()),
    ];
    metrics::counter!(m::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(m::HTTP_REQUEST_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    res
}

/// The trace span of a request (disabled, and free, with tracing off).
fn request_span(req: &Request, method: &str, route: &str) -> Span {
    if UNTRACED.contains(&route) {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
    );
    if !span.is_disabled() {
        let parent = telemetry::remote_parent(req.headers());
        if parent.span().span_context().is_valid() {
            // Only fails when the span was already started: it was not.
            let _ = span.set_parent(parent);
        }
    }
    span
}

/// The method as a label: the standard ones, else `other` (a client may
/// send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `1xx` … `5xx`.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(status_class(StatusCode::SWITCHING_PROTOCOLS), "1xx");
        assert_eq!(status_class(StatusCode::NO_CONTENT), "2xx");
        assert_eq!(status_class(StatusCode::CONFLICT), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template() {
        crate::metrics::handle();
        let app = Router::new()
            .route("/observe-test/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(observe));
        for path in ["/observe-test/1", "/observe-test/2", "/observe-nope/3"] {
            let req = Request::builder().uri(path).body(Body::empty()).unwrap();
            app.clone().oneshot(req).await.unwrap();
        }
        let text = crate::metrics::render();
        let templ = r#"tern_http_requests_total{method="GET",route="/observe-test/{id}",status_class="2xx"} 2"#;
        assert!(text.contains(templ), "{text}");
        assert!(!text.contains("/observe-test/1"), "{text}");
        assert!(!text.contains("observe-nope"), "{text}");
        assert!(
            text.contains(r#"tern_http_request_duration_seconds_bucket{method="GET",route="/observe-test/{id}",status_class="2xx",le="#),
            "{text}"
        );
    }
}
