//! PLACEHOLDER: Prometheus metrics.
