//! Prometheus metrics: the names used across the server, their descriptions
//! and bucket layouts, and the process-wide recorder behind `GET /metrics`.
//!
//! The recorder is installed once per process ([`handle`]); tests start many
//! servers in one process and all share it. At install every family is
//! described and registered (counters at zero, with the label values the
//! code uses), so the first scrape already shows all of them; a scrape also
//! refreshes the process metrics (`process_*`, read from /proc).
//! docs/operations.md has the reference table of every metric.

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Open connections (gauge, label `transport` = `ws` | `tcp`).
pub const CONNECTIONS: &str = "tern_connections";
/// Authenticated sessions on this node (gauge).
pub const SESSIONS: &str = "tern_sessions";
/// Messages committed to the database (counter).
pub const MESSAGES_STORED: &str = "tern_messages_stored_total";
/// Pushes handed to session queues (counter).
pub const PUSHES_DELIVERED: &str = "tern_pushes_delivered_total";
/// From accepting a send to its ack, seconds (histogram).
pub const SEND_ACK_SECONDS: &str = "tern_send_ack_seconds";
/// Duration of one group-commit transaction, seconds (histogram).
pub const STORE_COMMIT_SECONDS: &str = "tern_store_commit_seconds";
/// Messages per group-commit transaction (histogram).
pub const STORE_BATCH_SIZE: &str = "tern_store_batch_size";
/// Requests answered `rate_limited` (counter).
pub const RATE_LIMITED: &str = "tern_rate_limited_total";
/// Sessions closed for not keeping up, 4010 (counter).
pub const SLOW_CONSUMER_CLOSES: &str = "tern_slow_consumer_closes_total";
/// Refused tokens and logins (counter, label `reason`).
pub const AUTH_FAILURES: &str = "tern_auth_failures_total";
/// HTTP requests answered (counter, labels `method`, `route` = the route
/// template or `unmatched`, `status_class` = `2xx` …).
pub const HTTP_REQUESTS: &str = "tern_http_requests_total";
/// Time to answer an HTTP request, seconds (histogram, labels as
/// [`HTTP_REQUESTS`]).
pub const HTTP_REQUEST_SECONDS: &str = "tern_http_request_duration_seconds";
/// Gauge = 1, label `version`: the running build.
pub const BUILD_INFO: &str = "tern_build_info";
/// Gauge: sends waiting for the group-commit writer (set at each scrape).
pub const WRITER_QUEUE: &str = "tern_writer_queue_depth";
/// Gauge: offline push events waiting for the webhook (set at each scrape).
pub const PUSH_QUEUE: &str = "tern_push_queue_depth";
/// Offline push events the webhook accepted (counter).
pub const PUSH_EVENTS_SENT: &str = "tern_push_events_sent_total";
/// Failed webhook POSTs that were retried (counter).
pub const PUSH_RETRIES: &str = "tern_push_retries_total";
/// Offline push events given up on (counter, label `reason` =
/// `queue_full` | `retries_exhausted` | `shutdown`).
pub const PUSH_EVENTS_DROPPED: &str = "tern_push_events_dropped_total";
/// Sends that hit the banned-word filter (counter, label `action` =
/// `reject` | `mask`).
pub const MODERATION: &str = "tern_moderation_total";
/// Counter: events that could not be published to other nodes (Redis down or
/// the queue full); every node resyncs its sessions afterwards.
pub const CLUSTER_PUBLISH_FAILED: &str = "tern_cluster_publish_failed_total";
/// Counter: events from other nodes dropped because this node's inbound queue was full.
pub const CLUSTER_INBOUND_DROPPED: &str = "tern_cluster_inbound_dropped_total";
/// Counter: unreadable envelopes received on the cluster bus.
pub const CLUSTER_BAD_ENVELOPE: &str = "tern_cluster_bad_envelope_total";
/// Counter: `resync` pushes sent (cluster traffic may have been lost).
pub const RESYNCS_SENT: &str = "tern_resyncs_sent_total";
/// Counter: cluster barriers (group changes, bans, kicks) that some node
/// did not confirm within `cluster.barrier_timeout_ms`.
pub const CLUSTER_BARRIER_TIMEOUTS: &str = "tern_cluster_barrier_timeouts_total";
/// Gauge: sockets open on the HTTP port (HTTP and WebSocket).
pub const HTTP_CONNECTIONS: &str = "tern_http_connections";
/// Counter: sockets refused at accept time because `http.max_connections` was reached.
pub const CONNECTIONS_SHED: &str = "tern_connections_shed_total";

/// Buckets of the latency histograms, seconds: 100 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets of the batch-size histogram: powers of two up to 1024.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
/// Reads the process metrics (RSS, CPU, fds, threads, start time).
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first call. `None`
/// when another global recorder was installed first (metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(install).as_ref()
}

/// The Prometheus text exposition of every metric.
///
/// Histograms need periodic upkeep; a scrape is the natural moment for it.
pub fn render() -> String {
    match handle() {
        Some(h) => {
            if let Some(process) = PROCESS.get() {
                process.collect();
            }
            h.run_upkeep();
            h.render()
        }
        None => "# metrics recorder not installed by tern\n".to_owned(),
    }
}

fn install() -> Option<PrometheusHandle> {
    let built = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(STORE_BATCH_SIZE.into()), BATCH_BUCKETS)
        })
        .and_then(|b| b.install_recorder());
    match built {
        Ok(handle) => {
            describe();
            describe_operator_pack();
            register_all();
            Some(handle)
        }
        Err(e) => {
            tracing::warn!(error = %e, "Prometheus recorder not installed");
            None
        }
    }
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open connections by transport (ws, tcp).");
    describe_gauge!(SESSIONS, "Authenticated sessions on this node.");
    describe_counter!(MESSAGES_STORED, "Messages committed to the database.");
    describe_counter!(PUSHES_DELIVERED, "Pushes handed to session queues.");
    describe_histogram!(
        SEND_ACK_SECONDS,
        Unit::Seconds,
        "Time from accepting a send to its ack."
    );
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        Unit::Seconds,
        "Duration of one group commit."
    );
    describe_histogram!(STORE_BATCH_SIZE, Unit::Count, "Messages per group commit.");
    describe_counter!(RATE_LIMITED, "Requests answered rate_limited.");
    describe_counter!(
        CLUSTER_PUBLISH_FAILED,
        "Events that could not be published to other nodes (then every node resyncs)."
    );
    describe_counter!(
        CLUSTER_INBOUND_DROPPED,
        "Events from other nodes dropped on a full inbound queue (then a resync)."
    );
    describe_counter!(
        CLUSTER_BAD_ENVELOPE,
        "Unreadable envelopes received on the cluster bus."
    );
    describe_counter!(
        CLUSTER_BARRIER_TIMEOUTS,
        "Cluster barriers (group changes, bans, kicks) some node did not confirm in time."
    );
    describe_counter!(
        RESYNCS_SENT,
        "resync pushes sent to sessions after cluster traffic may have been lost."
    );
    describe_gauge!(
        HTTP_CONNECTIONS,
        "Sockets open on the HTTP port (HTTP and WebSocket)."
    );
    describe_counter!(
        CONNECTIONS_SHED,
        "Sockets refused with 503 at the http.max_connections cap."
    );
    describe_counter!(
        SLOW_CONSUMER_CLOSES,
        "Sessions closed as slow consumers (4010)."
    );
    describe_counter!(AUTH_FAILURES, "Refused tokens and logins, by reason.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by status.");
    describe_counter!(
        PUSH_EVENTS_SENT,
        "Offline push events the webhook accepted."
    );
    describe_counter!(PUSH_RETRIES, "Failed push webhook POSTs that were retried.");
    describe_counter!(
        PUSH_EVENTS_DROPPED,
        "Offline push events dropped, by reason (queue_full, retries_exhausted, shutdown)."
    );
    describe_counter!(
        MODERATION,
        "Sends that hit the banned-word filter, by action (reject, mask)."
    );
}

/// Describes the families added by the operator pack and starts the
/// process collector.
fn describe_operator_pack() {
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status class."
    );
    describe_gauge!(BUILD_INFO, "Always 1; label version is the running build.");
    describe_gauge!(WRITER_QUEUE, "Sends waiting for the group-commit writer.");
    describe_gauge!(PUSH_QUEUE, "Offline push events waiting for the webhook.");
    let process = PROCESS.get_or_init(metrics_process::Collector::default);
    process.describe();
    process.collect();
}

/// The label values each labelled counter is recorded with.
const KNOWN_LABELS: &[(&str, &str, &[&str])] = &[
    (
        RATE_LIMITED,
        "transport",
        &["ws", "ws_upgrade", "accept", "http", "http_login"],
    ),
    (
        AUTH_FAILURES,
        "reason",
        &[
            "expired_token",
            "invalid_token",
            "bad_subject",
            "bad_password",
            "unknown_user",
            "banned",
        ],
    ),
    (MODERATION, "action", &["reject", "mask"]),
    (
        PUSH_EVENTS_DROPPED,
        "reason",
        &["queue_full", "retries_exhausted", "shutdown"],
    ),
];

/// Counters the code increments without labels.
const PLAIN_COUNTERS: &[&str] = &[
    MESSAGES_STORED,
    PUSHES_DELIVERED,
    SLOW_CONSUMER_CLOSES,
    PUSH_EVENTS_SENT,
    PUSH_RETRIES,
    CLUSTER_PUBLISH_FAILED,
    CLUSTER_INBOUND_DROPPED,
    CLUSTER_BAD_ENVELOPE,
    RESYNCS_SENT,
    CLUSTER_BARRIER_TIMEOUTS,
    CONNECTIONS_SHED,
];

/// Registers every family: counters at zero, gauges at their idle value,
/// histograms empty, so dashboards and alerts see them before any traffic.
fn register_all() {
    for name in PLAIN_COUNTERS {
        metrics::counter!(*name).increment(0);
    }
    for (name, label, values) in KNOWN_LABELS {
        for value in *values {
            metrics::counter!(*name, *label => *value).increment(0);
        }
    }
    for transport in ["ws", "tcp"] {
        metrics::gauge!(CONNECTIONS, "transport" => transport).increment(0.0);
    }
    for gauge in [SESSIONS, HTTP_CONNECTIONS, WRITER_QUEUE, PUSH_QUEUE] {
        metrics::gauge!(gauge).increment(0.0);
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for name in [SEND_ACK_SECONDS, STORE_COMMIT_SECONDS, STORE_BATCH_SIZE] {
        let _ = metrics::histogram!(name);
    }
    // The first scrape's own series; HTTP families exist from then on.
    let first = [
        ("method", "GET"),
        ("route", "/metrics"),
        ("status_class", "2xx"),
    ];
    metrics::counter!(HTTP_REQUESTS, &first).increment(0);
    let _ = metrics::histogram!(HTTP_REQUEST_SECONDS, &first);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_and_renders_histograms_with_buckets() {
        let first = handle().map(|h| h as *const _);
        let second = handle().map(|h| h as *const _);
        assert_eq!(first, second);
        metrics::histogram!(STORE_COMMIT_SECONDS).record(0.003);
        metrics::histogram!(STORE_BATCH_SIZE).record(3.0);
        let text = render();
        assert!(
            text.contains("tern_store_commit_seconds_bucket{le=\"0.005\"}"),
            "{text}"
        );
        assert!(
            text.contains("tern_store_batch_size_bucket{le=\"4\"}"),
            "{text}"
        );
    }
}
