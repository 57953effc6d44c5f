//! How `tern chat` gets its token: `--token` / `TERN_TOKEN` as given, or a
//! login with `--user` and a password (asked without echo on a terminal,
//! else the first line of stdin), after registering with `--register`.

use std::io::IsTerminal;

use tokio::sync::mpsc;

use super::args::ChatArgs;
use super::http::Api;
use super::input::{self, Line};
use super::render::notice;
use super::say;
use crate::tools::{check_username, ToolError};

/// What to authenticate with.
pub enum Auth {
    Token(String),
    Login {
        user: String,
        password: String,
        register: bool,
    },
}

/// Decides how to authenticate and reads the password, before anything
/// else reads stdin. Returns the lines of stdin that follow.
pub fn credentials(args: &ChatArgs) -> Result<(Auth, mpsc::Receiver<Line>), ToolError> {
    let Some(user) = args.user.clone() else {
        let token = args
            .token
            .clone()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                ToolError::Usage(
                "say who you are: --user NAME (add --register for a new account), or --token JWT / \
                 TERN_TOKEN"
                    .into(),
            )
            })?;
        return Ok((Auth::Token(token.trim().to_owned()), input::spawn()));
    };
    check_username(&user)?;
    let (password, lines) = if args.password_stdin || !std::io::stdin().is_terminal() {
        let mut lines = input::spawn();
        match lines.blocking_recv() {
            Some(Line::Text(p)) if !p.is_empty() => (p, lines),
            _ => {
                return Err(ToolError::Usage(
                    "no password on stdin (give it as the first line)".into(),
                ))
            }
        }
    } else {
        (prompt(&user, args.register)?, input::spawn())
    };
    let auth = Auth::Login {
        user,
        password,
        register: args.register,
    };
    Ok((auth, lines))
}

/// Asks on the terminal without echo (twice for a new account).
fn prompt(user: &str, register: bool) -> Result<String, ToolError> {
    let failed = |e: std::io::Error| ToolError::Failed(format!("reading the password: {e}"));
    let first = rpassword::prompt_password(format!("Password for {user}: ")).map_err(failed)?;
    if register {
        let again = rpassword::prompt_password("Repeat it: ").map_err(failed)?;
        if first != again {
            return Err(ToolError::Usage("the two passwords differ".into()));
        }
    }
    Ok(first)
}

/// The token: as given, or from registering and logging in over HTTP.
pub async fn token(auth: Auth, api: &Api) -> Result<String, ToolError> {
    let (user, password, register) = match auth {
        Auth::Token(token) => return Ok(token),
        Auth::Login {
            user,
            password,
            register,
        } => (user, password, register),
    };
    if register {
        match api.register(&user, &password).await {
            Ok(true) => say(notice(&format!("account {user} created"))),
            Ok(false) => say(notice(&format!("{user} already exists; logging in"))),
            Err(e) if e.status == 400 => return Err(ToolError::Usage(e.message)),
            Err(e) => return Err(ToolError::Failed(format!("register: {e}"))),
        }
    }
    api.login(&user, &password).await.map_err(|e| {
        let why = match e.status {
            401 => format!("wrong username or password for {user}"),
            403 => format!("{user} is banned ({})", e.message),
            _ => e.to_string(),
        };
        ToolError::Failed(format!("login failed: {why}"))
    })
}
