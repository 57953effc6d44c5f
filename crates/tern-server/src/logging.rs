//! PLACEHOLDER: tracing setup.
