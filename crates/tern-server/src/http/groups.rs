//! The group routes of the HTTP API (PROTOCOL.md §5, §6): create, list,
//! show, rename, delete, members and admins. The rules live in the service.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tern_proto::frame::GroupInfo;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{AuthUser, Json};
use super::openapi::{ErrorBody, GroupInfoSchema};
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
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Body of `PATCH /groups/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Rename {
    pub name: String,
}

/// Body of `POST /groups/{id}/members` and `…/admins`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Users {
    pub users: Vec<String>,
}

/// `{"items":[group…]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    #[schema(value_type = Vec<GroupInfoSchema>)]
    pub items: Vec<GroupInfo>,
}

/// `POST /api/v1/groups` → 201 group object.
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    operation_id = "create_group",
    tag = "groups",
    request_body = NewGroup,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new group", body = GroupInfoSchema),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not allowed to do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user among `members`", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
        (status = 429, description = "`rate_limited`: retry after `retry_after_ms`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds to wait"))),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    operation_id = "list_groups",
    tag = "groups",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's groups", body = GroupList),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not allowed to do this", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<GroupList>, ApiError> {
    let items = state.hub.groups_of(&who.user).await?;
    Ok(Json(GroupList { items }))
}

/// `GET /api/v1/groups/{id}` → group object (members only).
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    operation_id = "show_group",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group", body = GroupInfoSchema),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<GroupInfo>, ApiError> {
    Ok(Json(state.hub.group_for(&who.user, &id).await?))
}

/// `PATCH /api/v1/groups/{id}` `{"name"}` → 200 group object.
#[utoipa::path(
    patch,
    path = "/api/v1/groups/{id}",
    operation_id = "rename_group",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
    ),
    request_body = Rename,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group", body = GroupInfoSchema),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not an admin of the group", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}",
    operation_id = "delete_group",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not the owner", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.hub.delete_group(&who.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/groups/{id}/members` `{"users"}` → 200 group object.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/members",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
    ),
    request_body = Users,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group", body = GroupInfoSchema),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not allowed to add members", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group or user", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/members/{user}",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
        ("user" = String, Path, description = "User name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or neither admin/owner nor the user itself", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group or member", body = ErrorBody),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_member(&who.user, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/groups/{id}/admins` `{"users"}` → 200 group object.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/admins",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
    ),
    request_body = Users,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group", body = GroupInfoSchema),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not the owner", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group or member", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/admins/{user}",
    tag = "groups",
    params(
        ("id" = String, Path, description = "Group id"),
        ("user" = String, Path, description = "User name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "No longer an admin"),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not the owner", body = ErrorBody),
        (status = 404, description = "`not_found`: no such group or admin", body = ErrorBody),
    )
)]
pub async fn remove_admin(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.hub.remove_admin(&who.user, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
