//! The content-addressed cache shared by every cairn command.
//!
//! Owns the cache layout (a versioned bucket per kind of entry, `CACHEDIR.TAG`
//! at the root), inter-process file locks, and atomic writes (temp file in the
//! same directory, then rename), so a reader never sees half an entry and a
//! `kill -9` leaves at most a temp file behind. It knows nothing about Debian or
//! OCI: callers choose keys and contents.

mod atomic;
mod entry_lock;
mod evict;
mod gc;
mod hash;
mod lock;
mod verify;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use atomic::{AtomicFile, write_atomic};
pub use entry_lock::EntryLock;
use entry_lock::Mode;
pub use evict::evict_unused;
pub use gc::{
    CorruptEntry, DamagedEntry, GcOptions, GcReport, VerifyReport, collect_garbage, verify_bucket,
    verify_cache,
};
pub use hash::{HashingReader, HashingWriter, RunningSha256, sha256_file, sha256_hex};
pub use lock::{FileLock, WaitPolicy, lock_exclusive};
pub use verify::{VerifyingReader, evict, verify_file};

/// Errors from the cache.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot find a cache directory: set CAIRN_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is corrupt: its sha256 is {actual}, expected {expected}{}",
        if *evicted { "; it was evicted from the cache, run the command again to rebuild or refetch it" } else { "; delete it and run the command again" }
    )]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
        evicted: bool,
    },
    #[error("{path} is locked by another cairn process")]
    Busy { path: PathBuf },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A kind of cache entry. The suffix is bumped whenever the entry format changes,
/// so old caches are ignored rather than misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Downloaded `.deb` files, named `<sha256>.deb`.
    Debs,
    /// Verified InRelease and Packages indices.
    Indices,
    /// Compressed OCI layers and their metadata, keyed by input digest.
    Layers,
    /// Extracted package trees, keyed by `.deb` sha256.
    Unpacked,
    /// Assembled root filesystems, keyed by lock hash.
    Rootfs,
    /// Built images (blobs, manifests) kept for `cairn push`.
    Images,
    /// Build artifacts, keyed by content hash.
    Artifacts,
    /// Published environments fetched for `activate -r`/`containerize -r`,
    /// keyed by their artifact digest.
    Environments,
    /// What configuration needs from each `.deb`, keyed by its sha256.
    Facts,
}

impl Bucket {
    /// Directory name of this bucket under the cache root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Bucket::Debs => "debs-v1",
            Bucket::Indices => "indices-v1",
            Bucket::Layers => "layers-v1",
            Bucket::Unpacked => "unpacked-v1",
            Bucket::Rootfs => "rootfs-v1",
            Bucket::Images => "images-v1",
            Bucket::Artifacts => "artifacts-v1",
            Bucket::Environments => "environments-v1",
            Bucket::Facts => "facts-v1",
        }
    }
}

/// Handle to the cache root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Directory syncs running on threads of their own
    /// ([`Store::sync_later`]), shared by every clone of this handle.
    syncing: std::sync::Arc<Syncing>,
}

/// Background syncs, waited for when the last handle to the store is dropped,
/// so a command returns only once what it cached is on disk, without having
/// waited for the disk in the middle of its work.
#[derive(Debug, Default)]
struct Syncing(std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>);

impl Drop for Syncing {
    fn drop(&mut self) {
        let handles = match self.0.get_mut() {
            Ok(handles) => std::mem::take(handles),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for handle in handles {
            let _ = handle.join();
        }
    }
}

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by cairn.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

impl Store {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        fs_err::create_dir_all(&root)?;
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(&tag, |f| {
                std::io::Write::write_all(f, CACHEDIR_TAG.as_bytes())
            })?;
        }
        Ok(Store {
            root,
            syncing: std::sync::Arc::default(),
        })
    }

    /// Opens the cache named by `CAIRN_CACHE_DIR`, else `$XDG_CACHE_HOME/cairn`,
    /// else `$HOME/.cache/cairn`.
    pub fn from_env() -> Result<Store> {
        Store::open(default_root()?)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `bucket`, created if missing.
    /// Flushes everything written to the store's filesystem to disk: one
    /// syncfs(2) after a batch of [`AtomicFile::commit_unsynced`] files,
    /// rather than an fsync per file on the hot path.
    pub fn sync(&self) -> Result<()> {
        syncfs(&self.root)
    }

    /// Commits the renames of the files just committed unsynced into
    /// `dirs` (an fsync of each directory), on a thread of its own, so the
    /// caller goes on; it is waited for when the last handle to this store
    /// is dropped. Their data is left to the kernel's writeback: syncfs(2)
    /// forced it out, and with it everything else written to the filesystem
    /// meanwhile (a cold containerize's 76 MB archive beside the cache),
    /// which kept the command waiting 40-110 ms at its end, and seconds on
    /// a throttled disk. A failure is logged rather than returned: at worst
    /// an entry does not survive a crash, and readers check what they find
    /// (sizes, then digests on the way out) and rebuild.
    pub fn sync_later(&self, dirs: Vec<PathBuf>) {
        let handle = std::thread::spawn(move || {
            for dir in dirs {
                let synced = File::open(&dir).and_then(|d| d.sync_all());
                if let Err(e) = synced {
                    tracing::warn!("flushing the cache {} to disk: {e}", dir.display());
                }
            }
        });
        match self.syncing.0.lock() {
            Ok(mut handles) => handles.push(handle),
            Err(poisoned) => poisoned.into_inner().push(handle),
        }
    }

    pub fn bucket(&self, bucket: Bucket) -> Result<PathBuf> {
        self.bucket_subdir(bucket, "")
    }

    /// The directory `relative` inside `bucket` (`""` for the bucket
    /// itself), created if missing.
    pub fn bucket_subdir(&self, bucket: Bucket, relative: &str) -> Result<PathBuf> {
        let mut dir = self.root.join(bucket.dir_name());
        if !relative.is_empty() {
            dir.push(relative);
        }
        fs_err::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Where the `.deb` with this sha256 lives (whether or not it exists yet).
    pub fn deb_path(&self, sha256: &str) -> Result<PathBuf> {
        Ok(self.bucket(Bucket::Debs)?.join(format!("{sha256}.deb")))
    }

    /// Takes an exclusive lock on one entry of a bucket, so two processes never
    /// build the same entry at once. Readers need no lock: entries appear by rename.
    pub fn lock_entry(&self, bucket: Bucket, key: &str) -> Result<EntryLock> {
        entry_lock::lock(&self.bucket_dir(bucket), key, "lock", Mode::Exclusive)
            .map_err(|source| self.lock_error(bucket, source))
    }

    /// Marks one entry as in use for as long as the guard lives: a shared
    /// lock on the entry's "use" byte ([`entry_lock`]), which
    /// [`crate::collect_garbage`] must take exclusively before it evicts the
    /// entry. Any number of builds and activations share an entry; gc skips
    /// it until the last one is done. Take it *before* checking that the
    /// entry exists, so that what was checked cannot be evicted before it is
    /// used.
    pub fn use_entry(&self, bucket: Bucket, key: &str) -> Result<EntryLock> {
        entry_lock::lock(&self.bucket_dir(bucket), key, "use", Mode::Shared)
            .map_err(|source| self.lock_error(bucket, source))
    }

    /// [`Store::use_entry`] for every entry of `keys`, held together by one
    /// guard (one open file, however many keys): what a build takes for its
    /// `.deb`s before it checks which are cached, and keeps until its last
    /// read of them.
    pub fn use_entries<'k>(
        &self,
        bucket: Bucket,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<EntryLock> {
        let keys: Vec<&str> = keys.into_iter().collect();
        // The build then holds a lock per layer blob (one open file each, at
        // most one per package) until the image is written.
        ensure_open_files(keys.len() + 256);
        entry_lock::lock_uses(&self.bucket_dir(bucket), keys)
            .map_err(|source| self.lock_error(bucket, source))
    }

    /// [`Store::use_entry`] for the layer blob `digest` (`sha256:<hex>` or
    /// hex), which lives in `layers-v1/blobs/sha256/`.
    pub fn use_layer_blob(&self, digest: &str) -> Result<EntryLock> {
        self.use_entry(Bucket::Layers, &layer_blob_key(digest))
    }

    /// The exclusive side of [`Store::use_entry`], without waiting: `None`
    /// while anyone uses the entry. Held while removing an entry, so no one
    /// starts using it half-removed.
    pub fn try_evict_lock(&self, bucket: Bucket, key: &str) -> Result<Option<EntryLock>> {
        let dir = self.bucket_dir(bucket);
        let evicting = match entry_lock::try_lock(&dir, key, "use", Mode::Exclusive) {
            Ok(Some(held)) => entry_lock::legacy_evict_lock(&dir, key, held),
            other => other,
        };
        evicting.map_err(|source| self.lock_error(bucket, source))
    }

    /// The directory of `bucket`, not created: the lock file's opening
    /// creates what is missing, and only then.
    fn bucket_dir(&self, bucket: Bucket) -> PathBuf {
        self.root.join(bucket.dir_name())
    }

    fn lock_error(&self, bucket: Bucket, source: std::io::Error) -> StoreError {
        StoreError::Lock {
            path: entry_lock::lock_file_path(&self.bucket_dir(bucket)),
            source,
        }
    }
}

/// syncfs(2) on the filesystem holding `root`.
fn syncfs(root: &Path) -> Result<()> {
    let root = fs_err::File::open(root)?;
    nix::unistd::syncfs(root.file()).map_err(std::io::Error::from)?;
    Ok(())
}

/// Records that the cache file at `path` was just used, for
/// [`collect_garbage`]'s least-recently-used order and its age limit on
/// archive indices: the access time is set to now explicitly, because
/// `noatime` mounts never update it and `relatime` ones at most daily. Best
/// effort: a failure only makes the entry look older than it is.
pub fn mark_used(path: &Path) {
    let now = std::time::SystemTime::now();
    let marked = File::open(path)
        .and_then(|file| file.set_times(std::fs::FileTimes::new().set_accessed(now)));
    if let Err(e) = marked {
        tracing::debug!(path = %path.display(), "cannot mark used: {e}");
    }
}

/// The entry-lock key of a layer blob: apart from the layer records' keys
/// in the same bucket.
pub(crate) fn layer_blob_key(digest: &str) -> String {
    format!("blob-{}", digest.strip_prefix("sha256:").unwrap_or(digest))
}

fn default_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CAIRN_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("cairn"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("cairn")),
        None => Err(StoreError::NoCacheDir),
    }
}

/// Raises the soft limit on open files towards the hard one when `wanted`
/// files may be open at once.
///
/// A build holds a shared use-lock on every layer blob it uses (an open file
/// each; its `.deb`s share one) until the image is written, so gc cannot
/// evict them: an image of several hundred layers nears the usual soft
/// limit of 1024,
/// while the hard limit is far higher (Go's runtime raises it the same way).
/// Only processes that hold that many locks raise it, so activated shells
/// and services of ordinary environments keep the user's limit. Failure is
/// ignored: opening a file then fails with a clear EMFILE, as before.
fn ensure_open_files(wanted: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let wanted = wanted as u64;
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < wanted
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_writes_cachedir_tag_and_buckets() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("c")).unwrap();
        let tag = std::fs::read_to_string(store.root().join("CACHEDIR.TAG")).unwrap();
        assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
        let debs = store.bucket(Bucket::Debs).unwrap();
        assert!(debs.ends_with("debs-v1") && debs.is_dir());
        assert_eq!(
            store.deb_path("ab").unwrap(),
            store.root().join("debs-v1/ab.deb")
        );
    }

    #[test]
    fn entry_lock_is_exclusive_across_handles() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let guard = store.lock_entry(Bucket::Layers, "k").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let store = store.clone();
            std::thread::spawn(move || {
                let _second = store.lock_entry(Bucket::Layers, "k").unwrap();
                tx.send(()).unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "the second builder waits");
        drop(store.lock_entry(Bucket::Layers, "other").unwrap());
        drop(guard);
        rx.recv().unwrap();
        waiter.join().unwrap();
        // One lock file per bucket, whatever the number of entries.
        let locks: Vec<_> = std::fs::read_dir(store.root().join("layers-v1/.locks"))
            .unwrap()
            .collect();
        assert_eq!(locks.len(), 1);
    }

    #[test]
    fn uses_share_an_entry_and_keep_eviction_out_until_the_last_one_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let first = store.use_entry(Bucket::Unpacked, "k").unwrap();
        let second = store.use_entries(Bucket::Unpacked, ["j", "k"]).unwrap();
        assert!(
            store
                .try_evict_lock(Bucket::Unpacked, "k")
                .unwrap()
                .is_none()
        );
        drop(first);
        assert!(
            store
                .try_evict_lock(Bucket::Unpacked, "k")
                .unwrap()
                .is_none()
        );
        drop(second);
        let evicting = store.try_evict_lock(Bucket::Unpacked, "k").unwrap();
        assert!(evicting.is_some());
        // While it is being evicted, no one starts using it.
        assert!(
            store
                .try_evict_lock(Bucket::Unpacked, "k")
                .unwrap()
                .is_none()
        );
        // Production locks are another byte: building another entry or this
        // one is not blocked by its users.
        drop(store.lock_entry(Bucket::Unpacked, "k").unwrap());
    }

    /// Background syncs are joined when the last clone of the store goes,
    /// not before: a clone dropped early leaves them running.
    #[test]
    fn background_syncs_are_waited_for_by_the_last_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let clone = store.clone();
        store.sync_later(vec![tmp.path().to_path_buf()]);
        clone.sync_later(vec![tmp.path().to_path_buf()]);
        drop(store);
        assert_eq!(clone.syncing.0.lock().unwrap().len(), 2, "still held");
        let syncing = std::sync::Arc::downgrade(&clone.syncing);
        drop(clone);
        assert!(syncing.upgrade().is_none(), "joined and gone");
    }

    /// A build's use-locks do not run into a low soft limit on open files:
    /// taking many raises it (nextest runs each test in its own process).
    #[test]
    fn many_use_locks_raise_the_open_file_limit() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        if hard < 2048 {
            eprintln!("skipping: hard open-file limit {hard} too low to test");
            return;
        }
        setrlimit(Resource::RLIMIT_NOFILE, 64, hard).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let keys: Vec<String> = (0..300).map(|i| format!("{i:064x}")).collect();
        let _held = store
            .use_entries(Bucket::Debs, keys.iter().map(String::as_str))
            .unwrap();
        assert!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0 >= 556);
    }
}
