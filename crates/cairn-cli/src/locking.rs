//! From manifest to lock and back to files: turns `[sources]` into archive
//! sources, resolves `[install]` per system, records the result as a lock, and
//! fetches the locked `.deb`s into the store.

use crate::diagnostic::Diagnose;
use crate::progress::DownloadProgress;
use cairn_debian::fetch::{DebToFetch, Keyring};
use cairn_debian::{ArchiveClient, PackageIndex, Relation, Request, Source};
use cairn_manifest::{Lock, LockedArchive, LockedPackage, Manifest};
use cairn_store::Store;
use miette::{Result, miette};
use std::path::{Path, PathBuf};

/// Archive sources for `manifest`, one per (source, suite).
pub fn sources_for(manifest: &Manifest, manifest_dir: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    for (name, entry) in manifest.sources_or_default() {
        let keyrings = vec![match entry.keyring.as_deref() {
            None | Some("debian") => Keyring::DebianArchive,
            Some(path) => Keyring::File(manifest_dir.join(path)),
        }];
        for suite in &entry.suites {
            out.push(Source {
                name: name.clone(),
                url: entry.url.trim_end_matches('/').to_string(),
                suite: suite.clone(),
                components: entry.components.clone(),
                keyrings: keyrings.clone(),
            });
        }
    }
    out
}

/// The resolution requests for one system.
pub fn requests_for(manifest: &Manifest, system: &str) -> Result<Vec<Request>> {
    let mut requests = Vec::new();
    for (id, entry) in &manifest.install {
        if entry
            .systems
            .as_ref()
            .is_some_and(|s| !s.iter().any(|x| x == system))
        {
            continue;
        }
        let text = match &entry.version {
            Some(constraint) => format!("{} ({constraint})", entry.pkg),
            None => entry.pkg.clone(),
        };
        let relation = Relation::parse(&text).map_err(|e| {
            miette!(
                help = "versions look like `2.10-3`, `>= 3.11` or `<< 4`",
                "install.{id}: {e}"
            )
        })?;
        requests.push(Request { relation });
    }
    let has_bash = requests.iter().any(|r| r.relation.name == "bash");
    if cairn_manifest::activation::needs_bash(manifest) && !has_bash {
        requests.push(Request {
            relation: Relation::named("bash"),
        });
    }
    Ok(requests)
}

/// Everything needed to resolve one system: its archive index and releases.
pub struct SystemIndex {
    pub arch: String,
    pub index: PackageIndex,
    pub releases: Vec<cairn_debian::fetch::ReleaseInfo>,
}

/// Downloads and verifies the indices for `system`.
pub fn load_index(client: &ArchiveClient, sources: &[Source], system: &str) -> Result<SystemIndex> {
    let arch = cairn_manifest::debian_arch(system)
        .ok_or_else(|| miette!("unsupported system '{system}'"))?
        .to_string();
    let progress = DownloadProgress::new("Indices", 0);
    let (index, releases) = client.fetch_index(sources, &arch, &progress).diagnose()?;
    progress.finish();
    Ok(SystemIndex {
        arch,
        index,
        releases,
    })
}

/// Resolves `manifest` against the archives and returns a new lock.
pub fn resolve_lock(manifest: &Manifest, manifest_dir: &Path, store: &Store) -> Result<Lock> {
    let client = ArchiveClient::new(store.clone());
    let sources = sources_for(manifest, manifest_dir);
    let mut lock = Lock {
        manifest_hash: manifest.resolution_hash(),
        ..Lock::default()
    };
    for system in manifest.systems_or_host() {
        let sys = load_index(&client, &sources, &system)?;
        let requests = requests_for(manifest, &system)?;
        let resolution =
            cairn_debian::resolve::resolve(&sys.index, &requests, &sys.arch).diagnose()?;
        record_archives(&mut lock, &sys);
        let requested: Vec<&str> = manifest.install.values().map(|e| e.pkg.as_str()).collect();
        for (name, chosen) in &resolution.packages {
            let record = &sys.index.records[chosen.record];
            let source = &sources[record.origin];
            lock.packages.push(LockedPackage {
                name: name.clone(),
                version: record.version.to_string(),
                architecture: record.architecture.clone(),
                system: system.clone(),
                archive: source.name.clone(),
                suite: source.suite.clone(),
                url: source.url.clone(),
                filename: record.filename.clone(),
                size: record.size,
                sha256: record.sha256.clone(),
                depends: chosen.depends.clone(),
                requested: chosen.requested && requested.contains(&name.as_str()),
                required_by: chosen.required_by.clone(),
                installed_size: record.installed_size,
                summary: record.summary.clone(),
                essential: record.essential,
                multi_arch: multi_arch_name(record.multi_arch).to_string(),
            });
        }
    }
    lock.normalize();
    Ok(lock)
}

fn multi_arch_name(m: cairn_debian::MultiArch) -> &'static str {
    match m {
        cairn_debian::MultiArch::No => "no",
        cairn_debian::MultiArch::Same => "same",
        cairn_debian::MultiArch::Foreign => "foreign",
        cairn_debian::MultiArch::Allowed => "allowed",
    }
}

fn record_archives(lock: &mut Lock, sys: &SystemIndex) {
    for r in &sys.releases {
        let archive = LockedArchive {
            name: r.source.clone(),
            url: r.url.clone(),
            suite: r.suite.clone(),
            date: r.date.clone(),
            date_epoch: r.date_epoch,
            inrelease_sha256: r.inrelease_sha256.clone(),
        };
        if !lock.archives.contains(&archive) {
            lock.archives.push(archive);
        }
    }
}

/// Whether `lock` still matches `manifest`, including the bash that hooks,
/// profiles and services need.
pub fn lock_is_fresh(lock: &Lock, manifest: &Manifest) -> bool {
    lock.is_fresh_for(manifest)
        && (!cairn_manifest::activation::needs_bash(manifest)
            || lock.packages.iter().any(|p| p.name == "bash"))
}

/// Downloads (or verifies in the cache) every `.deb` of `packages`.
pub fn fetch_debs(store: &Store, packages: &[&LockedPackage]) -> Result<Vec<PathBuf>> {
    let items: Vec<DebToFetch> = packages
        .iter()
        .map(|p| DebToFetch {
            name: p.name.clone(),
            url: format!("{}/{}", p.url.trim_end_matches('/'), p.filename),
            filename: p.filename.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
        })
        .collect();
    let total = items.iter().map(|i| i.size).sum();
    let progress = DownloadProgress::new("Fetching", total);
    let client = ArchiveClient::new(store.clone());
    let paths = client.fetch_debs(&items, &progress).diagnose()?;
    progress.finish();
    Ok(paths)
}

/// Opens the cache, naming the variable to set when there is none.
pub fn open_store() -> Result<Store> {
    Store::from_env().diagnose()
}
