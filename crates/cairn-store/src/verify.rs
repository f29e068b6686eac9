//! Checking cached bytes against their digest on the way out of the cache.
//!
//! The trust model (as containerd's content store): an entry is verified when
//! it is written (by the producer that hashes it) and again whenever its bytes
//! leave cairn (an archive, a push, a layer built from a `.deb`). Reads stream
//! through [`VerifyingReader`], so the check costs one hash of bytes that are
//! being read anyway, never a second pass. A mismatch evicts the entry, so
//! the next run rebuilds or refetches it instead of failing forever.

use crate::StoreError;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// A reader over a cache entry that hashes what it yields and, at end of
/// file, fails with [`StoreError::DigestMismatch`] (wrapped in an
/// `io::Error`, see [`StoreError::from_io`]) unless the sha256 matches. On a
/// mismatch the entry at `path` is removed first.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    path: PathBuf,
    expected: String,
    checked: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, the content of the entry at `path`, whose sha256 should
    /// be `expected` (hex, with or without a `sha256:` prefix).
    pub fn new(inner: R, path: impl Into<PathBuf>, expected: &str) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            path: path.into(),
            expected: expected
                .strip_prefix("sha256:")
                .unwrap_or(expected)
                .to_ascii_lowercase(),
            checked: false,
        }
    }

    fn check(&mut self) -> io::Result<()> {
        if self.checked {
            return Ok(());
        }
        self.checked = true;
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if actual == self.expected {
            return Ok(());
        }
        let evicted = evict(&self.path);
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            StoreError::DigestMismatch {
                path: self.path.clone(),
                expected: self.expected.clone(),
                actual,
                evicted,
            },
        ))
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check()?;
        } else {
            self.hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Removes a corrupt entry (file or directory); whether it is gone.
pub fn evict(path: &Path) -> bool {
    let removed = match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot evict corrupt cache entry: {e}");
            false
        }
    }
}

/// Checks a whole file against `expected` in one streaming pass, evicting it
/// on a mismatch.
pub fn verify_file(path: &Path, expected: &str) -> Result<(), StoreError> {
    let file = fs_err::File::open(path)?;
    let mut reader = VerifyingReader::new(io::BufReader::new(file), path, expected);
    io::copy(&mut reader, &mut io::sink()).map_err(StoreError::from_io)?;
    Ok(())
}

impl StoreError {
    /// Unwraps a [`StoreError`] carried inside an `io::Error` (as
    /// [`VerifyingReader`] reports mismatches through `Read`), else wraps the
    /// I/O error.
    pub fn from_io(error: io::Error) -> StoreError {
        if !error
            .get_ref()
            .is_some_and(|inner| inner.is::<StoreError>())
        {
            return StoreError::Io(error);
        }
        match error
            .into_inner()
            .map(|inner| inner.downcast::<StoreError>())
        {
            Some(Ok(store)) => *store,
            // Checked above; kept total rather than panicking.
            Some(Err(other)) => StoreError::Io(io::Error::other(other)),
            None => StoreError::Io(io::Error::other("I/O error without details")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path, expected: &str) -> Result<Vec<u8>, StoreError> {
        let file = fs_err::File::open(path)?;
        let mut out = Vec::new();
        VerifyingReader::new(file, path, expected)
            .read_to_end(&mut out)
            .map_err(StoreError::from_io)?;
        Ok(out)
    }

    #[test]
    fn matching_bytes_pass_through_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("blob");
        fs_err::write(&path, b"layer bytes").unwrap();
        let digest = format!("sha256:{}", crate::sha256_hex(b"layer bytes"));
        assert_eq!(read_all(&path, &digest).unwrap(), b"layer bytes");
        assert!(path.exists());
        verify_file(&path, &digest).unwrap();
    }

    #[test]
    fn a_flipped_byte_is_refused_naming_the_path_and_evicted() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("blob");
        fs_err::write(&path, b"layer bytes").unwrap();
        let digest = crate::sha256_hex(b"layer bytes");
        fs_err::write(&path, b"layer bytez").unwrap();
        match read_all(&path, &digest).unwrap_err() {
            StoreError::DigestMismatch {
                path: p,
                expected,
                actual,
                evicted,
            } => {
                assert_eq!(p, path);
                assert_eq!(expected, digest);
                assert_eq!(actual, crate::sha256_hex(b"layer bytez"));
                assert!(evicted);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!path.exists(), "the corrupt entry is evicted");
    }

    #[test]
    fn plain_io_errors_stay_io_errors() {
        let err = StoreError::from_io(io::Error::other("disk on fire"));
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
    }
}
