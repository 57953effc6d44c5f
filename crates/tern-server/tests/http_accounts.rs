//! The accounts API, health endpoints and token rules, driven through
//! `Router::oneshot` (no network): PROTOCOL.md §2 and §6.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request};
use axum::Router;
use serde_json::{json, Value};
use tern_server::auth::Authenticator;
use tern_server::service::Hub;
use tern_server::state::{Lifecycle, ServerState};
use tern_server::{AppState, Config};
use tower::ServiceExt;

const SECRET: &str = "http-accounts-test-secret-0123456789";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAk93hhrA5QYkYNGPELY5GSMT4c8N+wWAe4b0tTogO0y4=
-----END PUBLIC KEY-----
";
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIDqm422h7wRbPRjG3wIsaovFv/rXRZnlptzqmDcS6joN
-----END PRIVATE KEY-----
";

struct Ctx {
    app: Router,
    state: AppState,
    dir: tempfile::TempDir,
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn ctx() -> Ctx {
    ctx_with(|_, _| {}).await
}

async fn ctx_with(tweak: impl FnOnce(&mut Config, &std::path::Path)) -> Ctx {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_string_lossy().into_owned(),
        jwt_secret: SECRET.into(),
        ..Config::default()
    };
    tweak(&mut cfg, dir.path());
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = tern_store::open(&url, Default::default()).await.unwrap();
    let config = Arc::new(cfg);
    let auth = Arc::new(Authenticator::new(&config, store.clone()).await.unwrap());
    let state = AppState::new(ServerState {
        hub: Hub::new(
            config.clone(),
            store.clone(),
            tern_server::service::moderation::WordFilter::from_config(&config.moderation).unwrap(),
        ),
        abuse_limits: tern_server::gateway::AbuseLimits::new(&config.limits),
        config,
        store,
        auth,
        lifecycle: Arc::new(Lifecycle::default()),
        tls: None,
    });
    Ctx {
        app: tern_server::http::router(state.clone()),
        state,
        dir,
    }
}

impl Ctx {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_owned())),
            None => req.body(Body::empty()),
        };
        let res = self.app.clone().oneshot(req.unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, None, Some(&body.to_string())).await
    }

    async fn me(&self, token: &str) -> Reply {
        self.call("GET", "/api/v1/me", Some(token), None).await
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn token(user: &str) -> String {
    sign(
        json!({"sub": user, "exp": now_s() + 600, "iat": now_s()}),
        SECRET,
    )
}

/// Asserts the PROTOCOL.md §6 error shape and returns the message.
fn assert_error(r: &Reply, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{:?}", r.body);
    r.body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

#[tokio::test]
async fn register_answers_201_409_and_400() {
    let c = ctx().await;
    let ok = c
        .post(
            "/api/v1/register",
            json!({"username":"alice","password":"secret-pass"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    assert_eq!(ok.body, json!({"user":"alice"}));
    let again = c
        .post(
            "/api/v1/register",
            json!({"username":"alice","password":"other-pass"}),
        )
        .await;
    assert_error(&again, 409, "conflict");
    for (name, pw) in [
        ("Alice", "secret-pass"),
        ("al", "secret-pass"),
        ("a:b", "secret-pass"),
        ("admin", "secret-pass"),
        ("system", "secret-pass"),
        ("bob", "short"),
        ("bob", &"x".repeat(129)),
    ] {
        let r = c
            .post("/api/v1/register", json!({"username":name,"password":pw}))
            .await;
        assert_error(&r, 400, "bad_request");
    }
    // 8 characters, more than 8 bytes: counted in Unicode scalar values.
    let r = c
        .post(
            "/api/v1/register",
            json!({"username":"carol","password":"éééééééé"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[tokio::test]
async fn login_issues_a_token_that_works_on_me() {
    let c = ctx().await;
    c.post(
        "/api/v1/register",
        json!({"username":"alice","password":"secret-pass"}),
    )
    .await;
    let r = c
        .post(
            "/api/v1/login",
            json!({"username":"alice","password":"secret-pass"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"], "alice");
    let expires_at = r.body["expires_at"].as_i64().unwrap();
    let expected = (now_s() + c.state.config.auth.token_ttl_s as i64) * 1000;
    assert!(
        (expires_at - expected).abs() < 5_000,
        "{expires_at} vs {expected}"
    );
    let me = c.me(r.body["token"].as_str().unwrap()).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["user"], "alice");
    assert!(me.body["created_at"].as_i64().unwrap() > 1_600_000_000_000);
}

#[tokio::test]
async fn login_failures_look_the_same() {
    let c = ctx().await;
    c.post(
        "/api/v1/register",
        json!({"username":"alice","password":"secret-pass"}),
    )
    .await;
    let wrong = c
        .post(
            "/api/v1/login",
            json!({"username":"alice","password":"not-the-pass"}),
        )
        .await;
    let unknown = c
        .post(
            "/api/v1/login",
            json!({"username":"nobody","password":"secret-pass"}),
        )
        .await;
    let invalid = c
        .post(
            "/api/v1/login",
            json!({"username":"NO!","password":"secret-pass"}),
        )
        .await;
    let m1 = assert_error(&wrong, 401, "unauthorized");
    assert_eq!(m1, assert_error(&unknown, 401, "unauthorized"));
    assert_eq!(m1, assert_error(&invalid, 401, "unauthorized"));
    // A token-provisioned user has no password and cannot log in by one.
    assert_eq!(c.me(&token("tokenonly")).await.status, 200);
    let r = c
        .post(
            "/api/v1/login",
            json!({"username":"tokenonly","password":""}),
        )
        .await;
    assert_eq!(m1, assert_error(&r, 401, "unauthorized"));
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let c = ctx().await;
    let expired = sign(json!({"sub":"alice","exp": now_s() - 120}), SECRET);
    let within_leeway = sign(json!({"sub":"alice","exp": now_s() - 10}), SECRET);
    let wrong_key = sign(
        json!({"sub":"alice","exp": now_s() + 600}),
        "some-other-secret",
    );
    let no_exp = sign(json!({"sub":"alice"}), SECRET);
    let no_sub = sign(json!({"exp": now_s() + 600}), SECRET);
    // alg none: header {"alg":"none","typ":"JWT"}, unsigned.
    let none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        b64url(&json!({"sub":"alice","exp": now_s() + 600}).to_string())
    );
    for t in [
        &expired,
        &wrong_key,
        &no_exp,
        &no_sub,
        &none,
        &"garbage".to_owned(),
    ] {
        assert_error(&c.me(t).await, 401, "unauthorized");
    }
    assert_eq!(c.me(&within_leeway).await.status, 200);
    let missing = c.call("GET", "/api/v1/me", None, None).await;
    assert_error(&missing, 401, "unauthorized");
    for reserved in ["admin", "system"] {
        assert_error(&c.me(&token(reserved)).await, 401, "unauthorized");
    }
    assert_error(&c.me(&token("Not Valid")).await, 401, "unauthorized");
    assert!(tern_server::metrics::render().contains("tern_auth_failures_total"));
}

fn b64url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn unknown_users_are_provisioned_only_when_enabled() {
    let c = ctx().await;
    let me = c.me(&token("newbie")).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert!(c.state.store.get_user("newbie").await.unwrap().is_some());

    let off = ctx_with(|cfg, _| cfg.auth.auto_provision = false).await;
    assert_error(&off.me(&token("newbie")).await, 401, "unauthorized");
    assert!(off.state.store.get_user("newbie").await.unwrap().is_none());
}

#[tokio::test]
async fn banned_users_are_403_everywhere() {
    let c = ctx().await;
    c.post(
        "/api/v1/register",
        json!({"username":"mallory","password":"secret-pass"}),
    )
    .await;
    assert!(c.state.store.set_banned("mallory", true).await.unwrap());
    c.state.auth.set_banned_cached("mallory", true);
    assert_error(&c.me(&token("mallory")).await, 403, "forbidden");
    let r = c
        .post(
            "/api/v1/login",
            json!({"username":"mallory","password":"secret-pass"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    c.state.auth.set_banned_cached("mallory", false);
    assert_eq!(c.me(&token("mallory")).await.status, 200);
}

#[tokio::test]
async fn every_failure_has_the_error_shape() {
    let c = ctx().await;
    let malformed = c
        .call("POST", "/api/v1/register", None, Some("{not json"))
        .await;
    assert_error(&malformed, 400, "bad_request");
    let wrong_type = c
        .call(
            "POST",
            "/api/v1/login",
            None,
            Some(r#"{"username":1,"password":"x"}"#),
        )
        .await;
    assert_error(&wrong_type, 400, "bad_request");
    let missing_field = c.post("/api/v1/login", json!({"username":"alice"})).await;
    assert_error(&missing_field, 400, "bad_request");
    let no_ct = c
        .app
        .clone()
        .oneshot(
            Request::post("/api/v1/login")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(no_ct.status(), 400);
    let big = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        "x".repeat(70_000)
    );
    assert_error(
        &c.call("POST", "/api/v1/register", None, Some(&big)).await,
        413,
        "too_large",
    );
    let unknown = c.call("GET", "/api/v1/nope", None, None).await;
    assert_error(&unknown, 404, "not_found");
    assert_error(
        &c.call("GET", "/elsewhere", None, None).await,
        404,
        "not_found",
    );
    let method = c.call("GET", "/api/v1/register", None, None).await;
    assert_error(&method, 405, "bad_request");
    assert!(method.headers.contains_key(header::ALLOW));
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let c = ctx().await;
    let h = c.call("GET", "/healthz", None, None).await;
    assert_eq!((h.status, h.body.clone()), (200, json!({"status":"ok"})));
    assert_eq!(c.call("GET", "/readyz", None, None).await.status, 200);
    c.state.lifecycle.start_drain();
    let r = c.call("GET", "/readyz", None, None).await;
    assert!(assert_error(&r, 503, "unavailable").contains("draining"));
    metrics::counter!(tern_server::metrics::MESSAGES_STORED).increment(0);
    let m = c.call("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    let text = m.body.as_str().unwrap();
    assert!(text.contains("tern_messages_stored_total"), "{text}");
    assert!(m.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
}

#[tokio::test]
async fn generated_secret_is_private_and_reused() {
    let c = ctx_with(|cfg, _| cfg.jwt_secret.clear()).await;
    let path = c.dir.path().join("jwt.secret");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (t, _) = c.state.auth.issue("alice", false, 60).unwrap();
    assert_eq!(c.me(&t).await.status, 200);
    // A restart on the same data directory accepts the same token.
    let again = Authenticator::new(&c.state.config, c.state.store.clone())
        .await
        .unwrap();
    assert_eq!(again.authenticate(&t).await.unwrap().user, "alice");
    std::fs::write(&path, "x").unwrap();
    assert!(Authenticator::new(&c.state.config, c.state.store.clone())
        .await
        .is_err());
}

#[tokio::test]
async fn admin_role_and_public_key_mode() {
    let c = ctx().await;
    let (t, _) = c.state.auth.issue("root1", true, 60).unwrap();
    assert!(c.state.auth.authenticate(&t).await.unwrap().admin);
    assert!(
        !c.state
            .auth
            .authenticate(&token("alice"))
            .await
            .unwrap()
            .admin
    );

    let ed = ctx_with(|cfg, dir| {
        let key = dir.join("ed.pub.pem");
        std::fs::write(&key, ED_PUBLIC).unwrap();
        cfg.auth.jwt_algorithm = "EdDSA".into();
        cfg.auth.jwt_public_key_file = key.to_string_lossy().into_owned();
    })
    .await;
    let signed = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &json!({"sub":"alice","exp": now_s() + 600}),
        &jsonwebtoken::EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(ed.me(&signed).await.status, 200);
    // HS256 with the server's own secret stays on the allowlist (tokens this
    // server issues); HS256 keyed with the public key is refused.
    assert_eq!(ed.me(&token("alice")).await.status, 200);
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub":"alice","exp": now_s() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(ED_PUBLIC.as_bytes()),
    )
    .unwrap();
    assert_error(&ed.me(&confused).await, 401, "unauthorized");
}
