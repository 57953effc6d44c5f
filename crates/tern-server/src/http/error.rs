//! The one place where errors become HTTP responses:
//! `{"error":{"code","message"}}` with the status of the code (PROTOCOL.md §6).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tern_proto::ErrorCode;

use crate::service::ServiceError;

/// A failed API request. Handlers return `Result<_, ApiError>` and use `?`
/// on anything that yields a [`ServiceError`].
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let ServiceError::Internal(cause) = &e {
            // The client gets "internal error"; the operator gets the cause.
            tracing::error!(%cause, "request failed with an internal error");
        }
        let code = e.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        error_response(status, code, &e.public_message(), e.retry_after_ms())
    }
}

/// Builds an error response. `rate_limited` carries `retry_after_ms` in the
/// body and `Retry-After` (whole seconds, rounded up) in the headers.
pub fn error_response(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    retry_after_ms: Option<u64>,
) -> Response {
    let mut error = json!({"code": code.as_str(), "message": message});
    if let (Some(ms), Value::Object(map)) = (retry_after_ms, &mut error) {
        map.insert("retry_after_ms".into(), ms.into());
    }
    let mut res = (status, axum::Json(json!({ "error": error }))).into_response();
    if let Some(ms) = retry_after_ms {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    }
    res
}

/// The protocol code for an HTTP status produced outside our handlers.
/// 405 has no code of its own: it keeps its status with `bad_request`.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        s if s >= 500 => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// Middleware (`map_response`): rewrites any error response that is not
/// already JSON (axum's plain-text rejections, empty 404/405s, body-limit
/// 413s from extractors we did not write) into the error shape, keeping its
/// status and headers such as `Allow`. (`observe` counts the responses.)
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&res) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .unwrap_or_default();
    let text = text.trim();
    let message = if text.is_empty() || status.is_server_error() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text.to_owned()
    };
    let mut out = error_response(status, code_for_status(status), &message, None);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

fn is_json(res: &Response<Body>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn body_json(res: Response) -> Value {
        let bytes = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn rate_limited_has_header_and_field() {
        let res = ApiError(ServiceError::RateLimited {
            retry_after_ms: 1200,
        })
        .into_response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        let v = body_json(res).await;
        assert_eq!(v["error"]["code"], "rate_limited");
        assert_eq!(v["error"]["retry_after_ms"], 1200);
    }

    #[tokio::test]
    async fn internal_cause_is_not_leaked() {
        let res = ApiError(ServiceError::Internal("db password is hunter2".into())).into_response();
        assert_eq!(res.status(), 500);
        let v = body_json(res).await;
        assert_eq!(
            v,
            json!({"error":{"code":"internal","message":"internal error"}})
        );
    }

    #[tokio::test]
    async fn plain_text_errors_are_rewritten() {
        let plain = (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")], "").into_response();
        let res = json_errors(plain).await;
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()[header::ALLOW], "GET");
        let v = body_json(res).await;
        assert_eq!(v["error"]["code"], "bad_request");
        assert_eq!(v["error"]["message"], "method not allowed");
    }
}
