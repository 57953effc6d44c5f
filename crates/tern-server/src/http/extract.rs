//! Request extractors whose rejections speak the API's error shape: a JSON
//! body ([`Json`]) and the caller's identity from a bearer token ([`AuthUser`]).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;
use crate::auth::Identity;
use crate::service::ServiceError;
use crate::AppState;

/// `axum::Json`, but a malformed body, a missing `Content-Type`, a wrong
/// field type or an oversized body is answered with our error shape:
/// 400 `bad_request`, or 413 `too_large` past the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(from_rejection(&rejection))),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn from_rejection(rejection: &JsonRejection) -> ServiceError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ServiceError::TooLarge(format!("request body over {} bytes", super::API_BODY_LIMIT))
        }
        // PROTOCOL.md has no 415: a missing JSON content type is a bad request.
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ServiceError::BadRequest("expected Content-Type: application/json".into())
        }
        _ => ServiceError::BadRequest(rejection.body_text()),
    }
}

/// The authenticated caller, from `Authorization: Bearer <jwt>`.
/// Missing or bad token → 401 `unauthorized`; banned → 403 `forbidden`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Identity);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| ServiceError::Unauthorized("missing bearer token".into()))?;
        Ok(Self(state.auth.authenticate(token).await?))
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
