//! Atomic file creation: write into a temp file beside the target, fsync, rename
//! (or rename now and fsync a batch later with `Store::sync`).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written that appears at its final path only on [`AtomicFile::commit`].
/// Dropping it uncommitted deletes the temp file.
#[derive(Debug)]
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing `target`; the temp file lives in the same directory so the
    /// final rename never crosses filesystems.
    pub fn create(target: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let target = target.as_ref().to_path_buf();
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(AtomicFile { temp, target })
    }

    /// The open temp file.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes to disk and renames into place, readable by all like any file
    /// created under the usual umask (temp files start out 0600).
    pub fn commit(self) -> io::Result<PathBuf> {
        self.temp.as_file().sync_all()?;
        self.commit_unsynced()
    }

    /// Renames into place without waiting for the disk: for many cache files
    /// written at once, made durable together by one [`crate::Store::sync`]
    /// (a reader must still check what it finds, e.g. by size).
    pub fn commit_unsynced(self) -> io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.temp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        let target = self.target;
        self.temp.persist(&target).map_err(|e| {
            io::Error::new(e.error.kind(), format!("{}: {}", target.display(), e.error))
        })?;
        Ok(target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

/// Writes `target` atomically with the bytes `fill` produces.
pub fn write_atomic(
    target: impl AsRef<Path>,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    fill(file.file())?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn committed_file_replaces_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        std::fs::write(&target, b"old").unwrap();
        write_atomic(&target, |f| f.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
