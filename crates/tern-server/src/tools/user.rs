//! `tern user add NAME`: creates a password account in the configured
//! database, with the checks of `POST /api/v1/register` and the server's
//! Argon2id hashing ([`crate::auth::password`]).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use super::{check_username, finish, load_config, open_store, ToolError};
use crate::auth::{password, PASSWORD_CHARS};
use crate::cli::UserAddArgs;
use crate::config::Config;

/// Most bytes read from a non-terminal stdin for the password line (a
/// password is at most 128 characters, so at most 512 bytes).
const MAX_PASSWORD_LINE_BYTES: u64 = 1024;

/// Runs `tern user add`.
pub fn run(args: &UserAddArgs) -> ExitCode {
    finish(add(args))
}

fn add(args: &UserAddArgs) -> Result<(), ToolError> {
    // Name and configuration first: nobody types a password for nothing.
    check_username(&args.name)?;
    let config = load_config(&args.config)?;
    let password = read_password(&args.name)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(create(&config, &args.name, &password))?;
    eprintln!("tern: user {:?} created", args.name);
    Ok(())
}

/// Creates the account `name` with `password` in `config`'s database.
/// Invalid name or password: [`ToolError::Usage`]; the name is taken:
/// [`ToolError::Failed`].
pub async fn create(config: &Config, name: &str, password: &str) -> Result<(), ToolError> {
    check_username(name)?;
    check_password(password)?;
    let hash = password::hash(password)
        .map_err(|e| ToolError::Failed(format!("password hashing: {e}")))?;
    let store = open_store(config).await?;
    let created = store
        .create_user(name, Some(&hash), crate::service::now_ms())
        .await;
    store.close().await;
    match created {
        Ok(true) => Ok(()),
        Ok(false) => Err(ToolError::Failed(format!("user {name:?} already exists"))),
        Err(e) => Err(ToolError::Failed(format!("creating user {name:?}: {e}"))),
    }
}

/// Passwords are 8 to 128 characters, as for `/register`.
fn check_password(password: &str) -> Result<(), ToolError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ToolError::Usage(
            "password must be 8 to 128 characters".into(),
        ))
    }
}

/// On a terminal: asks twice without echo. Otherwise: one line of stdin.
fn read_password(name: &str) -> Result<String, ToolError> {
    let failed = |e: std::io::Error| ToolError::Failed(format!("reading the password: {e}"));
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: ")).map_err(failed)?;
        let again = rpassword::prompt_password("Repeat it: ").map_err(failed)?;
        if first != again {
            return Err(ToolError::Usage("the two passwords differ".into()));
        }
        Ok(first)
    } else {
        read_line(std::io::stdin().lock())
    }
}

/// The first line of `input`, without its line ending.
fn read_line(input: impl BufRead) -> Result<String, ToolError> {
    let mut line = String::new();
    input
        .take(MAX_PASSWORD_LINE_BYTES)
        .read_line(&mut line)
        .map_err(|e| ToolError::Usage(format!("reading the password from stdin: {e}")))?;
    if line.is_empty() {
        return Err(ToolError::Usage(
            "no password on stdin (give it as one line)".into(),
        ));
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stdin_line_without_its_ending() {
        assert_eq!(read_line(&b"hunter22\n"[..]).unwrap(), "hunter22");
        assert_eq!(read_line(&b"with space\r\nnext"[..]).unwrap(), "with space");
        assert_eq!(read_line(&b"no newline"[..]).unwrap(), "no newline");
        assert!(matches!(read_line(&b""[..]), Err(ToolError::Usage(_))));
        assert!(matches!(
            read_line(&[0xffu8, 0xfe, b'\n'][..]),
            Err(ToolError::Usage(_))
        ));
    }

    #[tokio::test]
    async fn creates_once_then_reports_the_user_exists() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data").to_string_lossy().into_owned(),
            ..Config::default()
        };
        create(&config, "carol", "correct-horse").await.unwrap();
        let err = create(&config, "carol", "correct-horse").await.unwrap_err();
        assert!(
            matches!(&err, ToolError::Failed(m) if m.contains("already exists")),
            "{err:?}"
        );
        let err = create(&config, "dave", "short").await.unwrap_err();
        assert!(matches!(err, ToolError::Usage(_)));
        let err = create(&config, "admin", "correct-horse").await.unwrap_err();
        assert!(matches!(err, ToolError::Usage(_)));

        let store = open_store(&config).await.unwrap();
        let record = store.get_user("carol").await.unwrap().unwrap();
        let hash = record.password_hash.unwrap();
        assert!(password::verify("correct-horse", &hash));
        assert!(store.get_user("dave").await.unwrap().is_none());
        store.close().await;
    }
}
