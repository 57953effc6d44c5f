//! Codec speed: decode of client frames, encode of server frames, in JSON;
//! and a `msg` push both ways in JSON and protobuf side by side. Run:
//! `cargo bench -p tern-proto --bench codec`.
//!
//! Decoded: a `send` (small text body) with and without `meta`, a `sync`, a
//! `ping`. Encoded: a `msg` push with and without `meta`, an `ack`, and the
//! `messages` reply to a `sync` holding a page of 100 messages. The `msg_push`
//! group encodes a `msg` (server side) and decodes it (client side) with
//! each [`Codec`]. Throughput is in bytes of the frame on the wire, so
//! criterion also reports MB/s. Inputs are built once, outside the timed loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tern_proto::message::Meta;
use tern_proto::{
    decode_client, encode_server, ClientFrame, Codec, ConvId, Message, MessageKind, ServerFrame,
};

/// A stored text message as the server pushes it (a ULID mid, a ms timestamp).
fn message(conv: &ConvId, seq: u64, meta: Option<Meta>) -> Message {
    Message {
        conv: conv.clone(),
        seq,
        mid: "01JDQ8Z6W1K3V9X2C4B7N5M8P0".into(),
        from: "alice".into(),
        body: "hey, are we still on for lunch at noon?".into(),
        kind: MessageKind::Text,
        ts: 1_732_000_000_000 + seq as i64,
        cmid: format!("c-{seq}"),
        meta,
    }
}

fn decode(c: &mut Criterion) {
    let cases: [(&str, &[u8]); 4] = [
        (
            "send",
            br#"{"type":"send","id":17,"to":"bob","cmid":"c-1732000000000-17","body":"hey, are we still on for lunch at noon?"}"#,
        ),
        (
            "send_meta",
            br#"{"type":"send","id":18,"conv":"g:team-42","cmid":"c-1732000000000-18","body":"hey, are we still on for lunch at noon?","meta":{"reply_to":"01JDQ8Z6W1K3V9X2C4B7N5M8P0","mentions":["bob","carol"]}}"#,
        ),
        ("sync", br#"{"type":"sync","id":19,"conv":"d:alice:bob","after":1200,"limit":100}"#),
        ("ping", br#"{"type":"ping","id":20}"#),
    ];
    let mut g = c.benchmark_group("decode_client");
    for (name, bytes) in cases {
        // A frame that does not decode would measure the error path instead.
        decode_client(bytes).expect(name);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| decode_client(black_box(bytes))));
    }
    g.finish();
    // Sanity: the `send_meta` case really goes through the raw-meta path.
    let ClientFrame::Send(send) = decode_client(cases[1].1).unwrap() else {
        unreachable!()
    };
    assert!(send.meta.is_some());
}

fn encode(c: &mut Criterion) {
    let direct = ConvId::direct("alice", "bob");
    let meta =
        Meta::from_json(r#"{"reply_to":"01JDQ8Z6W1K3V9X2C4B7N5M8P0","mentions":["bob","carol"]}"#)
            .unwrap();
    let cases = [
        ("msg", ServerFrame::Msg(message(&direct, 1201, None))),
        (
            "msg_meta",
            ServerFrame::Msg(message(&direct, 1202, Some(meta))),
        ),
        (
            "ack",
            ServerFrame::Ack {
                id: Some(17.into()),
                conv: direct.clone(),
                seq: 1201,
                mid: "01JDQ8Z6W1K3V9X2C4B7N5M8P0".into(),
                ts: 1_732_000_001_201,
            },
        ),
        (
            "sync_page_100",
            ServerFrame::Messages {
                id: Some(19.into()),
                conv: direct.clone(),
                items: (1101..=1200)
                    .map(|seq| message(&direct, seq, None))
                    .collect(),
                more: true,
            },
        ),
    ];
    let mut g = c.benchmark_group("encode_server");
    for (name, frame) in &cases {
        g.throughput(Throughput::Bytes(encode_server(frame).len() as u64));
        g.bench_function(*name, |b| b.iter(|| encode_server(black_box(frame))));
    }
    g.finish();
}

/// A `msg` push (with and without `meta`) encoded by the server and decoded
/// by a client, in each codec.
fn msg_push(c: &mut Criterion) {
    let direct = ConvId::direct("alice", "bob");
    let meta =
        Meta::from_json(r#"{"reply_to":"01JDQ8Z6W1K3V9X2C4B7N5M8P0","mentions":["bob","carol"]}"#)
            .unwrap();
    let cases = [
        ("msg", ServerFrame::Msg(message(&direct, 1201, None))),
        (
            "msg_meta",
            ServerFrame::Msg(message(&direct, 1202, Some(meta))),
        ),
    ];
    let mut g = c.benchmark_group("msg_push");
    for codec in Codec::ALL {
        for (name, frame) in &cases {
            let bytes = codec.encode_server(frame);
            assert_eq!(&codec.decode_server(&bytes).unwrap(), frame);
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_function(format!("encode/{}/{name}", codec.name()), |b| {
                b.iter(|| codec.encode_server(black_box(frame)))
            });
            g.bench_function(format!("decode/{}/{name}", codec.name()), |b| {
                b.iter(|| codec.decode_server(black_box(&bytes)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, decode, encode, msg_push);
criterion_main!(benches);
