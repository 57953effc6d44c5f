//! Operator endpoints outside the API prefix: `/healthz` (process up),
//! `/readyz` (database answers and not draining) and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::Json;
use super::openapi::{ErrorBody, StatusBody};
use crate::service::ServiceError;
use crate::AppState;

/// How long `/readyz` waits for the database before calling it down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` → 200 `{"status":"ok"}` while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "`{\"status\":\"ok\"}`: the process is up", body = StatusBody),
    )
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz` → 200 `{"status":"ready"}`, or 503 `unavailable` saying
/// why (draining, database down) so load balancers stop sending clients.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "`{\"status\":\"ready\"}`", body = StatusBody),
        (status = 503, description = "`unavailable`: draining, or the database (or Redis) does not answer", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.lifecycle.is_draining() {
        return Err(ServiceError::Unavailable("server is draining".into()).into());
    }
    if !state.hub.cluster_healthy() {
        return Err(ServiceError::Unavailable("cluster bus (Redis) unreachable".into()).into());
    }
    match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database ping failed");
            Err(ServiceError::Unavailable("database unavailable".into()).into())
        }
        Err(_) => Err(ServiceError::Unavailable("database did not answer in time".into()).into()),
    }
}

/// `GET /metrics` → Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let depths = state.hub.queue_depths();
    metrics::gauge!(crate::metrics::WRITER_QUEUE).set(depths.writer as f64);
    metrics::gauge!(crate::metrics::PUSH_QUEUE).set(depths.push as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}
