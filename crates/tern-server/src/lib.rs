//! The tern server: service layer, WebSocket gateway, HTTP API and config.
//!
//! `main.rs` only parses the command line and calls [`app::run`].
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod http;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod reload;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod tools;

pub use config::Config;
pub use state::AppState;
