//! `cairn completions` and the hidden `cairn manpages`, generated from the clap
//! definitions so they never drift.

use crate::cli::{Cli, CompletionsArgs, ManpagesArgs};
use clap::CommandFactory;
use miette::{IntoDiagnostic, Result};
use std::process::ExitCode;

pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "cairn", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn manpages(args: ManpagesArgs) -> Result<ExitCode> {
    fs_err::create_dir_all(&args.dir).into_diagnostic()?;
    clap_mangen::generate_to(Cli::command(), &args.dir).into_diagnostic()?;
    Ok(ExitCode::SUCCESS)
}
