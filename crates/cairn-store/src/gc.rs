//! Cache maintenance: re-verifying every content-addressed entry
//! ([`verify_cache`], and [`verify_bucket`] for entries whose format a caller
//! knows) and collecting garbage ([`collect_garbage`]): temp files a killed
//! process left behind, entries nothing will read again (archive indices
//! unused for weeks, package facts whose `.deb` is gone), and the least
//! recently used entries over a size budget. It knows the layout of the
//! buckets it checks, not what the entries mean; every entry it removes is
//! rebuilt or refetched on demand.

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

/// An entry whose own checksum or framing (not a digest in its name) failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedEntry {
    /// The file (now evicted, if `evicted`).
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
    /// Whether it was removed.
    pub evicted: bool,
}

/// What [`verify_cache`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries re-hashed or checked.
    pub checked: usize,
    /// Bytes re-hashed or checked.
    pub bytes: u64,
    /// Entries that did not match, evicted.
    pub corrupt: Vec<CorruptEntry>,
    /// Entries whose own checksum failed ([`verify_bucket`]), evicted.
    pub damaged: Vec<DamagedEntry>,
}

/// Re-hashes every `.deb` (`debs-v1/<sha256>.deb`), layer blob
/// (`layers-v1/blobs/sha256/<hex>`) and archive file
/// (`indices-v1/<sha256>.InRelease`, `<sha256>.Packages[.xz|.gz]`) and evicts
/// those that do not match.
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
    for entry in read_dir_sorted(&store.bucket(Bucket::Indices)?)? {
        let name = file_name(&entry);
        if let Some((hex, kind)) = name.split_once('.')
            && is_sha256(hex)
            && matches!(
                kind,
                "InRelease" | "Packages" | "Packages.xz" | "Packages.gz"
            )
        {
            out.push((entry.clone(), hex.to_owned()));
        }
    }
    Ok(out)
}

/// Checks every file of `bucket` that `check` recognises (it answers `None`
/// for the others) with the rules of its format, which only the caller knows
/// (a parsed index's length and CRC, say), and evicts those it rejects,
/// adding both to `report`. An entry a running cairn uses is reported but
/// kept; its reader checks it again anyway.
pub fn verify_bucket(
    store: &Store,
    bucket: Bucket,
    report: &mut VerifyReport,
    check: impl Fn(&Path) -> Option<std::result::Result<(), String>>,
) -> Result<()> {
    for path in read_dir_sorted(&store.bucket(bucket)?)? {
        let name = file_name(&path);
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        let Some(outcome) = check(&path) else {
            continue;
        };
        report.checked += 1;
        report.bytes += fs_err::metadata(&path).map_or(0, |m| m.len());
        if let Err(reason) = outcome {
            let evicted = match store.try_evict_lock(bucket, &name)? {
                Some(_evicting) => crate::evict(&path),
                None => false,
            };
            report.damaged.push(DamagedEntry {
                path,
                reason,
                evicted,
            });
        }
    }
    Ok(())
}

/// What [`collect_garbage`] should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Evict least recently used entries until the evictable ones (debs,
    /// layer blobs, unpacked trees, package facts, archive indices) fit in
    /// this many bytes.
    pub max_size: Option<u64>,
    /// Temp files younger than this may belong to a running cairn; they stay.
    pub temp_min_age: Duration,
    /// Archive indices (InRelease, Packages, parsed indices) unused for
    /// longer than this are removed whatever the budget: once the archive
    /// publishes a new InRelease, the old indices are never read again.
    pub index_max_age: Option<Duration>,
}

/// What [`collect_garbage`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Orphaned temp files and directories removed.
    pub temps_removed: Vec<PathBuf>,
    /// Entries nothing will read again, removed whatever the budget:
    /// archive indices older than [`GcOptions::index_max_age`], and package
    /// facts whose `.deb` is no longer cached.
    pub stale: Vec<PathBuf>,
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
    let entries = evictable_entries(store)?;
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    let index_cutoff = options.index_max_age.and_then(|age| now.checked_sub(age));
    let is_old_index = |e: &Evictable| {
        e.bucket == Bucket::Indices && index_cutoff.is_some_and(|cutoff| e.last_used < cutoff)
    };
    let mut kept = Vec::with_capacity(entries.len());
    for entry in entries {
        if is_old_index(&entry) || is_orphaned_facts(store, &entry)? {
            if let Some(size) = evict_entry(store, &entry, &mut report)? {
                total -= size;
                report.stale.push(entry.path);
            }
        } else {
            kept.push(entry);
        }
    }
    if let Some(budget) = options.max_size {
        kept.sort_by_key(|e| (e.last_used, e.path.clone()));
        let mut survivors = Vec::new();
        for entry in kept {
            if total <= budget {
                survivors.push(entry);
                continue;
            }
            match evict_entry(store, &entry, &mut report)? {
                Some(size) => {
                    total -= size;
                    report.evicted.push(entry.path);
                }
                None => survivors.push(entry),
            }
        }
        // Facts whose `.deb` the budget just evicted are orphans now.
        for entry in survivors {
            if is_orphaned_facts(store, &entry)?
                && let Some(size) = evict_entry(store, &entry, &mut report)?
            {
                total -= size;
                report.stale.push(entry.path);
            }
        }
    }
    report.remaining = total;
    Ok(report)
}

/// Removes `entry` unless a running build or activation uses it (then it
/// lands in `report.in_use`); returns the bytes freed.
fn evict_entry(store: &Store, entry: &Evictable, report: &mut GcReport) -> Result<Option<u64>> {
    // Held while removing, so no build starts using it half-removed; one in
    // use is skipped, never waited for (gc must not stall a build).
    let Some(_evicting) = store.try_evict_lock(entry.bucket, &entry.key)? else {
        tracing::debug!(path = %entry.path.display(), "in use; not evicted");
        report.in_use.push(entry.path.clone());
        return Ok(None);
    };
    match remove(&entry.path) {
        Ok(()) => {}
        // Another gc (or a reader that found it corrupt) was first.
        Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    report.freed += entry.size;
    Ok(Some(entry.size))
}

/// Whether `entry` holds the facts of a `.deb` (`facts-v1/<sha256>.<selection>`)
/// that is no longer cached: the `.deb` is fetched (and read) again before
/// any build could use them.
fn is_orphaned_facts(store: &Store, entry: &Evictable) -> Result<bool> {
    if entry.bucket != Bucket::Facts {
        return Ok(false);
    }
    let Some((sha256, _)) = entry.key.split_once('.') else {
        return Ok(false);
    };
    Ok(!store.deb_path(sha256)?.exists())
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
    let (debs, blobs) = (store.bucket(Bucket::Debs)?, layer_blobs_dir(store)?);
    for (path, hex) in digest_named_entries(store)? {
        // Archive files are digest-named too; they are listed with the indices below.
        let entry = if path.starts_with(&debs) {
            (Bucket::Debs, hex)
        } else if path.starts_with(&blobs) {
            (Bucket::Layers, crate::layer_blob_key(&hex))
        } else {
            continue;
        };
        found.push((path, entry));
    }
    for path in read_dir_sorted(&store.bucket(Bucket::Unpacked)?)? {
        let name = file_name(&path);
        if is_sha256(&name) && path.is_dir() {
            found.push((path, (Bucket::Unpacked, name)));
        }
    }
    // Package facts (`<deb sha256>.<selection>`) and every archive file
    // (InRelease, Packages, parsed indices). Their readers read a whole file
    // in one go and treat a missing one as a miss, so they take no use lock.
    for bucket in [Bucket::Facts, Bucket::Indices] {
        for path in read_dir_sorted(&store.bucket(bucket)?)? {
            let name = file_name(&path);
            let digest_keyed = name.split_once('.').is_some_and(|(hex, _)| is_sha256(hex));
            if digest_keyed && !name.ends_with(".tmp") && path.is_file() {
                found.push((path, (bucket, name)));
            }
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
    // Image records (`images-v1/last/<key>.json`) are written atomically too.
    let records = store.bucket(Bucket::Images)?.join("last");
    if records.is_dir() {
        dirs.push(records);
    }
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
pub(crate) fn tree_size(path: &Path) -> Result<u64> {
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

pub(crate) fn remove(path: &Path) -> Result<()> {
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
            index_max_age: None,
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
            index_max_age: None,
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
    fn gc_removes_old_indices_and_the_facts_of_debs_no_longer_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let deb = put_deb(&store, b"cached deb");
        let facts = store.bucket(Bucket::Facts).unwrap();
        let kept_facts = facts.join(format!("{}.0123456789abcdef", sha256_hex(b"cached deb")));
        let orphan_facts = facts.join(format!("{}.0123456789abcdef", sha256_hex(b"gone deb")));
        fs_err::write(&kept_facts, b"facts").unwrap();
        fs_err::write(&orphan_facts, b"facts").unwrap();
        let indices = store.bucket(Bucket::Indices).unwrap();
        let old_index = indices.join(format!("{}.Packages.xz", sha256_hex(b"old")));
        let old_parse = indices.join(format!("{}.amd64.records-v2", sha256_hex(b"old")));
        let new_parse = indices.join(format!("{}.amd64.records-v2", sha256_hex(b"new")));
        for path in [&old_index, &old_parse, &new_parse] {
            fs_err::write(path, b"index").unwrap();
        }
        set_age(&old_index, Duration::from_secs(40 * 86400));
        set_age(&old_parse, Duration::from_secs(40 * 86400));
        let options = GcOptions {
            max_size: None,
            temp_min_age: Duration::from_secs(3600),
            index_max_age: Some(Duration::from_secs(30 * 86400)),
        };
        let report = collect_garbage(&store, &options).unwrap();
        let mut stale = report.stale.clone();
        stale.sort();
        let mut expected = vec![orphan_facts.clone(), old_index.clone(), old_parse.clone()];
        expected.sort();
        assert_eq!(stale, expected, "{report:?}");
        assert!(report.evicted.is_empty());
        assert!(deb.exists() && kept_facts.exists() && new_parse.exists());
        assert_eq!(report.remaining, 10 + 5 + 5, "{report:?}");

        // A budget that evicts the (least recently used) `.deb` takes its
        // facts with it, though they alone would fit.
        set_age(&deb, Duration::from_secs(600));
        let options = GcOptions {
            max_size: Some(10),
            ..options
        };
        let report = collect_garbage(&store, &options).unwrap();
        assert_eq!(report.evicted, std::slice::from_ref(&deb), "{report:?}");
        assert_eq!(
            report.stale,
            std::slice::from_ref(&kept_facts),
            "{report:?}"
        );
        assert!(!deb.exists() && !kept_facts.exists() && new_parse.exists());
        assert_eq!(report.remaining, 5);
    }

    #[test]
    fn verify_rehashes_archive_files_and_checks_entries_by_the_callers_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let indices = store.bucket(Bucket::Indices).unwrap();
        let good = indices.join(format!("{}.InRelease", sha256_hex(b"release")));
        fs_err::write(&good, b"release").unwrap();
        let swapped = indices.join(format!("{}.Packages.xz", sha256_hex(b"index")));
        fs_err::write(&swapped, b"another index").unwrap();
        let mut report = verify_cache(&store).unwrap();
        assert_eq!(report.checked, 2);
        assert_eq!(report.corrupt.len(), 1, "{report:?}");
        assert_eq!(report.corrupt[0].path, swapped);
        assert!(good.exists() && !swapped.exists());

        let sound = indices.join(format!("{}.amd64.records-v2", sha256_hex(b"a")));
        let damaged = indices.join(format!("{}.amd64.records-v2", sha256_hex(b"b")));
        fs_err::write(&sound, b"sound").unwrap();
        fs_err::write(&damaged, b"rotten").unwrap();
        verify_bucket(&store, Bucket::Indices, &mut report, |path| {
            let name = path.file_name()?.to_str()?;
            name.ends_with(".records-v2")
                .then(|| match fs_err::read(path) {
                    Ok(bytes) if bytes == b"sound" => Ok(()),
                    _ => Err("checksum mismatch".to_owned()),
                })
        })
        .unwrap();
        assert_eq!(report.checked, 4, "the InRelease is not the checker's");
        assert_eq!(
            report.damaged,
            [DamagedEntry {
                path: damaged.clone(),
                reason: "checksum mismatch".into(),
                evicted: true,
            }]
        );
        assert!(sound.exists() && !damaged.exists() && good.exists());
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
            index_max_age: None,
        };
        let report = collect_garbage(&store, &options).unwrap();
        assert_eq!(report.evicted, [old.clone(), mid.clone()]);
        assert_eq!((report.freed, report.remaining), (200, 100));
        assert!(!old.exists() && !mid.exists() && new.exists());
    }
}
