//! `cairn containerize`: the flags and the reporting. What goes into the image
//! is cairn-image's ([`cairn_image::BuildPlan`], [`cairn_image::build_all`]);
//! this module gathers the plan's inputs from the command line and the
//! environment, makes sure the `.deb`s are in the store, and writes, loads or
//! pushes the result.

pub(crate) mod copy;
pub(super) mod remote;
mod report;

use crate::cli::{ArchiveFormat, CompressionArg, ContainerizeArgs, Runtime};
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::{locking, output};
use cairn_image::{BuildPlan, BuiltImage, Entrypoints, PlanRequest};
use cairn_manifest::{LockedPackage, Manifest};
use cairn_oci::Compression;
use cairn_store::Store;
use miette::{IntoDiagnostic, Result, miette};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(args: ContainerizeArgs) -> Result<ExitCode> {
    let stdout_target = args.file.as_deref() == Some(Path::new("-"));
    if stdout_target && std::io::stdout().is_terminal() {
        return Err(miette!(
            help = "pipe it: `cairn containerize -f - | docker load`",
            "refusing to write an image archive to a terminal"
        ));
    }
    let remote = match &args.remote.remote {
        Some(reference) => Some(remote::fetch(reference, args.remote.remote_args.as_ref())?),
        None => None,
    };
    let args = match &remote {
        Some(remote) => ContainerizeArgs {
            dir: crate::cli::DirArg {
                dir: Some(remote.root.clone()),
            },
            tag: args
                .tag
                .clone()
                .or_else(|| Some(remote.reference.tag.clone())),
            ..args
        },
        None => args,
    };
    let env = Environment::find(&args.dir)?;
    let plans = plans(&args, &env)?;
    let store = locking::open_store()?;
    // Held until the image is written: `cache gc` skips these `.deb`s.
    let mut debs_in_use = Vec::new();
    for plan in &plans {
        debs_in_use.push(ensure_debs(&store, &plan.packages)?);
    }
    let reporter = BuildLog { plans: &plans };
    // Archives are written as the layers are built; a push or an OCI
    // directory takes the finished image.
    let (image, loaded) = match (&args.file, args.runtime) {
        _ if args.copy => (build(&store, &plans, &reporter)?, None),
        (Some(_), _) if stdout_target => (write_to_stdout(&store, &plans, &reporter, &args)?, None),
        (Some(path), _) => (write_to_file(&store, &plans, &reporter, path, &args)?, None),
        (None, runtime) => load_or_write(&store, &plans, &reporter, runtime, &args)?,
    };
    if let Some(remote) = &remote {
        remote::compare(remote, &image);
    }
    let plan = &plans[0];
    if args.report {
        let own_key = copy::image_key(&env, plan.container.as_deref());
        let reports = report::reports(&store, &own_key, &plans, &image)?;
        if args.json {
            report::print_json(&reports, stdout_target)?;
        } else {
            report::print_table(&reports);
        }
    }
    copy::record_image(&store, &env, plan, &image);
    if args.copy {
        let pushed = copy::run(&store, &image, plan, &args)?;
        if let Some((reference, options)) = pushed {
            super::sbom::attach_to_pushed(&store, &plans, &image, &reference, &options)?;
        }
    }
    if let Some((program, reference)) = loaded
        && args.docker_run
    {
        let ports: Vec<String> = plan
            .manifest
            .containerize
            .config
            .exposed_ports
            .iter()
            .map(|p| p.to_string())
            .collect();
        run_interactively(program, &reference, &ports)?;
    }
    drop(debs_in_use);
    Ok(ExitCode::SUCCESS)
}

fn build(store: &Store, plans: &[BuildPlan], reporter: &BuildLog<'_>) -> Result<BuiltImage> {
    cairn_image::build_all(store, plans, reporter).diagnose()
}

/// Builds the images and writes their archive to `out` as the build goes.
fn build_into(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &BuildLog<'_>,
    format: cairn_oci::ArchiveFormat,
    scope: cairn_image::ArchiveScope,
    out: impl std::io::Write + Send,
) -> Result<BuiltImage> {
    cairn_image::build_all_into_archive(store, plans, reporter, format, scope, out).diagnose()
}

/// The image summary once the build is done ([`report_built`]).
struct BuildLog<'a> {
    plans: &'a [BuildPlan],
}

impl cairn_image::BuildReporter for BuildLog<'_> {
    fn on_built(&self, image: &BuiltImage) {
        report_built(self.plans, image);
    }
}

/// `✓ built NAME:TAG for SYSTEM (N layers, M packages)` per image, and the index.
fn report_built(plans: &[BuildPlan], image: &BuiltImage) {
    let images: Vec<&cairn_oci::Image> = match image {
        BuiltImage::Single(image) => vec![image],
        BuiltImage::Multi(multi) => multi.images.iter().collect(),
    };
    for (plan, built) in plans.iter().zip(images) {
        output::status(format!(
            "✓ built {}:{} for {} ({} layers, {} packages)",
            plan.name,
            plan.tag,
            plan.system,
            built.layers.len(),
            plan.packages.len()
        ));
    }
    if let BuiltImage::Multi(multi) = image {
        output::status(format!(
            "✓ indexed {} platforms as {}",
            multi.images.len(),
            multi.index_digest
        ));
    }
}

/// One plan per system to build, the host's first (it is the one a local
/// engine loads and Docker's `manifest.json` names).
pub(super) fn plans(args: &ContainerizeArgs, env: &Environment) -> Result<Vec<BuildPlan>> {
    let manifest = env.load_manifest()?;
    note_converted_healthcheck(&manifest);
    let lock = crate::locking::current_lock(env, &manifest)?;
    let mut systems = selected_systems(&manifest, &args.systems)?;
    let host = cairn_manifest::host_system();
    systems.sort_by_key(|s| Some(s.as_str()) != host);
    let request = plan_request(args, env, &manifest)?;
    systems
        .iter()
        .map(|system| BuildPlan::new(&manifest, &lock, system, &request).diagnose())
        .collect()
}

/// The seed's `labels = { healthcheck = "..." }` is no label an engine reads:
/// cairn made it a real health check, and says how to write it.
fn note_converted_healthcheck(manifest: &Manifest) {
    let Some(check) = &manifest.containerize.config.healthcheck else {
        return;
    };
    if check.from_label {
        let command = match &check.command {
            cairn_manifest::StartupCommand::Shell(text) => text.clone(),
            cairn_manifest::StartupCommand::Exec(argv) => argv.join(" "),
        };
        output::status(format!(
            "note: labels.healthcheck became the image's health check; write it as [containerize.config] healthcheck = {{ command = {command:?} }} to set interval, timeout and retries"
        ));
    }
}

/// The edge's inputs to a plan: flags, files and environment variables.
fn plan_request(
    args: &ContainerizeArgs,
    env: &Environment,
    manifest: &Manifest,
) -> Result<PlanRequest> {
    let mut artifacts = BTreeMap::new();
    for container in manifest.containers.values() {
        for name in &container.artifacts {
            if args.container.as_deref().is_some_and(|c| {
                manifest
                    .containers
                    .get(c)
                    .is_some_and(|x| x.artifacts.contains(name))
            }) {
                artifacts.insert(name.clone(), super::build::artifact_dir(env, name)?);
            }
        }
    }
    // The default image (and `shell`, `processes`) carries every build's
    // output, as flox's custom-entrypoint example expects.
    if !args
        .container
        .as_deref()
        .is_some_and(|c| manifest.containers.contains_key(c))
    {
        for (name, build) in &manifest.build {
            let dir = super::build::ensure_built(env, name, &build.command)?;
            artifacts.insert(name.clone(), dir);
        }
    }
    let (name, tag) = match &args.tag {
        Some(arg) => {
            let (name, tag) = cairn_image::split_tag_arg(arg).diagnose()?;
            (name, Some(tag))
        }
        None => (None, None),
    };
    Ok(PlanRequest {
        project_dir: env.root.clone(),
        manifest_bytes: fs_err::read(env.manifest_path()).into_diagnostic()?,
        lock_bytes: fs_err::read(env.lock_path()).into_diagnostic()?,
        container: args.container.clone(),
        tag,
        name,
        compression: args.compression.map(|c| match c {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
        }),
        default_name: env.default_name(),
        source_date_epoch: source_date_epoch()?,
        artifacts,
        entrypoints: entrypoints()?,
        sbom: args.sbom.map(super::sbom::format_of),
    })
}

/// `--system` values (checked against `[options] systems`), or all of those.
fn selected_systems(manifest: &Manifest, wanted: &[String]) -> Result<Vec<String>> {
    let configured = manifest.systems_or_host();
    if configured.is_empty() {
        return Err(miette!(
            help = "set [options] systems = [\"x86_64-linux\"] in manifest.toml",
            "no system to build for"
        ));
    }
    if wanted.is_empty() {
        return Ok(configured);
    }
    match wanted.iter().find(|w| !configured.contains(w)) {
        Some(unknown) => Err(miette!(
            help = format!(
                "add it to [options] systems in manifest.toml and run `cairn upgrade`; locked: {}",
                configured.join(", ")
            ),
            "--system {unknown} is not one of the environment's systems"
        )),
        None => Ok(wanted.to_vec()),
    }
}

/// `SOURCE_DATE_EPOCH`, when set.
pub(super) fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().map(Some).map_err(|_| {
            miette!(
                help = "use seconds since 1970, e.g. 1700000000",
                "SOURCE_DATE_EPOCH='{v}' is not a number"
            )
        }),
        _ => Ok(None),
    }
}

/// The in-image cairn: `$CAIRN_ENTRYPOINT_BIN`, else the `cairn-entrypoint`
/// installed beside this cairn (a few MB: see `in_image`), else this cairn
/// itself; foreign CPUs from `CAIRN_ENTRYPOINT_BIN_<CPU>`.
fn entrypoints() -> Result<Entrypoints> {
    let host = match std::env::var_os("CAIRN_ENTRYPOINT_BIN").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().into_diagnostic()?;
            let slim = exe.with_file_name("cairn-entrypoint");
            if slim.is_file() { slim } else { exe }
        }
    };
    let foreign = ["x86_64", "aarch64"]
        .into_iter()
        .filter_map(|cpu| {
            std::env::var_os(cairn_image::foreign_entrypoint_var(cpu))
                .filter(|p| !p.is_empty())
                .map(|p| (cpu.to_string(), PathBuf::from(p)))
        })
        .collect();
    Ok(Entrypoints { host, foreign })
}

/// Downloads the `.deb`s of `packages` that are not in the store yet, and
/// marks all of them in use ([`Store::use_entries`]) for as long as the
/// caller keeps the returned guard: a `cairn cache gc` running meanwhile
/// must not evict a `.deb` between this check and the layer or
/// configuration that reads it.
pub(super) fn ensure_debs(
    store: &Store,
    packages: &[LockedPackage],
) -> Result<cairn_store::EntryLock> {
    // Taken before looking, so what is found cannot vanish before it is used.
    let in_use = store
        .use_entries(
            cairn_store::Bucket::Debs,
            packages.iter().map(|p| p.sha256.as_str()),
        )
        .diagnose()?;
    let missing: Vec<&LockedPackage> = packages
        .iter()
        .filter(|p| {
            store
                .deb_path(&p.sha256)
                .map(|d| !d.is_file())
                .unwrap_or(true)
        })
        .collect();
    if !missing.is_empty() {
        locking::fetch_debs(store, &missing)?;
    }
    Ok(in_use)
}

fn archive_format(args: &ContainerizeArgs) -> cairn_oci::ArchiveFormat {
    match args.format.unwrap_or(ArchiveFormat::DockerArchive) {
        ArchiveFormat::OciArchive => cairn_oci::ArchiveFormat::Oci,
        ArchiveFormat::Docker => cairn_oci::ArchiveFormat::Docker,
        ArchiveFormat::DockerArchive | ArchiveFormat::OciDir => cairn_oci::ArchiveFormat::Hybrid,
    }
}

fn write_to_stdout(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &BuildLog<'_>,
    args: &ContainerizeArgs,
) -> Result<BuiltImage> {
    let format = archive_format(args);
    if args.format == Some(ArchiveFormat::OciDir) {
        return Err(miette!("--format oci-dir needs a directory: use -f DIR"));
    }
    // The archive is written in large chunks: no BufWriter needed.
    let all = cairn_image::ArchiveScope::All;
    build_into(store, plans, reporter, format, all, std::io::stdout())
}

fn write_to_file(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &BuildLog<'_>,
    path: &Path,
    args: &ContainerizeArgs,
) -> Result<BuiltImage> {
    let format = archive_format(args);
    let image = if args.format == Some(ArchiveFormat::OciDir) {
        let image = build(store, plans, reporter)?;
        cairn_oci::write_oci_dir(image.archived(), path).diagnose()?;
        image
    } else {
        write_archive_file(store, plans, reporter, path, format)?
    };
    output::status(format!("✓ wrote {}", path.display()));
    Ok(image)
}

/// Builds into an archive file, renamed into place once whole.
fn write_archive_file(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &BuildLog<'_>,
    path: &Path,
    format: cairn_oci::ArchiveFormat,
) -> Result<BuiltImage> {
    // A FIFO or `/dev/null` is written to, a symlink followed: AtomicFile's rules.
    let mut file = cairn_store::AtomicFile::create(path).into_diagnostic()?;
    let all = cairn_image::ArchiveScope::All;
    let image = build_into(store, plans, reporter, format, all, &mut file)?;
    // Renamed into place whole, but not forced to disk, as `docker save -o`
    // does: the archive is rebuilt from the lock in one command, and an
    // fsync of its tens of MB would be most of a warm build (0.2-0.8 s).
    file.commit_unsynced().into_diagnostic()?;
    Ok(image)
}

/// The archive an engine loads: the hybrid, except that Podman takes the
/// hybrid's OCI layout and reads a health check only from Docker images, so
/// an image with one reaches Podman as a Docker archive.
pub(super) fn load_format(
    runtime: cairn_oci::ContainerRuntime,
    plan: &BuildPlan,
) -> cairn_oci::ArchiveFormat {
    match runtime {
        cairn_oci::ContainerRuntime::Podman
            if plan.manifest.containerize.config.healthcheck.is_some() =>
        {
            cairn_oci::ArchiveFormat::Docker
        }
        _ => cairn_oci::ArchiveFormat::Hybrid,
    }
}

/// Builds and loads the image into the engine (`--runtime`, or the one
/// found), or writes an archive when there is none; returns the engine's
/// program and the reference it loaded.
fn load_or_write(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &BuildLog<'_>,
    runtime: Option<Runtime>,
    args: &ContainerizeArgs,
) -> Result<(BuiltImage, Option<(&'static str, String)>)> {
    let plan = &plans[0];
    let detected = match runtime {
        Some(Runtime::Docker) => Some(cairn_oci::ContainerRuntime::Docker),
        Some(Runtime::Podman) => Some(cairn_oci::ContainerRuntime::Podman),
        None => cairn_oci::detect_runtime().ok(),
    };
    let Some(runtime) = detected else {
        let path = PathBuf::from(format!("{}-container.tar", plan.name.replace('/', "-")));
        output::status("no docker or podman found on PATH; writing an archive instead");
        let hybrid = cairn_oci::ArchiveFormat::Hybrid;
        let image = write_archive_file(store, plans, reporter, &path, hybrid)?;
        output::status(format!("✓ wrote {}", path.display()));
        return Ok((image, None));
    };
    let program = runtime.program();
    let format = load_format(runtime, plan);
    // The engine reads the archive as it is built. A failed build leaves it
    // a truncated archive, which it refuses; the build's error is the one
    // to report.
    let mut built = None;
    let loaded = cairn_oci::load_into(runtime, |w| {
        let primary = cairn_image::ArchiveScope::Primary;
        let result =
            cairn_image::build_all_into_archive(store, plans, reporter, format, primary, w);
        let written = match &result {
            Ok(_) => Ok(()),
            Err(_) => Err(cairn_oci::OciError::ArchiveAbandoned),
        };
        built = Some(result);
        written
    });
    let (image, loaded) = match (built, loaded) {
        (Some(Ok(image)), loaded) => (image, loaded.diagnose()?),
        // A write that failed because the engine stopped reading: the
        // engine's own error says why.
        (Some(Err(cairn_image::ImageError::Oci(cairn_oci::OciError::Io(_)))), Err(engine)) => {
            return Err(engine).diagnose();
        }
        (Some(Err(build)), _) => return Err(build).diagnose(),
        (None, loaded) => {
            return Err(loaded
                .err()
                .unwrap_or(cairn_oci::OciError::ArchiveAbandoned))
            .diagnose();
        }
    };
    if let BuiltImage::Multi(multi) = &image {
        output::status(format!(
            "loaded only the {} image into {program}; write all platforms with -f FILE or push them with --copy",
            multi.images[0].architecture()
        ));
    }
    if args.json {
        // stdout holds the JSON report alone.
        output::status(format!("✓ loaded into {program}: {loaded}"));
    } else {
        output::status(format!("✓ loaded into {program}:"));
        println!("{loaded}");
    }
    Ok((image, Some((program, loaded))))
}

/// `docker run --rm -it -p PORT:PORT… REF`, handing the terminal over and
/// publishing the exposed ports on the same host ports, as `devenv container
/// run` does.
fn run_interactively(program: &str, reference: &str, exposed: &[String]) -> Result<()> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(["run", "--rm"]);
    for port in exposed {
        let (number, proto) = port.split_once('/').unwrap_or((port.as_str(), "tcp"));
        cmd.arg("-p").arg(format!("{number}:{number}/{proto}"));
    }
    if std::io::stdin().is_terminal() {
        cmd.arg("-it");
    }
    let status = cmd.arg(reference).status().into_diagnostic()?;
    if status.success() {
        Ok(())
    } else {
        Err(miette!("`{program} run {reference}` exited with {status}"))
    }
}

/// `cairn container build|run NAME`: containerize `--container NAME`.
pub fn run_named(cmd: crate::cli::ContainerCommand) -> Result<ExitCode> {
    use crate::cli::ContainerCommand;
    use clap::Parser;
    let (named, docker_run) = match cmd {
        ContainerCommand::Build(a) => (a, false),
        ContainerCommand::Run(a) => (a, true),
    };
    // Going through the parser keeps every containerize default in one place.
    let mut argv = vec![
        "cairn".to_string(),
        "containerize".into(),
        "--container".into(),
        named.name,
    ];
    if let Some(dir) = named.dir.dir {
        argv.extend(["-d".to_string(), dir.to_string_lossy().into_owned()]);
    }
    if let Some(rt) = named.runtime {
        argv.extend(["--runtime".to_string(), rt.program().to_string()]);
    }
    if docker_run {
        argv.push("--docker-run".into());
    }
    let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| miette!("{e}"))?;
    match cli.command {
        crate::cli::Command::Containerize(args) => run(args),
        _ => Err(miette!("internal: expected containerize")),
    }
}
