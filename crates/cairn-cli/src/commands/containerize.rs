//! `cairn containerize`: the locked environment as an OCI image, one layer per
//! package plus a small top layer, written to a file, stdout, or a runtime.

pub(super) mod copy;
mod elf;
mod foreign;
mod named;
mod remote;
mod root_copy;
mod top_layer;
mod users;

use crate::cli::{ArchiveFormat, CompressionArg, ContainerizeArgs, Runtime};
use crate::environment::Environment;
use crate::{locking, output};
use cairn_manifest::{LockedPackage, Manifest};
use cairn_oci::{Compression, LayerInput, LayerOptions};
use cairn_store::Store;
use miette::{IntoDiagnostic, Result, miette};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What to build for one system: the environment, its lock and the chosen options.
#[derive(Clone)]
pub struct BuildPlan {
    pub env: Environment,
    pub manifest: Manifest,
    /// `x86_64-linux`, `aarch64-linux`.
    pub system: String,
    pub packages: Vec<LockedPackage>,
    pub name: String,
    pub tag: String,
    pub epoch: i64,
    pub max_layers: usize,
    pub compression: Compression,
    pub container: Option<String>,
    pub overrides: named::Overrides,
    /// `docker run -it` the image after loading it.
    pub docker_run: bool,
}

impl BuildPlan {
    /// The image architecture (GOARCH style, which Debian's names match).
    pub fn architecture(&self) -> &'static str {
        cairn_manifest::debian_arch(&self.system).unwrap_or("amd64")
    }

    /// Whether the image is for the machine cairn runs on.
    pub fn is_host_system(&self) -> bool {
        cairn_manifest::host_system() == Some(self.system.as_str())
    }
}

/// The image(s) built: one platform, or several joined by an index.
pub enum BuiltImage {
    Single(cairn_oci::Image),
    Multi(cairn_oci::MultiImage),
}

impl BuiltImage {
    /// What archives carry.
    pub fn archived(&self) -> cairn_oci::Archived<'_> {
        match self {
            BuiltImage::Single(image) => image.into(),
            BuiltImage::Multi(multi) => multi.into(),
        }
    }

    /// The image a local engine loads and runs: the host's platform (first).
    pub fn primary(&self) -> &cairn_oci::Image {
        match self {
            BuiltImage::Single(image) => image,
            BuiltImage::Multi(multi) => &multi.images[0],
        }
    }

    /// What a registry push sends.
    pub fn push_record(&self) -> Result<cairn_registry::PushImage> {
        match self {
            BuiltImage::Single(image) => cairn_registry::PushImage::from_image(image),
            BuiltImage::Multi(multi) => cairn_registry::PushImage::from_multi(multi),
        }
        .map_err(|e| miette!("{e}"))
    }
}

pub fn run(args: ContainerizeArgs) -> Result<ExitCode> {
    let stdout_target = args.file.as_deref() == Some(Path::new("-"));
    if stdout_target && std::io::stdout().is_terminal() {
        return Err(miette!(
            help = "pipe it: `cairn containerize -f - | docker load`",
            "refusing to write an image archive to a terminal"
        ));
    }
    let remote = match &args.remote {
        Some(reference) => Some(remote::fetch(reference, args.remote_args.as_ref())?),
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
    let plans = plans(&args)?;
    let store = locking::open_store()?;
    let image = build_all(&store, &plans)?;
    if let Some(remote) = &remote {
        remote::compare(remote, &image);
    }
    let plan = &plans[0];
    copy::record_image(&store, plan, &image);
    match (&args.file, args.runtime) {
        _ if args.copy => copy::run(&store, &image, plan, &args)?,
        (Some(_), _) if stdout_target => write_to_stdout(&image, &args)?,
        (Some(path), _) => write_to_file(&image, path, &args)?,
        (None, runtime) => load_or_write(&image, runtime, plan)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One plan per system to build, the host's first (it is the one a local
/// engine loads and Docker's `manifest.json` names).
fn plans(args: &ContainerizeArgs) -> Result<Vec<BuildPlan>> {
    let env = Environment::find(&args.dir)?;
    let manifest = env.load_manifest()?;
    let lock = env.load_lock()?;
    if !crate::locking::lock_is_fresh(&lock, &manifest) {
        return Err(miette!(
            help = "run `cairn upgrade` (or `cairn install`) to re-lock",
            "manifest.lock is out of date with manifest.toml"
        ));
    }
    let mut systems = selected_systems(&manifest, &args.systems)?;
    let host = cairn_manifest::host_system();
    systems.sort_by_key(|s| Some(s.as_str()) != host);
    systems
        .into_iter()
        .map(|system| plan(args, &env, &manifest, &lock, system))
        .collect()
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

fn plan(
    args: &ContainerizeArgs,
    env: &Environment,
    manifest: &Manifest,
    lock: &cairn_manifest::Lock,
    system: String,
) -> Result<BuildPlan> {
    let locked: Vec<LockedPackage> = lock.packages_for(&system).cloned().collect();
    let container = args.container.as_deref();
    let overrides = named::overrides_for(manifest, container, &locked)?;
    let packages = match named::runtime_roots(manifest, container) {
        Some(mut roots) => {
            if cairn_manifest::activation::needs_bash(manifest) {
                roots.push("bash".to_string());
            }
            named::closure(&locked, &roots)
        }
        None => named::without_excluded(locked, &overrides.exclude),
    };
    let cz = &manifest.containerize;
    let name = overrides
        .image_name
        .clone()
        .or_else(|| cz.name.clone())
        .or_else(|| manifest.name.clone())
        .unwrap_or_else(|| env.default_name());
    let compression = match args.compression {
        Some(CompressionArg::Zstd) => Compression::Zstd,
        Some(CompressionArg::Gzip) => Compression::Gzip,
        None => compression_from(cz.compression),
    };
    Ok(BuildPlan {
        epoch: source_date_epoch(lock)?,
        tag: args
            .tag
            .clone()
            .or_else(|| overrides.tag.clone())
            .or_else(|| cz.tag.clone())
            .unwrap_or_else(|| "latest".into()),
        max_layers: manifest.max_layers_for(container) as usize,
        container: args.container.clone(),
        name: image_name(&name),
        env: env.clone(),
        manifest: manifest.clone(),
        system,
        packages,
        compression,
        overrides,
        docker_run: args.docker_run,
    })
}

fn compression_from(c: cairn_manifest::Compression) -> Compression {
    match c {
        cairn_manifest::Compression::Gzip => Compression::Gzip,
        cairn_manifest::Compression::Zstd => Compression::Zstd,
    }
}

/// `SOURCE_DATE_EPOCH` when set, else the newest archive date in the lock.
fn source_date_epoch(lock: &cairn_manifest::Lock) -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().map_err(|_| {
            miette!(
                help = "use seconds since 1970, e.g. 1700000000",
                "SOURCE_DATE_EPOCH='{v}' is not a number"
            )
        }),
        _ => Ok(lock.source_date_epoch()),
    }
}

/// Image names are lowercase; environment names may not be.
fn image_name(name: &str) -> String {
    let cleaned: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(['-', '.', '_']).to_string()
}

/// Builds every plan's image; several are joined by an image index.
fn build_all(store: &Store, plans: &[BuildPlan]) -> Result<BuiltImage> {
    let mut images = plans
        .iter()
        .map(|plan| build_image(store, plan))
        .collect::<Result<Vec<_>>>()?;
    if images.len() == 1 {
        return Ok(BuiltImage::Single(images.remove(0)));
    }
    let multi = cairn_oci::build_multi_image(images).map_err(|e| miette!("{e}"))?;
    output::status(format!(
        "✓ indexed {} platforms as {}",
        multi.images.len(),
        multi.index_digest
    ));
    Ok(BuiltImage::Multi(multi))
}

fn build_image(store: &Store, plan: &BuildPlan) -> Result<cairn_oci::Image> {
    let debs = deb_paths(store, &plan.packages)?;
    let inputs: Vec<LayerInput> = plan
        .packages
        .iter()
        .zip(&debs)
        .map(|(p, path)| LayerInput {
            name: p.name.clone(),
            version: p.version.clone(),
            deb_path: path.clone(),
            deb_sha256: p.sha256.clone(),
        })
        .collect();
    let opts = LayerOptions {
        compression: plan.compression,
        mtime_clamp: explicit_clamp()?,
    };
    let groups = layer_groups(plan)?;
    let grouped: Vec<Vec<LayerInput>> = groups
        .iter()
        .map(|g| g.iter().map(|&i| inputs[i].clone()).collect())
        .collect();
    // cairn's own layers (its 15 MB binary to compress on a cold cache, the
    // environment's files) build beside the package layers, filling the cores
    // their longest one leaves idle.
    let (layers, own) = std::thread::scope(|scope| {
        let own = scope.spawn(|| own_layers(store, plan, &inputs));
        let layers = cairn_oci::build_layers(store, &grouped, &opts, |_, layer| {
            tracing::debug!("layer {} {}", layer.digest, layer.created_by);
        });
        let own = own
            .join()
            .unwrap_or_else(|_| Err(miette!("building cairn's own layers panicked")));
        (layers, own)
    });
    let mut layers = layers.map_err(|e| miette!("{e}"))?;
    layers.extend(own?);
    let spec = top_layer::image_spec(plan)?;
    let image = cairn_oci::build_image(&spec, &layers).map_err(|e| miette!("{e}"))?;
    output::status(format!(
        "✓ built {}:{} for {} ({} layers, {} packages)",
        plan.name,
        plan.tag,
        plan.system,
        layers.len(),
        plan.packages.len()
    ));
    Ok(image)
}

/// The layers above the packages: cairn's entrypoint, copy-to-root (if
/// any), and the environment's top layer.
fn own_layers(
    store: &Store,
    plan: &BuildPlan,
    inputs: &[LayerInput],
) -> Result<Vec<cairn_oci::BuiltLayer>> {
    let mut layers = vec![top_layer::build_binary_layer(store, plan)?];
    if !plan.overrides.copy_to_root.is_empty() {
        let entries = root_copy::entries(&plan.env, &plan.overrides.copy_to_root)?;
        let mut layer = cairn_oci::build_custom_layer(store, entries, &top_layer::options(plan))
            .map_err(|e| miette!("{e}"))?;
        layer.created_by = "cairn: copy-to-root".to_string();
        layers.push(layer);
    }
    layers.push(top_layer::build(store, plan, inputs)?);
    Ok(layers)
}

/// Package layers keep the .deb's own mtimes unless SOURCE_DATE_EPOCH is set,
/// so a package's layer is the same in every environment (see the README).
fn explicit_clamp() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| miette!("SOURCE_DATE_EPOCH='{v}' is not a number")),
        _ => Ok(None),
    }
}

/// Groups packages into the layers `max-layers` leaves once cairn's own are
/// counted (its entrypoint, the environment, and copy-to-root if any), most
/// depended-upon first.
fn layer_groups(plan: &BuildPlan) -> Result<Vec<Vec<usize>>> {
    let own = 2 + usize::from(!plan.overrides.copy_to_root.is_empty());
    let budget = plan.max_layers.saturating_sub(own);
    if budget == 0 {
        return Err(miette!(
            help = format!("raise max-layers in manifest.toml to at least {}", own + 1),
            "max-layers = {} leaves no layer for packages: cairn needs {own} of its own",
            plan.max_layers
        ));
    }
    let nodes: Vec<cairn_oci::PackageNode> = plan
        .packages
        .iter()
        .map(|p| cairn_oci::PackageNode {
            name: p.name.clone(),
            depends: p.depends.clone(),
        })
        .collect();
    // plan_layers counts one layer on top of the package layers it plans.
    Ok(cairn_oci::plan_layers(&nodes, budget + 1))
}

/// The cached .deb for each package, downloading only those not yet cached.
fn deb_paths(store: &Store, packages: &[LockedPackage]) -> Result<Vec<PathBuf>> {
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
    packages
        .iter()
        .map(|p| store.deb_path(&p.sha256).into_diagnostic())
        .collect()
}

fn archive_format(args: &ContainerizeArgs) -> cairn_oci::ArchiveFormat {
    match args.format.unwrap_or(ArchiveFormat::DockerArchive) {
        ArchiveFormat::OciArchive => cairn_oci::ArchiveFormat::Oci,
        ArchiveFormat::DockerArchive | ArchiveFormat::OciDir => cairn_oci::ArchiveFormat::Hybrid,
    }
}

fn write_to_stdout(image: &BuiltImage, args: &ContainerizeArgs) -> Result<()> {
    let format = archive_format(args);
    if args.format == Some(ArchiveFormat::OciDir) {
        return Err(miette!("--format oci-dir needs a directory: use -f DIR"));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    cairn_oci::write_archive(image.archived(), format, &mut out).map_err(|e| miette!("{e}"))?;
    out.flush().into_diagnostic()
}

fn write_to_file(image: &BuiltImage, path: &Path, args: &ContainerizeArgs) -> Result<()> {
    let format = archive_format(args);
    if args.format == Some(ArchiveFormat::OciDir) {
        cairn_oci::write_oci_dir(image.archived(), path).map_err(|e| miette!("{e}"))?;
    } else {
        let mut file = cairn_store::AtomicFile::create(path).into_diagnostic()?;
        {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut file);
            cairn_oci::write_archive(image.archived(), format, &mut out)
                .map_err(|e| miette!("{e}"))?;
            out.flush().into_diagnostic()?;
        }
        file.commit().into_diagnostic()?;
    }
    output::status(format!("✓ wrote {}", path.display()));
    Ok(())
}

fn load_or_write(image: &BuiltImage, runtime: Option<Runtime>, plan: &BuildPlan) -> Result<()> {
    let detected = match runtime {
        Some(Runtime::Docker) => Some(cairn_oci::ContainerRuntime::Docker),
        Some(Runtime::Podman) => Some(cairn_oci::ContainerRuntime::Podman),
        None => cairn_oci::detect_runtime().ok(),
    };
    let Some(runtime) = detected else {
        let path = PathBuf::from(format!("{}-container.tar", plan.name.replace('/', "-")));
        output::status("no docker or podman found on PATH; writing an archive instead");
        let mut file = cairn_store::AtomicFile::create(&path).into_diagnostic()?;
        cairn_oci::write_archive(
            image.archived(),
            cairn_oci::ArchiveFormat::Hybrid,
            &mut file,
        )
        .map_err(|e| miette!("{e}"))?;
        file.commit().into_diagnostic()?;
        output::status(format!("✓ wrote {}", path.display()));
        return Ok(());
    };
    let program = runtime.program();
    if let BuiltImage::Multi(multi) = image {
        output::status(format!(
            "loading only the {} image into {program}; write all platforms with -f FILE or push them with --copy",
            multi.images[0].architecture()
        ));
    }
    let loaded = cairn_oci::load_into(runtime, |w| {
        cairn_oci::write_archive(image.primary(), cairn_oci::ArchiveFormat::Hybrid, w)
    })
    .map_err(|e| miette!(help = format!("check that `{program} info` works"), "{e}"))?;
    output::status(format!("✓ loaded into {program}:"));
    println!("{loaded}");
    if plan.docker_run {
        run_interactively(program, &loaded)?;
    }
    Ok(())
}

/// `docker run --rm -it REF`, handing the terminal over.
fn run_interactively(program: &str, reference: &str) -> Result<()> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(["run", "--rm"]);
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
