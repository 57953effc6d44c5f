//! The `tern` binary: parse the command line and run the subcommand. `serve`
//! loads and validates the config (exit 64 if it is bad), sets up logging
//! and runs the server until a signal (SIGHUP reloads the config); the
//! operator tools (`token`, `user add`, `config check`) live in
//! [`tern_server::tools`].

use std::process::ExitCode;

use tern_server::cli::{self, Command, ConfigCommand, ServeArgs, UserCommand, EXIT_USAGE};
use tern_server::{app, config, logging, tools};

fn main() -> ExitCode {
    match cli::parse().command {
        Command::Version => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(&args),
        Command::Token(args) => tools::token::run(&args),
        Command::User(UserCommand::Add(args)) => tools::user::run(&args),
        Command::Config(ConfigCommand::Check(args)) => tools::config_check::run(&args),
        Command::Config(ConfigCommand::Defaults) => tools::config_check::defaults(),
        Command::Chat(args) => tools::chat::run(&args),
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match tools::load_config(args) {
        Ok(c) => c,
        Err(e) => return usage_error(e.message()),
    };
    let (log, telemetry) = match logging::init_with_tracing(&config.log, &config.tracing) {
        Ok(installed) => installed,
        Err(e) => return usage_error(&format!("invalid log settings: {e}")),
    };
    for var in config::load::unrecognized_env_vars() {
        tracing::warn!(variable = %var, "unknown TERN_* environment variable (a typo?); ignored");
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
    let outcome = runtime.block_on(app::run(config, args.clone(), Some(log)));
    // The last spans leave after the drain, outside the runtime (it blocks).
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match outcome {
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
