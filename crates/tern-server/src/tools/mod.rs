//! The operator tools of the `tern` binary besides `serve`: `tern token`,
//! `tern user add` and `tern config check`. Each reads the configuration
//! exactly as `tern serve` does ([`load_config`]).

pub mod chat;
pub mod config_check;
pub mod token;
pub mod user;

use std::process::ExitCode;
use std::sync::Arc;

use tern_store::Store;

use crate::cli::{ServeArgs, EXIT_USAGE};
use crate::config::Config;

/// Why a tool failed; decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// Bad input or configuration: exit 64 (`EX_USAGE`).
    Usage(String),
    /// Anything else (I/O, database, the user exists): exit 1.
    Failed(String),
}

impl ToolError {
    /// The process exit code of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE as u8,
            Self::Failed(_) => 1,
        }
    }

    /// The message for the operator.
    pub fn message(&self) -> &str {
        match self {
            Self::Usage(m) | Self::Failed(m) => m,
        }
    }
}

/// Prints the error of a tool, if any, and turns it into the exit code.
pub fn finish(result: Result<(), ToolError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Loads and validates the configuration as `tern serve` does (exit 64 on
/// a problem).
pub fn load_config(args: &ServeArgs) -> Result<Config, ToolError> {
    crate::config::load::load(args).map_err(|e| ToolError::Usage(e.to_string()))
}

/// Opens the configured database as the server does (creating the data
/// directory for SQLite).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ToolError> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ToolError::Failed(format!(
                "cannot create data directory {}: {e}",
                config.data_dir
            ))
        })?;
    }
    let opts = tern_store::OpenOptions {
        max_connections: config.store.max_connections,
        sqlite_cache_kib: config.store.sqlite_cache_kib,
        sqlite_mmap_mib: config.store.sqlite_mmap_mib,
        sqlite_checkpoint_pages: config.store.sqlite_checkpoint_pages,
        sqlite_checkpoint_ms: config.store.sqlite_checkpoint_ms,
    };
    tern_store::open(&url, opts).await.map_err(|e| {
        ToolError::Failed(format!(
            "cannot open database {}: {e}",
            crate::app::redact(&url)
        ))
    })
}

/// A username a tool may act for: valid and not reserved (exit 64 if not).
pub fn check_username(name: &str) -> Result<(), ToolError> {
    tern_proto::ids::validate_username(name).map_err(|e| ToolError::Usage(e.to_string()))?;
    if tern_proto::ids::is_reserved_username(name) {
        return Err(ToolError::Usage(format!(
            "username {name:?} is reserved (an admin is any user whose token has the admin role: \
             `tern token --user NAME --admin`)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked_like_register() {
        assert_eq!(check_username("alice"), Ok(()));
        for bad in ["admin", "system", "Al", "al", "-bob", "bob smith"] {
            let err = check_username(bad).err();
            assert!(matches!(err, Some(ToolError::Usage(_))), "{bad}: {err:?}");
        }
        let reserved = check_username("admin")
            .err()
            .map(|e| e.message().to_owned());
        assert!(reserved.is_some_and(|m| m.contains("--admin")));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ToolError::Usage("x".into()).exit_code(), 64);
        assert_eq!(ToolError::Failed("x".into()).exit_code(), 1);
    }
}
