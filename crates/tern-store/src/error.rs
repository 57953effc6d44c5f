//! Store failures, classified so the service can answer `unavailable` when the
//! database is unreachable and `internal` otherwise.

use std::sync::Arc;

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed; the driver's error (and its own causes)
    /// is kept as the source. `kind` says whether retrying may help.
    #[error("database {kind}: {source}")]
    Database {
        kind: DbFailure,
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// The database cannot be reached or timed out (said without a driver
    /// error: a store deadline, a missing directory): nothing was stored;
    /// retry.
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

/// What a driver error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFailure {
    /// Unreachable, overloaded or busy: nothing was stored; retry.
    Unavailable,
    /// Anything else.
    Error,
}

impl std::fmt::Display for DbFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        })
    }
}

impl StoreError {
    /// The database could not be reached or was too busy: nothing was
    /// stored, and the same call may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::Database {
                    kind: DbFailure::Unavailable,
                    ..
                }
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_errors_keep_their_source_and_class() {
        let busy = crate::common::map_err(sqlx::Error::PoolTimedOut);
        assert!(busy.is_unavailable());
        let source = std::error::Error::source(&busy).map(ToString::to_string);
        assert_eq!(source, Some(sqlx::Error::PoolTimedOut.to_string()));
        assert!(
            busy.to_string().starts_with("database unavailable: "),
            "{busy}"
        );

        let other = crate::common::map_err(sqlx::Error::RowNotFound);
        assert!(!other.is_unavailable());
        assert!(std::error::Error::source(&other).is_some());
        assert!(other.to_string().starts_with("database error: "), "{other}");

        assert!(StoreError::Unavailable("deadline".into()).is_unavailable());
        assert!(!StoreError::Other("x".into()).is_unavailable());
    }
}
