//! `cairn generate kubernetes`, and `cairn completions` and the hidden `cairn
//! manpages`, generated from the clap definitions so they never drift.
//!
//! The Kubernetes manifests are cairn-image's ([`cairn_image::kubernetes`]);
//! this module gathers the plan as containerize would and prints them.

use crate::cli::{Cli, CompletionsArgs, GenerateCommand, KubernetesArgs, ManpagesArgs};
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use cairn_image::kubernetes::{self, PodImage};
use clap::{CommandFactory, Parser};
use miette::{IntoDiagnostic, Result, miette};
use std::io::Write;
use std::process::ExitCode;

pub fn run(cmd: GenerateCommand) -> Result<ExitCode> {
    match cmd {
        GenerateCommand::Kubernetes(args) => generate_kubernetes(args),
    }
}

/// Plans the host system's image exactly as `containerize` would (the same
/// flags, parsed by the same parser), resolves the user's ids from the
/// packages' accounts, and prints the manifests.
fn generate_kubernetes(args: KubernetesArgs) -> Result<ExitCode> {
    let mut argv = vec!["cairn".to_string(), "containerize".into()];
    if let Some(dir) = &args.dir.dir {
        argv.extend(["-d".to_string(), dir.to_string_lossy().into_owned()]);
    }
    if let Some(container) = &args.container {
        argv.extend(["--container".to_string(), container.clone()]);
    }
    if let Some(system) = cairn_manifest::host_system() {
        argv.extend(["--system".to_string(), system.to_string()]);
    }
    let cli = Cli::try_parse_from(argv).map_err(|e| miette!("{e}"))?;
    let crate::cli::Command::Containerize(containerize) = cli.command else {
        return Err(miette!("internal: expected containerize"));
    };
    let env = Environment::find(&containerize.dir)?;
    let plans = super::containerize::plans(&containerize, &env)?;
    let plan = plans
        .first()
        .ok_or_else(|| miette!("the environment builds no image for this system"))?;
    let account = match &plan.manifest.containerize.config.user {
        Some(_) => {
            let store = crate::locking::open_store()?;
            let _debs_in_use = super::containerize::ensure_debs(&store, &plan.packages)?;
            cairn_image::build::image_account(&store, plan).diagnose()?
        }
        None => None,
    };
    let image = match (&args.environment, &args.image) {
        (Some(environment), _) => PodImage::Imageless {
            environment: environment.clone(),
        },
        (None, Some(reference)) => PodImage::Image(reference.clone()),
        (None, None) => PodImage::Image(format!("{}:{}", plan.name, plan.tag)),
    };
    let yaml = kubernetes::manifests(plan, &image, account).diagnose()?;
    std::io::stdout()
        .write_all(yaml.as_bytes())
        .into_diagnostic()?;
    Ok(ExitCode::SUCCESS)
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "cairn", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn manpages(args: ManpagesArgs) -> Result<ExitCode> {
    fs_err::create_dir_all(&args.dir).into_diagnostic()?;
    // As `clap_mangen::generate_to` prepares it, which then writes in place.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    write_manpages(cmd, &args.dir)?;
    Ok(ExitCode::SUCCESS)
}

/// One page per command and visible subcommand, the same pages
/// `clap_mangen::generate_to` writes, but each through [`AtomicFile`]: a
/// kill or a full disk leaves the previous page (or none), never half of one.
///
/// [`AtomicFile`]: cairn_store::AtomicFile
fn write_manpages(cmd: clap::Command, dir: &std::path::Path) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_manpages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut file =
        cairn_store::AtomicFile::create(dir.join(man.get_filename())).into_diagnostic()?;
    man.render(&mut file).into_diagnostic()?;
    file.commit().into_diagnostic()?;
    Ok(())
}
