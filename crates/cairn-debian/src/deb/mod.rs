//! Reading `.deb` files: the ar container, its compressed control and data
//! tars, and the normalisation of data entries that layers and unpacking share.
//!
//! Normalised paths are relative and canonical (`usr/bin/x`, never `./usr/bin/x`
//! or `/usr/bin/x`), and merged-`/usr`: bookworm's packages still ship `/bin`,
//! `/sbin` and `/lib*`, while the image provides `bin -> usr/bin` symlinks, so
//! entries under those directories move under `usr/` and the directories
//! themselves are dropped. Symlink targets are kept verbatim (they resolve
//! through the image's symlinks); hardlink targets are rewritten like paths.
//!
//! Writing layer tars is cairn-oci's; extracting to disk safely is [`unpack`].

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

pub mod unpack;

pub use unpack::unpack_deb;

/// Errors from reading a `.deb`. Each names the package file.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot read {deb}: {source}")]
    Read {
        deb: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{deb} is not a valid Debian package: {reason}")]
    Invalid {
        deb: std::path::PathBuf,
        reason: String,
    },
    #[error(
        "{deb}: member '{member}' uses a compression cairn cannot read (it reads gzip, xz, zstd and plain tar)"
    )]
    UnsupportedCompression {
        deb: std::path::PathBuf,
        member: String,
    },
    #[error("{deb}: entry '{entry}' is unsafe: {reason}; refusing to use this package")]
    UnsafeEntry {
        deb: std::path::PathBuf,
        entry: String,
        reason: String,
    },
}

/// Shorthand for results carrying a [`DebError`].
pub type Result<T, E = DebError> = std::result::Result<T, E>;

/// Top-level directories that merged-`/usr` systems replace with symlinks into `usr/`.
pub const MERGED_USR_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// One normalised entry of a package's data tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebEntry {
    /// Relative, canonical, merged-`/usr` path, e.g. `usr/bin/hello`. Never empty.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    /// Modification time in seconds since the epoch, as recorded in the package.
    pub mtime: u64,
    /// Owner name as recorded in the package (may be empty).
    pub uname: String,
    /// Group name as recorded in the package (may be empty).
    pub gname: String,
    /// Size of the file contents (0 for anything but regular files).
    pub size: u64,
}

/// The type of a [`DebEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file; its contents follow.
    File,
    /// A symbolic link; the target is kept exactly as the package has it.
    Symlink { target: String },
    /// A hardlink to an earlier entry, whose path is normalised like any path.
    Hardlink { target: String },
    /// A character device.
    CharDevice { major: u32, minor: u32 },
    /// A block device.
    BlockDevice { major: u32, minor: u32 },
    /// A named pipe.
    Fifo,
}

/// The files of a package's `control.tar`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlFiles {
    /// The `control` paragraph.
    pub control: String,
    /// `md5sums`, if the package has one.
    pub md5sums: Option<String>,
    /// `conffiles`, if the package has one.
    pub conffiles: Option<String>,
    /// Every other file (maintainer scripts, `triggers`, `shlibs`, ...), by name.
    pub other: BTreeMap<String, Vec<u8>>,
}

/// Normalises a path from a package's data tar. `Ok(None)` means the entry is
/// dropped (the root directory, or a merged-`/usr` top-level directory itself).
pub fn normalize_path(raw: &str) -> Result<Option<String>, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path contains '..'"),
            part => parts.push(part),
        }
    }
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    if MERGED_USR_DIRS.contains(first) {
        if parts.len() == 1 {
            return Ok(None);
        }
        parts.insert(0, "usr");
    }
    Ok(Some(parts.join("/")))
}

/// Streams the normalised entries of a package's data tar to `visit`, with a
/// reader over each entry's contents. Entries come in archive order, unsorted.
///
/// The visitor's error type is the caller's, so a layer writer or unpacker can
/// fail with its own errors; reading errors convert from [`DebError`].
pub fn visit_data<E: From<DebError>>(
    deb: &Path,
    mut visit: impl FnMut(&DebEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    with_member(deb, "data.tar", |reader| {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(|e| read_error(deb, e))? {
            let mut entry = entry.map_err(|e| read_error(deb, e))?;
            if let Some(meta) = normalize_entry(deb, &entry)? {
                visit(&meta, &mut entry)?;
            }
        }
        Ok(())
    })
}

/// Reads the control files of a package.
pub fn read_control(deb: &Path) -> Result<ControlFiles> {
    with_member(deb, "control.tar", |reader| {
        let mut archive = tar::Archive::new(reader);
        let mut files = BTreeMap::new();
        for entry in archive.entries().map_err(|e| read_error(deb, e))? {
            let mut entry = entry.map_err(|e| read_error(deb, e))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = name.trim_start_matches("./").to_owned();
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| read_error(deb, e))?;
            files.insert(name, bytes);
        }
        control_files(deb, files)
    })
}

fn control_files(deb: &Path, mut files: BTreeMap<String, Vec<u8>>) -> Result<ControlFiles> {
    let mut text = |name: &str| -> Result<Option<String>> {
        files
            .remove(name)
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| invalid(deb, format!("{name} is not UTF-8")))
            })
            .transpose()
    };
    let control =
        text("control")?.ok_or_else(|| invalid(deb, "control.tar has no control file"))?;
    let md5sums = text("md5sums")?;
    let conffiles = text("conffiles")?;
    Ok(ControlFiles {
        control,
        md5sums,
        conffiles,
        other: files,
    })
}

/// Opens the ar member whose name starts with `prefix` (`data.tar`,
/// `control.tar`), decompresses it by its suffix, and hands it to `read`.
fn with_member<T, E: From<DebError>>(
    deb: &Path,
    prefix: &str,
    read: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<T, E> {
    let file = fs_err::File::open(deb).map_err(DebError::from)?;
    let mut ar = ar::Archive::new(BufReader::with_capacity(256 * 1024, file));
    let mut first = true;
    while let Some(member) = ar.next_entry() {
        let member = member.map_err(|e| read_error(deb, e))?;
        let name = member_name(member.header().identifier());
        if first && name != "debian-binary" {
            return Err(invalid(
                deb,
                format!("first member is '{name}', not 'debian-binary'"),
            )
            .into());
        }
        first = false;
        if let Some(suffix) = name.strip_prefix(prefix) {
            let mut reader = decompress(deb, &name, suffix, member)?;
            return read(&mut *reader);
        }
    }
    Err(invalid(deb, format!("no {prefix} member")).into())
}

fn member_name(identifier: &[u8]) -> String {
    // GNU ar terminates names with '/'; dpkg-deb writes them without.
    let name = String::from_utf8_lossy(identifier);
    name.trim_end_matches('/').trim().to_owned()
}

fn decompress<'a>(
    deb: &Path,
    name: &str,
    suffix: &str,
    member: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>> {
    Ok(match suffix {
        "" => Box::new(member),
        ".gz" => Box::new(flate2::read::GzDecoder::new(member)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(member)),
        ".zst" => {
            Box::new(zstd::stream::read::Decoder::new(member).map_err(|e| read_error(deb, e))?)
        }
        _ => {
            return Err(DebError::UnsupportedCompression {
                deb: deb.to_path_buf(),
                member: name.to_owned(),
            });
        }
    })
}

fn normalize_entry<R: Read>(deb: &Path, entry: &tar::Entry<'_, R>) -> Result<Option<DebEntry>> {
    let header = entry.header();
    let raw_path = utf8(deb, &entry.path_bytes())?;
    let unsafe_entry = |reason: &str| DebError::UnsafeEntry {
        deb: deb.to_path_buf(),
        entry: raw_path.clone(),
        reason: reason.to_owned(),
    };
    let Some(path) = normalize_path(&raw_path).map_err(unsafe_entry)? else {
        return Ok(None);
    };
    let link = || -> Result<String> {
        let bytes = entry.link_name_bytes().unwrap_or_default();
        utf8(deb, &bytes)
    };
    let device = || -> (u32, u32) {
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        (major, minor)
    };
    use tar::EntryType as T;
    let kind = match header.entry_type() {
        T::Directory => EntryKind::Dir,
        T::Regular | T::Continuous => EntryKind::File,
        T::Symlink => EntryKind::Symlink { target: link()? },
        T::Link => {
            let target = normalize_path(&link()?).map_err(unsafe_entry)?;
            let target = target.ok_or_else(|| unsafe_entry("hardlink to a directory"))?;
            EntryKind::Hardlink { target }
        }
        T::Char => {
            let (major, minor) = device();
            EntryKind::CharDevice { major, minor }
        }
        T::Block => {
            let (major, minor) = device();
            EntryKind::BlockDevice { major, minor }
        }
        T::Fifo => EntryKind::Fifo,
        // Global PAX headers and the like carry no file.
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(None),
        other => {
            let reason = format!("entry '{raw_path}' has unsupported tar type {other:?}");
            return Err(invalid(deb, reason));
        }
    };
    let size = if kind == EntryKind::File {
        entry.size()
    } else {
        0
    };
    Ok(Some(DebEntry {
        path,
        kind,
        mode: header.mode().map_err(|e| read_error(deb, e))? & 0o7777,
        mtime: header.mtime().map_err(|e| read_error(deb, e))?,
        uname: name_field(header.username_bytes()),
        gname: name_field(header.groupname_bytes()),
        size,
    }))
}

fn name_field(bytes: Option<&[u8]>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn utf8(deb: &Path, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        let lossy = String::from_utf8_lossy(bytes);
        invalid(deb, format!("entry name '{lossy}' is not UTF-8"))
    })
}

/// A read error of `deb`, naming it.
pub fn read_error(deb: &Path, source: std::io::Error) -> DebError {
    DebError::Read {
        deb: deb.to_path_buf(),
        source,
    }
}

fn invalid(deb: &Path, reason: impl Into<String>) -> DebError {
    DebError::Invalid {
        deb: deb.to_path_buf(),
        reason: reason.into(),
    }
}

/// Packages built with dpkg-deb for tests here and in other crates.
#[cfg(any(test, feature = "test-fixtures"))]
#[allow(clippy::unwrap_used)] // a broken fixture is a test failure
pub mod fixtures {
    use std::process::Command;

    /// A small `.deb` built with dpkg-deb: setuid, hardlinks, a merged-/usr
    /// move, a symlink and a long name (`compression` as dpkg-deb's `-Z`).
    pub fn sample_deb(compression: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("pkg");
        let write = |rel: &str, body: &[u8], mode: u32| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(
            "DEBIAN/control",
            b"Package: sample\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: sample\n",
            0o644,
        );
        write("DEBIAN/postinst", b"#!/bin/sh\nexit 0\n", 0o755);
        write("DEBIAN/md5sums", b"0123  usr/bin/suid\n", 0o644);
        write("bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
        write("usr/bin/suid", b"suid", 0o4755);
        write("usr/share/doc/sample/zz-data", b"shared inode", 0o644);
        std::fs::hard_link(
            root.join("usr/share/doc/sample/zz-data"),
            root.join("usr/share/doc/sample/aa-link"),
        )
        .unwrap();
        // After the merged-/usr rewrite this hardlink sorts before its target.
        std::fs::hard_link(root.join("bin/tool"), root.join("usr/bin/a-tool")).unwrap();
        symlink("../../bin/tool", root.join("usr/bin/tool-link")).unwrap();
        let long = format!("usr/share/{}/file.txt", "d".repeat(120));
        write(&long, b"long", 0o644);
        let deb = tmp.path().join("sample_1.0_all.deb");
        let status = Command::new("dpkg-deb")
            .args(["--root-owner-group", &format!("-Z{compression}"), "--build"])
            .arg(&root)
            .arg(&deb)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("dpkg-deb is needed for these tests");
        assert!(status.success());
        (tmp, deb)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::sample_deb;
    use super::*;

    #[test]
    fn normalize_makes_paths_relative_and_merges_usr() {
        let cases = [
            ("./usr/bin/x", Some("usr/bin/x")),
            ("usr//share/./doc/", Some("usr/share/doc")),
            ("./bin/ls", Some("usr/bin/ls")),
            ("./sbin/init", Some("usr/sbin/init")),
            (
                "./lib/x86_64-linux-gnu/libc.so.6",
                Some("usr/lib/x86_64-linux-gnu/libc.so.6"),
            ),
            (
                "./lib64/ld-linux-x86-64.so.2",
                Some("usr/lib64/ld-linux-x86-64.so.2"),
            ),
            ("./libx32/a", Some("usr/libx32/a")),
            ("./lib32/a", Some("usr/lib32/a")),
            ("./library/a", Some("library/a")),
            ("./bin/", None),
            ("./lib64", None),
            ("./", None),
            (".", None),
            ("./etc/binfmt", Some("etc/binfmt")),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw).unwrap().as_deref(), want, "{raw}");
        }
        assert!(normalize_path("../evil").is_err());
        assert!(normalize_path("./usr/../../evil").is_err());
        assert!(normalize_path("/etc/passwd").is_err());
    }

    #[test]
    fn visit_yields_normalised_entries_for_every_compression() {
        for comp in ["gzip", "xz", "zstd", "none"] {
            let (_tmp, deb) = sample_deb(comp);
            let mut seen = BTreeMap::new();
            visit_data(&deb, |e, r| {
                let mut body = Vec::new();
                r.read_to_end(&mut body)?;
                seen.insert(e.path.clone(), (e.kind.clone(), e.mode, body));
                Ok::<(), DebError>(())
            })
            .unwrap();
            assert!(
                !seen.keys().any(|p| p == "bin" || p.starts_with("bin/")),
                "{comp}"
            );
            let tool = &seen["usr/bin/tool"];
            assert_eq!(
                (tool.1, tool.2.as_slice()),
                (0o755, &b"#!/bin/sh\necho tool\n"[..])
            );
            assert_eq!(seen["usr/bin/suid"].1, 0o4755);
            assert_eq!(
                seen["usr/bin/tool-link"].0,
                EntryKind::Symlink {
                    target: "../../bin/tool".into()
                }
            );
            let long = format!("usr/share/{}/file.txt", "d".repeat(120));
            assert_eq!(seen[&long].2, b"long");
            let links = seen
                .values()
                .filter(|v| matches!(v.0, EntryKind::Hardlink { .. }));
            assert_eq!(links.count(), 2, "{comp}");
        }
    }

    #[test]
    fn read_control_returns_control_and_scripts() {
        let (_tmp, deb) = sample_deb("xz");
        let files = read_control(&deb).unwrap();
        assert!(files.control.starts_with("Package: sample\n"));
        assert!(files.md5sums.is_some());
        assert_eq!(files.conffiles, None);
        assert_eq!(files.other["postinst"], b"#!/bin/sh\nexit 0\n");
    }

    #[test]
    fn not_a_deb_is_reported_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let bogus = tmp.path().join("bogus.deb");
        std::fs::write(&bogus, b"hello").unwrap();
        let err = visit_data(&bogus, |_, _| Ok::<(), DebError>(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus.deb"), "{err}");
    }
}
