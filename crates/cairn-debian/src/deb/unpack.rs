//! Extracting a package's normalised data tree onto disk, safely.
//!
//! A `.deb` is untrusted input: no entry may land outside `dest`. Paths are
//! already relative without `..` (`deb::normalize_path`), and before each
//! write every parent inside `dest` is checked to be a real directory, never a
//! symlink, so a package cannot plant `x -> /etc` and then write `x/passwd`.
//! Hardlink targets get the same checks. Ownership is not applied (cairn runs
//! unprivileged); modes, including setuid, and mtimes are. Device nodes are
//! skipped: only root may create them, and images never need them.
//!
//! Merged-/usr symlinks (`bin -> usr/bin`) are the caller's to create.

use std::fs::Permissions;
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{DebEntry, DebError, EntryKind, Result, visit_data};

/// Extracts the normalised data tree of `deb` into `dest` (created if
/// missing; existing files are replaced, existing directories kept).
pub fn unpack_deb(deb: &Path, dest: &Path) -> Result<()> {
    fs_err::create_dir_all(dest)?;
    // Directory modes and mtimes are applied last, deepest first, so a
    // read-only directory does not stop its own contents from being written.
    let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
    visit_data(deb, |entry, data| {
        let unsafe_entry = |reason: String| DebError::UnsafeEntry {
            deb: deb.to_path_buf(),
            entry: entry.path.clone(),
            reason,
        };
        let target = checked_path(dest, &entry.path).map_err(unsafe_entry)?;
        if let EntryKind::Dir = entry.kind {
            make_dir(&target)?;
            dirs.push((target, entry.mode, entry.mtime));
            return Ok(());
        }
        clear_slot(&target).map_err(unsafe_entry)?;
        write_entry(dest, entry, &target, data).map_err(|e| match e {
            WriteError::Unsafe(reason) => unsafe_entry(reason),
            WriteError::Io(e) => e.into(),
        })
    })?;
    dirs.sort_by(|a, b| b.0.cmp(&a.0));
    for (dir, mode, mtime) in dirs {
        fs_err::set_permissions(&dir, Permissions::from_mode(mode))?;
        set_mtime(&dir, mtime)?;
    }
    Ok(())
}

enum WriteError {
    Unsafe(String),
    Io(io::Error),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

fn write_entry(
    dest: &Path,
    entry: &DebEntry,
    target: &Path,
    data: &mut dyn Read,
) -> Result<(), WriteError> {
    match &entry.kind {
        EntryKind::Dir => {}
        EntryKind::File => {
            let mut file = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)?;
            io::copy(data, &mut file)?;
            file.set_permissions(Permissions::from_mode(entry.mode))?;
            file.file().set_modified(mtime(entry.mtime))?;
        }
        EntryKind::Symlink { target: link } => symlink(link, target)?,
        EntryKind::Hardlink { target: link } => {
            let source = checked_path(dest, link).map_err(WriteError::Unsafe)?;
            let meta = fs_err::symlink_metadata(&source).map_err(|_| {
                WriteError::Unsafe(format!("hardlink target '{link}' does not exist"))
            })?;
            if meta.is_dir() {
                return Err(WriteError::Unsafe(format!(
                    "hardlink target '{link}' is a directory"
                )));
            }
            fs_err::hard_link(&source, target)?;
        }
        EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } | EntryKind::Fifo => {
            tracing::debug!(path = %entry.path, "skipping device or fifo entry");
        }
    }
    Ok(())
}

/// `dest/rel`, after making sure every existing parent between `dest` and it
/// is a real directory; missing parents are created.
fn checked_path(dest: &Path, rel: &str) -> Result<PathBuf, String> {
    if rel.is_empty()
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(format!("'{rel}' is not a plain relative path"));
    }
    let mut current = dest.to_path_buf();
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        current.push(part);
        if parts.peek().is_none() {
            break;
        }
        match fs_err::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!("parent '{}' is a symlink", current.display()));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(format!("parent '{}' is not a directory", current.display()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                make_dir(&current).map_err(|e| e.to_string())?;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(current)
}

fn make_dir(path: &Path) -> io::Result<()> {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => {
            // A file or symlink where the package wants a directory: replace
            // it, never follow it.
            fs_err::remove_file(path)?;
            fs_err::create_dir(path)
        }
        Err(_) => fs_err::create_dir(path),
    }
}

/// Removes whatever occupies `target` so the new entry can be created without
/// following a symlink. A non-empty directory is not replaced silently.
fn clear_slot(target: &Path) -> Result<(), String> {
    match fs_err::symlink_metadata(target) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => fs_err::remove_dir(target)
            .map_err(|e| format!("a directory is in the way and cannot be removed: {e}")),
        Ok(_) => fs_err::remove_file(target).map_err(|e| e.to_string()),
    }
}

fn mtime(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn set_mtime(path: &Path, secs: u64) -> io::Result<()> {
    fs_err::File::open(path)?.file().set_modified(mtime(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::fixtures::sample_deb;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn unpacks_the_normalised_tree() {
        let (tmp, deb) = sample_deb("xz");
        let dest = tmp.path().join("root");
        unpack_deb(&deb, &dest).unwrap();
        assert!(!dest.join("bin").exists());
        assert_eq!(
            fs_err::read(dest.join("usr/bin/tool")).unwrap(),
            b"#!/bin/sh\necho tool\n"
        );
        let suid = fs_err::metadata(dest.join("usr/bin/suid")).unwrap();
        assert_eq!(suid.mode() & 0o7777, 0o4755);
        let a = fs_err::metadata(dest.join("usr/bin/a-tool")).unwrap();
        assert_eq!(
            a.ino(),
            fs_err::metadata(dest.join("usr/bin/tool")).unwrap().ino()
        );
        let link = fs_err::read_link(dest.join("usr/bin/tool-link")).unwrap();
        assert_eq!(link, Path::new("../../bin/tool"));
        // Unpacking again over the same tree works (files are replaced).
        unpack_deb(&deb, &dest).unwrap();
    }

    /// Builds a .deb by hand (dpkg-deb refuses to build hostile trees) whose
    /// data.tar holds `entries`: (path, type, link target, body).
    fn hostile_deb(dir: &Path, entries: &[(&str, tar::EntryType, &str, &[u8])]) -> PathBuf {
        let mut data = tar::Builder::new(Vec::new());
        for (path, kind, link, body) in entries {
            let mut header = tar::Header::new_gnu();
            // Written raw: the tar crate's setters refuse `..` and absolute paths.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(body.len() as u64);
            header.set_cksum();
            data.append(&header, *body).unwrap();
        }
        let data = data.into_inner().unwrap();
        let control = crate::testing::tar_of(&[("./control", b"Package: evil\nVersion: 1\n")]);
        let deb = dir.join("evil.deb");
        crate::testing::write_raw_deb(&deb, control, data);
        deb
    }

    fn assert_refused(entries: &[(&str, tar::EntryType, &str, &[u8])]) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs_err::create_dir(&outside).unwrap();
        let deb = hostile_deb(tmp.path(), entries);
        let dest = tmp.path().join("root");
        let err = unpack_deb(&deb, &dest).unwrap_err();
        assert!(matches!(err, DebError::UnsafeEntry { .. }), "{err}");
        assert!(!tmp.path().join("evil").exists());
        assert_eq!(
            fs_err::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
    }

    #[test]
    fn refuses_parent_dir_escape() {
        use tar::EntryType::Regular;
        assert_refused(&[("./../evil", Regular, "", b"x")]);
    }

    #[test]
    fn refuses_absolute_paths() {
        use tar::EntryType::Regular;
        assert_refused(&[("/tmp/evil", Regular, "", b"x")]);
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        use tar::EntryType::{Regular, Symlink};
        // `link` points at the "outside" dir beside dest.
        assert_refused(&[
            ("./link", Symlink, "../outside", b""),
            ("./link/pwned", Regular, "", b"x"),
        ]);
    }

    #[test]
    fn refuses_hardlinks_out_of_dest() {
        use tar::EntryType::Link;
        assert_refused(&[("./stolen", Link, "../outside/secret", b"")]);
    }

    #[test]
    fn refuses_hardlink_through_a_symlinked_parent() {
        use tar::EntryType::{Link, Symlink};
        assert_refused(&[
            ("./up", Symlink, "..", b""),
            ("./stolen", Link, "./up/outside", b""),
        ]);
    }
}
