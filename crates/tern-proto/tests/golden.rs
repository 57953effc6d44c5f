//! The golden-frame corpus in `tests/golden/`: every frame type as
//! `NAME.json` (the JSON codec's bytes) and `NAME.pb` (the protobuf codec's
//! bytes), `client_*` for frames clients send and `server_*` for frames the
//! server sends. Other clients (the TypeScript SDK) check their codecs
//! against the same files (see `tests/golden/README.md`).
//!
//! `TERN_UPDATE_GOLDEN=1 cargo test -p tern-proto --test golden` rewrites
//! the files from the frames of `corpus/mod.rs`. Otherwise each file must decode to its
//! frame, and the frame must encode back to the file: JSON compared as
//! parsed values, protobuf byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;

use std::path::{Path, PathBuf};

use corpus::{corpus, Golden};
use tern_proto::Codec;
fn encode(codec: Codec, frame: &Golden) -> Vec<u8> {
    match frame {
        Golden::Client(f) => codec.encode_client(f).to_vec(),
        Golden::Server(f) => codec.encode_server(f).to_vec(),
    }
}

/// Decodes `bytes` in the frame's direction and checks it is the frame.
fn check_decodes(codec: Codec, bytes: &[u8], frame: &Golden, file: &Path) {
    match frame {
        Golden::Client(f) => assert_eq!(
            &codec.decode_client(bytes).unwrap(),
            f,
            "{}",
            file.display()
        ),
        Golden::Server(f) => assert_eq!(
            &codec.decode_server(bytes).unwrap(),
            f,
            "{}",
            file.display()
        ),
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with TERN_UPDATE_GOLDEN=1)",
            path.display()
        )
    })
}

#[test]
fn golden_frames() {
    let corpus = corpus();
    if std::env::var("TERN_UPDATE_GOLDEN").as_deref() == Ok("1") {
        for (name, frame) in &corpus {
            std::fs::write(
                dir().join(format!("{name}.json")),
                encode(Codec::Json, frame),
            )
            .unwrap();
            std::fs::write(
                dir().join(format!("{name}.pb")),
                encode(Codec::Proto, frame),
            )
            .unwrap();
        }
    }
    for (name, frame) in &corpus {
        let path = dir().join(format!("{name}.json"));
        let json = read(&path);
        check_decodes(Codec::Json, &json, frame, &path);
        let want: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&encode(Codec::Json, frame)).unwrap();
        assert_eq!(got, want, "{}", path.display());

        let path = dir().join(format!("{name}.pb"));
        let pb = read(&path);
        check_decodes(Codec::Proto, &pb, frame, &path);
        assert_eq!(encode(Codec::Proto, frame), pb, "{}", path.display());
    }
}

/// Every frame type of both directions has a golden file, and no file is
/// left over from a frame that was renamed or removed.
#[test]
fn corpus_is_complete_and_has_no_strays() {
    let corpus = corpus();
    let mut client_types = std::collections::BTreeSet::new();
    let mut server_types = std::collections::BTreeSet::new();
    for (_, frame) in &corpus {
        let json: serde_json::Value = serde_json::from_slice(&encode(Codec::Json, frame)).unwrap();
        let ty = json["type"].as_str().unwrap().to_owned();
        match frame {
            Golden::Client(_) => client_types.insert(ty),
            Golden::Server(_) => server_types.insert(ty),
        };
    }
    let all = |s: &str| {
        s.split(' ')
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        client_types,
        all("auth send sync convs read typing presence_sub presence_unsub ping")
    );
    assert_eq!(server_types, all("auth_ok ack messages convs ok pong presence msg receipt typing group goaway resync error"));

    let names: std::collections::BTreeSet<String> = corpus.iter().map(|(n, _)| n.clone()).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if file == "README.md" {
            continue;
        }
        let stem = file
            .strip_suffix(".json")
            .or_else(|| file.strip_suffix(".pb"));
        assert!(
            stem.is_some_and(|s| names.contains(s)),
            "stray golden file {file}"
        );
    }
}
