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
//!
//! What a container uses, its rootfs and its activation directory, is held
//! with the store's use locks ([`Store::use_entry`]) from before it is
//! checked until the container's init exits: the wrapper hands the locks'
//! descriptors to the container (runc `--preserve-fds`), so they live exactly
//! as long as it does, crash or not. `cairn kubernetes gc` ([`super::gc`])
//! removes what no one holds; while a container is being prepared it holds
//! [`STARTING`] shared, and gc waits for it, so a fetch in progress is never
//! collected from under a pod.

use super::fetch::{self, FetchedEnvironment};
use crate::commands::activate::assemble_locked;
use crate::diagnostic::Diagnose;
use cairn_manifest::activation::activation_for;
use cairn_runtime::Mode;
use cairn_runtime::kubernetes::ContainerRequest;
use cairn_store::{Bucket, EntryLock, Store};
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

/// The store's own directory for the handler; its presence marks a node store.
pub const HANDLER_DIR: &str = "kubernetes-v1";
/// The entry (in the rootfs bucket's use locks) that a container being
/// prepared holds shared and gc exclusive.
pub const STARTING: &str = "kubernetes-starting";
/// Activation directories are `environments-v1/k8s-<key>` in the node store.
pub const ENV_PREFIX: &str = "k8s-";

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

    pub fn handler_dir(&self) -> PathBuf {
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
    /// Use locks on both, for the container to hold while it lives.
    pub in_use: Vec<EntryLock>,
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
    fs_err::create_dir_all(config.handler_dir()).into_diagnostic()?;
    // gc waits while any container is being prepared (see the module doc).
    let _starting = store.use_entry(Bucket::Rootfs, STARTING).diagnose()?;
    let (env_dir, env_in_use) = activation_dir(&store, &fetched, &manifest, request.mode)?;
    let assembled = assemble_locked(&store, &lock)?;
    let rootfs_key = assembled
        .rootfs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| miette!("{}: no rootfs key", assembled.rootfs.display()))?;
    let rootfs_in_use = store.use_entry(Bucket::Rootfs, &rootfs_key).diagnose()?;
    cairn_runtime::kubernetes::ensure_mountpoints(&assembled.rootfs).map_err(|e| miette!("{e}"))?;
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
        in_use: vec![env_in_use, rootfs_in_use],
    })
}

/// `environments-v1/k8s-<key>`: the files the in-container cairn reads at
/// `/opt/cairn/env`, written once per environment digest and mode
/// (temp dir, then rename, so a pod never sees half of it), and held in use.
fn activation_dir(
    store: &Store,
    fetched: &FetchedEnvironment,
    manifest: &cairn_manifest::Manifest,
    mode: Mode,
) -> Result<(PathBuf, EntryLock)> {
    let key = format!(
        "{ENV_PREFIX}{}",
        cairn_store::sha256_hex(
            format!("{}\n{}\n{mode:?}\n", fetched.digest, fetched.name).as_bytes(),
        )
    );
    let envs = store.bucket(Bucket::Environments).diagnose()?;
    // In use before it is checked, so gc cannot remove what was found.
    let in_use = store.use_entry(Bucket::Environments, &key).diagnose()?;
    let dir = envs.join(&key);
    if dir.is_dir() {
        return Ok((dir, in_use));
    }
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
    Ok((dir, in_use))
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
