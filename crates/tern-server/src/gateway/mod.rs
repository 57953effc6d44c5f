//! The real-time gateway: WebSocket connections on `/ws` (raw TCP later),
//! one task per connection owning its socket.

mod abuse_limits;
mod conn;
mod dispatch;
mod limiter;
mod link;
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
