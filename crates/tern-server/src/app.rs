//! PLACEHOLDER: app wiring.
