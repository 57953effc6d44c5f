//! tern wire protocol: frame types, the JSON and protobuf codecs, identifiers
//! and validation.
//!
//! This crate does no I/O. It is shared by the server, the Rust client and the
//! tools, so both ends agree on every byte of PROTOCOL.md §4.
#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod frame;
pub mod framing;
pub mod ids;
pub mod message;
pub mod pb;
pub mod protobuf;
mod syntax;
pub mod wire;

pub use codec::{decode_client, decode_server, encode_client, encode_server, DecodeError};
pub use error::{CloseCode, ErrorCode};
pub use frame::{ClientFrame, ConvSummary, PresenceItem, RequestId, ServerFrame};
pub use ids::{ConvId, IdError};
pub use message::{Message, MessageKind};
pub use wire::Codec;

/// Longest client message id, in characters.
pub const MAX_CMID_CHARS: usize = 64;
/// Largest `meta` object, serialized, in bytes.
pub const MAX_META_BYTES: usize = 4096;
/// Default and largest page size of `sync`.
pub const DEFAULT_SYNC_LIMIT: u32 = 100;
/// Page sizes above this are clamped.
pub const MAX_SYNC_LIMIT: u32 = 500;
