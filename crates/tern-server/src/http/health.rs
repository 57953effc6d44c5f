//! Operator endpoints outside the API prefix: `/healthz` (process up),
//! `/readyz` (database answers and not draining) and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::Json;
use crate::service::ServiceError;
use crate::AppState;

/// How long `/readyz` waits for the database before calling it down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` → 200 `{"status":"ok"}` while the process runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz` → 200 `{"status":"ready"}`, or 503 `unavailable` saying
/// why (draining, database down) so load balancers stop sending clients.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.lifecycle.is_draining() {
        return Err(ServiceError::Unavailable("server is draining".into()).into());
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
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}
