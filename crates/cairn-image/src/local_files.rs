//! Files the user adds that package configuration reads as a maintainer
//! script would: private CA certificates under
//! `/usr/local/share/ca-certificates/`, the place Debian documents for them
//! (`update-ca-certificates` adds every `*.crt` there to the bundle).
//!
//! They come from two places: an image's `copy-to-root` (a project
//! directory holding `usr/local/share/ca-certificates/corp.crt`), and, for
//! host activation, the host's own `/usr/local/share/ca-certificates/`, so an
//! environment trusts what the machine's administrator made the host trust.
//! This module only collects them as [`DataFile`]s and names them in cache
//! keys; [`crate::configure`] decides what they become.

use std::io::Read;
use std::path::Path;

use cairn_oci::{CustomEntry, CustomKind, FileContent};

use crate::configure::certificates::LOCAL_CERTS_DIR;
use crate::configure::{DataFile, DataKind};
use crate::{ImageError, Result};

/// The most a certificate file may hold: a PEM bundle of a few hundred
/// certificates is well under this; anything larger is not a certificate.
const MAX_CERTIFICATE_BYTES: u64 = 4 << 20;

/// The `*.crt` files under the host directory `dir` (the host's
/// `/usr/local/share/ca-certificates`), as they would appear at
/// [`LOCAL_CERTS_DIR`], sorted by path. Symlinks are followed, as
/// `update-ca-certificates` (`find -L`) does. A missing `dir` gives none.
pub fn host_certificates(dir: &Path) -> Result<Vec<DataFile>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .follow_links(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| local_error(dir, std::io::Error::other(e)))?;
        let is_file = entry.file_type().is_some_and(|t| t.is_file());
        if !is_file || entry.path().extension().is_none_or(|e| e != "crt") {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let contents = read_bounded(entry.path())?;
        out.push(DataFile {
            path: format!("{LOCAL_CERTS_DIR}{}", rel.to_string_lossy()),
            kind: DataKind::File,
            contents: Some(contents),
        });
    }
    Ok(out)
}

/// The certificates among an image's `copy-to-root` entries: the regular
/// `*.crt` files that land under [`LOCAL_CERTS_DIR`].
pub fn copied_certificates(entries: &[CustomEntry]) -> Result<Vec<DataFile>> {
    let local = LOCAL_CERTS_DIR.trim_start_matches('/');
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.path.trim_start_matches('/');
        let CustomKind::File(content) = &entry.kind else {
            continue;
        };
        if !path.starts_with(local) || !path.ends_with(".crt") {
            continue;
        }
        let contents = match content {
            FileContent::Bytes(bytes) => bytes.clone(),
            FileContent::Path(source) => read_bounded(source)?,
        };
        out.push(DataFile {
            path: format!("/{path}"),
            kind: DataKind::File,
            contents: Some(contents),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What a cache key must say of `files`: each path and the sha256 of its
/// bytes, one a line, so an added, removed or edited certificate rebuilds.
pub fn key_text(files: &[DataFile]) -> String {
    files
        .iter()
        .map(|f| {
            let digest = cairn_store::sha256_hex(f.contents.as_deref().unwrap_or_default());
            format!("local {} {digest}\n", f.path)
        })
        .collect()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = fs_err::File::open(path).map_err(|e| local_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CERTIFICATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| local_error(path, e))?;
    if bytes.len() as u64 > MAX_CERTIFICATE_BYTES {
        return Err(ImageError::LocalFile {
            path: path.to_path_buf(),
            reason: format!(
                "larger than {} MiB: not a certificate",
                MAX_CERTIFICATE_BYTES >> 20
            ),
        });
    }
    Ok(bytes)
}

fn local_error(path: &Path, e: std::io::Error) -> ImageError {
    ImageError::LocalFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_certificates_are_the_crt_files_below_the_dir_sorted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs_err::create_dir_all(dir.join("corp")).unwrap();
        fs_err::write(dir.join("b.crt"), "B").unwrap();
        fs_err::write(dir.join("corp/a.crt"), "A").unwrap();
        fs_err::write(dir.join("README"), "not a cert").unwrap();
        std::os::unix::fs::symlink(dir.join("b.crt"), dir.join("link.crt")).unwrap();
        let files = host_certificates(dir).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/local/share/ca-certificates/b.crt",
                "/usr/local/share/ca-certificates/corp/a.crt",
                "/usr/local/share/ca-certificates/link.crt",
            ]
        );
        assert_eq!(files[2].contents.as_deref(), Some(&b"B"[..]));
        assert!(host_certificates(&dir.join("missing")).unwrap().is_empty());
    }

    fn bytes(b: &[u8]) -> FileContent {
        FileContent::Bytes(b.to_vec())
    }

    #[test]
    fn copied_certificates_keep_only_crt_files_under_the_local_dir() {
        let entries = vec![
            CustomEntry::file(
                "usr/local/share/ca-certificates/corp.crt",
                0o644,
                bytes(b"C"),
            ),
            CustomEntry::file("usr/local/share/doc/x.crt", 0o644, bytes(b"no")),
            CustomEntry::file(
                "usr/local/share/ca-certificates/notes.txt",
                0o644,
                bytes(b"no"),
            ),
            CustomEntry::dir("usr/local/share/ca-certificates", 0o755),
        ];
        let files = copied_certificates(&entries).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "/usr/local/share/ca-certificates/corp.crt");
        assert_eq!(files[0].contents.as_deref(), Some(&b"C"[..]));
    }

    #[test]
    fn the_key_changes_with_any_certificate_byte() {
        let file = |bytes: &[u8]| DataFile {
            path: "/usr/local/share/ca-certificates/corp.crt".into(),
            kind: DataKind::File,
            contents: Some(bytes.to_vec()),
        };
        assert_ne!(key_text(&[file(b"A")]), key_text(&[file(b"B")]));
        assert_eq!(key_text(&[]), "");
    }

    #[test]
    fn an_oversized_file_is_refused_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big.crt");
        let f = fs_err::File::create(&big).unwrap();
        f.set_len(MAX_CERTIFICATE_BYTES + 1).unwrap();
        let err = host_certificates(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("big.crt"), "{err}");
    }
}
