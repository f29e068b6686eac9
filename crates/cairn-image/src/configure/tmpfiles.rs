//! The directories `systemd-tmpfiles` would create at boot from the
//! packages' `/usr/lib/tmpfiles.d/*.conf` (`d` and `D` lines): a container
//! never boots, yet daemons expect them, e.g. PostgreSQL's socket and lock
//! directory `/run/postgresql` (`d /run/postgresql 2775 postgres postgres`),
//! without which the server refuses to start.
//!
//! Only directory creation under `/run` and `/var` is applied; other line
//! types (files, cleanup ages, copies, ACLs) and `%` specifiers are left out,
//! and a line naming an account no package creates becomes a [`Note`].

use super::accounts::Accounts;
use super::{Configuration, Entry, Note, PackageInput};

/// Where packages ship their tmpfiles.d snippets.
pub const TMPFILES_DIR: &str = "/usr/lib/tmpfiles.d/";

/// Whether configuration needs the bytes of `path`.
pub fn is_snippet(path: &str) -> bool {
    path.starts_with(TMPFILES_DIR) && path.ends_with(".conf")
}

/// The directories of every package's `d`/`D` lines, owned as the line says.
pub(crate) fn configure(packages: &[PackageInput], accounts: &Accounts) -> Configuration {
    let mut out = Configuration::default();
    for package in packages {
        let snippets = package
            .files
            .iter()
            .filter(|f| is_snippet(&f.path))
            .filter_map(|f| f.contents.as_deref());
        for text in snippets {
            for line in String::from_utf8_lossy(text).lines() {
                match directory_line(line, accounts) {
                    Some(Ok(entry)) => out.entries.push(entry),
                    Some(Err(message)) => out.notes.push(Note {
                        package: package.name.clone(),
                        message,
                    }),
                    None => {}
                }
            }
        }
    }
    out
}

/// One line as a directory entry; `None` for lines that create no directory
/// under `/run` or `/var`, `Some(Err)` for one that cannot be applied.
fn directory_line(line: &str, accounts: &Accounts) -> Option<Result<Entry, String>> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (kind, path) = (*fields.first()?, *fields.get(1)?);
    if !matches!(kind.trim_end_matches(['!', '-', '=', '~', '^']), "d" | "D") {
        return None;
    }
    // /var/run is a symlink to /run in Debian: write through neither.
    let path = match path.strip_prefix("/var/run/") {
        Some(rest) => format!("/run/{rest}"),
        None => path.to_string(),
    };
    if !(path.starts_with("/run/") || path.starts_with("/var/"))
        || path.contains('%')
        || path.split('/').any(|p| p == "..")
    {
        return None;
    }
    let field = |i: usize| fields.get(i).copied().filter(|f| *f != "-");
    let mode = match field(2) {
        Some(m) => match u32::from_str_radix(m.trim_start_matches(['~', ':']), 8) {
            Ok(mode) => mode,
            Err(_) => {
                return Some(Err(format!(
                    "tmpfiles.d: {path}: mode '{m}' is not applied"
                )));
            }
        },
        None => 0o755,
    };
    let uid = match field(3) {
        None => 0,
        Some(user) => match id_of(user, accounts.users.iter().map(|u| (&u.name, u.uid))) {
            Some(uid) => uid,
            None => return Some(Err(format!("tmpfiles.d: {path}: unknown user '{user}'"))),
        },
    };
    let gid = match field(4) {
        None => 0,
        Some(group) => match id_of(group, accounts.groups.iter().map(|g| (&g.name, g.gid))) {
            Some(gid) => gid,
            None => return Some(Err(format!("tmpfiles.d: {path}: unknown group '{group}'"))),
        },
    };
    Some(Ok(Entry::dir(&path, mode, uid, gid)))
}

/// A name's id, or a numeric id as is.
fn id_of<'a>(name: &str, mut known: impl Iterator<Item = (&'a String, u32)>) -> Option<u32> {
    name.parse()
        .ok()
        .or_else(|| known.find(|(n, _)| *n == name).map(|(_, id)| id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configure::accounts::{Group, User};
    use crate::configure::{DataFile, DataKind, EntryKind};

    fn accounts() -> Accounts {
        Accounts {
            users: vec![User {
                name: "postgres".into(),
                uid: 123,
                gid: 456,
                gecos: String::new(),
                home: "/var/lib/postgresql".into(),
                shell: "/bin/bash".into(),
            }],
            groups: vec![Group {
                name: "postgres".into(),
                gid: 456,
                members: Vec::new(),
            }],
            ..Accounts::default()
        }
    }

    fn package(text: &str) -> PackageInput {
        PackageInput {
            name: "postgresql-common".into(),
            files: vec![DataFile {
                path: "/usr/lib/tmpfiles.d/postgresql-common.conf".into(),
                kind: DataKind::File,
                contents: Some(text.as_bytes().to_vec()),
            }],
            ..PackageInput::default()
        }
    }

    #[test]
    fn postgresql_gets_its_socket_directory() {
        let text = "# comment\nd /run/postgresql 2775 postgres postgres - -\n\
                    d /var/run/legacy 0755 - -\nf /run/file 0644 - - -\n\
                    d /tmp/x 1777 root root 10d\nd /run/%i 0755 - -\n";
        let conf = configure(&[package(text)], &accounts());
        let dirs: Vec<_> = conf
            .entries
            .iter()
            .map(|e| {
                (
                    e.path.as_str(),
                    e.mode,
                    e.uid,
                    e.gid,
                    e.kind == EntryKind::Dir,
                )
            })
            .collect();
        assert_eq!(
            dirs,
            [
                ("/run/postgresql", 0o2775, 123, 456, true),
                ("/run/legacy", 0o755, 0, 0, true)
            ]
        );
        assert!(conf.notes.is_empty(), "{:?}", conf.notes);
    }

    #[test]
    fn unknown_accounts_become_notes() {
        let conf = configure(&[package("d /run/x 0750 nobody-here - -\n")], &accounts());
        assert!(conf.entries.is_empty());
        assert_eq!(conf.notes.len(), 1);
        assert!(conf.notes[0].message.contains("unknown user 'nobody-here'"));
    }
}
