//! The protobuf types generated from `proto/tern.proto` (package `tern.v1`)
//! by prost. Use the frame types of [`crate::frame`] in Rust code; these are
//! the wire shapes that [`crate::proto`] converts to and from.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/tern.v1.rs"));
