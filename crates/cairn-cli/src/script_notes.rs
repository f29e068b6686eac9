//! The warning a lock change prints once per package it adds: what the
//! package's maintainer scripts do that cairn does not apply (`locale-gen`,
//! `ssh-keygen`, debconf questions, ...), so nobody learns it from a missing
//! locale at run time. `cairn show PKG` gives the same notes at any time.
//!
//! Owns which packages count as new (by name and system: an upgrade of a
//! package already locked, or a re-lock, says nothing again) and the wording
//! of the lines; the notes themselves come from cairn-image.
//!
//! The Essential set, which every environment gets, is summed up in one line
//! instead, with the packages it depends on (libc6, libpam-modules,
//! libselinux1, ...) unless the user asked for one: a first `cairn install
//! hello` adds about 60 such packages, with about two dozen notes (mostly
//! `mkdir`/`ln` of upgrade paths, debconf defaults, libc6's DEP17
//! diversions), and the fidelity corpus already compares their result with
//! real dpkg. A warning nobody can act on teaches people to skip the ones
//! that matter.

use crate::diagnostic::Diagnose;
use crate::output;
use cairn_manifest::Lock;
use cairn_oci::LayerInput;
use cairn_store::Store;
use miette::Result;
use serde::Serialize;
use std::collections::BTreeSet;

/// One thing a newly added package's scripts do that is not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptNote {
    pub package: String,
    pub message: String,
    /// Whether the package is in Debian's Essential set or is one it
    /// depends on (and the user did not ask for it).
    pub essential: bool,
}

/// The notes of every package of `new` that `old` did not have, in lock
/// order. The `.deb`s are in the store: locking fetched them.
pub fn new_package_notes(store: &Store, old: Option<&Lock>, new: &Lock) -> Result<Vec<ScriptNote>> {
    let known: BTreeSet<(&str, &str)> = old
        .map(|old| {
            old.packages
                .iter()
                .map(|p| (p.name.as_str(), p.system.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut inputs = Vec::new();
    for p in &new.packages {
        // Several systems lock the same package: one warning is enough.
        if known.contains(&(p.name.as_str(), p.system.as_str())) || !seen.insert(p.name.as_str()) {
            continue;
        }
        inputs.push(LayerInput {
            name: p.name.clone(),
            version: p.version.clone(),
            deb_path: store.deb_path(&p.sha256).diagnose()?,
            deb_sha256: p.sha256.clone(),
        });
    }
    let essential = essential_closure(new);
    let notes = cairn_image::configured::script_notes(&inputs).diagnose()?;
    Ok(notes
        .into_iter()
        .map(|n| ScriptNote {
            essential: essential.contains(n.package.as_str()),
            package: n.package,
            message: n.message,
        })
        .collect())
}

/// The Essential packages of `lock` and, through the lock's resolved
/// `depends`, every package they pull in that was not requested.
fn essential_closure(lock: &Lock) -> BTreeSet<&str> {
    let by_name: std::collections::BTreeMap<&str, &cairn_manifest::LockedPackage> =
        lock.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut set = BTreeSet::new();
    let mut queue: Vec<&str> = lock
        .packages
        .iter()
        .filter(|p| p.essential)
        .map(|p| p.name.as_str())
        .collect();
    while let Some(name) = queue.pop() {
        let Some(package) = by_name.get(name) else {
            continue;
        };
        if (package.requested && !package.essential) || !set.insert(name) {
            continue;
        }
        queue.extend(package.depends.iter().map(String::as_str));
    }
    set
}

/// Prints one `warning:` line per note of a package outside the Essential
/// set, and one line for the Essential set's, on stderr (nothing under `-q`).
pub fn warn(notes: &[ScriptNote]) {
    for n in notes.iter().filter(|n| !n.essential) {
        output::status(format!(
            "warning: {}: cairn does not apply: {}",
            n.package, n.message
        ));
    }
    let essential: BTreeSet<&str> = notes
        .iter()
        .filter(|n| n.essential)
        .map(|n| n.package.as_str())
        .collect();
    if !essential.is_empty() {
        let (count, have) = match essential.len() {
            1 => ("1 package".to_string(), "has"),
            n => (format!("{n} packages"), "have"),
        };
        output::status(format!(
            "note: {count} of the Essential set (with what it depends on) {have} maintainer-script steps cairn does not apply ({})",
            essential.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !notes.is_empty() {
        output::status(
            "  (`cairn show PKG` lists what cairn applies for a package and what it does not)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_manifest::LockedPackage;

    fn locked(name: &str, system: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: "1.0".into(),
            architecture: "amd64".into(),
            system: system.into(),
            sha256: format!("{:064x}", name.len()),
            ..LockedPackage::default()
        }
    }

    #[test]
    fn the_essential_sets_dependencies_are_summed_up_with_it_unless_requested() {
        let mut bash = locked("bash", "x86_64-linux");
        bash.essential = true;
        bash.depends = vec!["libc6".into(), "libtinfo6".into()];
        let mut libc6 = locked("libc6", "x86_64-linux");
        libc6.depends = vec!["libgcc-s1".into()];
        let mut tinfo = locked("libtinfo6", "x86_64-linux");
        tinfo.requested = true;
        let mut hello = locked("hello", "x86_64-linux");
        hello.requested = true;
        hello.depends = vec!["libc6".into(), "libgreet".into()];
        let lock = Lock {
            packages: vec![
                bash,
                libc6,
                tinfo,
                hello,
                locked("libgcc-s1", "x86_64-linux"),
                locked("libgreet", "x86_64-linux"),
            ],
            ..Lock::default()
        };
        let set: Vec<&str> = essential_closure(&lock).into_iter().collect();
        assert_eq!(set, ["bash", "libc6", "libgcc-s1"]);
    }

    #[test]
    fn only_packages_new_to_the_lock_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let old = Lock {
            packages: vec![locked("kept", "x86_64-linux")],
            ..Lock::default()
        };
        let new = Lock {
            packages: vec![locked("kept", "x86_64-linux")],
            ..Lock::default()
        };
        // Nothing new: no .deb is opened (none exists here).
        assert_eq!(new_package_notes(&store, Some(&old), &new).unwrap(), []);
        let grown = Lock {
            packages: vec![
                locked("kept", "x86_64-linux"),
                locked("added", "x86_64-linux"),
            ],
            ..Lock::default()
        };
        let err = new_package_notes(&store, Some(&old), &grown).unwrap_err();
        assert!(
            format!("{err:?}").contains(&"0".repeat(60)),
            "the new package's .deb is read: {err:?}"
        );
    }
}
