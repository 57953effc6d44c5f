//! The admin API (role `admin`): statistics, bans, kicks, tokens and
//! system broadcasts. Everyone else gets 403 `forbidden`.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tern_proto::ConvId;
use utoipa::ToSchema;

use super::chat::AckBody;
use super::error::ApiError;
use super::extract::{AuthUser, Json};
use super::openapi::{ErrorBody, NodeStatsSchema};
use crate::service::admin::NodeStats;
use crate::service::ServiceError;
use crate::state::AppState;

/// Default lifetime of tokens minted by `POST /admin/tokens`, seconds.
const DEFAULT_TOKEN_TTL_S: u64 = 3600;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/stats", get(stats))
        .route("/api/v1/admin/users/{user}/ban", post(ban).delete(unban))
        .route("/api/v1/admin/users/{user}/kick", post(kick))
        .route("/api/v1/admin/tokens", post(tokens))
        .route("/api/v1/admin/broadcast", post(broadcast))
}

/// An authenticated caller with role `admin`.
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(who) = AuthUser::from_request_parts(parts, state).await?;
        if who.admin {
            Ok(Self(who.user))
        } else {
            Err(ServiceError::Forbidden("admin role required".into()).into())
        }
    }
}

/// `GET /admin/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub connections: usize,
    pub sessions: usize,
    pub users: u64,
    pub messages: u64,
    #[schema(value_type = Vec<NodeStatsSchema>)]
    pub nodes: Vec<NodeStats>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Statistics", body = Stats),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
    )
)]
pub async fn stats(State(state): State<AppState>, _admin: Admin) -> Result<Json<Stats>, ApiError> {
    let (users, messages) = state.store.counts().await.map_err(ServiceError::from)?;
    let nodes = state
        .hub
        .cluster_stats(state.lifecycle.connections.len())
        .await;
    Ok(Json(Stats {
        connections: nodes.iter().map(|n| n.connections).sum(),
        sessions: nodes.iter().map(|n| n.sessions).sum(),
        users,
        messages,
        nodes,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{user}/ban",
    tag = "admin",
    params(
        ("user" = String, Path, description = "User name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Banned; the user's sessions are closed (4011)"),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
    )
)]
pub async fn ban(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.set_banned(&user, true).await?;
    tracing::info!(user, by, "ban");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{user}/ban",
    tag = "admin",
    params(
        ("user" = String, Path, description = "User name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Unbanned"),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
    )
)]
pub async fn unban(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.set_banned(&user, false).await?;
    tracing::info!(user, by, "unban");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{user}/kick",
    tag = "admin",
    params(
        ("user" = String, Path, description = "User name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user's sessions are closed"),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
    )
)]
pub async fn kick(
    State(state): State<AppState>,
    _admin: Admin,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.kick(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /admin/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub user: String,
    pub ttl_s: Option<u64>,
}

/// A minted token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    pub token: String,
    pub expires_at: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/tokens",
    tag = "admin",
    request_body = TokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A token (the user is created if needed)", body = TokenBody),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
pub async fn tokens(
    State(state): State<AppState>,
    _admin: Admin,
    Json(req): Json<TokenRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    let ttl = req.ttl_s.unwrap_or(DEFAULT_TOKEN_TTL_S);
    if ttl == 0 {
        return Err(ServiceError::BadRequest("ttl_s must be at least 1".into()).into());
    }
    state.hub.ensure_user(&req.user).await?;
    let (token, expires_at) = state.auth.issue(&req.user, false, ttl)?;
    Ok(Json(TokenBody { token, expires_at }))
}

/// Body of `POST /admin/broadcast`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BroadcastRequest {
    pub conv: String,
    pub body: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/broadcast",
    tag = "admin",
    request_body = BroadcastRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored: the ack of the `system` message", body = AckBody),
        (status = 400, description = "`bad_request`: invalid conversation id or body", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
pub async fn broadcast(
    State(state): State<AppState>,
    _admin: Admin,
    Json(req): Json<BroadcastRequest>,
) -> Result<Response, ApiError> {
    let conv = ConvId::parse(&req.conv).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let m = state.hub.broadcast(&conv, req.body).await?.message;
    let ack = AckBody {
        conv: m.conv,
        seq: m.seq,
        mid: m.mid,
        ts: m.ts,
    };
    Ok((StatusCode::CREATED, Json(ack)).into_response())
}
