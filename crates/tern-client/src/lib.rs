//! Rust client of the tern messaging server (PROTOCOL.md §4). The URL picks
//! the transport: `ws://`/`wss://` (WebSocket, JSON frames, or protobuf with
//! `?codec=proto` or [`ClientConfig::with_codec`]), `tcp://host:port` (the
//! raw TCP door: `TRN1`, length-prefixed protobuf) or `tls://host:port` (the
//! TCP door in TLS; trust roots in [`ClientConfig::tls_roots`]). The API is
//! the same whatever the transport, and so are close codes: over TCP the
//! code of the server's final `error` frame ends up in [`Push::Closed`] as a
//! WebSocket close code does.
//!
//! [`Client::connect`] opens and authenticates a connection and returns a
//! cheap, clonable [`Client`] handle for requests plus a [`PushStream`] of
//! server pushes and connection events. Behind them two tasks run: the
//! connection task owns the socket (requests out, replies routed by `id` to
//! their callers, heartbeat, reconnect with backoff), and the delivery task
//! turns raw pushes into an ordered, duplicate-free stream per conversation,
//! fetching gaps with `sync` and resyncing tracked conversations after a
//! reconnect.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tern_client::ClientError> {
//! use tern_client::{Client, ClientConfig, Push};
//! let cfg = ClientConfig::new("ws://127.0.0.1:8080/ws", "<jwt>");
//! let (client, mut pushes) = Client::connect(cfg).await?;
//! client.send_to("bob", "c-1", "hi").await?;
//! while let Some(push) = pushes.recv().await {
//!     if let Push::Msg(m) = push {
//!         println!("{}: {}", m.from, m.body);
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod backoff;
mod client;
mod config;
mod connection;
mod delivery;
mod endpoint;
mod error;
mod open;
mod pending;
mod push;
mod requests;
mod seq;
mod transport;

pub use backoff::Backoff;
pub use client::Client;
pub use config::{AuthMode, ClientConfig, ReconnectPolicy, TlsRoots, DEFAULT_MAX_FRAME_BYTES};
pub use error::{ClientError, Result};
pub use open::SessionInfo;
pub use push::{Push, PushStream};
pub use requests::{Ack, Page};
pub use seq::{SeqCheck, SeqTracker};
pub use tern_proto;
pub use tern_proto::Codec;
