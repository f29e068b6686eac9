//! Removing one named entry that nobody uses: the building block of a
//! reference-driven collection (the Kubernetes node store's gc), where the
//! caller knows which entries are referenced and the entries' use locks
//! ([`Store::use_entry`]) say which are in use right now. Size-budget eviction
//! over a whole bucket is [`crate::collect_garbage`]'s.

use crate::gc::{remove, tree_size};
use crate::{Bucket, Result, Store};

/// Removes `name` (a file or directory in `bucket`, e.g. `<sha256>.deb`)
/// unless someone holds its entry `key` in use. Returns `None` when it is in
/// use and stays, else its size in bytes (`0` when there was nothing); with
/// `dry_run` nothing is removed, but an entry in use still reads `None`.
pub fn evict_unused(
    store: &Store,
    bucket: Bucket,
    key: &str,
    name: &str,
    dry_run: bool,
) -> Result<Option<u64>> {
    let path = store.bucket(bucket)?.join(name);
    // Held while removing, so no one starts using the entry half-removed.
    let Some(_evicting) = store.try_evict_lock(bucket, key)? else {
        return Ok(None);
    };
    if fs_err::symlink_metadata(&path).is_err() {
        return Ok(Some(0));
    }
    let size = tree_size(&path)?;
    if !dry_run {
        remove(&path)?;
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_in_use_stays_and_an_unused_one_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let rootfs = store.bucket(Bucket::Rootfs).unwrap();
        for key in ["used", "unused"] {
            fs_err::create_dir_all(rootfs.join(key).join("usr/bin")).unwrap();
            fs_err::write(rootfs.join(key).join("usr/bin/tool"), [1; 10]).unwrap();
        }
        // Read-only directories, as unpacked packages have, are removed too.
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o555);
        fs_err::set_permissions(rootfs.join("unused/usr/bin"), mode).unwrap();
        let held = store.use_entry(Bucket::Rootfs, "used").unwrap();
        assert_eq!(
            evict_unused(&store, Bucket::Rootfs, "used", "used", false).unwrap(),
            None
        );
        assert_eq!(
            evict_unused(&store, Bucket::Rootfs, "unused", "unused", true).unwrap(),
            Some(10)
        );
        assert!(rootfs.join("unused").exists(), "dry run removed it");
        assert_eq!(
            evict_unused(&store, Bucket::Rootfs, "unused", "unused", false).unwrap(),
            Some(10)
        );
        assert!(!rootfs.join("unused").exists());
        assert!(rootfs.join("used/usr/bin/tool").exists());
        drop(held);
        assert_eq!(
            evict_unused(&store, Bucket::Rootfs, "used", "used", false).unwrap(),
            Some(10)
        );
        assert_eq!(
            evict_unused(&store, Bucket::Rootfs, "gone", "gone", false).unwrap(),
            Some(0)
        );
    }
}
