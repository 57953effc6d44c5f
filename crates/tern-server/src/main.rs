//! The `tern` binary: parse the command line, load and validate the config
//! (exit 64 if it is bad), set up logging, run the server until a signal
//! (SIGHUP reloads the config).

use std::process::ExitCode;

use tern_server::cli::{self, Command, ServeArgs, EXIT_USAGE};
use tern_server::{app, config, logging};

fn main() -> ExitCode {
    match cli::parse().command {
        Command::Version => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(&args),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match config::load::load(args) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    if !config.redis_url.is_empty() {
        return usage_error("cluster mode (--redis-url) is not available in this version yet");
    }
    let log = match logging::init(&config.log) {
        Ok(handle) => handle,
        Err(e) => return usage_error(&format!("invalid log settings: {e}")),
    };
    if config.tcp_addr != "off" {
        tracing::info!(tcp_addr = %config.tcp_addr, "the raw TCP gateway is not available in this version; not listening");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tern: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(config, args.clone(), Some(log))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tern stopped");
            eprintln!("tern: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("tern: {message}");
    ExitCode::from(EXIT_USAGE as u8)
}
