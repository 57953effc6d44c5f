//! The HTTP API (PROTOCOL.md §6) and the operator endpoints, as one axum
//! [`Router`]. Every failure is answered `{"error":{"code","message"}}`.

pub mod accounts;
pub mod admin;
pub mod chat;
pub mod client_ip;
pub mod error;
pub mod extract;
pub mod groups;
pub mod health;
pub mod observe;
pub mod openapi;
pub mod origin;
pub mod profile;
pub mod ui;

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{middleware, Router};

pub use error::ApiError;
pub use extract::{AuthUser, Json};

use crate::service::ServiceError;
use crate::AppState;

/// Largest request body the API reads, bytes (64 KiB: a message body is at
/// most 16 KiB plus 4 KiB of meta, so this leaves room for JSON escaping).
/// Larger bodies are answered 413 `too_large`.
pub const API_BODY_LIMIT: usize = 64 * 1024;

/// The accounts API and operator endpoints, state applied.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// Like [`router`], with `extra` routes (e.g. `/ws`, more `/api/v1/…`)
/// merged in BEFORE the body limit, JSON error mapping and fallbacks are
/// applied, so they get the same treatment. Routes merged into the returned
/// router afterwards get none of it.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    // Metrics recorded before the recorder exists are lost: install it now
    // at the latest (idempotent; `app` should do it even earlier).
    crate::metrics::handle();
    Router::new()
        .route("/api/v1/register", post(accounts::register))
        .route("/api/v1/login", post(accounts::login))
        .route("/api/v1/me", get(accounts::me))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(profile::PATH, get(profile::profile))
        .merge(extra)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), origin::cors))
        .layer(middleware::map_response(error::json_errors))
        // Outermost: sees the final status and the whole time.
        .layer(middleware::from_fn(observe::observe))
        .with_state(state)
}

/// Unknown routes: 404 `not_found`.
async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ServiceError::NotFound(format!("no route for {}", uri.path())).into()
}

/// A known path with the wrong method: status 405, code `bad_request`
/// (the protocol has no code of its own for it).
async fn method_not_allowed() -> axum::response::Response {
    error::error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        tern_proto::ErrorCode::BadRequest,
        "method not allowed",
        None,
    )
}
