//! cairn's command line. Two binaries share it: `cairn` (everything) and
//! `cairn-entrypoint`, the small cairn that images carry (see [`in_image`]).
//! This crate parses command lines, sets up logging and progress, and turns
//! library errors into located, hinted reports; it is the only one that knows
//! about terminals.

mod cli;
mod commands;
mod diagnostic;
mod environment;
pub mod in_image;
mod locking;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// `cairn`'s main.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init(&cli.global);
    report(commands::run(cli))
}

/// Turns a command's outcome into the process's exit code, printing the report.
fn report(outcome: miette::Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
