//! `tern-bench`: the load tool of the tern messaging server. See the crate
//! docs of the library (`tern_bench`) and `tern-bench --help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tern_bench::{procs, run_scenario, Cli};

fn main() -> ExitCode {
    // Worker processes (`--procs`) are told their configuration on stdin.
    let worker =
        std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(procs::WORKER_ARG));
    let cli = if worker { None } else { Some(Cli::parse()) };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tern-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli {
        Some(cli) => rt.block_on(run(cli)),
        None => rt.block_on(procs::worker_main()),
    };
    // Do not wait for connections still held by tasks.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn run(cli: Cli) -> ExitCode {
    let Cli { common, scenario } = cli;
    if let Err(e) = common.check(&scenario) {
        eprintln!("tern-bench: {e}");
        return ExitCode::FAILURE;
    }
    let deadline = Duration::from_secs(
        common
            .deadline
            .unwrap_or(scenario.nominal_secs() + 2 * common.timeout + 10),
    );
    let result = if common.procs > 1 {
        procs::run_parent(&common, &scenario, deadline).await
    } else {
        match tokio::time::timeout(deadline, run_scenario(&common, &scenario)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("deadline of {deadline:?} reached")),
        }
    };
    match result {
        Ok(report) => {
            if common.json {
                println!("{}", report.json_line());
            } else {
                print!("{}", report.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tern-bench {}: {e:#}", scenario.name());
            ExitCode::FAILURE
        }
    }
}
