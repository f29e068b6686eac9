//! `cairn upgrade`: re-resolve against the archive as it is now and report
//! what changed.

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
    let manifest = env.load_manifest()?;
    let old = env.load_lock().ok();
    let pinned = pin_others(&manifest, old.as_ref(), &args.packages)?;
    let mut lock = super::install::lock_and_fetch(&env, &pinned)?;
    // The pins are a resolution device, not part of the environment.
    lock.manifest_hash = manifest.resolution_hash();
    let changes = diff(old.as_ref(), &lock);
    env.save(None, &lock)?;
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
