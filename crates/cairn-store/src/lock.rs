//! Exclusive advisory locks on a named file (flock), with a choice between
//! waiting for the holder and failing at once. Used for whole-environment
//! locks by the CLI; per-entry cache locks live in [`crate::Store::lock_entry`].

use crate::{Result, StoreError};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// What to do when another process holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Block until the holder releases it.
    Wait,
    /// Fail with [`StoreError::Busy`].
    NoWait,
}

/// An exclusive lock on a file, released on drop (or when the process dies,
/// so a `kill -9` never leaves a stale lock behind).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes an exclusive lock on `path` (created if missing). When the lock is
/// held elsewhere, `on_contended` runs once (to tell the user why we wait)
/// and then the call blocks, or fails under [`WaitPolicy::NoWait`].
pub fn lock_exclusive(
    path: &Path,
    policy: WaitPolicy,
    on_contended: impl FnOnce(),
) -> Result<FileLock> {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let lock_err = |source| StoreError::Lock {
        path: path.to_path_buf(),
        source,
    };
    // Not truncating: the file's content is irrelevant, only its lock matters.
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::Error(e)) => return Err(lock_err(e)),
        Err(TryLockError::WouldBlock) => match policy {
            WaitPolicy::NoWait => {
                return Err(StoreError::Busy {
                    path: path.to_path_buf(),
                });
            }
            WaitPolicy::Wait => {
                on_contended();
                file.lock().map_err(lock_err)?;
            }
        },
    }
    Ok(FileLock {
        _file: file,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn no_wait_fails_while_held_and_succeeds_after_release() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub/env.lock");
        let held = lock_exclusive(&path, WaitPolicy::NoWait, || {}).unwrap();
        let err = lock_exclusive(&path, WaitPolicy::NoWait, || {}).unwrap_err();
        assert!(matches!(err, StoreError::Busy { path: ref p } if p == &path));
        drop(held);
        lock_exclusive(&path, WaitPolicy::NoWait, || {}).unwrap();
    }

    #[test]
    fn wait_reports_contention_then_gets_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("env.lock");
        let held = lock_exclusive(&path, WaitPolicy::Wait, || panic!("uncontended")).unwrap();
        let told = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (path, told) = (path.clone(), told.clone());
            std::thread::spawn(move || {
                let _lock = lock_exclusive(&path, WaitPolicy::Wait, || {
                    told.store(true, Ordering::SeqCst);
                    tx.send(()).unwrap();
                })
                .unwrap();
            })
        };
        // Release only once the waiter has seen the lock held.
        rx.recv().unwrap();
        drop(held);
        waiter.join().unwrap();
        assert!(told.load(Ordering::SeqCst));
    }
}
