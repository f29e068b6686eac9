//! Atomic file creation: write into a temp file beside the target, fsync, rename
//! (or rename now and fsync a batch later with `Store::sync`).
//!
//! Every file cairn writes goes through here, user-named outputs (`-f FILE`,
//! the manifest, the lock) as well as cache entries, so the rules for what a
//! rename may replace live in one place ([`AtomicFile::create`]):
//! - a symlink is followed to the file it names (a manifest linked from a
//!   dotfiles repository stays a link and gets the new text), however many hops;
//! - a FIFO or a device (`-f /dev/null`, `-f >(…)`) is written to, never
//!   replaced: a rename would turn `/dev/null` into a regular file for the
//!   whole machine;
//! - a directory or a socket is refused with an error naming it;
//! - a replaced regular file keeps its permission bits, and is replaced by
//!   exchanging the two names and unlinking the old file (see [`exchange`]).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Symlink hops followed before giving up, as the kernel's own limit (ELOOP).
const MAX_SYMLINK_HOPS: usize = 40;

/// A file being written that appears at its final path only on [`AtomicFile::commit`].
/// Dropping it uncommitted deletes the temp file.
#[derive(Debug)]
pub struct AtomicFile {
    inner: Inner,
    target: PathBuf,
}

#[derive(Debug)]
enum Inner {
    /// A temp file renamed over `target` on commit; `mode` is what the
    /// committed file gets (the replaced file's, or 0644 for a new one).
    Temp {
        temp: tempfile::NamedTempFile,
        mode: u32,
        /// Whether a file was at the target when writing began.
        replaces: bool,
    },
    /// A FIFO or device opened for writing: there is nothing to rename.
    Special(File),
}

/// Where a write to a path lands, once symlinks are followed.
#[derive(Debug, PartialEq, Eq)]
enum Landing {
    /// A regular file (or nothing yet) at this path, replaced by rename;
    /// with the existing file's permission bits, if any.
    Replace { path: PathBuf, mode: Option<u32> },
    /// A FIFO or a character/block device, written in place.
    Special(PathBuf),
}

impl AtomicFile {
    /// Starts writing `target`; the temp file lives in the same directory as
    /// the file finally written (after following symlinks) so the rename
    /// never crosses filesystems. See the module docs for what it replaces.
    pub fn create(target: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let requested = target.as_ref().to_path_buf();
        let (path, inner) = match landing(&requested)? {
            Landing::Special(path) => {
                // No truncate: devices ignore it, and a FIFO has nothing to drop.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                (path, Inner::Special(file))
            }
            Landing::Replace { path, mode } => {
                let temp = temp_beside(&path)?;
                (
                    path,
                    Inner::Temp {
                        temp,
                        mode: mode.unwrap_or(0o644),
                        replaces: mode.is_some(),
                    },
                )
            }
        };
        tracing::trace!(requested = %requested.display(), writes = %path.display(), "atomic write");
        Ok(AtomicFile {
            inner,
            target: path,
        })
    }

    /// The open temp file (or the FIFO/device itself).
    pub fn file(&mut self) -> &mut File {
        match &mut self.inner {
            Inner::Temp { temp, .. } => temp.as_file_mut(),
            Inner::Special(file) => file,
        }
    }

    /// Flushes to disk and renames into place, readable by all like any file
    /// created under the usual umask (temp files start out 0600), or with the
    /// permissions of the file it replaces. Returns the path written.
    pub fn commit(self) -> io::Result<PathBuf> {
        if let Inner::Temp { temp, .. } = &self.inner {
            temp.as_file().sync_all()?;
        }
        self.commit_unsynced()
    }

    /// Renames into place without waiting for the disk: for many cache files
    /// written at once, made durable together by one [`crate::Store::sync`]
    /// (a reader must still check what it finds, e.g. by size).
    pub fn commit_unsynced(self) -> io::Result<PathBuf> {
        let target = self.target;
        match self.inner {
            Inner::Special(mut file) => file.flush()?,
            Inner::Temp {
                temp,
                mode,
                replaces,
            } => {
                temp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(mode))?;
                if replaces && exchange(temp.path(), &target)? {
                    // The temp path now names the replaced file: dropping
                    // the temp file unlinks it.
                    drop(temp);
                } else {
                    temp.persist(&target).map_err(|e| {
                        io::Error::new(e.error.kind(), format!("{}: {}", target.display(), e.error))
                    })?;
                }
            }
        }
        Ok(target)
    }
}

/// Swaps the names `new` and `target` in one step (renameat2's
/// RENAME_EXCHANGE), so `target` is the new file at once, as with a rename,
/// and `new` names the old one. Returns false, having changed nothing, where
/// the filesystem cannot exchange (or `target` has gone): the caller renames.
///
/// Why not a plain rename over the old file: ext4 (auto_da_alloc) then
/// writes the new file's delayed blocks out before the rename returns, to
/// protect programs that skip fsync. A warm `containerize -f image.tar`
/// spent 40-80 ms of its ~130 ms there replacing the last build's 80 MB
/// archive; an exchange and an unlink of the old file cost about 20 ms.
fn exchange(new: &Path, target: &Path) -> io::Result<bool> {
    use nix::errno::Errno;
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(
        AT_FDCWD,
        new,
        AT_FDCWD,
        target,
        RenameFlags::RENAME_EXCHANGE,
    ) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::ENOENT) => Ok(false),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("{}: {e}", target.display()),
        )),
    }
}

/// Errors name the file (the temp file, as tempfile reports it, or the
/// FIFO/device), so a full disk says where.
impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Temp { temp, .. } => temp.write(buf),
            Inner::Special(file) => file.write(buf).map_err(|e| named(e, &self.target)),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Temp { temp, .. } => temp.flush(),
            Inner::Special(file) => file.flush().map_err(|e| named(e, &self.target)),
        }
    }
}

fn named(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{error} (writing {})", path.display()),
    )
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

/// Follows `requested` through any symlinks to what a write would land on,
/// and refuses what cannot be written as a file.
fn landing(requested: &Path) -> io::Result<Landing> {
    let mut path = requested.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        let meta = match fs_err::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Landing::Replace { path, mode: None });
            }
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            // Relative link targets are relative to the link's directory.
            let link = fs_err::read_link(&path)?;
            path = match path.parent() {
                Some(dir) => dir.join(link),
                None => link,
            };
            continue;
        }
        if kind.is_file() {
            let mode = meta.permissions().mode() & 0o777;
            return Ok(Landing::Replace {
                path,
                mode: Some(mode),
            });
        }
        if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
            return Ok(Landing::Special(path));
        }
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "a socket"
        };
        return Err(refused(requested, &path, what));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{}: too many levels of symbolic links (more than {MAX_SYMLINK_HOPS})",
            requested.display()
        ),
    ))
}

fn refused(requested: &Path, landed: &Path, what: &str) -> io::Error {
    let via = if requested == landed {
        String::new()
    } else {
        format!(" (it links to {})", landed.display())
    };
    let kind = if what == "a directory" {
        io::ErrorKind::IsADirectory
    } else {
        io::ErrorKind::InvalidInput
    };
    io::Error::new(
        kind,
        format!(
            "cannot write {}: it is {what}{via}; name a file to write instead",
            requested.display()
        ),
    )
}

fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
        // The old file, exchanged onto the temp file's name, is gone too.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out"]);
    }

    #[test]
    fn a_reader_of_the_replaced_file_keeps_reading_the_old_bytes() {
        use std::io::Read;
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("image.tar");
        std::fs::write(&target, b"old archive").unwrap();
        let mut reader = File::open(&target).unwrap();
        write_atomic(&target, |f| f.write_all(b"new archive")).unwrap();
        let mut old = String::new();
        reader.read_to_string(&mut old).unwrap();
        assert_eq!(old, "old archive", "an open reader is not cut off");
        assert_eq!(std::fs::read(&target).unwrap(), b"new archive");
    }

    #[test]
    fn a_new_file_is_0644_and_a_replaced_one_keeps_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let new = tmp.path().join("new");
        write_atomic(&new, |f| f.write_all(b"x")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&new), 0o644);
        let private = tmp.path().join("private");
        std::fs::write(&private, b"old").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&private, |f| f.write_all(b"new")).unwrap();
        assert_eq!(mode(&private), 0o600, "a private manifest stays private");
    }

    #[test]
    fn a_fifo_is_written_to_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, |f| f.write_all(b"through the pipe")).unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "the fifo was replaced");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    /// A symlink stays a symlink, and the file it names gets the bytes;
    /// relative links resolve from the link's directory, chains are followed.
    #[test]
    fn a_symlink_is_followed_to_its_file_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dotfiles = tmp.path().join("dotfiles");
        std::fs::create_dir(&dotfiles).unwrap();
        let real = dotfiles.join("manifest.toml");
        std::fs::write(&real, b"old").unwrap();
        let project = tmp.path().join("project");
        std::fs::create_dir(&project).unwrap();
        symlink("../dotfiles/manifest.toml", project.join("hop")).unwrap();
        let link = project.join("manifest.toml");
        symlink("hop", &link).unwrap();
        let mut file = AtomicFile::create(&link).unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(
            file.commit().unwrap(),
            project.join("../dotfiles/manifest.toml")
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        let stray = std::fs::read_dir(&project).unwrap().count();
        assert_eq!(stray, 2, "no temp file left beside the link");
    }

    /// A link to nothing yet creates the file it names (as `cp` and a shell
    /// redirection do); a link to `/dev/null` writes into the device (tested
    /// through a link, so that a regression replaces the link, not the
    /// machine's /dev/null when the suite runs as root).
    #[test]
    fn dangling_links_create_their_target_and_links_to_devices_write_into_them() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("out.tar");
        symlink("real.tar", &link).unwrap();
        write_atomic(&link, |f| f.write_all(b"tar")).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("real.tar")).unwrap(), b"tar");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let null = tmp.path().join("null");
        symlink("/dev/null", &null).unwrap();
        write_atomic(&null, |f| f.write_all(b"gone")).unwrap();
        assert!(std::fs::symlink_metadata(&null).unwrap().is_symlink());
        assert!(
            std::fs::symlink_metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn directories_sockets_and_link_loops_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        let err = AtomicFile::create(&dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        assert!(err.to_string().contains("dir: it is a directory"), "{err}");
        let link = tmp.path().join("to-dir");
        symlink(&dir, &link).unwrap();
        let err = AtomicFile::create(&link).unwrap_err().to_string();
        assert!(err.contains("links to"), "{err}");
        let socket = tmp.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let err = AtomicFile::create(&socket).unwrap_err().to_string();
        assert!(err.contains("it is a socket"), "{err}");
        assert!(socket.exists(), "the socket is left alone");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        symlink(&b, &a).unwrap();
        symlink(&a, &b).unwrap();
        let err = AtomicFile::create(&a).unwrap_err().to_string();
        assert!(err.contains("too many levels"), "{err}");
    }
}
