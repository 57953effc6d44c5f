//! `tern-bench`: the load tool of the tern messaging server. See the crate
//! docs of the library (`tern_bench`) and `tern-bench --help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tern_bench::{procs, run_scenario, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let code = rt.block_on(run(cli));
    // Do not wait for connections still held by tasks.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn run(cli: Cli) -> ExitCode {
    let Cli { common, scenario } = cli;
    if common.jwt_secret.is_empty() {
        eprintln!("tern-bench: --jwt-secret (or TERN_JWT_SECRET) is required");
        return ExitCode::FAILURE;
    }
    let deadline = Duration::from_secs(
        common
            .deadline
            .unwrap_or(scenario.nominal_secs() + 2 * common.timeout + 10),
    );
    if let Some(i) = common.worker_index {
        let c = procs::worker_common(&common, i);
        let s = scenario.share(common.procs.max(1), i);
        return match tokio::time::timeout(deadline, run_scenario(&c, &s)).await {
            Ok(Ok(report)) => match serde_json::to_string(&report) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tern-bench worker {i}: {e}");
                    ExitCode::FAILURE
                }
            },
            Ok(Err(e)) => {
                eprintln!("tern-bench worker {i}: {e:#}");
                ExitCode::FAILURE
            }
            Err(_) => {
                eprintln!("tern-bench worker {i}: deadline of {deadline:?} reached");
                ExitCode::FAILURE
            }
        };
    }
    let result = if common.procs > 1 {
        procs::run_parent(&common, &scenario, deadline + Duration::from_secs(5)).await
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
