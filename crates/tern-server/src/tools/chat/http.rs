//! The HTTP calls of `tern chat` (PROTOCOL.md §11, §13): register, login,
//! user lookup and the group routes, as JSON over plain HTTP/1.1 with a
//! time limit on each call.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tern_proto::frame::GroupInfo;

/// Largest response body read (the API's answers are small JSON objects).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A failed call: the server's error (`status`, `code`, `message`) or a
/// transport problem (`status` 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} ({} {})", self.message, self.status, self.code)
        }
    }
}

fn transport(message: String) -> HttpError {
    HttpError {
        status: 0,
        code: String::new(),
        message,
    }
}

/// The API of one server, with the token once logged in.
#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
    token: Option<String>,
}

impl Api {
    /// `base` is `http://host:port`.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: base.to_owned(),
            timeout,
            token: None,
        }
    }

    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// `POST /register`; `Ok(false)` when the name is taken.
    pub async fn register(&self, user: &str, password: &str) -> Result<bool, HttpError> {
        let body = json!({"username": user, "password": password});
        match self
            .call(Method::POST, "/api/v1/register", Some(body))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /login`: the token.
    pub async fn login(&self, user: &str, password: &str) -> Result<String, HttpError> {
        let body = json!({"username": user, "password": password});
        let reply = self.call(Method::POST, "/api/v1/login", Some(body)).await?;
        reply["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| transport("the login reply has no token".into()))
    }

    /// `GET /users/{user}/presence`: whether `user` is online (404 for an
    /// unknown user).
    pub async fn presence(&self, user: &str) -> Result<bool, HttpError> {
        let path = format!("/api/v1/users/{user}/presence");
        let reply = self.call(Method::GET, &path, None).await?;
        Ok(reply["online"].as_bool().unwrap_or(false))
    }

    /// `POST /groups`.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[String],
    ) -> Result<GroupInfo, HttpError> {
        let body = json!({"name": name, "members": members});
        group(
            self.call(Method::POST, "/api/v1/groups", Some(body))
                .await?,
        )
    }

    /// `POST /groups/{id}/members`.
    pub async fn add_members(&self, id: &str, users: &[String]) -> Result<GroupInfo, HttpError> {
        let path = format!("/api/v1/groups/{id}/members");
        group(
            self.call(Method::POST, &path, Some(json!({"users": users})))
                .await?,
        )
    }

    /// `DELETE /groups/{id}/members/{user}`.
    pub async fn leave_group(&self, id: &str, user: &str) -> Result<(), HttpError> {
        let path = format!("/api/v1/groups/{id}/members/{user}");
        self.call(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// One call within the timeout; a non-2xx answer becomes the server's
    /// error. The body of a 2xx answer is its JSON (`null` when empty).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, HttpError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let payload = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| transport(format!("bad request: {e}")))?;
        let round_trip = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| transport(format!("cannot reach {}: {e}", self.base)))?;
            let status = resp.status().as_u16();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, HttpError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, round_trip)
            .await
            .map_err(|_| transport(format!("{} did not answer in time", self.base)))??;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let error = &value["error"];
        Err(HttpError {
            status,
            code: error["code"].as_str().unwrap_or("").to_owned(),
            message: error["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("the server answered {status}")),
        })
    }
}

fn group(value: Value) -> Result<GroupInfo, HttpError> {
    serde_json::from_value(value).map_err(|e| transport(format!("unexpected group reply: {e}")))
}
