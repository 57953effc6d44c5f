//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations and served at `GET /api/v1/openapi.json`.
//!
//! The wire types of `tern_proto` (which does not depend on utoipa) are
//! described here by documentation-only mirror structs (`…Schema`, renamed
//! with `#[schema(as = …)]`); they must follow PROTOCOL.md §3, §5 and §6.
//! [`ROUTES`] lists every (method, path) the router serves: the tests compare
//! it with the document in both directions and call each route on a server.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ApiError;
use super::{accounts, admin, chat, groups, health, profile};
use crate::service::ServiceError;

/// Every (method, path) the router serves (`http::router_with` plus the
/// routes `app::router` merges in), paths written as routed (`{param}`).
/// Keep in step with the routers: `tests/openapi.rs` fails otherwise.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/register"),
    ("POST", "/api/v1/login"),
    ("GET", "/api/v1/me"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/ws"),
    ("POST", "/api/v1/messages"),
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/{conv}/messages"),
    ("POST", "/api/v1/conversations/{conv}/read"),
    ("GET", "/api/v1/users/{user}/presence"),
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/groups"),
    ("GET", "/api/v1/groups/{id}"),
    ("PATCH", "/api/v1/groups/{id}"),
    ("DELETE", "/api/v1/groups/{id}"),
    ("POST", "/api/v1/groups/{id}/members"),
    ("DELETE", "/api/v1/groups/{id}/members/{user}"),
    ("POST", "/api/v1/groups/{id}/admins"),
    ("DELETE", "/api/v1/groups/{id}/admins/{user}"),
    ("GET", "/api/v1/admin/stats"),
    ("POST", "/api/v1/admin/users/{user}/ban"),
    ("DELETE", "/api/v1/admin/users/{user}/ban"),
    ("POST", "/api/v1/admin/users/{user}/kick"),
    ("POST", "/api/v1/admin/tokens"),
    ("POST", "/api/v1/admin/broadcast"),
    ("GET", "/api/v1/admin/debug/pprof/profile"),
];

/// Name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tern",
        version = env!("CARGO_PKG_VERSION"),
        description = "The tern instant-messaging server's HTTP API. The \
            protocol, including the WebSocket frames, is described in \
            docs/protocol.md."
    ),
    paths(
        accounts::register,
        accounts::login,
        accounts::me,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
        ws_upgrade,
        chat::send,
        chat::conversations,
        chat::history,
        chat::read,
        chat::presence,
        groups::create,
        groups::list,
        groups::show,
        groups::rename,
        groups::remove,
        groups::add_members,
        groups::remove_member,
        groups::add_admins,
        groups::remove_admin,
        admin::stats,
        admin::ban,
        admin::unban,
        admin::kick,
        admin::tokens,
        admin::broadcast,
        profile::profile,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        ErrorCodeSchema,
        StatusBody,
        ConvIdSchema,
        MessageKindSchema,
        ConvKindSchema,
        MessageSchema,
        ConvSummarySchema,
        ConvList,
        PresenceItemSchema,
        GroupInfoSchema,
        NodeStatsSchema,
        SendRequest,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "accounts", description = "Built-in accounts"),
        (name = "chat", description = "Messages, conversations and presence"),
        (name = "groups", description = "Groups (PROTOCOL.md §5)"),
        (name = "admin", description = "Administration (role `admin`)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "websocket", description = "The WebSocket transport"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` (JWT) security scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("`Authorization: Bearer <jwt>`"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the HTTP API.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON, serialized once.
fn spec_json() -> Option<&'static Bytes> {
    static JSON: OnceLock<Option<Bytes>> = OnceLock::new();
    JSON.get_or_init(|| match serde_json::to_vec(&spec()) {
        Ok(v) => Some(Bytes::from(v)),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            None
        }
    })
    .as_ref()
}

/// `GET /api/v1/openapi.json` → this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object),
        (status = 500, description = "`internal`: the document could not be serialized", body = ErrorBody),
    )
)]
pub async fn openapi_json() -> Result<Response, ApiError> {
    let json = spec_json()
        .ok_or_else(|| ServiceError::Internal("cannot serialize the OpenAPI document".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response())
}

// Documentation only: the handler is `gateway::ws_handler`.
/// The WebSocket upgrade.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "websocket",
    description = "Upgrades to a WebSocket carrying the frames of docs/protocol.md. \
        The token may come as `Authorization: Bearer`, as `?token=`, or in an `auth` \
        frame after the upgrade. The codec is chosen by the subprotocol `tern.json` / \
        `tern.proto`, by `?codec=json|proto`, or by the first frame.",
    params(
        ("token" = Option<String>, Query, description = "JWT, instead of an `Authorization` header or an `auth` frame"),
        ("codec" = Option<String>, Query, description = "`json` or `proto`"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open"),
        (status = 400, description = "`bad_request`: not a WebSocket upgrade, or an unknown codec", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many connections from this address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds to wait"))),
        (status = 503, description = "`unavailable`: the server is draining", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn ws_upgrade() {}

/// The error body of every failed request (PROTOCOL.md §6).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The `error` object.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    pub code: ErrorCodeSchema,
    /// Human-readable; not for matching.
    pub message: String,
    /// Only with `rate_limited` (also sent as `Retry-After`, whole seconds).
    #[schema(required = false)]
    pub retry_after_ms: Option<u64>,
}

/// The error codes and their statuses: `bad_request` 400, `unauthorized`
/// 401, `forbidden` 403, `not_found` 404, `conflict` 409, `too_large` 413,
/// `rate_limited` 429, `unavailable` 503, `internal` 500.
#[derive(ToSchema)]
#[schema(as = ErrorCode, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCodeSchema {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

/// `{"status"}` of `/healthz` (`ok`) and `/readyz` (`ready`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatusBody {
    pub status: String,
}

/// A conversation id: `d:<user>:<user>` (direct, users sorted) or
/// `g:<group id>`.
#[derive(ToSchema)]
#[schema(as = ConvId, example = "d:alice:bob")]
#[allow(dead_code)]
pub struct ConvIdSchema(String);

/// `text` (default), `system` (from the server) or `e2e` (opaque ciphertext).
#[derive(ToSchema)]
#[schema(as = MessageKind, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MessageKindSchema {
    Text,
    System,
    E2e,
}

/// `direct` or `group`.
#[derive(ToSchema)]
#[schema(as = ConvKind, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ConvKindSchema {
    Direct,
    Group,
}

/// A stored message (PROTOCOL.md §3).
#[derive(ToSchema)]
#[schema(as = Message)]
#[allow(dead_code)]
pub struct MessageSchema {
    pub conv: ConvIdSchema,
    pub seq: u64,
    pub mid: String,
    pub from: String,
    pub body: String,
    pub kind: MessageKindSchema,
    /// Server time, milliseconds since the Unix epoch.
    pub ts: i64,
    pub cmid: String,
    /// A JSON object stored and returned untouched; absent when not sent.
    #[schema(value_type = Option<Object>, required = false)]
    pub meta: Option<serde_json::Value>,
}

/// One conversation of the caller.
#[derive(ToSchema)]
#[schema(as = ConvSummary)]
#[allow(dead_code)]
pub struct ConvSummarySchema {
    pub conv: ConvIdSchema,
    pub kind: ConvKindSchema,
    /// The other party of a direct conversation.
    #[schema(required = false)]
    pub peer: Option<String>,
    /// A group's name.
    #[schema(required = false)]
    pub name: Option<String>,
    pub last_seq: u64,
    pub read_seq: u64,
    pub unread: u64,
    #[schema(required = false)]
    pub last: Option<MessageSchema>,
}

/// `{"items":[conversation…]}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConvList {
    pub items: Vec<ConvSummarySchema>,
}

/// A user's presence; `last_seen` is `null` for a user who never connected.
#[derive(ToSchema)]
#[schema(as = PresenceItem)]
#[allow(dead_code)]
pub struct PresenceItemSchema {
    pub user: String,
    pub online: bool,
    /// Milliseconds since the Unix epoch, or `null`.
    #[schema(required = true)]
    pub last_seen: Option<i64>,
}

/// A group as shown to its members (PROTOCOL.md §5).
#[derive(ToSchema)]
#[schema(as = GroupInfo)]
#[allow(dead_code)]
pub struct GroupInfoSchema {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admins: Vec<String>,
    pub members: Vec<String>,
    pub created_at: i64,
}

/// One node in `/admin/stats`.
#[derive(ToSchema)]
#[schema(as = NodeStats)]
#[allow(dead_code)]
pub struct NodeStatsSchema {
    pub id: String,
    /// The address another node serves on; absent for the answering node.
    pub addr: Option<String>,
    pub connections: u64,
    pub sessions: u64,
    /// Users with a session on this node; `null` for other nodes.
    #[schema(required = true)]
    pub users_online: Option<u64>,
    /// Resident set size of the server process in KiB (`VmRSS` of
    /// `/proc/self/status`); `null` off Linux or when it cannot be read.
    #[schema(required = true)]
    pub rss_kib: Option<u64>,
}

/// Body of `POST /api/v1/messages`: exactly one of `to` and `conv`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SendRequest {
    /// Recipient of a direct message (exclusive with `conv`).
    #[schema(required = false)]
    pub to: Option<String>,
    /// Target conversation (exclusive with `to`).
    #[schema(required = false)]
    pub conv: Option<ConvIdSchema>,
    /// Client message id: a repeat with the same `cmid` is idempotent.
    pub cmid: String,
    pub body: String,
    #[schema(required = false)]
    pub kind: Option<MessageKindSchema>,
    /// Any JSON object, stored and returned untouched.
    #[schema(value_type = Option<Object>, required = false)]
    pub meta: Option<serde_json::Value>,
}
