//! Built-in accounts (PROTOCOL.md §6): `POST /register`, `POST /login`,
//! `GET /me`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{AuthUser, Json};
use crate::service::ServiceError;
use crate::AppState;

/// Body of `/register` and `/login`.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct UserCreated {
    pub user: String,
}

#[derive(Debug, Serialize)]
pub struct LoginOk {
    pub token: String,
    pub expires_at: i64,
    pub user: String,
}

#[derive(Debug, Serialize)]
pub struct Me {
    pub user: String,
    pub created_at: i64,
}

/// `POST /api/v1/register` → 201 `{"user"}`; 400 invalid, 409 taken.
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

/// `POST /api/v1/login` → 200 `{"token","expires_at","user"}`; 401.
pub async fn login(
    State(state): State<AppState>,
    Json(creds): Json<Credentials>,
) -> Result<Json<LoginOk>, ApiError> {
    let (token, expires_at) = state.auth.login(&creds.username, &creds.password).await?;
    Ok(Json(LoginOk {
        token,
        expires_at,
        user: creds.username,
    }))
}

/// `GET /api/v1/me` → `{"user","created_at"}`.
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
