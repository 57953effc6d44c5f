//! The real-time gateway: WebSocket connections on `/ws` and the raw TCP
//! door, one task per connection owning its socket, and one sweep task
//! timing idle sessions and the drain.

mod abuse_limits;
mod conn;
mod dispatch;
mod limiter;
mod link;
pub mod sweep;
pub mod tcp;
pub mod transport;
pub mod upgrade;
mod ws;

pub use abuse_limits::{AbuseLimits, ConnectionSlot, Refused};
pub use conn::{serve, Codec, ConnParams, ConnectionGauge};
pub use dispatch::{Flow, SessionCtx};
pub use limiter::{SendLimiter, Verdict};
pub use upgrade::ws_handler;
pub use ws::WsTransport;
