//! The node side of the Kubernetes handler: where things live on the node, the
//! published environment fetched from its registry (with the pod's Secret, if
//! any), and its rootfs in the node-local store that every pod shares.
//!
//! The store is an ordinary cairn store (`.deb`s verified against the lock's
//! sha256, unpacked once, rootfs of hardlinks per lock), so a second pod of
//! the same environment fetches and unpacks nothing; only the environment's
//! small artifact is read again, to resolve the live generation. Each handled
//! container appends one line to `kubernetes-v1/events.jsonl` in the store
//! (what was resolved and fetched; never a credential), for operators.

use super::fetch::{self, FetchedEnvironment};
use crate::commands::activate::assemble_locked;
use crate::diagnostic::Diagnose;
use cairn_manifest::activation::activation_for;
use cairn_runtime::Mode;
use cairn_runtime::kubernetes::ContainerRequest;
use cairn_store::Store;
use miette::{IntoDiagnostic, Result, miette};
use std::path::{Path, PathBuf};

/// The handler's settings, from its environment (containerd passes its own
/// environment to the shim, and the shim to the wrapper).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `CAIRN_NODE_STORE`, default `/var/lib/cairn`.
    pub store: PathBuf,
    /// `CAIRN_RUNC`, default the `runc` on PATH.
    pub runc: PathBuf,
    /// `CAIRN_ENTRYPOINT_BIN`, default the `cairn-entrypoint` beside this binary.
    pub entrypoint: PathBuf,
}

/// The store's own directory for the handler.
const HANDLER_DIR: &str = "kubernetes-v1";

impl NodeConfig {
    pub fn from_env() -> NodeConfig {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let store =
            var("CAIRN_NODE_STORE").map_or_else(|| PathBuf::from("/var/lib/cairn"), PathBuf::from);
        let runc = var("CAIRN_RUNC").map_or_else(find_runc, PathBuf::from);
        let entrypoint = var("CAIRN_ENTRYPOINT_BIN").map_or_else(
            || {
                std::env::current_exe()
                    .map(|exe| exe.with_file_name("cairn-entrypoint"))
                    .unwrap_or_else(|_| PathBuf::from("/usr/local/bin/cairn-entrypoint"))
            },
            PathBuf::from,
        );
        NodeConfig {
            store,
            runc,
            entrypoint,
        }
    }

    fn handler_dir(&self) -> PathBuf {
        self.store.join(HANDLER_DIR)
    }

    /// Where a container's copy-on-write layers live until `runc delete`.
    pub fn scratch_dir(&self, container_id: &str) -> PathBuf {
        // A container id from containerd is hex; anything else is flattened
        // so it cannot name a path outside the directory.
        let safe: String = container_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.handler_dir().join("containers").join(safe)
    }
}

/// The first `runc` on PATH that is not this wrapper.
fn find_runc() -> PathBuf {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("runc"))
        .find(|candidate| candidate.is_file() && candidate.canonicalize().ok() != me)
        .unwrap_or_else(|| PathBuf::from("runc"))
}

/// An environment ready to mount: its rootfs and its activation directory.
#[derive(Debug)]
pub struct Prepared {
    pub rootfs: PathBuf,
    /// `manifest.toml`, `manifest.lock`, `activation.json`.
    pub env_dir: PathBuf,
}

/// Fetches the environment the request names and makes it ready in the store.
pub fn prepare(
    config: &NodeConfig,
    request: &ContainerRequest,
    secret: Option<&Path>,
) -> Result<Prepared> {
    let fetched = fetch::fetch(&request.environment, secret)?;
    let reference = &request.environment;
    let manifest_path = PathBuf::from(format!("{reference}/manifest.toml"));
    let manifest_text = String::from_utf8(fetched.manifest_toml.clone())
        .map_err(|_| miette!("{reference}: manifest.toml is not UTF-8"))?;
    let manifest = cairn_manifest::Manifest::parse(&manifest_path, &manifest_text)
        .map_err(miette::Report::new)?;
    let lock_text = String::from_utf8(fetched.lock.clone())
        .map_err(|_| miette!("{reference}: manifest.lock is not UTF-8"))?;
    let lock = cairn_manifest::Lock::parse(
        &PathBuf::from(format!("{reference}/manifest.lock")),
        &lock_text,
    )
    .map_err(miette::Report::new)?;
    let store = Store::open(&config.store).diagnose()?;
    let assembled = assemble_locked(&store, &lock)?;
    cairn_runtime::kubernetes::ensure_mountpoints(&assembled.rootfs).map_err(|e| miette!("{e}"))?;
    let env_dir = activation_dir(config, &fetched, &manifest, request.mode)?;
    record_event(
        config,
        request,
        &fetched,
        assembled.fetched,
        assembled.assembled,
    );
    Ok(Prepared {
        rootfs: assembled.rootfs,
        env_dir,
    })
}

/// `kubernetes-v1/envs/<key>`: the files the in-container cairn reads at
/// `/opt/cairn/env`, written once per environment digest and mode
/// (temp dir, then rename, so a pod never sees half of it).
fn activation_dir(
    config: &NodeConfig,
    fetched: &FetchedEnvironment,
    manifest: &cairn_manifest::Manifest,
    mode: Mode,
) -> Result<PathBuf> {
    let key = cairn_store::sha256_hex(
        format!("{}\n{}\n{mode:?}\n", fetched.digest, fetched.name).as_bytes(),
    );
    let envs = config.handler_dir().join("envs");
    let dir = envs.join(&key);
    if dir.is_dir() {
        return Ok(dir);
    }
    fs_err::create_dir_all(&envs).into_diagnostic()?;
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&envs)
        .into_diagnostic()?;
    let name = manifest
        .name
        .clone()
        .unwrap_or_else(|| fetched.name.clone());
    let mut activation = activation_for(manifest, &name, None);
    activation.mode = mode;
    fs_err::write(staging.path().join("manifest.toml"), &fetched.manifest_toml)
        .into_diagnostic()?;
    fs_err::write(staging.path().join("manifest.lock"), &fetched.lock).into_diagnostic()?;
    cairn_runtime::write_activation(
        &staging.path().join(cairn_runtime::ACTIVATION_FILE),
        &activation,
    )
    .map_err(|e| miette!("{e}"))?;
    set_mode(staging.path(), 0o755)?;
    match fs_err::rename(staging.path(), &dir) {
        Ok(()) => {
            let _ = staging.keep();
        }
        // Another pod's handler got there first with the same content.
        Err(_) if dir.is_dir() => {}
        Err(e) => return Err(miette!("{e}")),
    }
    Ok(dir)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).into_diagnostic()
}

/// Appends what the handler did for one container to `events.jsonl`.
fn record_event(
    config: &NodeConfig,
    request: &ContainerRequest,
    fetched: &FetchedEnvironment,
    debs_fetched: usize,
    assembled: bool,
) {
    let line = serde_json::json!({
        "container": request.container,
        "environment": request.environment,
        "generation": fetched.generation,
        "digest": fetched.digest,
        "debs_fetched": debs_fetched,
        "rootfs_assembled": assembled,
    });
    let path = config.handler_dir().join("events.jsonl");
    let written = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        tracing::warn!(
            "cannot record the handler's event in {}: {e}",
            path.display()
        );
    }
}
