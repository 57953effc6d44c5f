//! The `tern` command line: subcommands and the flags of `tern serve`.
//!
//! Flags only carry raw strings; merging them over the file and the `TERN_*`
//! environment, and validating the result, is [`crate::config::load`]'s job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit code for a usage or configuration error (`EX_USAGE` of sysexits.h).
pub const EXIT_USAGE: i32 = 64;

/// Version of this build, as printed by `tern version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The parsed command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "tern", version, about = "tern: an instant-messaging server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `tern` was asked to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print the version and exit.
    Version,
    // Planned: `Chat` (interactive client) and `Bench` (load generator).
}

/// Flags of `tern serve`. Each one overrides the environment variable named
/// in its help and the config file key of the same meaning; `None` means
/// "not given on the command line".
///
/// Only `--config` reads its environment variable (`TERN_CONFIG`) through
/// clap: the others are read by the config loader, in one place, so that
/// flag > env > file > default holds for every key alike.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ServeArgs {
    /// TOML config file (unknown keys are errors).
    #[arg(long, value_name = "FILE", env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP API + WebSocket listen address [env: TERN_HTTP_ADDR] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Raw TCP gateway address, or `off` [env: TERN_TCP_ADDR] [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR|off")]
    pub tcp: Option<String>,
    /// Data directory [env: TERN_DATA_DIR] [default: ./tern-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// `sqlite://…` or `postgres://…` [env: TERN_DATABASE_URL] [default: sqlite://<data>/tern.db].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis URL of the cluster bus [env: TERN_REDIS_URL] [default: none, single node].
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Node id in a cluster [env: TERN_NODE_ID] [default: host name + random suffix].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// HS256 secret, at least 16 bytes [env: TERN_JWT_SECRET] [default: generated into <data>/jwt.secret].
    #[arg(long, value_name = "SECRET")]
    pub jwt_secret: Option<String>,
}

/// Parses the process's command line. Prints help or version and exits 0
/// when asked to; prints the error and exits [`EXIT_USAGE`] on bad usage.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `use_stderr` is false for --help / --version, which are not errors.
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            // Nothing better to do if stderr/stdout is gone.
            let _ = err.print();
            std::process::exit(code);
        }
    }
}

/// Parses the given arguments (the first is the program name); for tests.
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = try_parse_from([
            "tern",
            "serve",
            "--http",
            "0.0.0.0:80",
            "--tcp",
            "off",
            "--data",
            "/var/lib/tern",
            "--database-url",
            "postgres://db/tern",
            "--redis-url",
            "redis://r",
            "--node-id",
            "n1",
            "--jwt-secret",
            "0123456789abcdef",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.http.as_deref(), Some("0.0.0.0:80"));
        assert_eq!(args.tcp.as_deref(), Some("off"));
        assert_eq!(args.data.as_deref(), Some("/var/lib/tern"));
        assert_eq!(args.database_url.as_deref(), Some("postgres://db/tern"));
        assert_eq!(args.redis_url.as_deref(), Some("redis://r"));
        assert_eq!(args.node_id.as_deref(), Some("n1"));
        assert_eq!(args.jwt_secret.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn version_subcommand_and_unknown_flag() {
        let cli = try_parse_from(["tern", "version"]).unwrap();
        assert!(matches!(cli.command, Command::Version));
        assert!(try_parse_from(["tern", "serve", "--nope"]).is_err());
    }
}
