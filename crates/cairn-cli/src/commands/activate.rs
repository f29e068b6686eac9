//! `cairn activate` on the host: the locked packages assembled into a rootfs of
//! hardlinks from the store, entered through unprivileged user+mount
//! namespaces, so Debian's absolute paths work unchanged. In dev mode (the
//! default) the host's directories and commands stay reachable; `--mode run`
//! shows only the environment.

use crate::cli::{ActivateArgs, ActivateModeArg, DirArg};
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::locking;
use cairn_manifest::activation::activation_for;
use cairn_runtime::{Activation, Bind, CONTAINER_CAIRN_EXE, CONTAINER_ENV_DIR, Mode};
use miette::{IntoDiagnostic, Result, miette};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// An environment ready to enter.
pub struct Prepared {
    pub env: Environment,
    pub activation: Activation,
    pub rootfs: PathBuf,
}

/// Checks the lock, fetches what is missing and assembles (or reuses) the rootfs.
pub fn prepare(dir: &DirArg) -> Result<Prepared> {
    let env = Environment::find(dir)?;
    let manifest = env.load_manifest()?;
    let lock = crate::locking::current_lock(&env, &manifest)?;
    let store = locking::open_store()?;
    let local =
        cairn_image::local_files::host_certificates(std::path::Path::new(HOST_LOCAL_CERTIFICATES))
            .diagnose()?;
    let rootfs = assemble_locked_with(&store, &lock, &local)?.rootfs;
    let activation = host_activation(&manifest, &env, None);
    Ok(Prepared {
        env,
        activation,
        rootfs,
    })
}

/// What [`assemble_locked`] did: the rootfs, and how much it had to fetch.
pub struct Assembled {
    pub rootfs: PathBuf,
    /// `.deb`s downloaded (0 when the store had them all).
    pub fetched: usize,
    /// Whether the rootfs was assembled now rather than reused.
    pub assembled: bool,
}

/// Where the host keeps the CA certificates its administrator added, the
/// Debian way; host activation's CA bundle includes them, as the host's does.
const HOST_LOCAL_CERTIFICATES: &str = "/usr/local/share/ca-certificates";

/// Fetches the host system's locked packages that the store lacks (each
/// verified against the lock's sha256) and assembles, or reuses, their rootfs
/// of hardlinks: shared by host activation and the Kubernetes handler.
pub fn assemble_locked(
    store: &cairn_store::Store,
    lock: &cairn_manifest::Lock,
) -> Result<Assembled> {
    assemble_locked_with(store, lock, &[])
}

/// [`assemble_locked`], with `local` files that configuration reads (the
/// host's private CA certificates): they are written into the rootfs and
/// join its CA bundle, and they key it.
pub fn assemble_locked_with(
    store: &cairn_store::Store,
    lock: &cairn_manifest::Lock,
    local: &[cairn_image::configure::DataFile],
) -> Result<Assembled> {
    let system = cairn_manifest::host_system().ok_or_else(|| miette!("unsupported host"))?;
    let packages: Vec<_> = lock.packages_for(system).collect();
    // Held through assembly (taken before looking): `cache gc` skips these
    // `.deb`s until their trees are unpacked and configured.
    let _debs_in_use = store
        .use_entries(
            cairn_store::Bucket::Debs,
            packages.iter().map(|p| p.sha256.as_str()),
        )
        .diagnose()?;
    let missing: Vec<_> = packages
        .iter()
        .copied()
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
    let debs = packages
        .iter()
        .map(|p| {
            Ok((
                p.sha256.clone(),
                store.deb_path(&p.sha256).into_diagnostic()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // Package configuration is part of the rootfs, so its format keys it too;
    // package order matters to configuration (ties in alternatives).
    let mut text = format!(
        "{CONFIGURED_ROOTFS}\n{}\n",
        cairn_image::configured::CONFIGURE_FORMAT
    );
    for p in &packages {
        text.push_str(&format!("{} {}\n", p.name, p.sha256));
    }
    text.push_str(&cairn_image::local_files::key_text(local));
    let key = cairn_store::sha256_hex(text.as_bytes());
    let (rootfs, assembled) = match cairn_runtime::assembled_rootfs(store, &key).diagnose()? {
        Some(rootfs) => (rootfs, false),
        None => {
            let extra = configuration_entries(store, &packages, &debs, local)?;
            let rootfs = cairn_runtime::assemble_rootfs(store, &debs, &extra, &key).diagnose()?;
            (rootfs, true)
        }
    };
    Ok(Assembled {
        rootfs,
        fetched: missing.len(),
        assembled,
    })
}

/// Bumped when what host rootfs assembly adds on top of the packages changes.
const CONFIGURED_ROOTFS: &str = "cairn-rootfs-configured-v3";

/// What maintainer scripts would have done (alternatives, the CA store,
/// accounts, dpkg status), as entries for the host rootfs: the same
/// configuration as an image's layer, minus the image's own user.
///
/// Each package is read through its facts, checked against the lock's sha256
/// (a `.deb` substituted in the cache is evicted and refused, never
/// configured from), and cached by it, as image builds do.
fn configuration_entries(
    store: &cairn_store::Store,
    packages: &[&cairn_manifest::LockedPackage],
    debs: &[(String, std::path::PathBuf)],
    local: &[cairn_image::configure::DataFile],
) -> Result<Vec<cairn_runtime::RootfsEntry>> {
    use cairn_image::configure::EntryKind;
    use cairn_image::configured::{FACTS, package_from_facts};
    use cairn_runtime::RootfsEntry;
    let mut inputs = packages
        .iter()
        .zip(debs)
        .map(|(p, (sha, deb))| {
            cairn_debian::deb::facts::read_facts::<cairn_image::ImageError>(store, deb, sha, &FACTS)
                .map(|facts| package_from_facts(&facts, &p.name, &p.version))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .diagnose()?;
    let deb_paths: Vec<&std::path::Path> = debs.iter().map(|(_, deb)| deb.as_path()).collect();
    cairn_image::configured::add_sourced_files(&mut inputs, &deb_paths).diagnose()?;
    let configuration = cairn_image::configure::configure(&inputs, local);
    let mut entries: Vec<RootfsEntry> = configuration
        .entries
        .into_iter()
        .map(|e| {
            let path = std::path::PathBuf::from(e.path);
            match e.kind {
                EntryKind::Dir => RootfsEntry::Dir { path, mode: e.mode },
                EntryKind::File(contents) => RootfsEntry::File {
                    path,
                    contents,
                    mode: e.mode,
                },
                EntryKind::Symlink(target) => RootfsEntry::Symlink {
                    path,
                    target: target.into(),
                },
            }
        })
        .collect();
    // The certificates themselves, so the bundle's `.pem` links resolve in
    // run mode too (dev mode binds the host's /usr/local over them).
    entries.extend(local.iter().map(|f| RootfsEntry::File {
        path: std::path::PathBuf::from(&f.path),
        contents: f.contents.clone().unwrap_or_default(),
        mode: 0o644,
    }));
    entries.push(RootfsEntry::File {
        path: "/var/lib/dpkg/status".into(),
        contents: cairn_image::configure::status::dpkg_status(&inputs),
        mode: 0o644,
    });
    Ok(entries)
}

/// The activation of `env` on the host: like an image's, plus the environment's
/// directory, so `cairn` run inside finds this environment from any directory.
/// `mode` (`--mode`) wins over the manifest's `[options] activate.mode`.
fn host_activation(
    manifest: &cairn_manifest::Manifest,
    env: &Environment,
    mode: Option<ActivateModeArg>,
) -> Activation {
    let name = manifest.name.clone().unwrap_or_else(|| env.default_name());
    let mut activation = activation_for(manifest, &name, None);
    activation.env_dir = Some(env.root.clone());
    match mode {
        Some(ActivateModeArg::Dev) => activation.mode = Mode::Dev,
        Some(ActivateModeArg::Run) => activation.mode = Mode::Run,
        None => {}
    }
    activation
}

pub fn run(args: ActivateArgs) -> Result<ExitCode> {
    if let Some(rootfs) = &args.enter {
        return enter(args.dir.clone(), rootfs, args.mode, &args.command);
    }
    // `-r REF[@N]`: the published generation, cached by digest, is the
    // environment directory; nothing is written where the user stands.
    let dir = match &args.remote.remote {
        Some(text) => {
            if args.start_services {
                return Err(miette!(
                    help = "pull it into a directory first (`cairn pull REF -d DIR`), then `cairn activate -d DIR --start-services`",
                    "--start-services needs a local environment, not -r"
                ));
            }
            let cached = super::generations::cached(text, args.remote.remote_args.as_ref())?;
            super::generations::check_lock_fresh(&cached)?;
            crate::output::status(format!(
                "✓ {} generation {} of {} ({})",
                cached.fetched.name,
                cached.fetched.generation,
                cached.env_ref.reference,
                cached.fetched.digest
            ));
            super::generations::dir_of(&cached)
        }
        None => args.dir.clone(),
    };
    let prepared = prepare(&dir)?;
    if args.start_services {
        super::services::start_all(&prepared)?;
    }
    let exe = std::env::current_exe().into_diagnostic()?;
    // The namespace must be created by a single-threaded process; fetching and
    // assembling used threads, so hand over to a fresh copy of ourselves.
    let err = std::process::Command::new(exe)
        .arg("activate")
        .arg("-d")
        .arg(&prepared.env.root)
        .arg("--_enter")
        .arg(&prepared.rootfs)
        .args(args.mode.map(|m| match m {
            ActivateModeArg::Dev => "--mode=dev",
            ActivateModeArg::Run => "--mode=run",
        }))
        .arg("--")
        .args(&args.command)
        .exec();
    Err(miette!("cannot re-execute cairn: {err}"))
}

fn enter(
    dir: DirArg,
    rootfs: &std::path::Path,
    mode: Option<ActivateModeArg>,
    command: &[String],
) -> Result<ExitCode> {
    let env = Environment::find(&dir)?;
    let manifest = env.load_manifest()?;
    let mut activation = host_activation(&manifest, &env, mode);
    let exe = std::env::current_exe().into_diagnostic()?;
    let mut binds = vec![
        Bind {
            source: env.env_dir.clone(),
            target: PathBuf::from(CONTAINER_ENV_DIR),
        },
        Bind {
            source: exe,
            target: PathBuf::from(CONTAINER_CAIRN_EXE),
        },
    ];
    // `[build]` outputs already built are on PATH, as flox puts them.
    for (name, dir) in super::build::built_outputs(&env, manifest.build.keys().cloned()) {
        let target = PathBuf::from(format!("/opt/cairn/build/{name}"));
        activation.build_bins.push(target.join("bin"));
        binds.push(Bind {
            source: dir,
            target,
        });
    }
    let cmd: Vec<OsString> = command.iter().map(OsString::from).collect();
    match cairn_runtime::run_in_rootfs(rootfs, &activation, &cmd, &binds) {
        Ok(never) => match never {},
        Err(e @ cairn_runtime::RuntimeError::CommandNotFound { .. }) => {
            eprintln!("cairn: {e}");
            Ok(ExitCode::from(127))
        }
        Err(e) => Err(miette!("{e}")),
    }
}
