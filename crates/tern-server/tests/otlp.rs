//! OpenTelemetry export, end to end: an in-process OTLP/HTTP receiver
//! (POST /v1/traces, protobuf) on 127.0.0.1:0, the subscriber installed as
//! `tern serve` installs it with `tracing.otlp_endpoint` pointing there, one
//! WebSocket send, and the span tree of that send checked (names and parent
//! links); plus a request carrying a W3C `traceparent`.
//!
//! One test per process: the subscriber is global.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use common::{token, TestServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use tern_server::config::{LogConfig, TracingConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Received = Arc<Mutex<Vec<Span>>>;

/// The receiver: every span of every export request, in arrival order.
async fn receiver() -> (String, Received) {
    let spans: Received = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(export))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

async fn export(State(spans): State<Received>, body: Bytes) -> Vec<u8> {
    let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    let mut all = spans.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value);
        assert_eq!(service, Some(AnyValue::StringValue("tern-test".into())));
        for ss in rs.scope_spans {
            all.extend(ss.spans);
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

/// Flushes the exporter until `done` holds for what arrived (5 s at most).
async fn wait_for(
    telemetry: &Arc<tern_server::telemetry::Telemetry>,
    spans: &Received,
    done: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    for _ in 0..50 {
        let t = telemetry.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .unwrap();
        let got = spans.lock().unwrap().clone();
        if done(&got) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = spans.lock().unwrap().clone();
    let names: Vec<_> = got.iter().map(|s| s.name.clone()).collect();
    panic!("spans did not arrive; got {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_exported_as_one_span_tree() {
    let (endpoint, spans) = receiver().await;
    let tracing_cfg = TracingConfig {
        otlp_endpoint: endpoint,
        sample_ratio: 1.0,
        service_name: "tern-test".into(),
    };
    let log = LogConfig {
        filter: "info".into(),
        format: "json".into(),
    };
    let (_handle, telemetry) = tern_server::logging::init_with_tracing(&log, &tracing_cfg).unwrap();
    let telemetry = Arc::new(telemetry.expect("tracing is on"));
    let cfg = tracing_cfg.clone();
    let srv = TestServer::with(move |c| {
        c.tracing = cfg;
        c.limits.drain_timeout_ms = 0;
    })
    .await;

    let mut bob = srv.connect("bob").await;
    let mut alice = srv.connect("alice").await;
    let ack = alice
        .request(json!({"type":"send","id":1,"to":"bob","cmid":"c1","body":"hi"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(bob.recv_type("msg").await["body"], "hi");

    let is_send = |s: &Span| s.name == "send";
    let got = wait_for(&telemetry, &spans, |all| {
        let Some(send) = all.iter().find(|s| is_send(s)) else {
            return false;
        };
        let children = all.iter().filter(|s| s.parent_span_id == send.span_id);
        children.map(|s| s.name.as_str()).collect::<Vec<_>>().len() >= 4
    })
    .await;

    let send = got.iter().find(|s| is_send(s)).unwrap();
    assert!(
        send.parent_span_id.is_empty(),
        "a send starts its own trace"
    );
    assert_eq!(
        attr(send, "user"),
        Some(AnyValue::StringValue("alice".into()))
    );
    assert_eq!(
        attr(send, "conv"),
        Some(AnyValue::StringValue("d:alice:bob".into()))
    );
    let children: Vec<&Span> = got
        .iter()
        .filter(|s| s.parent_span_id == send.span_id)
        .collect();
    for name in ["validate", "commit", "ack", "fanout"] {
        let child = children.iter().find(|s| s.name == name);
        let child = child.unwrap_or_else(|| panic!("no {name} under send: {children:?}"));
        assert_eq!(child.trace_id, send.trace_id, "{name}");
    }
    // The commit is linked to the group commit it was part of, whose store
    // call is traced under it.
    let commit = children.iter().find(|s| s.name == "commit").unwrap();
    let batch = got
        .iter()
        .find(|s| commit.links.iter().any(|l| l.span_id == s.span_id))
        .expect("commit links to its batch");
    assert_eq!(batch.name, "writer.batch");
    assert!(got
        .iter()
        .any(|s| s.name == "store.append" && s.parent_span_id == batch.span_id));
    // The WebSocket upgrade is an HTTP request span of its route template.
    assert!(got.iter().any(|s| s.name == "GET /ws"), "no GET /ws span");

    // A request naming its caller's trace continues it.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let status = get_with_traceparent(srv.addr, &format!("00-{trace}-{parent}-01")).await;
    assert_eq!(status, 200);
    let got = wait_for(&telemetry, &spans, |all| {
        all.iter().any(|s| s.name == "GET /api/v1/me")
    })
    .await;
    let me = got.iter().find(|s| s.name == "GET /api/v1/me").unwrap();
    assert_eq!(hex(&me.trace_id), trace);
    assert_eq!(hex(&me.parent_span_id), parent);
    assert_eq!(
        attr(me, "http.route"),
        Some(AnyValue::StringValue("/api/v1/me".into()))
    );

    srv.shutdown().await;
}

async fn get_with_traceparent(addr: std::net::SocketAddr, traceparent: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\ntraceparent: {traceparent}\r\n\r\n",
        token("alice")
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}
