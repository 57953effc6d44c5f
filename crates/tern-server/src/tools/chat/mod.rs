//! `tern chat`: a line-oriented terminal chat client on [`tern_client`].
//! It logs in over HTTP (or takes a token), connects over WebSocket, lists
//! the conversations with unread counts, shows the open one live and sends
//! every line typed; `/` commands do the rest ([`command::HELP`]). Input
//! is read line by line, so it works on a terminal, under `tmux send-keys`
//! and from a pipe.
//!
//! Exit status: 0 after `/quit` or the end of input (the WebSocket is
//! closed with 1000); 64 for bad usage; 1 when login fails or the server
//! ends the session (4001 token refused, 4011 kicked or banned).

mod actions;
pub mod args;
mod command;
mod convs;
mod http;
mod input;
mod login;
mod render;
mod session;

use std::io::Write;
use std::process::ExitCode;

pub use args::ChatArgs;

use super::{finish, ToolError};

/// Runs `tern chat`.
pub fn run(args: &ChatArgs) -> ExitCode {
    finish(chat(args))
}

fn chat(args: &ChatArgs) -> Result<(), ToolError> {
    let endpoints = args::endpoints(&args.url).map_err(ToolError::Usage)?;
    // Before the runtime: the password prompt reads the terminal.
    let (auth, lines) = login::credentials(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(session::run(args, endpoints, auth, lines))
}

/// Prints one line (or several) on stdout; a closed stdout is ignored (the
/// session goes on until input ends).
fn say(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
    let _ = out.flush();
}
