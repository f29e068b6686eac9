//! `cairn kubernetes gc`: removes from the node store what no live container
//! uses, and only that.
//!
//! Liveness is the store's use locks ([`cairn_store::Store::use_entry`]): each
//! handled container's init holds its rootfs and its activation directory in
//! use until it exits (see [`super::node`]), so an entry whose lock gc can
//! take exclusively belongs to no running or created container. The `.deb`s
//! and unpacked trees that the live environments' locks name stay (a pod of
//! the same environment then fetches nothing); every other one goes, and a
//! later pod fetches and assembles what it needs again, verified as always.
//! gc first waits until no container is being prepared ([`super::node::STARTING`]),
//! so it never collects a fetch in progress.

use super::node::{ENV_PREFIX, HANDLER_DIR, NodeConfig, STARTING};
use crate::cli::KubernetesGcArgs;
use crate::commands::cache::human_size;
use crate::diagnostic::Diagnose;
use crate::output;
use cairn_store::{Bucket, Store, evict_unused};
use miette::{IntoDiagnostic, Result, miette};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long gc waits for containers being prepared (a cold fetch) to finish.
const STARTING_WAIT: Duration = Duration::from_secs(300);
/// Temp entries younger than this may belong to a handler still running.
const TEMP_MIN_AGE: Duration = Duration::from_secs(3600);

/// What gc removed (or, with `--dry-run`, would remove) and what it kept.
#[derive(Debug, Default, Serialize)]
pub struct NodeGcReport {
    pub store: String,
    pub dry_run: bool,
    /// Activation directories (`environments-v1/k8s-…`) removed.
    pub environments_removed: Vec<String>,
    /// Assembled rootfs (`rootfs-v1/<key>`) removed.
    pub rootfs_removed: Vec<String>,
    pub debs_removed: usize,
    pub unpacked_removed: usize,
    pub temps_removed: usize,
    /// Environments and rootfs that live containers use, kept.
    pub environments_in_use: usize,
    pub rootfs_in_use: usize,
    /// Packages the live environments lock, kept.
    pub packages_kept: usize,
    pub freed: u64,
}

pub fn run(args: &KubernetesGcArgs) -> Result<ExitCode> {
    let root = match &args.store {
        Some(dir) => dir.clone(),
        None => NodeConfig::from_env().store,
    };
    let report = collect(&root, args.dry_run)?;
    if args.json {
        output::print_json(&report)?;
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        output::status(format!(
            "{verb} {} environments, {} rootfs, {} .debs, {} unpacked packages ({}); kept {} environments and {} rootfs in use by live containers",
            report.environments_removed.len(),
            report.rootfs_removed.len(),
            report.debs_removed,
            report.unpacked_removed,
            human_size(report.freed),
            report.environments_in_use,
            report.rootfs_in_use,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Collects the node store at `root`.
pub fn collect(root: &Path, dry_run: bool) -> Result<NodeGcReport> {
    if !root.join(HANDLER_DIR).is_dir() {
        return Err(miette!(
            help = "point --store (or CAIRN_NODE_STORE) at the store cairn-runc uses on this node; gc never touches a user's cache",
            "{} is not a node store: it has no {HANDLER_DIR} directory",
            root.display()
        ));
    }
    let store = Store::open(root).diagnose()?;
    let _no_one_starting = wait_for_starting(&store)?;
    let mut report = NodeGcReport {
        store: root.display().to_string(),
        dry_run,
        ..NodeGcReport::default()
    };
    let system = cairn_manifest::host_system().ok_or_else(|| miette!("unsupported host"))?;
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let envs = store.bucket(Bucket::Environments).diagnose()?;
    for name in entry_names(&envs)? {
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        match evict_unused(&store, Bucket::Environments, &name, &name, dry_run).diagnose()? {
            Some(size) => {
                report.freed += size;
                report.environments_removed.push(name);
            }
            None => {
                report.environments_in_use += 1;
                keep.extend(locked_packages(&envs.join(&name), system)?);
            }
        }
    }
    report.packages_kept = keep.len();
    let rootfs = store.bucket(Bucket::Rootfs).diagnose()?;
    for name in entry_names(&rootfs)?.into_iter().filter(|n| is_sha256(n)) {
        match evict_unused(&store, Bucket::Rootfs, &name, &name, dry_run).diagnose()? {
            Some(size) => {
                report.freed += size;
                report.rootfs_removed.push(name);
            }
            None => report.rootfs_in_use += 1,
        }
    }
    let debs = store.bucket(Bucket::Debs).diagnose()?;
    for name in entry_names(&debs)? {
        let Some(sha) = name.strip_suffix(".deb").filter(|s| is_sha256(s)) else {
            continue;
        };
        if keep.contains(sha) {
            continue;
        }
        if let Some(size) = evict_unused(&store, Bucket::Debs, sha, &name, dry_run).diagnose()? {
            report.freed += size;
            report.debs_removed += 1;
        }
    }
    let unpacked = store.bucket(Bucket::Unpacked).diagnose()?;
    for name in entry_names(&unpacked)?.into_iter().filter(|n| is_sha256(n)) {
        if keep.contains(&name) {
            continue;
        }
        if let Some(size) =
            evict_unused(&store, Bucket::Unpacked, &name, &name, dry_run).diagnose()?
        {
            report.freed += size;
            report.unpacked_removed += 1;
        }
    }
    if !dry_run {
        let options = cairn_store::GcOptions {
            max_size: None,
            temp_min_age: TEMP_MIN_AGE,
            // A node store reads no archive indices: environments come locked.
            index_max_age: None,
        };
        let temps = cairn_store::collect_garbage(&store, &options).diagnose()?;
        report.temps_removed = temps.temps_removed.len();
        report.freed += temps.freed;
    }
    Ok(report)
}

/// Waits until no container is being prepared; holds that until dropped.
fn wait_for_starting(store: &Store) -> Result<cairn_store::EntryLock> {
    let end = Instant::now() + STARTING_WAIT;
    let mut told = false;
    loop {
        if let Some(lock) = store.try_evict_lock(Bucket::Rootfs, STARTING).diagnose()? {
            return Ok(lock);
        }
        if Instant::now() > end {
            return Err(miette!(
                help = "a pod's environment is still being fetched; run gc again later",
                "containers were still being prepared on this node after {}s",
                STARTING_WAIT.as_secs()
            ));
        }
        if !told {
            output::status("waiting for containers being prepared on this node");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The sha256 of every package an activation directory's lock names for `system`.
fn locked_packages(env_dir: &Path, system: &str) -> Result<Vec<String>> {
    let path = env_dir.join("manifest.lock");
    let text = fs_err::read_to_string(&path).into_diagnostic()?;
    let lock = cairn_manifest::Lock::parse(&path, &text).map_err(miette::Report::new)?;
    Ok(lock
        .packages_for(system)
        .map(|p| p.sha256.clone())
        .collect())
}

/// Names in a bucket, without lock and temp entries (dot names).
fn entry_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs_err::read_dir(dir).into_diagnostic()? {
        let name = entry.into_diagnostic()?.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') {
            names.push(name.into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}
