//! Path operations on an assembled rootfs that can never leave it.
//!
//! A rootfs is built from untrusted packages, so any of its components may be
//! a symlink (`tmp -> ../../../../tmp/victim`, `etc -> /etc`). Joining paths
//! and calling `create_dir_all` or `chmod` would follow such a link onto the
//! host; as root, `tmp -> /etc` would make the host's `/etc` world-writable.
//!
//! [`Confined`] resolves every path with `openat2(RESOLVE_IN_ROOT)`: the
//! kernel treats the rootfs as `/`, so absolute symlinks and `..` are clamped
//! to it, exactly as they resolve after `chroot`. Anything created is made
//! with `mkdirat`/`openat(O_NOFOLLOW)`/`symlinkat` relative to an fd that was
//! resolved that way, so there is no window between check and use. Magic
//! links (`/proc/self/fd/*`) are refused too. This module does not decide
//! *policy* (which symlinks a package may ship); `host.rs` does.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fchmod, mkdirat};

use crate::{Result, RuntimeError};

/// As the kernel's limit on symlinks followed in one lookup (ELOOP).
const MAX_SYMLINK_HOPS: u32 = 40;

/// A directory used as `/` for every path operation below.
#[derive(Debug)]
pub struct Confined {
    root: PathBuf,
    fd: OwnedFd,
}

impl Confined {
    /// Opens `root` (a path cairn chose, e.g. in the store) as the confinement.
    pub fn open(root: &Path) -> Result<Self> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| confined_error(root, Path::new("/"), "open", errno))?;
        Ok(Confined {
            root: root.to_path_buf(),
            fd,
        })
    }

    /// Resolves `path` (absolute or relative, both meaning "under the root")
    /// as if the root were `/`, opening it with `flags`.
    pub fn resolve(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let rel = relative(path);
        let rel: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(self.fd.as_fd(), rel, how) {
            // Kernels before 5.6 lack openat2: fall back to refusing every
            // symlink, component by component, which is stricter but safe.
            Err(Errno::ENOSYS) => self.resolve_without_symlinks(rel, flags),
            other => other,
        }
    }

    fn resolve_without_symlinks(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let parts: Vec<&OsStr> = rel.iter().filter(|p| *p != ".").collect();
        if parts.iter().any(|p| *p == "..") {
            return Err(Errno::EXDEV); // Cannot be clamped without openat2.
        }
        let Some((last, parents)) = parts.split_last() else {
            return openat(
                self.fd.as_fd(),
                ".",
                flags | OFlag::O_CLOEXEC,
                Mode::empty(),
            );
        };
        let mut dir = openat(
            self.fd.as_fd(),
            ".",
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        for part in parents {
            dir = openat(
                dir.as_fd(),
                *part,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
        }
        openat(
            dir.as_fd(),
            *last,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    /// `mkdir -p path` inside the root; returns the final directory (O_PATH).
    /// A dangling symlink on the way is followed inside the root (its target
    /// is created there), as `mkdir -p` would do after `chroot`.
    pub fn create_dir_all(&self, path: &Path) -> Result<OwnedFd> {
        self.create_dir_all_hops(&relative(path), MAX_SYMLINK_HOPS)
    }

    fn create_dir_all_hops(&self, rel: &Path, hops: u32) -> Result<OwnedFd> {
        let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let mut current = self
            .resolve(Path::new("."), dir_flags)
            .map_err(|e| self.error(Path::new("/"), "open", e))?;
        let mut prefix = PathBuf::new();
        let mut parts = rel.iter();
        while let Some(part) = parts.next() {
            let parent = prefix.clone();
            prefix.push(part);
            current = match self.resolve(&prefix, dir_flags) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    // The parent is resolved and inside the root; mkdirat does
                    // not follow a symlink in the last component (EEXIST).
                    match mkdirat(current.as_fd(), part, Mode::from_bits_truncate(0o755)) {
                        Ok(()) => {}
                        Err(Errno::EEXIST) if hops > 0 => {
                            let link = nix::fcntl::readlinkat(current.as_fd(), part)
                                .map_err(|e| self.error(&prefix, "create directory", e))?;
                            // Restart from the link's target, inside the root;
                            // the kernel clamps its `..` and `/` to the root.
                            let mut next = if Path::new(&link).is_absolute() {
                                PathBuf::new()
                            } else {
                                parent
                            };
                            next.push(relative(Path::new(&link)));
                            next.extend(parts);
                            return self.create_dir_all_hops(&next, hops - 1);
                        }
                        Err(e) => return Err(self.error(&prefix, "create directory", e)),
                    }
                    self.resolve(&prefix, dir_flags)
                        .map_err(|e| self.error(&prefix, "open directory", e))?
                }
                Err(e) => return Err(self.error(&prefix, "open directory", e)),
            };
        }
        Ok(current)
    }

    /// Creates an empty file at `path` (and its parents) unless something is
    /// there already, e.g. a placeholder to bind a host file onto. A dangling
    /// symlink there is followed inside the root.
    pub fn ensure_file(&self, path: &Path) -> Result<()> {
        self.ensure_file_hops(&relative(path), MAX_SYMLINK_HOPS)
    }

    fn ensure_file_hops(&self, rel: &Path, hops: u32) -> Result<()> {
        if self.resolve(rel, OFlag::O_PATH).is_ok() {
            return Ok(());
        }
        let (parent, name) =
            split(rel).ok_or_else(|| self.error(rel, "create file", Errno::EINVAL))?;
        let dir = self.create_dir_all(&parent)?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(
            dir.as_fd(),
            name.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) => Ok(()),
            Err(Errno::EEXIST) if hops > 0 => {
                let link = nix::fcntl::readlinkat(dir.as_fd(), name.as_os_str())
                    .map_err(|e| self.error(rel, "create file", e))?;
                let mut next = if Path::new(&link).is_absolute() {
                    PathBuf::new()
                } else {
                    parent
                };
                next.push(relative(Path::new(&link)));
                self.ensure_file_hops(&next, hops - 1)
            }
            Err(e) => Err(self.error(rel, "create file", e)),
        }
    }

    /// The parent directory of `path` (created inside the root) and the last
    /// component, with whatever file or symlink was there removed.
    fn cleared_slot(&self, path: &Path, operation: &'static str) -> Result<(OwnedFd, PathBuf)> {
        let (parent, name) =
            split(path).ok_or_else(|| self.error(path, operation, Errno::EINVAL))?;
        let created = self.create_dir_all(&parent)?;
        // unlinkat needs a real directory fd, not the O_PATH one.
        let dir = self
            .resolve(&parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .unwrap_or(created);
        remove_entry(&dir, name.as_os_str()).map_err(|e| self.error(path, "replace", e))?;
        Ok((dir, name))
    }

    /// Replaces whatever is at `path` (a file hardlinked from the store, a
    /// symlink) with a new regular file holding `contents`, never writing
    /// through the old inode or link. Parents are created inside the root.
    pub fn replace_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        let (dir, name) = self.cleared_slot(path, "write file")?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            dir.as_fd(),
            name.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.error(path, "create file", e))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, contents).map_err(|e| {
            self.error(
                path,
                "write",
                Errno::from_raw(e.raw_os_error().unwrap_or(5)),
            )
        })?;
        fchmod(file.as_fd(), Mode::from_bits_truncate(mode))
            .map_err(|e| self.error(path, "chmod", e))
    }

    /// Replaces whatever is at `path` with the symlink `path -> target`.
    pub fn replace_symlink(&self, path: &Path, target: &Path) -> Result<()> {
        let (dir, name) = self.cleared_slot(path, "symlink")?;
        nix::unistd::symlinkat(target, dir.as_fd(), name.as_os_str())
            .map_err(|e| self.error(path, "symlink", e))
    }

    /// Sets the mode of the directory at `path` (resolved inside the root).
    pub fn set_dir_mode(&self, path: &Path, mode: u32) -> Result<()> {
        // fchmod needs a real fd, not O_PATH.
        let fd = self
            .resolve(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|e| self.error(path, "open directory", e))?;
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| self.error(path, "chmod", e))
    }

    /// Creates the symlink `path -> target` unless `path` exists (even as a
    /// dangling symlink). Its parent must already exist.
    pub fn symlink_if_absent(&self, path: &Path, target: &Path) -> Result<()> {
        let (parent, name) =
            split(path).ok_or_else(|| self.error(path, "symlink", Errno::EINVAL))?;
        let dir = self
            .resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| self.error(&parent, "open directory", e))?;
        match nix::unistd::symlinkat(target, dir.as_fd(), name.as_os_str()) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(self.error(path, "symlink", e)),
        }
    }

    /// Whether `path` resolves (inside the root) to a regular file.
    /// Removes `path` when it is an empty directory (nothing otherwise).
    pub fn remove_empty_dir(&self, path: &Path) -> Result<()> {
        let Some((parent, name)) = split(path) else {
            return Ok(());
        };
        let Ok(dir) = self.resolve(&parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else {
            return Ok(());
        };
        match nix::unistd::unlinkat(
            dir.as_fd(),
            name.as_os_str(),
            nix::unistd::UnlinkatFlags::RemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ENOTEMPTY | Errno::EEXIST) => {
                Ok(())
            }
            Err(e) => Err(self.error(path, "remove empty directory", e)),
        }
    }

    pub fn is_file(&self, path: &Path) -> bool {
        self.resolve(path, OFlag::O_PATH)
            .ok()
            .and_then(|fd| nix::sys::stat::fstat(fd.as_fd()).ok())
            .is_some_and(|st| {
                let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                kind == SFlag::S_IFREG
            })
    }

    /// Whether `path`'s last component is a symlink (its parents resolved
    /// inside the root).
    pub fn is_symlink(&self, path: &Path) -> bool {
        let Some((parent, name)) = split(path) else {
            return false;
        };
        let Ok(dir) = self.resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY) else {
            return false;
        };
        nix::fcntl::readlinkat(dir.as_fd(), name.as_os_str()).is_ok()
    }

    /// A `/proc/self/fd/N` path for an fd, which `mount(2)` resolves to the
    /// very inode the fd names, so a mount lands where [`Confined::resolve`]
    /// decided and not wherever a symlink would send a path string.
    pub fn fd_path(fd: &OwnedFd) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }

    fn error(&self, path: &Path, operation: &'static str, errno: Errno) -> RuntimeError {
        confined_error(&self.root, path, operation, errno)
    }
}

fn confined_error(root: &Path, path: &Path, operation: &'static str, errno: Errno) -> RuntimeError {
    RuntimeError::RootfsPath {
        rootfs: root.to_path_buf(),
        path: Path::new("/").join(relative(path)),
        operation,
        errno,
    }
}

/// `path` without its root or `.` components, relative to the root. `..` is
/// kept: `RESOLVE_IN_ROOT` clamps it at the root, as `/..` is `/`.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// (parent, last component) of `path` made relative; `None` for the root.
fn split(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let rel = relative(path);
    let name = PathBuf::from(rel.file_name()?);
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    Some((parent, name))
}

/// Removes a file or symlink `name` in `dir` (nothing there is fine); a
/// directory is left alone, and replacing it then fails with EEXIST.
fn remove_entry(dir: &OwnedFd, name: &std::ffi::OsStr) -> nix::Result<()> {
    match nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) | Err(Errno::EISDIR) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A rootfs whose `tmp`, `etc`, `usr` and `opt` point outside, and a host
    /// directory that must stay untouched.
    fn hostile() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let (root, victim) = (tmp.path().join("a/b/root"), tmp.path().join("victim"));
        fs_err::create_dir_all(&root).unwrap();
        fs_err::create_dir_all(&victim).unwrap();
        fs_err::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
        symlink("../../../victim", root.join("tmp")).unwrap();
        symlink(&victim, root.join("etc")).unwrap();
        symlink(&victim, root.join("usr")).unwrap();
        symlink("/../../../../../victim", root.join("opt")).unwrap();
        (tmp, root, victim)
    }

    fn victim_untouched(victim: &Path) {
        let entries: Vec<_> = fs_err::read_dir(victim).unwrap().collect();
        assert!(entries.is_empty(), "{entries:?}");
        let mode = fs_err::metadata(victim).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
    }

    #[test]
    fn symlinks_resolve_inside_the_root_never_onto_the_host() {
        let (_tmp, root, victim) = hostile();
        let c = Confined::open(&root).unwrap();
        // `opt -> /../../victim` is `/victim` in the root: created there.
        c.create_dir_all(Path::new("opt/cairn/env")).unwrap();
        assert!(root.join("victim/cairn/env").is_dir());
        c.ensure_file(Path::new("/etc/passwd")).unwrap();
        assert!(c.is_file(Path::new("/etc/passwd")));
        c.create_dir_all(Path::new("usr/bin")).unwrap();
        c.symlink_if_absent(Path::new("usr/bin/sh"), Path::new("bash"))
            .unwrap();
        assert!(c.is_symlink(Path::new("/usr/bin/sh")));
        assert!(!c.is_file(Path::new("/usr/bin/sh")));
        victim_untouched(&victim);
    }

    #[test]
    fn a_dangling_symlink_is_created_inside_the_root_and_a_loop_is_refused() {
        let (_tmp, root, victim) = hostile();
        let c = Confined::open(&root).unwrap();
        // `tmp -> ../../../victim` is `/victim` in the root, created there.
        c.create_dir_all(Path::new("tmp")).unwrap();
        c.set_dir_mode(Path::new("tmp"), 0o1777).unwrap();
        let inner = fs_err::metadata(root.join("victim"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(inner & 0o7777, 0o1777);
        victim_untouched(&victim);
        symlink("loop-b", root.join("loop-a")).unwrap();
        symlink("loop-a", root.join("loop-b")).unwrap();
        let err = c.create_dir_all(Path::new("loop-a/x")).unwrap_err();
        assert!(
            matches!(
                &err,
                RuntimeError::RootfsPath {
                    errno: Errno::ELOOP | Errno::EEXIST,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn plain_directories_work_as_before() {
        let tmp = tempfile::tempdir().unwrap();
        let c = Confined::open(tmp.path()).unwrap();
        c.create_dir_all(Path::new("/var/tmp")).unwrap();
        c.set_dir_mode(Path::new("var/tmp"), 0o1777).unwrap();
        let mode = fs_err::metadata(tmp.path().join("var/tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777);
        c.ensure_file(Path::new("/etc/hosts")).unwrap();
        fs_err::write(tmp.path().join("etc/hosts"), "kept").unwrap();
        c.ensure_file(Path::new("/etc/hosts")).unwrap();
        assert_eq!(
            fs_err::read_to_string(tmp.path().join("etc/hosts")).unwrap(),
            "kept"
        );
        assert!(c.is_file(Path::new("etc/hosts")));
        assert!(!c.is_symlink(Path::new("etc/hosts")));
    }

    #[test]
    fn paths_are_made_relative_to_the_root() {
        assert_eq!(relative(Path::new("/../etc/./x")), Path::new("../etc/x"));
        assert_eq!(split(Path::new("/")), None);
        assert_eq!(
            split(Path::new("/etc/passwd")),
            Some((PathBuf::from("etc"), PathBuf::from("passwd")))
        );
    }
}
