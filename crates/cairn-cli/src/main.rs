//! The `cairn` binary: parses the command line, sets up logging and progress,
//! and turns library errors into located, hinted reports. The only crate that
//! knows about terminals.

mod activation;
mod cli;
mod commands;
mod environment;
mod locking;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Inside an image cairn is also the entrypoint; argv[0] does not matter,
    // the `entrypoint` subcommand does.
    let cli = cli::Cli::parse();
    output::init(&cli.global);
    match commands::run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
