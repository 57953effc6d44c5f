//! The group routes of the HTTP API (PROTOCOL.md §5, §6): create, list,
//! show, rename, delete, members and admins. The rules live in the service.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tern_proto::frame::GroupInfo;

use super::error::ApiError;
use super::extract::{AuthUser, Json};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups", post(create).get(list))
        .route(
            "/api/v1/groups/{id}",
            get(show).patch(rename).delete(remove),
        )
        .route("/api/v1/groups/{id}/members", post(add_members))
        .route("/api/v1/groups/{id}/members/{user}", delete(remove_member))
        .route("/api/v1/groups/{id}/admins", post(add_admins))
        .route("/api/v1/groups/{id}/admins/{user}", delete(remove_admin))
}

/// Body of `POST /groups`.
#[derive(Debug, Deserialize)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Body of `PATCH /groups/{id}`.
#[derive(Debug, Deserialize)]
pub struct Rename {
    pub name: String,
}

/// Body of `POST /groups/{id}/members` and `…/admins`.
#[derive(Debug, Deserialize)]
pub struct Users {
    pub users: Vec<String>,
}

/// `{"items":[group…]}`.
#[derive(Debug, Serialize)]
pub struct GroupList {
    pub items: Vec<GroupInfo>,
}

/// `POST /api/v1/groups` → 201 group object.
pub async fn create(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, Json<GroupInfo>), ApiError> {
    let group = state
        .hub
        .create_group(&who.user, &body.name, &body.members)
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// `GET /api/v1/groups` → the caller's groups.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<GroupList>, ApiError> {
    let items = state.hub.groups_of(&who.user).await?;
    Ok(Json(GroupList { items }))
}

/// `GET /api/v1/groups/{id}` → group object (members only).
pub async fn show(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<GroupInfo>, ApiError> {
    Ok(Json(state.hub.group_for(&who.user, &id).await?))
}

/// `PATCH /api/v1/groups/{id}` `{"name"}` → 200 group object.
pub async fn rename(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Json(body): Json<Rename>,
) -> Result<Json<GroupInfo>, ApiError> {
    let group = state.hub.rename_group(&who.user, &id, &body.name).await?;
    Ok(Json(group))
}

/// `DELETE /api/v1/groups/{id}` → 204 (owner).
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.delete_group(&who.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/groups/{id}/members` `{"users"}` → 200 group object.
pub async fn add_members(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Json(body): Json<Users>,
) -> Result<Json<GroupInfo>, ApiError> {
    let group = state.hub.add_members(&who.user, &id, &body.users).await?;
    Ok(Json(group))
}

/// `DELETE /api/v1/groups/{id}/members/{user}` → 204.
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_member(&who.user, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/groups/{id}/admins` `{"users"}` → 200 group object.
pub async fn add_admins(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    Json(body): Json<Users>,
) -> Result<Json<GroupInfo>, ApiError> {
    let group = state.hub.add_admins(&who.user, &id, &body.users).await?;
    Ok(Json(group))
}

/// `DELETE /api/v1/groups/{id}/admins/{user}` → 204 (owner).
pub async fn remove_admin(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_admin(&who.user, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
