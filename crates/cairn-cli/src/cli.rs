//! Command-line definitions (clap derive). General options are global and go
//! before the subcommand, as in flox: `cairn -v install hello`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "Declare a Debian-based environment once; activate it, run its services, ship it as an OCI image",
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that apply to every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More output: -v for debug, -vv for trace
    #[arg(short, long, action = clap::ArgAction::Count, global = false, env = "CAIRN_VERBOSE")]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = false, env = "CAIRN_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    pub quiet: bool,
    /// Never draw progress bars (also when CI is set)
    #[arg(long, global = false, env = "CAIRN_NO_PROGRESS", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_progress: bool,
    /// When to use colour
    #[arg(long, value_enum, default_value = "auto", env = "CAIRN_COLOR")]
    pub color: ColorChoice,
    /// Fail at once, instead of waiting, when another cairn is changing the same environment
    #[arg(long, global = false, env = "CAIRN_NO_WAIT", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Where the environment lives.
#[derive(Debug, Args, Clone, Default)]
pub struct DirArg {
    /// Directory containing the environment (default: $CAIRN_ENV, or the current directory and its parents)
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new environment in DIR/.cairn/env
    Init(InitArgs),
    /// Add packages to the environment, resolve and lock them
    #[command(visible_alias = "i")]
    Install(InstallArgs),
    /// Remove packages from the environment
    #[command(visible_aliases = ["rm", "remove"])]
    Uninstall(UninstallArgs),
    /// List the environment's locked packages
    #[command(visible_alias = "l")]
    List(ListArgs),
    /// Search the archive for packages by name or description
    Search(SearchArgs),
    /// Show a package as `apt show` does, what cairn applies in place of its
    /// maintainer scripts, and every version available
    Show(ShowArgs),
    /// Which packages ship a command (from the archive's Contents index)
    Provides(ProvidesArgs),
    /// Re-resolve against the current archive and print what changed
    Upgrade(UpgradeArgs),
    /// Edit the manifest in $EDITOR (or apply a file), validating before saving
    Edit(EditArgs),
    /// Export the environment as an OCI image
    Containerize(ContainerizeArgs),
    /// Push the image `containerize` last built to a registry
    Push(PushArgs),
    /// Write a software bill of materials of the environment (SPDX or CycloneDX JSON)
    Sbom(SbomArgs),
    /// Run a shell or a command inside the activated environment
    Activate(ActivateArgs),
    /// Publish the environment (manifest and lock, not an image) to a registry as its next generation
    Publish(PublishArgs),
    /// Make a local environment from a published one: REF or REF@N
    Pull(PullArgs),
    /// List, inspect, switch and roll back the generations of a published environment
    #[command(subcommand)]
    Generations(GenerationsCommand),
    /// Run [build.NAME] commands with $out set, storing the outputs by content
    Build(BuildArgs),
    /// Build or run a named container from [containers.NAME]
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Start, stop and inspect the environment's services
    #[command(subcommand)]
    Services(ServicesCommand),
    /// Check or trim the download and build cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Print Kubernetes manifests (and other files) generated from the environment
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Print shell completions for SHELL
    Completions(CompletionsArgs),
    /// Write man pages (cairn.1, cairn-install.1, …) into DIR
    Manpages(ManpagesArgs),
    /// The in-image entrypoint (used by images built with `cairn containerize`)
    #[command(hide = true)]
    Entrypoint(EntrypointArgs),
    /// Imageless Kubernetes: set up a node's `cairn` runtime class, write the empty pod image
    #[command(subcommand)]
    Kubernetes(KubernetesCommand),
    /// Inside a dev-mode activation: run a command the environment lacks on the host
    #[command(name = "_host-spawn", hide = true)]
    HostSpawn(HostSpawnArgs),
}

#[derive(Debug, Args)]
pub struct ProvidesArgs {
    /// The command's name, e.g. `rg` or `convert`
    pub command: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Fetch the current release's Contents even when a cached table exists
    #[arg(long)]
    pub refresh: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct HostSpawnArgs {
    /// Serve requests on the listening socket given as stdin (started by `activate`)
    #[arg(long)]
    pub serve: bool,
    /// With --serve: only answer which package provides a missing command (run mode)
    #[arg(long, requires = "serve")]
    pub hints_only: bool,
    /// With --serve: the activation's pid; the server exits when it does
    #[arg(long, requires = "serve", value_name = "PID")]
    pub parent: Option<u32>,
    #[command(flatten)]
    pub dir: DirArg,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Environment name (default: the directory's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Debian release codename (default: today's stable, read from Debian's
    /// signed `stable` InRelease): bookworm, trixie, sid, …
    #[arg(long, value_name = "CODENAME")]
    pub release: Option<String>,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Packages, optionally with a version constraint: `python3`, `hello=2.10-3`, `python3=>=3.11`
    #[arg(required = true, value_name = "PKG[=VERSION]")]
    pub packages: Vec<String>,
    /// Install id to use in the manifest (only with a single package)
    #[arg(long)]
    pub id: Option<String>,
    /// Print what was installed, locked and not applied as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Install ids or package names
    #[arg(required = true)]
    pub packages: Vec<String>,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Only the packages you asked for
    #[arg(long)]
    pub requested: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub term: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// At most this many results
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A package, optionally with the version to show: `hello`, `hello=2.10-3`
    #[arg(value_name = "PKG[=VERSION]")]
    pub package: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Only these packages (default: all)
    pub packages: Vec<String>,
    /// Move the environment to another Debian release (codename), re-resolving
    /// every package against it
    #[arg(long, value_name = "CODENAME")]
    pub release: Option<String>,
    /// Show the change without writing the manifest or the lock
    /// Accept an archive whose InRelease is older than the locked one (a
    /// deliberate rollback; otherwise refused as a possible replay)
    #[arg(long)]
    pub allow_older_archive: bool,
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Replace the manifest with this file (validated first)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Podman,
}

impl Runtime {
    pub fn program(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// OCI layout plus Docker's manifest.json: loads everywhere (default)
    DockerArchive,
    /// OCI image layout in a tar
    OciArchive,
    /// OCI image layout in a directory
    OciDir,
    /// Docker's manifest.json only (docker save's layout): Podman reads health checks only from these
    Docker,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

/// `-r REF` and how to read it, for the commands that work on an
/// environment without a local directory (containerize, sbom, activate).
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// A published environment, HOST[:PORT]/REPO[:TAG][@N] (see `cairn publish`), or the environment of an image cairn pushed, [docker://]HOST[:PORT]/PATH/NAME[:TAG]
    #[arg(
        short = 'r',
        long = "remote",
        value_name = "REF",
        conflicts_with = "dir"
    )]
    pub remote: Option<String>,
    /// skopeo-style options for reading -r, one string: "--creds USER:PASS --tls-verify=false --cert-dir DIR --retry-times N"
    #[arg(
        long,
        value_name = "ARGS",
        allow_hyphen_values = true,
        requires = "remote"
    )]
    pub remote_args: Option<CopyArgsText>,
}

#[derive(Debug, Args)]
pub struct ContainerizeArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Write the image to FILE (`-` for stdout) instead of loading it into a runtime
    #[arg(short = 'f', long = "file", value_name = "FILE|-")]
    pub file: Option<PathBuf>,
    /// Load the image into this runtime
    #[arg(long, value_enum)]
    pub runtime: Option<Runtime>,
    /// Image tag (default: [containerize] tag, or `latest`)
    #[arg(long)]
    pub tag: Option<String>,
    /// Build the named container from [containers.NAME]
    #[arg(long, conflicts_with = "remote")]
    pub container: Option<String>,
    /// Build for these systems only (repeatable; default: every one in [options] systems)
    #[arg(long = "system", value_name = "SYSTEM")]
    pub systems: Vec<String>,
    /// Archive format for -f
    #[arg(long, value_enum)]
    pub format: Option<ArchiveFormat>,
    /// Layer compression
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Copy the image to --registry (default: [containers.NAME] registry) instead of loading it
    #[arg(long, conflicts_with = "file")]
    pub copy: bool,
    /// Copy destination: docker://HOST[:PORT]/PATH/ (gets NAME:TAG), docker-daemon: or podman:
    #[arg(long, value_name = "DEST", requires = "copy")]
    pub registry: Option<String>,
    /// skopeo-style options for the copy, one string: "--dest-creds USER:PASS --dest-tls-verify=false --retry-times N"
    #[arg(
        long,
        value_name = "ARGS",
        allow_hyphen_values = true,
        requires = "copy"
    )]
    pub copy_args: Option<CopyArgsText>,
    /// After loading, `docker run -it` the image (like devenv's `container run`)
    #[arg(long, conflicts_with = "file")]
    pub docker_run: bool,
    /// Show every layer: digest, sizes, packages, cache reuse, other images sharing it
    #[arg(long)]
    pub report: bool,
    /// With --report: print it as JSON (on stdout, or stderr when stdout carries the archive)
    #[arg(long, requires = "report")]
    pub json: bool,
    /// Put an SBOM in the image (/opt/cairn/sbom.spdx.json or sbom.cdx.json); with --copy, also attach it as an OCI referrer
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "spdx-json")]
    pub sbom: Option<SbomFormatArg>,
}

/// An SBOM format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SbomFormatArg {
    /// SPDX 2.3 JSON
    SpdxJson,
    /// CycloneDX 1.6 JSON
    CyclonedxJson,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Document format
    #[arg(long, value_enum, default_value = "spdx-json")]
    pub format: SbomFormatArg,
    /// Write to FILE (atomically) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The system whose packages to list (default: the host's, else the first locked)
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build to run (default: all)
    pub name: Option<String>,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Build the named container and load it into a runtime
    Build(ContainerNameArgs),
    /// Build, load, then `docker run -it` it
    Run(ContainerNameArgs),
}

#[derive(Debug, Args)]
pub struct ContainerNameArgs {
    /// `shell`, `processes`, or a [containers.NAME] table
    pub name: String,
    /// Load into this runtime
    #[arg(long, value_enum)]
    pub runtime: Option<Runtime>,
    #[command(flatten)]
    pub dir: DirArg,
}

/// `--copy-args` text; it may hold a password, so `Debug` hides it.
#[derive(Clone)]
pub struct CopyArgsText(pub String);

impl std::fmt::Debug for CopyArgsText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CopyArgsText(<redacted>)")
    }
}

impl std::str::FromStr for CopyArgsText {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(CopyArgsText(s.to_owned()))
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Destination: [docker://]HOST[:PORT]/PATH/NAME[:TAG], or a prefix ending in `/` that gets NAME:TAG (default: [containers.NAME] registry)
    #[arg(value_name = "IMAGE-REF")]
    pub reference: Option<String>,
    /// Push the image last built with `containerize --container NAME`
    #[arg(long)]
    pub container: Option<String>,
    /// skopeo-style options, one string: "--dest-creds USER:PASS --dest-tls-verify=false --retry-times N"
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub copy_args: Option<CopyArgsText>,
    /// Print {reference, digest, uploaded, skipped, mounted} as JSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct ActivateArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Also start the environment's services
    #[arg(long)]
    pub start_services: bool,
    /// dev: add the environment to your world (host directories, sockets and
    /// commands stay); run: only the environment (default: [options]
    /// activate.mode, else dev)
    #[arg(long, value_enum)]
    pub mode: Option<ActivateModeArg>,
    /// Internal: enter this assembled rootfs (cairn re-executes itself so the
    /// namespace is created by a single-threaded process)
    #[arg(long = "_enter", hide = true, value_name = "ROOTFS")]
    pub enter: Option<PathBuf>,
    /// Command to run (default: an interactive shell)
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Which published environment a command reads or changes.
#[derive(Debug, Args, Clone, Default)]
pub struct PublishedArgs {
    /// skopeo-style registry options, one string: "--creds USER:PASS --tls-verify=false --cert-dir DIR --retry-times N"
    #[arg(
        long,
        value_name = "ARGS",
        allow_hyphen_values = true,
        visible_alias = "copy-args"
    )]
    pub remote_args: Option<CopyArgsText>,
    /// Print data as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Where: HOST[:PORT]/REPO[:TAG] (default: the REF this environment was pulled from or last published to)
    #[arg(value_name = "REF")]
    pub reference: Option<String>,
    #[command(flatten)]
    pub options: PublishedArgs,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The environment: HOST[:PORT]/REPO[:TAG], or REF@N for generation N (default: the live one)
    #[arg(value_name = "REF[@N]")]
    pub reference: String,
    /// Replace an environment in DIR that was not pulled from REF
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub options: PublishedArgs,
    /// Directory to put the environment in (default: the current directory)
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Which environment `generations` works on.
#[derive(Debug, Args, Clone, Default)]
pub struct GenerationsTarget {
    /// The published environment, HOST[:PORT]/REPO[:TAG] (default: the REF of the local environment)
    #[arg(short = 'r', long = "remote", value_name = "REF")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub options: PublishedArgs,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Subcommand)]
pub enum GenerationsCommand {
    /// Each generation: number, date, what it changed, and which one is live
    List(GenerationsTarget),
    /// Every change of the live generation: publish, switch, rollback
    History(GenerationsTarget),
    /// Make generation N live
    Switch(GenerationsSwitchArgs),
    /// Make the generation that was live before the live one live again
    Rollback(GenerationsTarget),
}

#[derive(Debug, Args)]
pub struct GenerationsSwitchArgs {
    /// The generation to make live
    pub generation: u64,
    #[command(flatten)]
    pub target: GenerationsTarget,
}

/// `cairn activate --mode`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ActivateModeArg {
    Dev,
    Run,
}

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// Start services (default: all)
    Start(ServiceNames),
    /// Stop services (default: all)
    Stop(ServiceNames),
    /// Restart services (default: all)
    Restart(ServiceNames),
    /// Show the state of each service
    Status(ServicesStatusArgs),
    /// Print a service's log
    Logs(ServicesLogsArgs),
    /// Run the supervisor loop (started by `services start`)
    #[command(name = "_supervise", hide = true)]
    Supervise(ServiceNames),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Re-hash every cached .deb and layer blob; evict those that do not match
    Verify(CacheVerifyArgs),
    /// Remove temp files left by killed commands and, with --max-size, the
    /// least recently used entries over that budget
    Gc(CacheGcArgs),
}

#[derive(Debug, Args)]
pub struct CacheVerifyArgs {
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CacheGcArgs {
    /// Size budget for cached .debs, layer blobs and unpacked packages, e.g. 500M, 2G, 1048576
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// `1048576`, `512K`, `500M`, `2G`, `1T` (binary units; a trailing `B`/`iB` is accepted).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let number = upper.trim_end_matches("IB").trim_end_matches('B');
    let (digits, shift) = match number.chars().last() {
        Some('K') => (&number[..number.len() - 1], 10),
        Some('M') => (&number[..number.len() - 1], 20),
        Some('G') => (&number[..number.len() - 1], 30),
        Some('T') => (&number[..number.len() - 1], 40),
        _ => (number, 0),
    };
    let value: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a size: write e.g. 500M, 2G or a number of bytes"))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[derive(Debug, Args)]
pub struct ServiceNames {
    pub names: Vec<String>,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct ServicesStatusArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Args)]
pub struct ServicesLogsArgs {
    pub name: String,
    /// Keep printing as the log grows
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// A Deployment, a Service and a PersistentVolumeClaim per volume, from [containerize.config]
    Kubernetes(KubernetesArgs),
}

#[derive(Debug, Args)]
pub struct KubernetesArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// The named container ([containers.NAME]) to describe instead of the default image
    #[arg(long)]
    pub container: Option<String>,
    /// The image the pod runs (default: NAME:TAG as containerize builds it)
    #[arg(long, value_name = "REF", conflicts_with = "imageless")]
    pub image: Option<String>,
    /// No image: a pod for cairn's runtime handler (runtimeClassName cairn), running --environment
    #[arg(long, requires = "environment")]
    pub imageless: bool,
    /// With --imageless: the environment's reference (the cairn.dev/environment annotation)
    #[arg(long, value_name = "REF", requires = "imageless")]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManpagesArgs {
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct EntrypointArgs {
    /// The command to run (the image's Cmd or `docker run` arguments)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub enum KubernetesCommand {
    /// Write containerd's `cairn` runtime entry and the RuntimeClass (into --out, or one to stdout)
    NodeSetup(KubernetesNodeSetupArgs),
    /// Write the empty pod image (its entrypoint is the cairn the handler mounts)
    EmptyImage(KubernetesEmptyImageArgs),
    /// Remove from the node store what no live container uses (environments, rootfs, .debs)
    Gc(KubernetesGcArgs),
}

#[derive(Debug, Args)]
pub struct KubernetesGcArgs {
    /// The node store (default: $CAIRN_NODE_STORE, else /var/lib/cairn)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Report what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KubernetesNodeSetupArgs {
    /// Directory for containerd-cairn.toml and runtimeclass-cairn.yaml
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Print one of the two to stdout instead
    #[arg(long, value_enum, conflicts_with = "out")]
    pub print: Option<NodeSetupPrint>,
    /// Path of cairn-runc on the nodes (default: beside this cairn)
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum NodeSetupPrint {
    Containerd,
    RuntimeClass,
}

#[derive(Debug, Args)]
pub struct KubernetesEmptyImageArgs {
    /// Archive to write (`-` for stdout), for `ctr images import` or `docker load`
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: String,
    /// Image name
    #[arg(long, default_value = "cairn-empty")]
    pub name: String,
    /// Image tag
    #[arg(long, default_value = "1")]
    pub tag: String,
}
