//! The cairn that images carry (`/opt/cairn/bin/cairn`, the `cairn-entrypoint`
//! binary): the entrypoint, and the commands that make sense inside a running
//! container — `list`, `activate`, `services status|start|stop|restart`.
//!
//! It is a binary of its own because it links nothing that fetches, verifies
//! or builds (TLS, OpenPGP, the resolver, the OCI writer): 3.6 MB instead of
//! 15 MB, which every image carries and every cold build compresses.

use crate::cli::{
    EntrypointArgs, GlobalArgs, ListArgs, ServiceNames, ServicesLogsArgs, ServicesStatusArgs,
};
use crate::commands::{entrypoint, list, services};
use cairn_runtime::supervisor;
use clap::{Args, Parser, Subcommand};
use miette::{Result, miette};
use std::ffi::OsString;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    bin_name = "cairn",
    version,
    about = "cairn inside an image built by `cairn containerize`: list the packages, activate the environment, control its services",
    propagate_version = true,
    arg_required_else_help = true
)]
struct ImageCli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// List the image's packages
    #[command(visible_alias = "l")]
    List(ListArgs),
    /// Run a command (default: an interactive shell) in the activated environment
    Activate(ImageActivateArgs),
    /// Inspect and control the services that the entrypoint supervises
    #[command(subcommand)]
    Services(ImageServicesCommand),
    /// The image's entrypoint
    #[command(hide = true)]
    Entrypoint(EntrypointArgs),
    /// Host-only commands, refused with a hint
    #[command(external_subcommand)]
    HostOnly(Vec<OsString>),
}

#[derive(Debug, Args)]
struct ImageActivateArgs {
    /// Command to run (default: an interactive shell)
    #[arg(last = true)]
    command: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
enum ImageServicesCommand {
    /// Start services that were stopped (default: all)
    Start(ServiceNames),
    /// Stop services (default: all, which ends the container)
    Stop(ServiceNames),
    /// Restart services (default: all)
    Restart(ServiceNames),
    /// Show the state of each service
    Status(ServicesStatusArgs),
    /// Service output goes to the container's: this points at `docker logs`
    #[command(hide = true)]
    Logs(ServicesLogsArgs),
}

/// `cairn-entrypoint`'s main.
pub fn main() -> ExitCode {
    let cli = ImageCli::parse();
    crate::output::init(&cli.global);
    crate::report(run(cli.command))
}

fn run(command: ImageCommand) -> Result<ExitCode> {
    match command {
        ImageCommand::List(args) => list::run_in_image(args),
        ImageCommand::Activate(args) => entrypoint::run_activated(args.command),
        ImageCommand::Services(cmd) => run_services(cmd),
        ImageCommand::Entrypoint(args) => entrypoint::run(args),
        ImageCommand::HostOnly(argv) => Err(host_only(&argv)),
    }
}

fn run_services(cmd: ImageServicesCommand) -> Result<ExitCode> {
    match cmd {
        ImageServicesCommand::Start(args) => services::control(args, supervisor::start, "started"),
        ImageServicesCommand::Stop(args) => services::control(args, supervisor::stop, "stopped"),
        ImageServicesCommand::Restart(args) => {
            services::control(args, supervisor::restart, "restarted")
        }
        ImageServicesCommand::Status(args) => services::status(args),
        ImageServicesCommand::Logs(args) => Err(miette!(
            help = "read it with `docker logs CONTAINER` (or podman's); each line is prefixed with the service's name",
            "in a container, service '{}' writes to the container's output, not to a log file",
            args.name
        )),
    }
}

/// A command the full cairn has gets a hint; anything else is a typo.
fn host_only(argv: &[OsString]) -> miette::Report {
    let name = argv
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    let full = <crate::cli::Cli as clap::CommandFactory>::command();
    if full.find_subcommand(name.as_ref()).is_some() {
        miette!(
            help = "inside an image cairn lists, activates and controls services; build and change environments with cairn on the host",
            "`cairn {name}` is not available inside an image"
        )
    } else {
        miette!(help = "see `cairn --help`", "unknown command '{name}'")
    }
}
