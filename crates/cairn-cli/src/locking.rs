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

/// [`load_index`], with every record's details (maintainer, homepage, ...),
/// for `show`.
pub fn load_index_with_details(
    client: &ArchiveClient,
    sources: &[Source],
    system: &str,
) -> Result<SystemIndex> {
    let arch = cairn_manifest::debian_arch(system)
        .ok_or_else(|| miette!("unsupported system '{system}'"))?
        .to_string();
    let progress = DownloadProgress::new("Indices", 0);
    let (index, releases) = client
        .fetch_index_with_details(sources, &arch, &progress)
        .diagnose()?;
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
        let resolution = cairn_debian::resolve::resolve_with(
            &sys.index,
            &requests,
            &sys.arch,
            &resolve_options(manifest),
        )
        .diagnose()?;
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

/// What Debian installs beside the requested packages: the Essential set
/// and Recommends (apt's default), each switchable in `[options]`, and
/// Recommends per entry (`gcc.recommends = false`).
fn resolve_options(manifest: &Manifest) -> cairn_debian::resolve::ResolveOptions {
    cairn_debian::resolve::ResolveOptions {
        essential: manifest.options.essential,
        recommends: manifest.options.recommends,
        recommends_for: manifest
            .install
            .values()
            .filter_map(|e| e.recommends.map(|r| (e.pkg.clone(), r)))
            .collect(),
    }
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

/// Refuses a re-lock against an archive whose signed InRelease is older than
/// the one `old` was locked against: on a plain-http mirror a replayed,
/// still-signed old InRelease would otherwise silently downgrade packages
/// (apt has the same check). `allow_older` is `upgrade --allow-older-archive`.
pub fn check_archive_not_older(old: Option<&Lock>, new: &Lock, allow_older: bool) -> Result<()> {
    let Some(old) = old else { return Ok(()) };
    if allow_older {
        return Ok(());
    }
    for archive in &new.archives {
        let same = |a: &&LockedArchive| {
            a.name == archive.name
                && a.suite == archive.suite
                && a.url.trim_end_matches('/') == archive.url.trim_end_matches('/')
        };
        if let Some(locked) = old.archives.iter().find(same)
            && archive.date_epoch < locked.date_epoch
        {
            return Err(miette!(
                help = "a mirror serving an older (possibly replayed) InRelease could downgrade packages; \
                        retry later or use another mirror, or pass `cairn upgrade --allow-older-archive` \
                        if you mean to go back",
                "archive '{}' ({} {}) is older than the locked one: its InRelease is dated {}, the lock has {}",
                archive.name,
                archive.url,
                archive.suite,
                archive.date,
                locked.date
            ));
        }
    }
    Ok(())
}

/// Whether `lock` still matches `manifest`, including the bash that hooks,
/// profiles and services need.
pub fn lock_is_fresh(lock: &Lock, manifest: &Manifest) -> bool {
    lock.is_fresh_for(manifest)
        && (!cairn_manifest::activation::needs_bash(manifest)
            || lock.packages.iter().any(|p| p.name == "bash"))
}

/// The environment's lock, re-locked first when `manifest.toml` was edited
/// by hand since (as flox does): entries already locked keep their versions,
/// only new or changed entries are resolved, and nothing is upgraded (that is
/// `cairn upgrade`). Removals alone re-lock offline, by pruning.
pub fn current_lock(env: &crate::environment::Environment, manifest: &Manifest) -> Result<Lock> {
    let load = || -> Result<Option<Lock>> {
        if env.lock_path().is_file() {
            env.load_lock().map(Some)
        } else {
            Ok(None)
        }
    };
    let fresh = |old: &Option<Lock>| {
        old.as_ref()
            .filter(|old| lock_is_fresh(old, manifest))
            .cloned()
    };
    if let Some(lock) = fresh(&load()?) {
        return Ok(lock);
    }
    // Re-locking writes the lock: take the environment's write lock and look
    // again, since another command may have re-locked while we waited.
    let _write = env.lock_for_write()?;
    let old = load()?;
    if let Some(lock) = fresh(&old) {
        return Ok(lock);
    }
    let mut notes = Vec::new();
    let lock = match old.as_ref().filter(|old| only_removals(old, manifest)) {
        Some(old) => crate::commands::install::prune_lock(old, manifest),
        None => {
            let store = open_store()?;
            let pinned = pin_locked(manifest, old.as_ref())?;
            let mut lock = resolve_lock(&pinned, &env.env_dir, &store)?;
            check_archive_not_older(old.as_ref(), &lock, false)?;
            lock.manifest_hash = manifest.resolution_hash();
            let all: Vec<_> = lock.packages.iter().collect();
            fetch_debs(&store, &all)?;
            notes = crate::script_notes::new_package_notes(&store, old.as_ref(), &lock)?;
            lock
        }
    };
    env.save(None, &lock)?;
    crate::output::status(format!(
        "✓ re-locked {} after manifest.toml changed ({} packages)",
        env.lock_path().display(),
        lock.packages.len()
    ));
    crate::script_notes::warn(&notes);
    Ok(lock)
}

/// Whether every requested package is already locked for every system, so
/// the edit only removed entries (and pruning the lock is enough).
fn only_removals(old: &Lock, manifest: &Manifest) -> bool {
    let systems = manifest.systems_or_host();
    let locked_systems: std::collections::BTreeSet<&str> =
        old.packages.iter().map(|p| p.system.as_str()).collect();
    let same_systems = systems.len() == locked_systems.len()
        && systems.iter().all(|s| locked_systems.contains(s.as_str()));
    let bash_ok = !cairn_manifest::activation::needs_bash(manifest)
        || old.packages.iter().any(|p| p.name == "bash");
    same_systems
        && bash_ok
        && same_archives(old, manifest)
        && systems.iter().all(|system| {
            manifest.install_for(system).all(|(_, entry)| {
                entry.version.is_none()
                    && old
                        .packages
                        .iter()
                        .any(|p| p.system == *system && p.requested && p.name == entry.pkg)
            })
        })
}

/// Whether the lock came from exactly the manifest's sources and suites.
fn same_archives(old: &Lock, manifest: &Manifest) -> bool {
    let locked: std::collections::BTreeSet<(&str, &str, &str)> = old
        .archives
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.url.trim_end_matches('/'),
                a.suite.as_str(),
            )
        })
        .collect();
    let sources = manifest.sources_or_default();
    let wanted: std::collections::BTreeSet<(&str, &str, &str)> = sources
        .iter()
        .flat_map(|(name, s)| {
            s.suites
                .iter()
                .map(move |suite| (name.as_str(), s.url.trim_end_matches('/'), suite.as_str()))
        })
        .collect();
    locked == wanted
}

/// `manifest` with every entry that is already locked pinned to its locked
/// version, so a re-lock resolves only what is new.
fn pin_locked(manifest: &Manifest, old: Option<&Lock>) -> Result<Manifest> {
    let mut pinned = manifest.clone();
    let Some(old) = old else { return Ok(pinned) };
    for entry in pinned.install.values_mut() {
        if entry.version.is_some() {
            continue;
        }
        if let Some(p) = old
            .packages
            .iter()
            .find(|p| p.requested && p.name == entry.pkg)
        {
            entry.version = Some(
                cairn_manifest::parse_version_constraint(&p.version)
                    .map_err(|e| miette!("locked version of {}: {e:?}", p.name))?,
            );
        }
    }
    Ok(pinned)
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
