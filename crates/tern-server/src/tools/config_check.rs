//! `tern config check`: loads and validates the configuration with the
//! same function as `tern serve`, reports unknown `TERN_*` variables, and
//! prints the configuration in effect as TOML with its secrets redacted.
//! `--defaults` (or `tern config defaults`) prints `tern.example.toml`.

use std::path::Path;
use std::process::ExitCode;

use super::{finish, load_config, ToolError};
use crate::app::redact;
use crate::auth::secret::SECRET_FILE;
use crate::cli::ConfigCheckArgs;
use crate::config::load::unrecognized_env_vars;
use crate::config::Config;

/// The complete, commented example file: every key at its default (a test
/// of the loader keeps it equal to the built-in defaults).
pub const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tern.example.toml"
));

/// What replaces a secret in the printed configuration.
const REDACTED: &str = "<redacted>";

/// Runs `tern config check [--defaults]`.
pub fn run(args: &ConfigCheckArgs) -> ExitCode {
    if args.defaults {
        return defaults();
    }
    for var in unrecognized_env_vars() {
        eprintln!("tern: warning: {var} is not a tern setting (a typo?); it is ignored");
    }
    finish(check(args).map(|text| print!("{text}")))
}

/// Runs `tern config defaults`.
pub fn defaults() -> ExitCode {
    print!("{EXAMPLE}");
    ExitCode::SUCCESS
}

/// The report of a valid configuration; a [`ToolError::Usage`] listing
/// every problem otherwise.
fn check(args: &ConfigCheckArgs) -> Result<String, ToolError> {
    let config = load_config(&args.config)?;
    let body = toml::to_string(&redacted(&config))
        .map_err(|e| ToolError::Failed(format!("printing the configuration: {e}")))?;
    Ok(format!("{}\n{body}", header(&config)))
}

/// Comments on what the file's keys leave to be derived.
fn header(config: &Config) -> String {
    let mut lines = vec![
        "# tern config check: the configuration is valid.".to_owned(),
        "# Effective configuration (defaults <- file <- TERN_* <- flags), secrets redacted.".into(),
        format!(
            "# database in effect: {}",
            redact(&config.effective_database_url())
        ),
        format!(
            "# heartbeat in effect: {} ms",
            config.limits.effective_heartbeat_ms()
        ),
    ];
    if config.jwt_secret.is_empty() {
        let path = Path::new(&config.data_dir).join(SECRET_FILE);
        let state = if path.exists() {
            "exists"
        } else {
            "generated on first start"
        };
        lines.push(format!("# JWT secret: from {} ({state})", path.display()));
    }
    lines.join("\n") + "\n"
}

/// `config` with `jwt_secret` and the passwords in URLs hidden.
fn redacted(config: &Config) -> Config {
    let mut c = config.clone();
    if !c.jwt_secret.is_empty() {
        c.jwt_secret = REDACTED.into();
    }
    c.database_url = redact(&c.database_url);
    c.redis_url = redact(&c.redis_url);
    c.push.webhook_url = redact(&c.push.webhook_url);
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_parses_as_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config {
            jwt_secret: "super-secret-value-123".into(),
            database_url: "postgres://tern:pg-pass@db/tern".into(),
            redis_url: "redis://:redis-pass@cache:6379".into(),
            ..Config::default()
        };
        c.push.webhook_url = "http://hook:hook-pass@push.internal/x".into();
        let text = toml::to_string(&redacted(&c)).unwrap();
        for secret in [
            "super-secret-value-123",
            "pg-pass",
            "redis-pass",
            "hook-pass",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("postgres://tern:***@db/tern"), "{text}");
        assert!(text.contains(REDACTED), "{text}");
        // Everything else is printed as loaded.
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.limits, c.limits);
        assert_eq!(back.http_addr, c.http_addr);
    }

    #[test]
    fn header_names_what_is_derived() {
        let h = header(&Config::default());
        assert!(h.contains("sqlite://./tern-data/tern.db"), "{h}");
        assert!(h.contains("heartbeat in effect: 24000 ms"), "{h}");
        assert!(h.contains("jwt.secret"), "{h}");
    }
}
