//! cairn's command line. Two binaries share it: `cairn` (everything) and
//! `cairn-entrypoint`, the small cairn that images carry (see [`in_image`]);
//! a third, `cairn-runc`, is the Kubernetes handler ([`runc_main`]).
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
mod script_notes;

use clap::Parser;
use std::process::ExitCode;

/// `cairn-runc`'s main: the runc wrapper of the `cairn` runtime class.
pub fn runc_main() -> ExitCode {
    commands::kubernetes::runc::main()
}

/// `cairn`'s main.
pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = cli::Cli::parse();
    output::init(&cli.global);
    report(commands::run(cli))
}

/// A closed stdout (`cairn list | head -1`, `cairn completions fish | true`)
/// ends cairn quietly with 141 (128 + SIGPIPE), as it ends `cat`, instead of
/// a panic in `println!`. SIGPIPE itself stays ignored, so a write to a child
/// that died (`docker load`, a credential helper) is still an error that cairn
/// reports with what the child said.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(141);
        }
        default(info);
    }));
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
