//! Store failures, classified so the service can answer `unavailable` when the
//! database is unreachable and `internal` otherwise.

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out: nothing was stored; retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The target does not exist (e.g. a message to a group that is gone).
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness rule was broken in a way the caller must hear about.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be read back (should never happen).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
