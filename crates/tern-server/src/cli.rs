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

/// Heading of the shared config flags in the help of the tools.
const CONFIG_FLAGS: &str = "Configuration (as for `tern serve`)";

/// What `tern` was asked to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print a token signed with the server's HS256 secret (e.g. a first
    /// admin token: `tern token --user alice --admin`).
    Token(TokenArgs),
    /// Manage built-in accounts in the configured database.
    #[command(subcommand)]
    User(UserCommand),
    /// Check the configuration, or print a complete example file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the version and exit.
    Version,
    /// Chat from a terminal: log in, list conversations, open one, send
    /// lines (`/help` inside lists the commands).
    Chat(crate::tools::chat::ChatArgs),
    // Planned: `Bench` (load generator).
}

/// `tern token`: a token for a user, signed like the server's own.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenArgs {
    /// The user the token speaks for (its `sub`). `admin` and `system` are
    /// reserved names: an admin is any user whose token has `--admin`.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Add the claim `"role": "admin"`, which the admin API requires.
    #[arg(long)]
    pub admin: bool,
    /// Lifetime: `30s`, `15m`, `1h`, `7d` or plain seconds.
    #[arg(long, value_name = "TTL", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: u64,
    #[command(flatten, next_help_heading = CONFIG_FLAGS)]
    pub config: ServeArgs,
}

/// `tern user …`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Create a password account, as `POST /api/v1/register` does. The
    /// password is asked for on a terminal, else read as one line of stdin.
    Add(UserAddArgs),
}

/// `tern user add NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserAddArgs {
    /// Username: 3 to 32 of `a-z 0-9 _ . -`, starting with a letter or digit.
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten, next_help_heading = CONFIG_FLAGS)]
    pub config: ServeArgs,
}

/// `tern config …`.
// Parsed once at start: the size of the flag set does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration exactly as `tern serve` would,
    /// then print it as TOML with secrets redacted. Exit 0 if valid, 64 if not.
    Check(ConfigCheckArgs),
    /// Print a complete, commented example config file (every key at its
    /// default); same as `tern config check --defaults`.
    Defaults,
}

/// `tern config check`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConfigCheckArgs {
    /// Print a complete, commented example config file instead, and exit.
    #[arg(long)]
    pub defaults: bool,
    #[command(flatten, next_help_heading = CONFIG_FLAGS)]
    pub config: ServeArgs,
}

/// Flags of `tern serve`, shared by every subcommand that reads the
/// configuration (`token`, `user add`, `config check`), so that they see
/// exactly what the server would. Each one overrides the environment
/// variable named in its help and the config file key of the same meaning;
/// `None` means "not given on the command line".
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
    /// Raw TCP gateway address (`TRN1` preface, protobuf frames), or `off`
    /// [env: TERN_TCP_ADDR] [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR|off")]
    pub tcp: Option<String>,
    /// Data directory [env: TERN_DATA_DIR] [default: ./tern-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// `sqlite://…` or `postgres://…` [env: TERN_DATABASE_URL] [default: sqlite://<data>/tern.db].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis URL of the cluster bus: makes this process a cluster node (needs
    /// PostgreSQL) [env: TERN_REDIS_URL] [default: none, single node].
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Node id in a cluster [env: TERN_NODE_ID] [default: host name + random suffix].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// HS256 secret, at least 16 bytes [env: TERN_JWT_SECRET] [default: generated into <data>/jwt.secret].
    #[arg(long, value_name = "SECRET")]
    pub jwt_secret: Option<String>,
    /// PEM certificate chain: TLS on HTTP/WebSocket and TCP [env: TERN_TLS_CERT_FILE] [default: none, plain TCP].
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert [env: TERN_TLS_KEY_FILE].
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
}

/// Longest TTL `--ttl` accepts: ten years, in seconds.
const MAX_TTL_S: u64 = 10 * 366 * 86_400;

/// Parses a lifetime: `30s`, `15m`, `1h`, `7d` or plain seconds; > 0 and
/// at most ten years.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: expected 30s, 15m, 1h, 7d or seconds")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected 30s, 15m, 1h, 7d or seconds"))?;
    match n.checked_mul(scale) {
        Some(0) => Err("must be greater than 0".into()),
        Some(s) if s <= MAX_TTL_S => Ok(s),
        _ => Err(format!("{text:?} is longer than ten years")),
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tool_tests {
    use super::*;

    #[test]
    fn ttl_units_and_errors() {
        assert_eq!(parse_ttl("30s"), Ok(30));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl(" 2h "), Ok(7200));
        for bad in [
            "",
            "h",
            "0",
            "0d",
            "1w",
            "1.5h",
            "-1",
            "1h30m",
            "99999d",
            "18446744073709551615d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn token_flags_and_shared_config_flags() {
        let cli = try_parse_from([
            "tern",
            "token",
            "--user",
            "alice",
            "--admin",
            "--ttl",
            "15m",
            "--data",
            "/d",
            "--jwt-secret",
            "0123456789abcdef",
            "--config",
            "/etc/tern.toml",
        ])
        .unwrap();
        let Command::Token(t) = cli.command else {
            panic!("expected token")
        };
        assert_eq!((t.user.as_str(), t.admin, t.ttl), ("alice", true, 900));
        assert_eq!(t.config.data.as_deref(), Some("/d"));
        assert_eq!(t.config.jwt_secret.as_deref(), Some("0123456789abcdef"));
        assert_eq!(t.config.config, Some(PathBuf::from("/etc/tern.toml")));

        let Command::Token(t) = try_parse_from(["tern", "token", "--user", "bob"])
            .unwrap()
            .command
        else {
            panic!("expected token")
        };
        assert_eq!((t.admin, t.ttl), (false, 3600));
        assert!(
            try_parse_from(["tern", "token"]).is_err(),
            "--user is required"
        );
        assert!(try_parse_from(["tern", "token", "--user", "a", "--ttl", "soon"]).is_err());
    }

    #[test]
    fn user_add_and_config_subcommands() {
        let cli = try_parse_from([
            "tern",
            "user",
            "add",
            "carol",
            "--database-url",
            "postgres://h/db",
        ])
        .unwrap();
        let Command::User(UserCommand::Add(u)) = cli.command else {
            panic!("expected user add")
        };
        assert_eq!(u.name, "carol");
        assert_eq!(u.config.database_url.as_deref(), Some("postgres://h/db"));
        assert!(try_parse_from(["tern", "user", "add"]).is_err());

        let cli = try_parse_from(["tern", "config", "check", "--http", "0.0.0.0:1"]).unwrap();
        let Command::Config(ConfigCommand::Check(c)) = cli.command else {
            panic!("expected config check")
        };
        assert!(!c.defaults);
        assert_eq!(c.config.http.as_deref(), Some("0.0.0.0:1"));
        let cli = try_parse_from(["tern", "config", "check", "--defaults"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Config(ConfigCommand::Check(ConfigCheckArgs { defaults: true, .. }))
        ));
        let cli = try_parse_from(["tern", "config", "defaults"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Config(ConfigCommand::Defaults)
        ));
    }
}
