//! The one config loader: defaults ← TOML file ← `TERN_*` environment ←
//! flags, then [`validate`] listing every problem, before anything binds.

mod env;
#[cfg(test)]
mod tests;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use super::Config;
use crate::cli::ServeArgs;

pub use env::{env_var_name, unrecognized_among, unrecognized_env_vars};
pub use validate::validate;

/// Why the configuration could not be loaded. Every variant is the
/// operator's to fix; `main` prints it and exits with [`ConfigError::EXIT_CODE`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {}: {error}", path.display())]
    Parse {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("invalid configuration:{}", ProblemList(problems))]
    Invalid { problems: Vec<Problem> },
    /// The built-in defaults could not be turned into a TOML table (a bug).
    #[error("internal error while building the default configuration: {0}")]
    Defaults(String),
}

impl ConfigError {
    /// Process exit code for a configuration error (`EX_USAGE`).
    pub const EXIT_CODE: i32 = crate::cli::EXIT_USAGE;
}

/// One validation failure: the dotted key (`limits.max_frame_bytes`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Checks every rule at once; see [`validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate(self)
    }
}

/// Loads the configuration of `tern serve` from the process: the file named
/// by `--config` (or `TERN_CONFIG`), the process environment and the flags.
/// The result is validated.
pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
    let env = env::process_env;
    let path = args.config.clone().or_else(|| {
        env("TERN_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    let text = match &path {
        Some(p) => Some(
            std::fs::read_to_string(p).map_err(|error| ConfigError::Read {
                path: p.clone(),
                error,
            })?,
        ),
        None => None,
    };
    let file = path.as_deref().zip(text.as_deref());
    load_from(args, file, &env)
}

/// [`load`] with the file's contents and the environment supplied by the
/// caller (tests, tools): `file` is `(path for messages, TOML text)`.
/// `args.config` is not read here.
pub fn load_from(
    args: &ServeArgs,
    file: Option<(&Path, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut merged = toml::Value::try_from(Config::default())
        .map_err(|e| ConfigError::Defaults(e.to_string()))?;
    if let Some((path, text)) = file {
        merge(&mut merged, parse_file(path, text)?);
    }
    env::apply(&mut merged, env)?;
    let mut config: Config = merged
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Defaults(e.to_string()))?;
    apply_flags(&mut config, args);
    validate(&config)?;
    Ok(config)
}

/// Parses a config file. Deserializing into [`Config`] first gives errors
/// (unknown key, wrong type) with line and column; the untyped table is then
/// what gets merged, so that keys absent from the file keep lower layers.
fn parse_file(path: &Path, text: &str) -> Result<toml::Value, ConfigError> {
    let err = |error| ConfigError::Parse {
        path: path.to_path_buf(),
        error,
    };
    toml::from_str::<Config>(text).map_err(err)?;
    toml::from_str::<toml::Value>(text).map_err(err)
}

/// Overlays `top` on `base`, recursing into tables present in both.
fn merge(base: &mut toml::Value, top: toml::Value) {
    match (base, top) {
        (toml::Value::Table(base), toml::Value::Table(top)) => {
            for (key, value) in top {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Applies the flags that were given; they win over everything else.
fn apply_flags(config: &mut Config, args: &ServeArgs) {
    let pairs = [
        (&args.http, &mut config.http_addr),
        (&args.tcp, &mut config.tcp_addr),
        (&args.data, &mut config.data_dir),
        (&args.database_url, &mut config.database_url),
        (&args.redis_url, &mut config.redis_url),
        (&args.node_id, &mut config.node_id),
        (&args.jwt_secret, &mut config.jwt_secret),
        (&args.tls_cert, &mut config.tls.cert_file),
        (&args.tls_key, &mut config.tls.key_file),
    ];
    for (flag, slot) in pairs {
        if let Some(value) = flag {
            slot.clone_from(value);
        }
    }
}
