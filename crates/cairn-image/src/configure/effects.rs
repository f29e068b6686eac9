//! One package's configuration, described for a person: what cairn applies
//! in place of its maintainer scripts and what it does not, for `cairn show
//! PKG` and the warning `cairn install` prints for a newly added package.
//!
//! Owns the wording, not the rules: every line comes from the same parsers
//! [`super::configure`] uses, run over this package alone. What depends on
//! the rest of an environment (which alternative wins, the ids accounts get,
//! whether an alternative's target or a tmpfiles owner exists) is left out,
//! so the description is true in every environment the package is in.

use super::accounts::system_accounts;
use super::alternatives::registrations;
use super::certificates::{BUNDLE, CERTS_DIR};
use super::keystore::JAVA_CACERTS;
use super::{DataKind, Note, PackageInput, ParsedScripts};
use std::collections::BTreeSet;

/// What configuration does for one package.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct PackageEffects {
    /// What cairn applies, one line each:
    /// `alternative editor: /usr/bin/editor -> /usr/bin/vim.tiny (priority 15)`.
    pub applied: Vec<String>,
    /// What it does not apply, one line each (the [`Note`] messages).
    pub not_applied: Vec<String>,
}

/// The notes of `package`'s maintainer scripts alone: what `cairn install`
/// names for a package it adds. Needs only the control files.
pub fn script_notes(package: &PackageInput) -> Vec<Note> {
    let parsed = [ParsedScripts::new(package, std::slice::from_ref(package))];
    let packages = std::slice::from_ref(package);
    let (_, mut notes) = registrations(packages, &parsed);
    notes.extend(system_accounts(packages).1);
    notes.extend(parsed[0].unapplied_notes(&package.name));
    let unique: BTreeSet<Note> = notes.into_iter().collect();
    unique.into_iter().collect()
}

/// Everything configuration applies for `package`, and its [`script_notes`].
/// With the data files listed ([`PackageInput::files`]), CA certificates and
/// tmpfiles.d directories are described too.
pub fn package_effects(package: &PackageInput) -> PackageEffects {
    let parsed = [ParsedScripts::new(package, std::slice::from_ref(package))];
    let packages = std::slice::from_ref(package);
    let mut applied = Vec::new();
    for r in registrations(packages, &parsed).0 {
        let slaves = match r.slaves.len() {
            0 => String::new(),
            1 => ", 1 slave link".to_string(),
            n => format!(", {n} slave links"),
        };
        applied.push(format!(
            "alternative {}: {} -> {} (priority {}{slaves})",
            r.name, r.link, r.path, r.priority
        ));
    }
    let (accounts, _) = system_accounts(packages);
    for user in accounts.users.iter().filter(|u| u.uid != 0) {
        applied.push(format!(
            "system user {} (home {}, shell {})",
            user.name, user.home, user.shell
        ));
    }
    let base_groups = ["root", "nogroup"];
    for group in &accounts.groups {
        if !base_groups.contains(&group.name.as_str()) {
            applied.push(format!("system group {}", group.name));
        }
    }
    for o in &accounts.overrides {
        applied.push(format!(
            "owner and mode of {}: {}:{} {:o} (dpkg-statoverride)",
            o.path, o.uid, o.gid, o.mode
        ));
    }
    let certificates = package
        .files
        .iter()
        .filter(|f| f.kind == DataKind::File && f.path.starts_with(CERTS_DIR))
        .filter(|f| f.path.ends_with(".crt"))
        .count();
    if package.name == "ca-certificates" {
        applied.push(format!(
            "the CA store: /etc/ca-certificates.conf, {BUNDLE} and the hashed links in /etc/ssl/certs"
        ));
    }
    if package.name == "ca-certificates-java" {
        applied.push(format!(
            "the Java trust store {JAVA_CACERTS}: every certificate in /etc/ssl/certs as a trusted JKS entry (with ca-certificates installed)"
        ));
    }
    if certificates > 0 {
        applied.push(format!(
            "{certificates} CA certificates added to {BUNDLE} (with ca-certificates installed)"
        ));
    }
    let dirs = super::tmpfiles::configure(packages, &accounts);
    for entry in dirs.entries {
        applied.push(format!(
            "directory {} ({:o}) from tmpfiles.d",
            entry.path, entry.mode
        ));
    }
    PackageEffects {
        applied,
        not_applied: script_notes(package)
            .into_iter()
            .map(|n| n.message)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::package;
    use super::*;

    const POSTINST: &str = "#!/bin/sh\nset -e\n\
update-alternatives --install /usr/bin/editor editor /usr/bin/ed 40 \\\n  --slave /usr/share/man/man1/editor.1.gz editor.1.gz /usr/share/man/man1/ed.1.gz\n\
adduser --system --group --home /var/lib/edd --shell /usr/sbin/nologin edd\n\
locale-gen\n\
ssh-keygen -A\n";

    #[test]
    fn applied_effects_and_notes_are_described() {
        let pkg = package(
            "ed",
            POSTINST,
            &["/usr/bin/ed", "/usr/share/ca-certificates/corp/a.crt"],
        );
        let effects = package_effects(&pkg);
        assert_eq!(
            effects.applied,
            [
                "alternative editor: /usr/bin/editor -> /usr/bin/ed (priority 40, 1 slave link)",
                "system user edd (home /var/lib/edd, shell /usr/sbin/nologin)",
                "system group edd",
                "1 CA certificates added to /etc/ssl/certs/ca-certificates.crt (with ca-certificates installed)",
            ]
        );
        assert_eq!(effects.not_applied.len(), 2, "{:?}", effects.not_applied);
        assert!(
            effects.not_applied[0]
                .starts_with("postinst runs locale-gen (locales are not generated"),
            "{:?}",
            effects.not_applied
        );
        assert!(effects.not_applied[1].starts_with("postinst runs ssh-keygen"));
        let notes = script_notes(&pkg);
        assert_eq!(
            notes.iter().map(|n| n.message.clone()).collect::<Vec<_>>(),
            effects.not_applied
        );
        assert!(notes.iter().all(|n| n.package == "ed"));
    }

    #[test]
    fn a_package_without_scripts_has_no_effects() {
        let effects = package_effects(&package("plain", "", &["/usr/bin/plain"]));
        assert_eq!(effects, PackageEffects::default());
    }

    #[test]
    fn an_unreadable_alternatives_call_is_a_note() {
        let pkg = package(
            "odd",
            "update-alternatives --install /usr/bin/x x /usr/bin/x-odd high\n",
            &[],
        );
        let notes = script_notes(&pkg);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].message.contains("priority 'high' is not a number"));
    }
}
