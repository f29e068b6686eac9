//! Per-entry cache locks: one byte each in a single lock file per bucket
//! (`<bucket>/.locks/entries`), locked with open-file-description
//! byte-range locks (fcntl(2) `F_OFD_SETLK`), at an offset derived from the
//! entry's key and the lock's kind ("lock" to build it, "use" to keep gc out).
//!
//! Why not a file per entry, as cairn did first: a cold build touches a few
//! hundred entries, and every lock file was a new inode, never deleted (a
//! holder may have it open, and a fresh file under the same name would be a
//! second lock), so `.locks/` grew by one file per entry ever built. A new
//! inode costs about 0.05 ms of CPU on ext4, and ten times that where many
//! were freed in the last minutes (without a journal, ext4 skips those one
//! by one), as after a `cache gc`: 200 lock files were then 0.1 s of a cold
//! `containerize`'s CPU. One file per bucket costs one inode, ever.
//!
//! OFD locks keep what flock(2) gave: they belong to the open file
//! description, so two opens in one process conflict as two processes do,
//! a descriptor inherited by a child (a container's init, through runc's
//! `--preserve-fds`) keeps the lock, and it goes when the last descriptor
//! closes or the process dies. One description can hold many ranges:
//! [`lock_uses`] takes a whole build's use-locks on one descriptor.
//!
//! Offsets are 62 bits of the sha256 of kind and key, so two entries share
//! a byte with odds of about n²/2⁶³; if they ever did, the lock would only
//! be wider than needed (a build waits, gc skips an entry), never unsafe.
//!
//! Written on nix's `fcntl` because std has only whole-file flock and no
//! well-kept crate offers OFD byte-range locks.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use sha2::{Digest, Sha256};

/// Held while an entry is being produced, or used ([`crate::Store::use_entry`]);
/// released on drop, or when the process dies.
#[derive(Debug)]
pub struct EntryLock {
    file: File,
    /// While evicting: the per-entry lock file of cairn before this one,
    /// held exclusively (see [`legacy_evict_lock`]).
    _legacy: Option<File>,
}

/// The lock's open file: a process that inherits a duplicate of it (e.g. a
/// container's init, through runc's `--preserve-fds`) holds the lock for as
/// long as it keeps the descriptor open, since OFD locks belong to the open
/// file description.
impl std::os::fd::AsFd for EntryLock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// What a lock keeps others from doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Shared: any number of holders, none exclusive.
    Shared,
    /// Exclusive: one holder.
    Exclusive,
}

/// The lock file of the bucket directory `bucket_dir`.
pub(crate) fn lock_file_path(bucket_dir: &Path) -> PathBuf {
    bucket_dir.join(".locks").join("entries")
}

/// Opens (creating once) the lock file at `path`, for reading and writing
/// since shared locks need the one and exclusive locks the other.
fn open(path: &Path) -> io::Result<File> {
    let open = || {
        File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()
        }
        opened => opened,
    }
}

/// The byte of the lock file that stands for (`key`, `kind`).
fn offset(key: &str, kind: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update(b":")
        .chain_update(key.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 62 bits: non-negative as an off_t, and far below its end.
    (u64::from_be_bytes(first) >> 2) as i64
}

/// Locks one byte of `file`; with `wait`, blocks until it is free, else
/// returns `false` at once when someone else holds a conflicting lock.
fn lock_byte(file: &File, offset: i64, mode: Mode, wait: bool) -> io::Result<bool> {
    let range = libc::flock {
        l_type: match mode {
            Mode::Shared => libc::F_RDLCK,
            Mode::Exclusive => libc::F_WRLCK,
        } as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: offset,
        l_len: 1,
        // Must be 0 for OFD locks.
        l_pid: 0,
    };
    loop {
        let arg = if wait {
            FcntlArg::F_OFD_SETLKW(&range)
        } else {
            FcntlArg::F_OFD_SETLK(&range)
        };
        match fcntl(file, arg) {
            Ok(_) => return Ok(true),
            // A signal while waiting: wait again.
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) if !wait => {
                return Ok(false);
            }
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Takes the (`key`, `kind`) lock of the bucket at `bucket_dir` on a
/// descriptor of its own, waiting while it is held.
pub(crate) fn lock(bucket_dir: &Path, key: &str, kind: &str, mode: Mode) -> io::Result<EntryLock> {
    let file = open(&lock_file_path(bucket_dir))?;
    lock_byte(&file, offset(key, kind), mode, true)?;
    Ok(EntryLock {
        file,
        _legacy: None,
    })
}

/// [`lock`] without waiting: `None` while someone else holds it.
pub(crate) fn try_lock(
    bucket_dir: &Path,
    key: &str,
    kind: &str,
    mode: Mode,
) -> io::Result<Option<EntryLock>> {
    let file = open(&lock_file_path(bucket_dir))?;
    let taken = lock_byte(&file, offset(key, kind), mode, false)?;
    Ok(taken.then_some(EntryLock {
        file,
        _legacy: None,
    }))
}

/// Shared "use" locks on every key of `keys`, all held by one descriptor:
/// one open file for a whole build's `.deb`s, however many.
pub(crate) fn lock_uses<'k>(
    bucket_dir: &Path,
    keys: impl IntoIterator<Item = &'k str>,
) -> io::Result<EntryLock> {
    let file = open(&lock_file_path(bucket_dir))?;
    for key in keys {
        lock_byte(&file, offset(key, "use"), Mode::Shared, true)?;
    }
    Ok(EntryLock {
        file,
        _legacy: None,
    })
}

/// An eviction lock, taken only if a cairn from before this module (which
/// flock(2)ed `.locks/<key>.use`, a file per entry) does not use the entry
/// either: during an upgrade, a container or shell started by the older
/// cairn still holds that file, and must not lose its rootfs or
/// environment to the newer one's gc. The old file is held exclusively
/// while evicting, so an older cairn does not start using the entry
/// meanwhile. Old lock files are left in place: deleting one another
/// process may open would let two holders in.
pub(crate) fn legacy_evict_lock(
    bucket_dir: &Path,
    key: &str,
    held: EntryLock,
) -> io::Result<Option<EntryLock>> {
    let legacy = bucket_dir.join(".locks").join(format!("{key}.use"));
    let file = match File::options().read(true).write(true).open(&legacy) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(held)),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(EntryLock {
            _legacy: Some(file),
            ..held
        })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_keys_get_distinct_bytes() {
        assert_ne!(offset("k", "lock"), offset("k", "use"));
        assert_ne!(offset("a", "use"), offset("b", "use"));
        assert!(offset("k", "use") >= 0);
    }

    #[test]
    fn exclusive_conflicts_across_descriptors_of_one_process() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(tmp.path(), "k", "lock", Mode::Exclusive).unwrap();
        let other = try_lock(tmp.path(), "k", "lock", Mode::Exclusive).unwrap();
        assert!(other.is_none(), "a second descriptor must not get it");
        let elsewhere = try_lock(tmp.path(), "j", "lock", Mode::Exclusive).unwrap();
        assert!(elsewhere.is_some(), "another key is another byte");
        drop(held);
        assert!(
            try_lock(tmp.path(), "k", "lock", Mode::Exclusive)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn one_descriptor_holds_many_uses_until_it_closes() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = ["a", "b", "c"];
        let held = lock_uses(tmp.path(), keys).unwrap();
        for key in keys {
            let evict = try_lock(tmp.path(), key, "use", Mode::Exclusive).unwrap();
            assert!(evict.is_none(), "{key} is in use");
        }
        assert!(
            try_lock(tmp.path(), "d", "use", Mode::Exclusive)
                .unwrap()
                .is_some()
        );
        drop(held);
        for key in keys {
            assert!(
                try_lock(tmp.path(), key, "use", Mode::Exclusive)
                    .unwrap()
                    .is_some()
            );
        }
    }

    /// An entry that an older cairn uses (a flock on its own
    /// `.locks/<key>.use`) is not evicted, and is held against it while
    /// evicting.
    #[test]
    fn an_older_cairns_use_keeps_gc_out() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".locks")).unwrap();
        let old = File::create(tmp.path().join(".locks/k.use")).unwrap();
        old.lock_shared().unwrap();
        let evict = || {
            let held = try_lock(tmp.path(), "k", "use", Mode::Exclusive)
                .unwrap()
                .unwrap();
            legacy_evict_lock(tmp.path(), "k", held).unwrap()
        };
        assert!(evict().is_none(), "the older cairn still uses it");
        old.unlock().unwrap();
        let evicting = evict().expect("free now");
        assert!(old.try_lock_shared().is_err(), "held against older cairns");
        drop(evicting);
        let other = try_lock(tmp.path(), "j", "use", Mode::Exclusive).unwrap();
        assert!(
            legacy_evict_lock(tmp.path(), "j", other.unwrap())
                .unwrap()
                .is_some()
        );
    }

    /// A child that inherits the descriptor keeps the lock after the
    /// parent closes its copy: what runc's `--preserve-fds` relies on.
    #[test]
    fn an_inherited_descriptor_keeps_the_lock() {
        use std::os::fd::AsFd;
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(tmp.path(), "k", "use", Mode::Shared).unwrap();
        let duplicate = held.as_fd().try_clone_to_owned().unwrap();
        drop(held);
        let evict = try_lock(tmp.path(), "k", "use", Mode::Exclusive).unwrap();
        assert!(evict.is_none(), "the duplicate still holds it");
        drop(duplicate);
        assert!(
            try_lock(tmp.path(), "k", "use", Mode::Exclusive)
                .unwrap()
                .is_some()
        );
    }
}
