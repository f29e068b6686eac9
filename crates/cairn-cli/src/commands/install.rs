//! `cairn install` and `cairn uninstall`: edit `[install]` keeping the user's
//! formatting, re-lock, fetch, and only then write both files.

use crate::cli::{InstallArgs, UninstallArgs};
use crate::environment::Environment;
use crate::{locking, output, script_notes};
use cairn_manifest::{Lock, Manifest, ManifestDoc};
use miette::{Result, miette};
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

pub fn run(args: InstallArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    if args.id.is_some() && args.packages.len() != 1 {
        return Err(miette!("--id needs exactly one package"));
    }
    let _write = env.lock_for_write()?;
    // Validated after the edit: adding a package may be what makes it valid.
    let mut doc =
        ManifestDoc::open_unvalidated(&env.manifest_path()).map_err(miette::Report::new)?;
    let mut added = Vec::new();
    for spec in &args.packages {
        let (pkg, version) = split_spec(spec)?;
        let id = args.id.clone().unwrap_or_else(|| pkg.to_string());
        doc.add_package(&id, pkg, version);
        added.push(pkg.to_string());
    }
    let text = doc.to_string();
    let manifest = Manifest::parse(&env.manifest_path(), &text).map_err(miette::Report::new)?;
    let old = env.load_lock().ok();
    let lock = lock_and_fetch(&env, &manifest, false)?;
    // Before saving: a .deb that cannot be read fails the install whole.
    let store = locking::open_store()?;
    let notes = script_notes::new_package_notes(&store, old.as_ref(), &lock)?;
    env.save(Some(&text), &lock)?;
    let name = manifest_name(&manifest, &env);
    if args.json {
        output::print_json(&serde_json::json!({
            "environment": name,
            "installed": added,
            "packages_locked": lock.packages.len(),
            "not_applied": notes,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for pkg in added {
        output::status(format!("✓ '{pkg}' installed to environment '{name}'"));
    }
    output::status(format!("  {} packages locked", lock.packages.len()));
    script_notes::warn(&notes);
    Ok(ExitCode::SUCCESS)
}

/// `hello=2.10-3` → (`hello`, Some(`2.10-3`)); `python3=>=3.11` keeps the operator.
fn split_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let (pkg, version) = match spec.split_once('=') {
        Some((p, v)) => (p, Some(v.trim())),
        None => (spec, None),
    };
    let valid_name = !pkg.is_empty()
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !valid_name {
        return Err(miette!(
            help = "Debian package names use lowercase letters, digits and + - .",
            "invalid package name '{pkg}'"
        ));
    }
    if version == Some("") {
        return Err(miette!(
            help = "write PKG=VERSION, e.g. hello=2.10-3 or 'python3=>=3.11'",
            "empty version constraint in '{spec}'"
        ));
    }
    Ok((pkg, version))
}

/// Resolves the manifest and fetches every locked `.deb`, verified. An
/// archive older than the one already locked is refused unless `allow_older`.
pub fn lock_and_fetch(env: &Environment, manifest: &Manifest, allow_older: bool) -> Result<Lock> {
    let store = locking::open_store()?;
    let lock = locking::resolve_lock(manifest, &env.env_dir, &store)?;
    let old = env.load_lock().ok();
    locking::check_archive_not_older(old.as_ref(), &lock, allow_older)?;
    let all: Vec<_> = lock.packages.iter().collect();
    locking::fetch_debs(&store, &all)?;
    Ok(lock)
}

pub fn manifest_name(manifest: &Manifest, env: &Environment) -> String {
    manifest.name.clone().unwrap_or_else(|| env.default_name())
}

pub fn run_uninstall(args: UninstallArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let _write = env.lock_for_write()?;
    let mut doc = ManifestDoc::open(&env.manifest_path()).map_err(miette::Report::new)?;
    for name in &args.packages {
        if !doc.remove_package(name) {
            let manifest = env.load_manifest()?;
            let installed: Vec<_> = manifest.install.keys().cloned().collect();
            return Err(miette!(
                help = format!("installed: {}", installed.join(", ")),
                "package '{name}' is not installed in this environment"
            ));
        }
    }
    let text = doc.to_string();
    let manifest = Manifest::parse(&env.manifest_path(), &text).map_err(miette::Report::new)?;
    let lock = match env.load_lock() {
        Ok(old) => prune_lock(&old, &manifest),
        Err(_) => lock_and_fetch(&env, &manifest, false)?,
    };
    env.save(Some(&text), &lock)?;
    for name in &args.packages {
        output::status(format!(
            "✓ '{name}' uninstalled from environment '{}'",
            manifest_name(&manifest, &env)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Drops packages no longer reachable from a remaining request, keeping every
/// other version exactly as locked (uninstall never upgrades).
pub(crate) fn prune_lock(old: &Lock, manifest: &Manifest) -> Lock {
    let requested: BTreeSet<&str> = manifest.install.values().map(|e| e.pkg.as_str()).collect();
    let mut lock = Lock {
        manifest_hash: manifest.resolution_hash(),
        archives: old.archives.clone(),
        ..Lock::default()
    };
    let systems: BTreeSet<&str> = old.packages.iter().map(|p| p.system.as_str()).collect();
    for system in systems {
        let by_name: BTreeMap<&str, _> = old
            .packages
            .iter()
            .filter(|p| p.system == system)
            .map(|p| (p.name.as_str(), p))
            .collect();
        let mut required_by: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for root in by_name.keys().filter(|n| requested.contains(*n)) {
            let mut stack = vec![*root];
            while let Some(name) = stack.pop() {
                let Some(pkg) = by_name.get(name) else {
                    continue;
                };
                if required_by
                    .entry(name)
                    .or_default()
                    .insert(root.to_string())
                {
                    stack.extend(pkg.depends.iter().map(String::as_str));
                }
            }
        }
        // The Essential set belongs to every environment (unless
        // `[options] essential = false`, and then none is locked): keep it
        // and what it depends on, as a fresh resolve would.
        let mut stack: Vec<&str> = by_name
            .values()
            .filter(|p| p.essential)
            .map(|p| p.name.as_str())
            .collect();
        while let Some(name) = stack.pop() {
            let Some(pkg) = by_name.get(name) else {
                continue;
            };
            if !required_by.contains_key(name) {
                required_by.insert(name, BTreeSet::new());
                stack.extend(pkg.depends.iter().map(String::as_str));
            }
        }
        for (name, roots) in required_by {
            let mut pkg = by_name[name].clone();
            pkg.requested = requested.contains(name);
            pkg.required_by = roots.into_iter().collect();
            lock.packages.push(pkg);
        }
    }
    lock.normalize();
    lock
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(name: &str, depends: &[&str], essential: bool) -> cairn_manifest::LockedPackage {
        cairn_manifest::LockedPackage {
            name: name.into(),
            version: "1".into(),
            system: "x86_64-linux".into(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            essential,
            ..Default::default()
        }
    }

    #[test]
    fn pruning_keeps_the_essential_set_and_what_it_needs() {
        let old = Lock {
            packages: vec![
                locked("hello", &["libc6"], false),
                locked("libc6", &[], false),
                locked("dash", &["libc6"], true),
                locked("orphan", &[], false),
            ],
            ..Lock::default()
        };
        let manifest = Manifest::parse(
            std::path::Path::new("manifest.toml"),
            "version = 1\n[install]\n",
        )
        .unwrap();
        let pruned = prune_lock(&old, &manifest);
        let names: Vec<&str> = pruned.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["dash", "libc6"],
            "hello and its orphan go, Essential stays"
        );
        assert!(pruned.packages.iter().all(|p| p.required_by.is_empty()));
    }

    #[test]
    fn split_spec_keeps_operators() {
        assert_eq!(split_spec("hello").unwrap(), ("hello", None));
        assert_eq!(
            split_spec("hello=2.10-3").unwrap(),
            ("hello", Some("2.10-3"))
        );
        assert_eq!(
            split_spec("python3=>=3.11").unwrap(),
            ("python3", Some(">=3.11"))
        );
        assert!(split_spec("Bad_Name").is_err());
        assert!(split_spec("hello=").is_err());
    }
}
