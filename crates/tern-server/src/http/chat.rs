//! HTTP parity with the WebSocket frames: send, conversations, history,
//! read pointers and presence. Same rules and the same seq space as `/ws`;
//! sends push to every online session of every member.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tern_proto::frame::SendFrame;
use tern_proto::{ConvId, ConvSummary, Message, PresenceItem};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{AuthUser, Json};
use super::openapi::{
    ConvIdSchema, ConvList, ErrorBody, MessageSchema, PresenceItemSchema, SendRequest,
};
use crate::service::chat::page_of;
use crate::service::ServiceError;
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/messages", post(send))
        .route("/api/v1/conversations", get(conversations))
        .route("/api/v1/conversations/{conv}/messages", get(history))
        .route("/api/v1/conversations/{conv}/read", post(read))
        .route("/api/v1/users/{user}/presence", get(presence))
}

/// The ack of an HTTP send.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckBody {
    #[schema(value_type = ConvIdSchema)]
    pub conv: ConvId,
    pub seq: u64,
    pub mid: String,
    pub ts: i64,
}

/// `POST /api/v1/messages`: 201 with the ack, or 200 with the original ack
/// for a repeated cmid. The body is read as raw JSON so `meta` is kept byte
/// for byte.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "chat",
    request_body = SendRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored: the ack", body = AckBody),
        (status = 200, description = "A repeated `cmid`: the original ack", body = AckBody),
        (status = 400, description = "`bad_request`: malformed JSON or an invalid field", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not a member of the conversation", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user or conversation", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
        (status = 429, description = "`rate_limited`: retry after `retry_after_ms`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds to wait"))),
        (status = 503, description = "`unavailable`: the server is draining or a backend is down", body = ErrorBody),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Read raw (to keep `meta` byte for byte), but held to the same rule as
    // every JSON route: a JSON content type.
    let is_json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json")
                || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !is_json {
        return Err(
            ServiceError::BadRequest("expected Content-Type: application/json".into()).into(),
        );
    }
    let mut frame: SendFrame = serde_json::from_slice(&body)
        .map_err(|e| ServiceError::BadRequest(format!("invalid message: {e}")))?;
    if frame.meta.is_some() {
        frame.meta = tern_proto::codec::raw_meta(&body).or(frame.meta);
    }
    state.hub.admit_http_send(&who.user)?;
    let appended = state.hub.send_and_wait(&who.user, frame).await?;
    let m = appended.message;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let ack = AckBody {
        conv: m.conv,
        seq: m.seq,
        mid: m.mid,
        ts: m.ts,
    };
    Ok((status, Json(ack)).into_response())
}

/// A list of items.
#[derive(Debug, Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `GET /api/v1/conversations`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = "chat",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's conversations", body = ConvList),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not allowed to do this", body = ErrorBody),
    )
)]
pub async fn conversations(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Items<ConvSummary>>, ApiError> {
    let items = state.hub.convs(&who.user).await?;
    Ok(Json(Items { items }))
}

/// Query of the history route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub limit: Option<i64>,
}

/// A page of history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryBody {
    #[schema(value_type = Vec<MessageSchema>)]
    pub items: Vec<Message>,
    pub more: bool,
}

/// `GET /api/v1/conversations/{conv}/messages?after=&before=&limit=`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{conv}/messages",
    tag = "chat",
    params(
        ("conv" = String, Path, description = "Conversation id, e.g. `d:alice:bob` or `g:<group id>`"),
        HistoryQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of history", body = HistoryBody),
        (status = 400, description = "`bad_request`: invalid conversation id or page", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(conv): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryBody>, ApiError> {
    let conv = parse_conv(&conv)?;
    let page = page_of(q.after, q.before, q.limit)?;
    let page = state.hub.history(&who.user, &conv, page).await?;
    Ok(Json(HistoryBody {
        items: page.items,
        more: page.more,
    }))
}

/// Body of the read route.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadBody {
    pub seq: u64,
}

/// `POST /api/v1/conversations/{conv}/read` → 204.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{conv}/read",
    tag = "chat",
    params(
        ("conv" = String, Path, description = "Conversation id, e.g. `d:alice:bob` or `g:<group id>`"),
    ),
    request_body = ReadBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Read pointer moved"),
        (status = 400, description = "`bad_request`: invalid conversation id or body", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
        (status = 413, description = "`too_large`: request body or message over its limit", body = ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(conv): Path<String>,
    Json(body): Json<ReadBody>,
) -> Result<StatusCode, ApiError> {
    let conv = parse_conv(&conv)?;
    state.hub.read(&who.user, &conv, body.seq, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/users/{user}/presence`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user}/presence",
    tag = "chat",
    params(
        ("user" = String, Path, description = "User name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's presence", body = PresenceItemSchema),
        (status = 401, description = "`unauthorized`: missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: banned, or not allowed to do this", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
    )
)]
pub async fn presence(
    State(state): State<AppState>,
    AuthUser(_who): AuthUser,
    Path(user): Path<String>,
) -> Result<Json<PresenceItem>, ApiError> {
    state.hub.require_user(&user).await?;
    Ok(Json(state.hub.presence_of_user(&user).await))
}

fn parse_conv(raw: &str) -> Result<ConvId, ServiceError> {
    ConvId::parse(raw).map_err(|e| ServiceError::BadRequest(e.to_string()))
}
