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
    restore_default_sigpipe();
    let cli = cli::Cli::parse();
    output::init(&cli.global);
    report(commands::run(cli))
}

/// A closed stdout (`cairn list | head -1`, `cairn completions fish | true`)
/// ends cairn quietly, as it ends `cat` or `tar`, instead of a panic in
/// `println!`. Rust ignores SIGPIPE by default; the default action is what
/// pipelines expect. Only the host `cairn` does this: the in-image entrypoint
/// (PID 1) keeps its own signal handling.
fn restore_default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first thing in main, before any thread exists, and
    // SIG_DFL installs no Rust code as a handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
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
