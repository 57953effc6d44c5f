//! PLACEHOLDER: WebSocket gateway.
