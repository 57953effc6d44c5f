//! `tern-bench`: the load tool of the tern messaging server.
//!
//! Scenarios (one module each under [`scenario`]):
//!
//! - `idle`: open N authenticated connections, hold them, report the
//!   connect rate and the server's memory per connection.
//! - `connect`: connection + authentication rate and latency distribution.
//! - `direct`: P sender→receiver pairs, W messages in flight per pair, for
//!   T seconds: delivered messages/s, send→delivery and ack latency.
//! - `fanout`: one group of M online members (split over the `--procs`
//!   workers), S senders at a target rate or flat out: deliveries/s,
//!   latency, lost and duplicated deliveries.
//! - `churn`: connect/disconnect continuously for T seconds; the server's
//!   RSS at start, during and after (from `/proc/<pid>` with `--server-pid`,
//!   else from `GET /api/v1/admin/stats`).
//! - `history`: fill a long history, then sync it with `tern-client`.
//!
//! The hot paths use the raw `tokio-websockets` client with the JSON codec
//! (minimal client overhead: the server is what is measured): connections
//! are opened in one place per transport ([`net::Target::connect`]) and
//! frames encoded and decoded in one place per codec ([`codec::Codec`]).
//! Tokens are minted from the server's HS256 secret. `--procs K` runs K
//! worker processes, each with its own 127.0.0.x source address (see
//! [`procs`]). Several `--host`s spread the connections over the nodes of
//! a cluster (see [`hosts`]). Every scenario is bounded in time and stops
//! by itself.
//!
//! `--peer mqtt0|mqtt1|nats` runs `direct` and `fanout` against an MQTT
//! broker or a NATS server instead (see [`peer`]), for side-by-side figures.

pub mod cli;
pub mod codec;
pub mod cpu;
pub mod hosts;
pub mod net;
pub mod peer;
pub mod procs;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod server;
pub mod token;

pub use cli::{Cli, Common, Peer, Scenario, Transport};
pub use report::Report;

/// Runs one scenario in this process (no worker processes).
pub async fn run_scenario(common: &Common, scenario: &Scenario) -> anyhow::Result<Report> {
    if let Some(peer) = common.peer {
        return peer::run(common, scenario, peer).await;
    }
    match scenario {
        Scenario::Idle(a) => scenario::idle::run(common, a).await,
        Scenario::Connect(a) => scenario::connect::run(common, a).await,
        Scenario::Direct(a) => scenario::direct::run(common, a).await,
        Scenario::Fanout(a) => scenario::fanout::run(common, a).await,
        Scenario::Churn(a) => scenario::churn::run(common, a).await,
        Scenario::History(a) => scenario::history::run(common, a).await,
    }
}
