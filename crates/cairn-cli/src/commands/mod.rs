//! One module per subcommand; each exposes `run(args) -> Result<ExitCode>`.

pub(crate) mod activate;
mod build;
mod cache;
pub(crate) mod containerize;
mod edit;
pub(crate) mod entrypoint;
mod generate;
mod generations;
mod host_spawn;
mod init;
pub(crate) mod install;
pub mod kubernetes;
pub(crate) mod list;
mod provides;
mod push;
mod sbom;
mod search;
pub(crate) mod services;
mod show;
mod upgrade;

use crate::cli::{Cli, Command};
use miette::Result;
use std::process::ExitCode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    crate::environment::set_no_wait(cli.global.no_wait);
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Install(args) => install::run(args),
        Command::Uninstall(args) => install::run_uninstall(args),
        Command::List(args) => list::run(args),
        Command::Search(args) => search::run(args),
        Command::Show(args) => show::run(args),
        Command::Provides(args) => provides::run(args),
        Command::Upgrade(args) => upgrade::run(args),
        Command::Edit(args) => edit::run(args),
        Command::Containerize(args) => containerize::run(args),
        Command::Push(args) => push::run(args),
        Command::Sbom(args) => sbom::run(args),
        Command::Activate(args) => activate::run(args),
        Command::Publish(args) => generations::publish(args),
        Command::Pull(args) => generations::pull(args),
        Command::Generations(cmd) => generations::run(cmd),
        Command::Build(args) => build::run(args),
        Command::Container(cmd) => containerize::run_named(cmd),
        Command::Services(cmd) => services::run(cmd),
        Command::Cache(cmd) => cache::run(cmd),
        Command::Generate(cmd) => generate::run(cmd),
        Command::Completions(args) => generate::completions(args),
        Command::Manpages(args) => generate::manpages(args),
        Command::Entrypoint(args) => entrypoint::run(args),
        Command::Kubernetes(cmd) => kubernetes::run(cmd),
        Command::HostSpawn(args) => host_spawn::run(args),
    }
}
