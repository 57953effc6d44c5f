//! `tern token`: prints a token signed with the server's HS256 secret, read
//! (or generated on first use) exactly as `tern serve` does, and issued by
//! the server's own signer ([`crate::auth::token::TokenKeys`]).

use std::path::Path;
use std::process::ExitCode;

use super::{check_username, finish, load_config, ToolError};
use crate::auth::secret::{self, SECRET_FILE};
use crate::auth::token::TokenKeys;
use crate::cli::TokenArgs;

/// Runs `tern token`: the token on stdout, notes on stderr.
pub fn run(args: &TokenArgs) -> ExitCode {
    finish(issue(args).map(|token| println!("{token}")))
}

/// The token `tern token` prints.
pub fn issue(args: &TokenArgs) -> Result<String, ToolError> {
    check_username(&args.user)?;
    let config = load_config(&args.config)?;
    let secret_path = Path::new(&config.data_dir).join(SECRET_FILE);
    let generating = config.jwt_secret.is_empty() && !secret_path.exists();
    let secret = secret::load(&config.jwt_secret, &config.data_dir)
        .map_err(|e| ToolError::Failed(format!("reading the JWT secret: {e}")))?;
    if generating {
        eprintln!(
            "tern: generated a new JWT secret in {} (`tern serve` with this data directory uses it)",
            secret_path.display()
        );
    }
    // HS256 with the server secret is accepted in every `jwt_algorithm`
    // mode, so the public key (if any) is not needed to sign.
    let keys = TokenKeys::with_rules(
        &secret,
        "HS256",
        None,
        crate::auth::claim_rules(&config.auth),
    )
    .map_err(|e| ToolError::Failed(format!("setting up the signer: {e}")))?;
    let (token, _expires_at_ms) = keys
        .issue(&args.user, args.admin, args.ttl)
        .map_err(|e| ToolError::Failed(format!("signing the token: {e}")))?;
    if !config.auth.auto_provision {
        eprintln!(
            "tern: auth.auto_provision is off: the token works only once {:?} exists (tern user add)",
            args.user
        );
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cli::ServeArgs;

    fn args(dir: &Path, user: &str, secret: Option<&str>) -> TokenArgs {
        TokenArgs {
            user: user.into(),
            admin: true,
            ttl: 120,
            config: ServeArgs {
                data: Some(dir.to_string_lossy().into_owned()),
                jwt_secret: secret.map(Into::into),
                ..ServeArgs::default()
            },
        }
    }

    #[test]
    fn signs_with_the_configured_secret() {
        let dir = tempfile::tempdir().unwrap();
        let token = issue(&args(dir.path(), "alice", Some("0123456789abcdef"))).unwrap();
        let keys = TokenKeys::new("0123456789abcdef", "HS256", None).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role.as_deref(), Some("admin"));
        // A configured secret writes no file.
        assert!(!dir.path().join(SECRET_FILE).exists());
    }

    #[test]
    fn generates_the_secret_file_once_like_serve() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = issue(&args(&data, "alice", None)).unwrap();
        let secret = secret::load("", data.to_str().unwrap()).unwrap();
        assert_eq!(secret.len(), 64);
        let keys = TokenKeys::new(&secret, "HS256", None).unwrap();
        assert_eq!(keys.verify(&token).unwrap().sub, "alice");
        // The second run reuses it.
        let again = issue(&args(&data, "bob", None)).unwrap();
        assert_eq!(keys.verify(&again).unwrap().sub, "bob");
    }

    #[test]
    fn bad_names_and_bad_config_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = issue(&args(dir.path(), "admin", Some("0123456789abcdef"))).unwrap_err();
        assert!(matches!(err, ToolError::Usage(_)), "{err:?}");
        let err = issue(&args(dir.path(), "alice", Some("short"))).unwrap_err();
        assert!(
            matches!(&err, ToolError::Usage(m) if m.contains("jwt_secret")),
            "{err:?}"
        );
    }
}
