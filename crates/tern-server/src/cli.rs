//! PLACEHOLDER: command line.
