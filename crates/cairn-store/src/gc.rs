//! Cache maintenance: re-verifying every content-addressed entry
//! ([`verify_cache`]) and collecting garbage ([`collect_garbage`]): temp
//! files a killed process left behind, and the least recently used entries
//! over a size budget. It knows the layout of the buckets it checks, not what
//! the entries mean; every entry it removes is rebuilt or refetched on demand.

use crate::{Bucket, Result, Store, StoreError, verify_file};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// An entry whose bytes no longer match the digest in its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptEntry {
    /// The file (now evicted, if `evicted`).
    pub path: PathBuf,
    /// sha256 named by the entry.
    pub expected: String,
    /// sha256 of what was on disk.
    pub actual: String,
    /// Whether it was removed.
    pub evicted: bool,
}

/// What [`verify_cache`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries re-hashed.
    pub checked: usize,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Entries that did not match, evicted.
    pub corrupt: Vec<CorruptEntry>,
}

/// Re-hashes every `.deb` (`debs-v1/<sha256>.deb`) and layer blob
/// (`layers-v1/blobs/sha256/<hex>`) and evicts those that do not match.
pub fn verify_cache(store: &Store) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for (path, expected) in digest_named_entries(store)? {
        let size = fs_err::metadata(&path)?.len();
        match verify_file(&path, &expected) {
            Ok(()) => {}
            Err(StoreError::DigestMismatch {
                path,
                expected,
                actual,
                evicted,
            }) => report.corrupt.push(CorruptEntry {
                path,
                expected,
                actual,
                evicted,
            }),
            Err(other) => return Err(other),
        }
        report.checked += 1;
        report.bytes += size;
    }
    Ok(report)
}

/// Every cache file whose name is its sha256, with that digest.
fn digest_named_entries(store: &Store) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for entry in read_dir_sorted(&store.bucket(Bucket::Debs)?)? {
        let name = file_name(&entry);
        if let Some(hex) = name.strip_suffix(".deb").filter(|h| is_sha256(h)) {
            out.push((entry.clone(), hex.to_owned()));
        }
    }
    for entry in read_dir_sorted(&layer_blobs_dir(store)?)? {
        let name = file_name(&entry);
        if is_sha256(&name) {
            out.push((entry.clone(), name));
        }
    }
    Ok(out)
}

/// What [`collect_garbage`] should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Evict least recently used entries until the evictable ones (debs,
    /// layer blobs, unpacked trees) fit in this many bytes.
    pub max_size: Option<u64>,
    /// Temp files younger than this may belong to a running cairn; they stay.
    pub temp_min_age: Duration,
}

/// What [`collect_garbage`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Orphaned temp files and directories removed.
    pub temps_removed: Vec<PathBuf>,
    /// Entries evicted to meet the budget, least recently used first.
    pub evicted: Vec<PathBuf>,
    /// Bytes freed in all.
    pub freed: u64,
    /// Bytes the evictable entries take afterwards.
    pub remaining: u64,
    /// Entries over the budget that a running build or activation is using
    /// (see [`Store::use_entry`]), kept.
    pub in_use: Vec<PathBuf>,
}

/// Sweeps temp entries (`*.tmp`, `.tmp*`) old enough to be orphans of a
/// killed process, then, with a budget, evicts entries by last use.
pub fn collect_garbage(store: &Store, options: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let now = SystemTime::now();
    for dir in temp_dirs(store)? {
        for path in read_dir_sorted(&dir)? {
            let name = file_name(&path);
            if !(name.ends_with(".tmp") || name.starts_with(".tmp")) {
                continue;
            }
            let meta = fs_err::symlink_metadata(&path)?;
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < options.temp_min_age {
                continue;
            }
            report.freed += tree_size(&path)?;
            remove(&path)?;
            report.temps_removed.push(path);
        }
    }
    let mut entries = evictable_entries(store)?;
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    if let Some(budget) = options.max_size {
        entries.sort_by_key(|e| (e.last_used, e.path.clone()));
        for entry in entries {
            if total <= budget {
                break;
            }
            // Held while removing, so no build starts using it half-removed;
            // one in use is skipped, never waited for (gc must not stall a build).
            let Some(_evicting) = store.try_evict_lock(entry.bucket, &entry.key)? else {
                tracing::debug!(path = %entry.path.display(), "in use; not evicted");
                report.in_use.push(entry.path);
                continue;
            };
            remove(&entry.path)?;
            total -= entry.size;
            report.freed += entry.size;
            report.evicted.push(entry.path);
        }
    }
    report.remaining = total;
    Ok(report)
}

/// An entry that can be evicted and rebuilt.
struct Evictable {
    path: PathBuf,
    /// The bucket and key of its entry lock.
    bucket: Bucket,
    key: String,
    size: u64,
    /// The later of access and modification time: atime where the mount
    /// keeps it (relatime updates it at least daily), else mtime.
    last_used: SystemTime,
}

fn evictable_entries(store: &Store) -> Result<Vec<Evictable>> {
    let mut found = Vec::new();
    for (path, hex) in digest_named_entries(store)? {
        let entry = if path.starts_with(store.bucket(Bucket::Debs)?) {
            (Bucket::Debs, hex)
        } else {
            (Bucket::Layers, crate::layer_blob_key(&hex))
        };
        found.push((path, entry));
    }
    for path in read_dir_sorted(&store.bucket(Bucket::Unpacked)?)? {
        let name = file_name(&path);
        if is_sha256(&name) && path.is_dir() {
            found.push((path, (Bucket::Unpacked, name)));
        }
    }
    found
        .into_iter()
        .map(|(path, (bucket, key))| {
            let meta = fs_err::symlink_metadata(&path)?;
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let accessed = meta.accessed().unwrap_or(modified);
            Ok(Evictable {
                size: tree_size(&path)?,
                last_used: modified.max(accessed),
                path,
                bucket,
                key,
            })
        })
        .collect()
}

/// Where temp entries are created: each bucket's top level and the blob dir.
fn temp_dirs(store: &Store) -> Result<Vec<PathBuf>> {
    let buckets = [
        Bucket::Debs,
        Bucket::Indices,
        Bucket::Layers,
        Bucket::Unpacked,
        Bucket::Rootfs,
        Bucket::Images,
        Bucket::Artifacts,
        Bucket::Environments,
        Bucket::Facts,
    ];
    let mut dirs = vec![store.root().to_path_buf()];
    for bucket in buckets {
        dirs.push(store.bucket(bucket)?);
    }
    dirs.push(layer_blobs_dir(store)?);
    Ok(dirs)
}

fn layer_blobs_dir(store: &Store) -> Result<PathBuf> {
    let dir = store.bucket(Bucket::Layers)?.join("blobs").join("sha256");
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        paths.push(entry?.path());
    }
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Bytes of a file, or of every file under a directory (symlinks not followed).
fn tree_size(path: &Path) -> Result<u64> {
    let meta = fs_err::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs_err::read_dir(path)? {
        total += tree_size(&entry?.path())?;
    }
    Ok(total)
}

fn remove(path: &Path) -> Result<()> {
    let meta = fs_err::symlink_metadata(path)?;
    if meta.is_dir() {
        // Unpacked trees keep their directories read-only like the package.
        make_writable(path)?;
        fs_err::remove_dir_all(path)?;
    } else {
        fs_err::remove_file(path)?;
    }
    Ok(())
}

fn make_writable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs_err::metadata(dir)?.permissions().mode();
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))?;
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_hex;

    fn put_deb(store: &Store, body: &[u8]) -> PathBuf {
        let path = store.deb_path(&sha256_hex(body)).unwrap();
        fs_err::write(&path, body).unwrap();
        path
    }

    fn set_age(path: &Path, age: Duration) {
        let when = SystemTime::now() - age;
        let file = std::fs::File::open(path).unwrap();
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(when)
                .set_modified(when),
        )
        .unwrap();
    }

    #[test]
    fn verify_evicts_a_substituted_deb_and_a_flipped_blob_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let good = put_deb(&store, b"good deb");
        let swapped = put_deb(&store, b"locked deb");
        fs_err::write(&swapped, b"another deb").unwrap();
        let blob = layer_blobs_dir(&store).unwrap().join(sha256_hex(b"blob"));
        fs_err::write(&blob, b"blub").unwrap();
        let report = verify_cache(&store).unwrap();
        assert_eq!(report.checked, 3);
        let mut bad: Vec<_> = report.corrupt.iter().map(|c| c.path.clone()).collect();
        bad.sort();
        let mut expected = vec![swapped.clone(), blob.clone()];
        expected.sort();
        assert_eq!(bad, expected);
        assert!(good.exists() && !swapped.exists() && !blob.exists());
        assert!(verify_cache(&store).unwrap().corrupt.is_empty());
    }

    #[test]
    fn gc_sweeps_old_temps_but_not_live_ones_or_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let deb = put_deb(&store, b"deb");
        let layers = store.bucket(Bucket::Layers).unwrap();
        let orphan = layers.join(".abc.json.x1y2.tmp");
        fs_err::write(&orphan, b"half").unwrap();
        set_age(&orphan, Duration::from_secs(7200));
        let orphan_dir = store.bucket(Bucket::Unpacked).unwrap().join(".tmp-k1ll");
        fs_err::create_dir_all(orphan_dir.join("usr")).unwrap();
        set_age(&orphan_dir, Duration::from_secs(7200));
        let live = store.bucket(Bucket::Debs).unwrap().join(".x.deb.q.tmp");
        fs_err::write(&live, b"being written").unwrap();
        let options = GcOptions {
            max_size: None,
            temp_min_age: Duration::from_secs(3600),
        };
        let report = collect_garbage(&store, &options).unwrap();
        assert_eq!(report.temps_removed.len(), 2, "{report:?}");
        assert!(!orphan.exists() && !orphan_dir.exists());
        assert!(live.exists() && deb.exists());
    }

    /// The child half of the two-process test below: holds an entry in use
    /// (as a build or activation does) until its stdin closes.
    #[test]
    #[ignore = "run by gc_keeps_what_another_process_uses, as its second process"]
    fn hold_entry_in_another_process() {
        let Ok(spec) = std::env::var("CAIRN_TEST_HOLD") else {
            return;
        };
        let (root, key) = spec.split_once('|').unwrap();
        let store = Store::open(root).unwrap();
        let _using = store.use_entry(Bucket::Unpacked, key).unwrap();
        let _blob = store.use_layer_blob(&format!("sha256:{key}")).unwrap();
        println!("holding {key}");
        std::io::Write::flush(&mut std::io::stdout()).unwrap();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).unwrap();
    }

    /// gc in this process, a user of an unpacked tree and a blob in another:
    /// gc keeps both until that process is gone, then evicts them.
    #[test]
    fn gc_keeps_what_another_process_uses() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let key = sha256_hex(b"tree");
        let tree = store.bucket(Bucket::Unpacked).unwrap().join(&key);
        fs_err::create_dir_all(tree.join("usr/bin")).unwrap();
        fs_err::write(tree.join("usr/bin/tool"), [7; 64]).unwrap();
        let blob = layer_blobs_dir(&store).unwrap().join(&key);
        fs_err::write(&blob, [8; 64]).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "gc::tests::hold_entry_in_another_process"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env("CAIRN_TEST_HOLD", format!("{}|{key}", tmp.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let holding = format!("holding {key}");
        assert!(
            // libtest prints "test NAME ... " before the test runs, on the same line.
            lines.any(|l| l.unwrap().ends_with(&holding)),
            "the other process never took the entry"
        );
        let budget = GcOptions {
            max_size: Some(0),
            temp_min_age: Duration::ZERO,
        };
        let report = collect_garbage(&store, &budget).unwrap();
        assert!(report.evicted.is_empty(), "{report:?}");
        assert_eq!(report.in_use.len(), 2, "{report:?}");
        assert!(tree.join("usr/bin/tool").exists() && blob.exists());
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        let report = collect_garbage(&store, &budget).unwrap();
        assert_eq!(report.evicted.len(), 2, "{report:?}");
        assert!(!tree.exists() && !blob.exists());
    }

    #[test]
    fn gc_evicts_least_recently_used_entries_down_to_the_budget() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let old = put_deb(&store, &[1; 100]);
        let mid = put_deb(&store, &[2; 100]);
        let new = put_deb(&store, &[3; 100]);
        set_age(&old, Duration::from_secs(300));
        set_age(&mid, Duration::from_secs(200));
        set_age(&new, Duration::from_secs(100));
        let options = GcOptions {
            max_size: Some(150),
            temp_min_age: Duration::ZERO,
        };
        let report = collect_garbage(&store, &options).unwrap();
        assert_eq!(report.evicted, [old.clone(), mid.clone()]);
        assert_eq!((report.freed, report.remaining), (200, 100));
        assert!(!old.exists() && !mid.exists() && new.exists());
    }
}
