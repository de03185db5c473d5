//! `duroxide`: deploy WebAssembly workflows, run workers, and start, watch
//! and manage orchestrations through one store file. Exit codes: 0 ok,
//! 1 failure, 2 usage, 3 not found, 4 a replay diverged, 5 timed out.

mod args;
mod commands;
mod exit;
mod output;
mod policy;
mod store;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use exit::Code;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Code::Ok.into(),
                _ => Code::Usage.into(),
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Code::Failure.into();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {}", exit::one_line(&e));
            exit::code_of(&e).into()
        }
    }
}
