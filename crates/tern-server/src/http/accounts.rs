//! Built-in accounts (PROTOCOL.md §6): `POST /register`, `POST /login`,
//! `GET /me`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{AuthUser, Json};
use super::openapi::ErrorBody;
use crate::service::ServiceError;
use crate::AppState;

/// Body of `/register` and `/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreated {
    pub user: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOk {
    pub token: String,
    pub expires_at: i64,
    pub user: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: String,
    pub created_at: i64,
}

/// `POST /api/v1/register` → 201 `{"user"}`; 400 invalid, 409 taken.
#[utoipa::path(
    post,
    path = "/api/v1/register",
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered", body = UserCreated),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 409, description = "`conflict`: the name is taken", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Json(creds): Json<Credentials>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    state
        .auth
        .register(&creds.username, &creds.password)
        .await?;
    tracing::info!(user = %creds.username, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            user: creds.username,
        }),
    ))
}

/// `POST /api/v1/login` → 200 `{"token","expires_at","user"}`; 401; 429
/// past `limits.login_per_user_per_min` / `login_per_ip_per_min`.
///
/// The peer address is optional (read as an extension, since `ConnectInfo`
/// has no optional form): routers driven by `oneshot` have none, and are then
/// limited per username only. Behind `http.trusted_proxies` the client's
/// address comes from the forwarding headers.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 200, description = "A token", body = LoginOk),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong user name or password", body = ErrorBody),
        (status = 403, description = "`forbidden`: the user is banned", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
        (status = 429, description = "`rate_limited`: retry after `retry_after_ms`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds to wait"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: http::HeaderMap,
    Json(creds): Json<Credentials>,
) -> Result<Json<LoginOk>, ApiError> {
    let ip =
        peer.map(|Extension(ConnectInfo(addr))| state.abuse_limits.client_ip(addr.ip(), &headers));
    // Before any hashing: a refused attempt costs no Argon2 work.
    if let Err(e) = state.abuse_limits.check_login(ip, &creds.username) {
        metrics::counter!(crate::metrics::RATE_LIMITED, "transport" => "http_login").increment(1);
        return Err(e.into());
    }
    let (token, expires_at) = state.auth.login(&creds.username, &creds.password).await?;
    Ok(Json(LoginOk {
        token,
        expires_at,
        user: creds.username,
    }))
}

/// `GET /api/v1/me` → `{"user","created_at"}`.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not allowed to do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user, group or conversation", body = ErrorBody),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Me>, ApiError> {
    let record = state
        .store
        .get_user(&who.user)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound(format!("no such user: {}", who.user)))?;
    Ok(Json(Me {
        user: record.username,
        created_at: record.created_at,
    }))
}
