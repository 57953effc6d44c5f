//! The OpenAPI document (`GET /api/v1/openapi.json`): its shape, and that it
//! and [`ROUTES`] match the routes the server really serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{token, TestServer};
use serde_json::{json, Value};
use tern_server::http::openapi::{spec, BEARER, ROUTES};

/// Operations that cannot answer with a client error (no input, no auth).
const NO_CLIENT_ERRORS: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /api/v1/openapi.json",
];

/// Operations that cannot fail at all.
const INFALLIBLE: &[&str] = &["GET /healthz", "GET /metrics"];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn fetch_spec(srv: &TestServer) -> Value {
    let (status, doc) = srv.http("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

/// Every `(METHOD, path)` operation of a document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn routes() -> BTreeSet<(String, String)> {
    let set: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(set.len(), ROUTES.len(), "duplicates in ROUTES");
    set
}

#[tokio::test]
async fn document_is_openapi_3_with_bearer_scheme() {
    let srv = TestServer::start().await;
    let doc = fetch_spec(&srv).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "tern");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let scheme = &doc["components"]["securitySchemes"][BEARER];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    // The served document is the one built in code.
    assert_eq!(doc, serde_json::to_value(spec()).unwrap());
    // Authenticated routes ask for the bearer scheme; login does not.
    let me = &doc["paths"]["/api/v1/me"]["get"];
    assert_eq!(me["security"], json!([{ BEARER: [] }]), "{me}");
    assert!(doc["paths"]["/api/v1/login"]["post"]["security"].is_null());
    srv.shutdown().await;
}

/// The document and ROUTES list the same operations, both ways.
#[test]
fn document_matches_routes() {
    let doc = serde_json::to_value(spec()).unwrap();
    let documented = operations(&doc);
    let routed = routes();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the spec: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "spec operations not in ROUTES: {unrouted:?}"
    );
}

/// Operation ids are unique (code generators name functions after them).
#[test]
fn operation_ids_are_unique() {
    let doc = serde_json::to_value(spec()).unwrap();
    let mut seen = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let id = doc["paths"][&path][method.to_lowercase()]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"))
            .to_owned();
        assert!(seen.insert(id.clone()), "duplicate operationId {id}");
    }
}

fn is_error_ref(response: &Value) -> bool {
    response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
}

/// Every operation documents its failures with the error schema.
#[test]
fn operations_document_errors() {
    let doc = serde_json::to_value(spec()).unwrap();
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error"]), "{error}");
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    for field in ["code", "message", "retry_after_ms"] {
        assert!(detail["properties"][field].is_object(), "{field}: {detail}");
    }
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let name = format!("{method} {path}");
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{name}: no responses");
        let errors: Vec<&String> = responses
            .iter()
            .filter(|(status, r)| status.as_str() >= "400" && is_error_ref(r))
            .map(|(status, _)| status)
            .collect();
        if !NO_CLIENT_ERRORS.contains(&name.as_str()) {
            assert!(
                errors.iter().any(|s| s.starts_with('4')),
                "{name}: no 4xx response with the error schema"
            );
        } else if !INFALLIBLE.contains(&name.as_str()) {
            assert!(
                !errors.is_empty(),
                "{name}: no error response with the error schema"
            );
        }
        // Every 4xx/5xx documented anywhere uses the error schema.
        for (status, r) in responses {
            if status.as_str() >= "400" {
                assert!(is_error_ref(r), "{name} {status}: not the error schema");
            }
        }
    }
}

fn sample_path(path: &str) -> String {
    path.replace("{conv}", "d:alice:bob")
        .replace("{id}", "g1")
        .replace("{user}", "bob")
}

/// ROUTES is honest: the server answers each of them with something other
/// than its unknown-route 404 (message "no route for …") or a 405.
#[tokio::test]
async fn every_listed_route_is_served() {
    let srv = TestServer::start().await;
    let alice = token("alice");
    for (method, path) in ROUTES {
        let url = sample_path(path);
        let body = matches!(*method, "POST" | "PATCH").then(|| json!({}));
        let (status, v) = srv.http(method, &url, Some(&alice), body).await;
        let name = format!("{method} {path}");
        assert_ne!(status, 405, "{name}: method not allowed: {v}");
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            !(status == 404 && message.starts_with("no route for")),
            "{name}: not routed: {v}"
        );
    }
    // The check itself catches an unknown route.
    let (status, v) = srv.http("GET", "/api/v1/nope", Some(&alice), None).await;
    assert_eq!(status, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no route for"),
        "{v}"
    );
    srv.shutdown().await;
}
