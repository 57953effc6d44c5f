//! The service layer: sessions, delivery, conversations, presence. No I/O
//! details: the gateway and the HTTP API both call into it.
pub mod error;

pub use error::{ServiceError, ServiceResult};

/// PLACEHOLDER: the session registry and delivery hub.
pub struct Hub;
