//! PLACEHOLDER: config loading.
