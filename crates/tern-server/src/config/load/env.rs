//! The `TERN_*` environment layer, derived from the config structs: every
//! leaf key of `Config::default()` is one variable, parsed by the type of its
//! default (`limits.max_frame_bytes` → `TERN_LIMITS_MAX_FRAME_BYTES`).

use super::ConfigError;
use crate::config::Config;

/// Variables starting with `TERN_` that are not config keys but are known:
/// the config file, and the token `tern chat` reads (often set in the same
/// shell as `tern serve`).
const OTHER_KNOWN_VARS: &[&str] = &["TERN_CONFIG", "TERN_TOKEN"];
/// Prefixes of variables used by test suites and tools, never by the server.
const OTHER_KNOWN_PREFIXES: &[&str] = &["TERN_TEST_", "TERN_BENCH_"];

/// Reads a variable of the real process environment. A value that is not
/// UTF-8 is passed on lossily so that it fails parsing with the variable's
/// name instead of being silently ignored.
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// The environment variable of a dotted key path: `["limits",
/// "max_frame_bytes"]` → `TERN_LIMITS_MAX_FRAME_BYTES`.
pub fn env_var_name(path: &[&str]) -> String {
    let mut name = String::from("TERN");
    for part in path {
        name.push('_');
        name.push_str(&part.to_ascii_uppercase());
    }
    name
}

/// Every leaf key path of the configuration, with its default value.
pub(super) fn leaves(defaults: &toml::Value) -> Vec<(Vec<String>, toml::Value)> {
    fn walk(
        value: &toml::Value,
        prefix: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, toml::Value)>,
    ) {
        match value {
            toml::Value::Table(table) => {
                for (key, child) in table {
                    prefix.push(key.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            leaf => out.push((prefix.clone(), leaf.clone())),
        }
    }
    let mut out = Vec::new();
    walk(defaults, &mut Vec::new(), &mut out);
    out
}

/// Overrides every key whose variable is set in `env`. Each override is
/// checked against the typed structs at once so that an out-of-range number
/// (say a negative `u64`) is reported with the variable's name.
pub(super) fn apply(
    merged: &mut toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let defaults = merged.clone();
    for (path, default) in leaves(&defaults) {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        let var = env_var_name(&parts);
        let Some(raw) = env(&var) else { continue };
        let env_err = |reason: String| ConfigError::Env {
            var: var.clone(),
            reason,
        };
        let value = parse_as(&default, &raw).map_err(env_err)?;
        set(merged, &parts, value);
        merged
            .clone()
            .try_into::<Config>()
            .map_err(|e| env_err(e.message().to_owned()))?;
    }
    Ok(())
}

/// Parses `raw` as a value of the same TOML type as `default`.
fn parse_as(default: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    let trimmed = raw.trim();
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_owned())),
        toml::Value::Integer(_) => trimmed
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected an integer, got {raw:?}")),
        toml::Value::Boolean(_) => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(toml::Value::Boolean(true)),
            "false" | "0" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true, false, 1 or 0, got {raw:?}")),
        },
        toml::Value::Float(_) => trimmed
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        toml::Value::Array(_) => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(|w| toml::Value::String(w.to_owned()))
                .collect(),
        )),
        other => Err(format!(
            "a {} cannot be set from the environment; use the config file",
            other.type_str()
        )),
    }
}

/// Stores `value` at `path`, creating tables on the way.
fn set(root: &mut toml::Value, path: &[&str], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for part in parents {
        let toml::Value::Table(table) = node else {
            return;
        };
        node = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::map::Map::new()));
    }
    if let toml::Value::Table(table) = node {
        table.insert(last.to_string(), value);
    }
}

/// Every `TERN_*` variable of the process that no config key, nor anything
/// else known, reads: most likely a typo. `tern serve` logs these as
/// warnings once logging is up and `tern config check` lists them (they are
/// not errors: other tools share the prefix).
pub fn unrecognized_env_vars() -> Vec<String> {
    unrecognized_among(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()))
}

/// The names among `names` that start with `TERN_` and that no config key
/// nor anything else known reads, sorted.
pub fn unrecognized_among(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let known: Vec<String> = toml::Value::try_from(Config::default())
        .map(|d| leaves(&d))
        .unwrap_or_default()
        .iter()
        .map(|(path, _)| env_var_name(&path.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    let mut unknown: Vec<String> = names
        .into_iter()
        .filter(|k| k.starts_with("TERN_"))
        .filter(|k| !known.contains(k) && !OTHER_KNOWN_VARS.contains(&k.as_str()))
        .filter(|k| !OTHER_KNOWN_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}
