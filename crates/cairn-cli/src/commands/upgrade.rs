//! `cairn upgrade`: re-resolve against the archive as it is now and report
//! what changed; `--release CODENAME` moves the environment to another Debian
//! release, writing nothing until the new resolution succeeds.

use crate::cli::UpgradeArgs;
use crate::environment::Environment;
use crate::output;
use cairn_manifest::{Lock, Manifest};
use miette::{Result, miette};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Debug, Serialize, PartialEq)]
pub struct Change {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub fn run(args: UpgradeArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    // A dry run writes nothing, but still reads a consistent manifest + lock.
    let _write = env.lock_for_write()?;
    let old = env.load_lock().ok();
    let (manifest, manifest_text) = match &args.release {
        Some(release) => with_release(&env, release, &args.packages)?,
        None => (env.load_manifest()?, None),
    };
    let pinned = pin_others(&manifest, old.as_ref(), &args.packages)?;
    if args.release.is_some() {
        check_packages_exist(&env, &manifest)?;
    }
    let mut lock = if args.dry_run {
        let store = crate::locking::open_store()?;
        let lock = crate::locking::resolve_lock(&pinned, &env.env_dir, &store)?;
        crate::locking::check_archive_not_older(old.as_ref(), &lock, args.allow_older_archive)?;
        lock
    } else {
        super::install::lock_and_fetch(&env, &pinned, args.allow_older_archive)?
    };
    report_archive_dates(old.as_ref(), &lock);
    // The pins are a resolution device, not part of the environment.
    lock.manifest_hash = manifest.resolution_hash();
    let changes = diff(old.as_ref(), &lock);
    if args.dry_run {
        output::status("dry run: nothing written");
    } else {
        let store = crate::locking::open_store()?;
        let notes = crate::script_notes::new_package_notes(&store, old.as_ref(), &lock)?;
        env.save(manifest_text.as_deref(), &lock)?;
        if let Some(release) = &args.release {
            output::status(format!("✓ moved to Debian {release}"));
        }
        if !args.json {
            crate::script_notes::warn(&notes);
        }
    }
    if args.json {
        output::print_json(&changes)?;
    } else if changes.is_empty() {
        output::status("✓ environment is up to date");
    } else {
        for c in &changes {
            let from = c.from.as_deref().unwrap_or("(new)");
            let to = c.to.as_deref().unwrap_or("(removed)");
            println!("{}: {from} -> {to}", c.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Says which archive date the environment now stands on, and from which.
fn report_archive_dates(old: Option<&Lock>, new: &Lock) {
    for archive in &new.archives {
        let before = old.and_then(|o| {
            o.archives
                .iter()
                .find(|a| a.name == archive.name && a.suite == archive.suite)
        });
        match before {
            Some(b) if b.date_epoch == archive.date_epoch => {}
            Some(b) => output::status(format!(
                "archive '{}' {}: {} (was {})",
                archive.name, archive.suite, archive.date, b.date
            )),
            None => output::status(format!(
                "archive '{}' {}: {}",
                archive.name, archive.suite, archive.date
            )),
        }
    }
}

/// The manifest moved to `release` (and its new text), checked before
/// anything is resolved.
fn with_release(
    env: &Environment,
    release: &str,
    only: &[String],
) -> Result<(Manifest, Option<String>)> {
    cairn_manifest::release::check_release(release).map_err(|b| {
        miette!(
            help = b.help.unwrap_or_default(),
            "--release {release}: {}",
            b.message
        )
    })?;
    if !only.is_empty() {
        return Err(miette!(
            help = "run `cairn upgrade --release CODENAME` alone: every package moves with the release",
            "--release moves every package; it cannot be combined with package names"
        ));
    }
    let current = env.load_manifest()?;
    if current.sources.is_some() {
        return Err(miette!(
            help =
                "edit the suites of [sources] in manifest.toml instead, then run `cairn upgrade`",
            "this environment names its own [sources], so its release is theirs"
        ));
    }
    let mut doc =
        cairn_manifest::ManifestDoc::open(&env.manifest_path()).map_err(miette::Report::new)?;
    doc.set_release(release);
    let text = doc.to_string();
    let manifest = Manifest::parse(&env.manifest_path(), &text).map_err(miette::Report::new)?;
    Ok((manifest, Some(text)))
}

/// Every requested package must exist in the new release; those that do not
/// are named together, each with the packages that take its place there
/// (those whose `Breaks`/`Conflicts` name it, as Debian's renames declare),
/// so one run says everything to change.
fn check_packages_exist(env: &Environment, manifest: &Manifest) -> Result<()> {
    let store = crate::locking::open_store()?;
    let client = cairn_debian::ArchiveClient::new(store);
    let sources = crate::locking::sources_for(manifest, &env.env_dir);
    let mut missing = Vec::new();
    for system in manifest.systems_or_host() {
        let sys = crate::locking::load_index(&client, &sources, &system)?;
        for (id, entry) in manifest.install_for(&system) {
            let name = entry.pkg.as_str();
            if sys.index.by_name(name).next().is_some()
                || sys.index.providers(name).next().is_some()
            {
                continue;
            }
            let mut replacements: Vec<String> = sys
                .index
                .records
                .iter()
                .filter(|r| {
                    r.breaks
                        .iter()
                        .chain(&r.conflicts)
                        .any(|dep| dep.alternatives.iter().any(|d| d.name == name))
                })
                .map(|r| r.name.clone())
                .collect();
            replacements.sort();
            replacements.dedup();
            let line = match replacements.as_slice() {
                [] => format!(
                    "'{name}' ([install] {id}) is not in {}",
                    manifest.release_or_legacy()
                ),
                found => format!(
                    "'{name}' ([install] {id}) is not in {}; it is superseded by {}",
                    manifest.release_or_legacy(),
                    found.join(", ")
                ),
            };
            if !missing.contains(&line) {
                missing.push(line);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(miette!(
        help = "change these [install] entries (e.g. `cairn uninstall OLD && cairn install NEW`), then retry; nothing was written",
        "{} package(s) do not exist in the new release:\n  {}",
        missing.len(),
        missing.join("\n  ")
    ))
}

/// With `upgrade PKG...`, every other requested package stays at its locked version.
fn pin_others(manifest: &Manifest, old: Option<&Lock>, only: &[String]) -> Result<Manifest> {
    let mut pinned = manifest.clone();
    if only.is_empty() {
        return Ok(pinned);
    }
    for name in only {
        let known = manifest
            .install
            .iter()
            .any(|(id, e)| id == name || &e.pkg == name);
        if !known {
            return Err(miette!(
                "package '{name}' is not installed in this environment"
            ));
        }
    }
    let Some(old) = old else { return Ok(pinned) };
    for (id, entry) in pinned.install.iter_mut() {
        if only.iter().any(|n| n == id || n == &entry.pkg) || entry.version.is_some() {
            continue;
        }
        if let Some(p) = old.packages.iter().find(|p| p.name == entry.pkg) {
            entry.version = Some(
                cairn_manifest::parse_version_constraint(&p.version)
                    .map_err(|e| miette!("{e:?}"))?,
            );
        }
    }
    Ok(pinned)
}

/// Per package name (and system), what moved.
pub fn diff(old: Option<&Lock>, new: &Lock) -> Vec<Change> {
    let key = |p: &cairn_manifest::LockedPackage| (p.system.clone(), p.name.clone());
    let before: BTreeMap<_, _> = old
        .map(|l| {
            l.packages
                .iter()
                .map(|p| (key(p), p.version.clone()))
                .collect()
        })
        .unwrap_or_default();
    let after: BTreeMap<_, _> = new
        .packages
        .iter()
        .map(|p| (key(p), p.version.clone()))
        .collect();
    let mut names: Vec<_> = before.keys().chain(after.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|k| {
            let (from, to) = (before.get(&k).cloned(), after.get(&k).cloned());
            (from != to).then_some(Change {
                name: k.1,
                from,
                to,
            })
        })
        .collect()
}
