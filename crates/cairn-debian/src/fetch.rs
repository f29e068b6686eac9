//! The archive client: fetches InRelease, Packages and `.deb` files over HTTP(S)
//! or `file://`, verifying each byte before it reaches the store.
//!
//! Owns transport (timeouts, retries, `file://`), the order of trust (InRelease
//! signature, then index digests listed in it, then `.deb` digests listed in the
//! index) and where verified files land in the store. Signature checking is
//! [`crate::release`]; parsing is [`crate::index`].

use crate::contents::{self, CommandTable, CommandsKey};
use crate::error::{ArchiveError, Result};
use crate::index::{DetailsPart, IndexPart, PackageIndex, parse_packages_with_details};
use crate::index_cache::{self, CacheKey};
use crate::index_details;
use crate::keyring;
use crate::release::{FileDigest, Release, verify_inrelease};
use cairn_store::{AtomicFile, Bucket, HashingWriter, Store, sha256_hex, write_atomic};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::keyring::Keyring;
pub use crate::release::ReleaseInfo;

/// An archive to read from: one suite of one `[sources]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Short name from the manifest (`debian`, `debian-security`, ...).
    pub name: String,
    /// `http://…`, `https://…` or `file:///…`, without a trailing slash.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub keyrings: Vec<Keyring>,
}

/// Receives progress from downloads; the CLI implements it with indicatif.
/// Calls may come from several threads at once.
pub trait Reporter: Send + Sync {
    /// A file of `size` bytes (0 when unknown) starts downloading.
    fn on_download_start(&self, _name: &str, _size: u64) {}
    /// `bytes` more bytes of `name` arrived (a delta, not a running total).
    /// A file found in the cache reports its whole size at once.
    fn on_download_progress(&self, _name: &str, _bytes: u64) {}
    /// `name` is complete and verified.
    fn on_download_done(&self, _name: &str) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;
impl Reporter for NoReporter {}

/// One `.deb` to download, with the digest its index promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebToFetch {
    /// Package name, for progress and errors.
    pub name: String,
    /// Full URL of the `.deb`.
    pub url: String,
    /// Path relative to the archive root, as in `Packages`.
    pub filename: String,
    pub size: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// One `Packages` index of a source, as listed in its verified release.
struct IndexFile<'a> {
    source: &'a Source,
    release: &'a Release,
    /// Path relative to `dists/<suite>/`, e.g. `main/binary-amd64/Packages.xz`.
    path: &'a str,
    digest: &'a FileDigest,
}

/// The parts of one source's index, each with its details when asked for.
type Parts = Vec<(IndexPart, Option<DetailsPart>)>;

/// Downloads at once; the machine has few cores but downloads wait on the network.
const DEB_WORKERS: usize = 6;
/// Retries after the first attempt, for connection errors and 5xx responses.
const RETRIES: u32 = 3;
/// No honest InRelease comes near this; it bounds memory against a hostile server.
const MAX_INRELEASE_BYTES: u64 = 32 << 20;

/// Fetches and verifies archive files.
#[derive(Debug, Clone)]
pub struct ArchiveClient {
    store: Store,
    agent: ureq::Agent,
    /// First pause before a retry; doubles each time.
    retry_delay: Duration,
}

impl ArchiveClient {
    /// A client that caches verified files in `store`.
    pub fn new(store: Store) -> ArchiveClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            // Digests cover the bytes as stored on the mirror; a transparently
            // decoded body would never match, so ask for no content encoding.
            .accept_encoding("identity")
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build();
        ArchiveClient {
            store,
            agent: config.into(),
            retry_delay: Duration::from_millis(500),
        }
    }

    /// The store verified files are cached in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fetches `{url}/dists/{suite}/InRelease`, verifies its signature against
    /// the source's keyrings, parses it and caches it in [`Bucket::Indices`].
    pub fn fetch_release(&self, source: &Source) -> Result<Release> {
        let url = format!("{}/dists/{}/InRelease", source.url, source.suite);
        let bytes = self.with_retries(|| self.get_bytes(&url, MAX_INRELEASE_BYTES))?;
        let sha256 = sha256_hex(&bytes);
        let keys = keyring::load_all(&source.keyrings)?;
        let text = verify_inrelease(&bytes, &keys, &url)?;
        let release = Release::parse(&text, &url, unix_now(), &sha256)?;
        if !release.matches_suite(&source.suite) {
            return Err(ArchiveError::SuiteMismatch {
                url,
                requested: source.suite.clone(),
                suite: release.suite,
                codename: release.codename,
            });
        }
        let cached = self
            .store
            .bucket(Bucket::Indices)?
            .join(format!("{sha256}.InRelease"));
        if cached.exists() {
            cairn_store::mark_used(&cached);
        } else {
            write_atomic(&cached, |f| f.write_all(&bytes))?;
        }
        Ok(release)
    }

    /// Fetches every source's release and `Packages` indices for `arch`, and
    /// returns the combined index plus one [`ReleaseInfo`] per source (in the
    /// order of `sources`, which is also what `PackageRecord::origin` indexes).
    pub fn fetch_index(
        &self,
        sources: &[Source],
        arch: &str,
        reporter: &dyn Reporter,
    ) -> Result<(PackageIndex, Vec<ReleaseInfo>)> {
        self.fetch_index_parts(sources, arch, reporter, false)
    }

    /// [`ArchiveClient::fetch_index`], with every record's
    /// [`crate::PackageDetails`] ([`PackageIndex::details`]), for `show`.
    pub fn fetch_index_with_details(
        &self,
        sources: &[Source],
        arch: &str,
        reporter: &dyn Reporter,
    ) -> Result<(PackageIndex, Vec<ReleaseInfo>)> {
        self.fetch_index_parts(sources, arch, reporter, true)
    }

    fn fetch_index_parts(
        &self,
        sources: &[Source],
        arch: &str,
        reporter: &dyn Reporter,
        details: bool,
    ) -> Result<(PackageIndex, Vec<ReleaseInfo>)> {
        // Sources are independent and mostly wait on the network: fetch them at once.
        let results: Vec<Result<(Parts, ReleaseInfo)>> = std::thread::scope(|s| {
            let handles: Vec<_> = sources
                .iter()
                .enumerate()
                .map(|(origin, source)| {
                    s.spawn(move || self.fetch_source(source, origin, arch, reporter, details))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut parts = Vec::new();
        let mut infos = Vec::new();
        for result in results {
            let (source_parts, info) = result?;
            parts.extend(source_parts);
            infos.push(info);
        }
        Ok((PackageIndex::from_parts_with_details(parts), infos))
    }

    fn fetch_source(
        &self,
        source: &Source,
        origin: usize,
        arch: &str,
        reporter: &dyn Reporter,
        details: bool,
    ) -> Result<(Parts, ReleaseInfo)> {
        let release = self.fetch_release(source)?;
        let mut parts = Vec::new();
        for component in &source.components {
            let (path, digest) =
                pick_packages_index(&release, component, arch).ok_or_else(|| {
                    ArchiveError::IndexNotListed {
                        url: format!("{}/dists/{}/InRelease", source.url, source.suite),
                        component: component.clone(),
                        arch: arch.to_string(),
                    }
                })?;
            let index = IndexFile {
                source,
                release: &release,
                path,
                digest,
            };
            parts.push(self.index_part(&index, arch, origin, reporter, details)?);
        }
        Ok((
            parts,
            release.info(&source.name, &source.url, &source.suite),
        ))
    }

    /// The records of one verified `Packages` index for `arch`: from the
    /// parsed-index cache when it holds a sound entry for this digest, else
    /// fetched (or read from the cache), decompressed, parsed, and cached.
    /// Parsing bookworm's index takes about a second; loading its entry, a
    /// few milliseconds ([`crate::index_cache`]).
    ///
    /// With `details`, the part's details side table too
    /// ([`crate::index_details`]); when it is missing or unsound, the index is
    /// parsed again and both entries rewritten.
    fn index_part(
        &self,
        index: &IndexFile<'_>,
        arch: &str,
        origin: usize,
        reporter: &dyn Reporter,
        details: bool,
    ) -> Result<(IndexPart, Option<DetailsPart>)> {
        let key = CacheKey {
            index_sha256: &index.digest.sha256,
            arch,
        };
        // The architecture becomes part of a file name: only plain names qualify.
        let cacheable = !arch.is_empty()
            && arch
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let bucket = self.store.bucket(Bucket::Indices)?;
        let entry = key.path_in(&bucket);
        let details_entry = key.details_path_in(&bucket);
        if cacheable {
            match index_cache::load(&entry, &key, origin) {
                Ok(Some(part)) if !details => {
                    tracing::debug!("{} records from {}", part.len(), entry.display());
                    cairn_store::mark_used(&entry);
                    return Ok((IndexPart::Cached(part), None));
                }
                Ok(Some(part)) => match index_details::load(&details_entry, &key, part.len()) {
                    Ok(Some(found)) => {
                        cairn_store::mark_used(&entry);
                        cairn_store::mark_used(&details_entry);
                        return Ok((IndexPart::Cached(part), Some(DetailsPart::Cached(found))));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!("ignoring cached details: {e}; parsing the index again")
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::warn!("ignoring cached parse: {e}; parsing the index again"),
            }
        }
        let url = format!(
            "{}/dists/{}/{}",
            index.source.url, index.source.suite, index.path
        );
        let name = format!("{}/{}", index.source.suite, index.path);
        let compressed = self.fetch_index_file(
            index.source,
            index.release,
            index.path,
            index.digest,
            &name,
            reporter,
        )?;
        let text = decompress(&compressed, index.path, &url)?;
        let (records, parsed_details) = parse_packages_with_details(&text, arch, origin, &url)?;
        if !cacheable {
            return Ok((
                IndexPart::Parsed(records),
                details.then_some(DetailsPart::Parsed(parsed_details)),
            ));
        }
        // Both entries are written on every parse, so a later `show` finds
        // the details without parsing again. Failing to write either is only
        // a lost speed-up: what is in hand is good either way.
        let details_part = match index_details::store(&details_entry, &key, &parsed_details) {
            Ok(encoded) => DetailsPart::Cached(encoded),
            Err(e) => {
                tracing::warn!("cannot cache the details of {url}: {e}");
                DetailsPart::Parsed(parsed_details)
            }
        };
        let part = match index_cache::store(&entry, &key, &records, origin) {
            // The same form a warm run loads, so both runs resolve alike.
            Ok(part) => IndexPart::Cached(part),
            Err(e) => {
                tracing::warn!("cannot cache the parsed {url}: {e}");
                IndexPart::Parsed(records)
            }
        };
        Ok((part, details.then_some(details_part)))
    }

    /// The long description (the lines after the summary, as written) whose
    /// `Description-md5` is `md5`, from `source`'s `Translation-en` files as
    /// apt finds it ([`crate::translation`]). Each file is listed with its
    /// sha256 in the verified InRelease, downloaded only when first needed,
    /// checked against that digest and cached by it, like `Packages`.
    /// `Ok(None)` when no listed translation has that md5.
    pub fn fetch_long_description(
        &self,
        source: &Source,
        md5: &str,
        reporter: &dyn Reporter,
    ) -> Result<Option<String>> {
        let release = self.fetch_release(source)?;
        for component in &source.components {
            let Some((path, digest)) =
                crate::translation::pick_translation(&release, component, "en")
            else {
                continue;
            };
            let name = format!("{}/{path}", source.suite);
            let bytes = self.fetch_index_file(source, &release, path, digest, &name, reporter)?;
            let url = format!("{}/dists/{}/{path}", source.url, source.suite);
            let text = decompress(&bytes, path, &url)?;
            if let Some(found) = crate::translation::long_description(&text, md5, "en") {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The verified bytes of one index file: from the cache when an entry with
    /// the listed sha256 is there, else downloaded, checked and cached.
    fn fetch_index_file(
        &self,
        source: &Source,
        release: &Release,
        path: &str,
        digest: &FileDigest,
        name: &str,
        reporter: &dyn Reporter,
    ) -> Result<Vec<u8>> {
        let cached = self
            .store
            .bucket(Bucket::Indices)?
            .join(cache_name(&digest.sha256, path));
        if let Some(bytes) = read_if_digest_matches(&cached, digest)? {
            cairn_store::mark_used(&cached);
            return Ok(bytes);
        }
        let dists = format!("{}/dists/{}", source.url, source.suite);
        let url = format!("{dists}/{path}");
        reporter.on_download_start(name, digest.size);
        let bytes = self.with_retries(|| self.get_index_bytes(release, &dists, path, digest))?;
        reporter.on_download_progress(name, bytes.len() as u64);
        check_digest(name, &url, digest, &sha256_hex(&bytes), bytes.len() as u64)?;
        write_atomic(&cached, |f| f.write_all(&bytes))?;
        reporter.on_download_done(name);
        Ok(bytes)
    }

    /// Prefers `by-hash/SHA256/<sha>` when the release offers it: that name is
    /// immutable, so a mirror update between InRelease and index cannot break the
    /// download. Falls back to the plain path when the by-hash file is missing.
    fn get_index_bytes(
        &self,
        release: &Release,
        dists: &str,
        path: &str,
        d: &FileDigest,
    ) -> Result<Vec<u8>> {
        let limit = d.size + 1;
        if release.acquire_by_hash {
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let url = format!("{dists}/{dir}/by-hash/SHA256/{}", d.sha256);
            match self.get_bytes(&url, limit) {
                Err(ArchiveError::NotFound { .. }) => {}
                other => return other,
            }
        }
        self.get_bytes(&format!("{dists}/{path}"), limit)
    }

    /// Downloads each `.deb` of `items` into the store (or finds it there) and
    /// returns their paths, in the order of `items`. Each file is verified
    /// against its size and sha256 before it is given its final name.
    pub fn fetch_debs(
        &self,
        items: &[DebToFetch],
        reporter: &dyn Reporter,
    ) -> Result<Vec<PathBuf>> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<PathBuf>>>> =
            Mutex::new((0..items.len()).map(|_| None).collect());
        let worker = || {
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let result = self.fetch_deb(item, reporter);
                failed.fetch_or(result.is_err(), Ordering::Relaxed);
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(result);
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 0..DEB_WORKERS.min(items.len()) {
                s.spawn(worker);
            }
        });
        let results = results
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Report the first failure in item order; after a failure the remaining
        // items are skipped, so `None` only follows an error.
        let mut paths = Vec::with_capacity(items.len());
        for result in results.into_iter().flatten() {
            paths.push(result?);
        }
        Ok(paths)
    }

    fn fetch_deb(&self, item: &DebToFetch, reporter: &dyn Reporter) -> Result<PathBuf> {
        let sha256 = item.sha256.to_ascii_lowercase();
        if !is_sha256(&sha256) {
            // The digest becomes a file name; refuse anything but hex.
            return Err(ArchiveError::InvalidRecord {
                url: item.url.clone(),
                package: item.name.clone(),
                field: "SHA256".to_string(),
                reason: format!("'{}' is not a sha256 digest", item.sha256),
            });
        }
        // Held while the cached file is checked, so a concurrent `cache gc`
        // cannot remove it between the check and the hash. Callers that use
        // the file afterwards hold their own ([`Store::use_entries`]).
        let _in_use = self.store.use_entry(Bucket::Debs, &sha256)?;
        let path = self.store.deb_path(&sha256)?;
        if self.reuse_cached_deb(&path, item, &sha256, reporter)? {
            return Ok(path);
        }
        // Another cairn may be fetching the same file: wait for it, then look again.
        let _lock = self.store.lock_entry(Bucket::Debs, &sha256)?;
        if self.reuse_cached_deb(&path, item, &sha256, reporter)? {
            return Ok(path);
        }
        reporter.on_download_start(&item.name, item.size);
        self.with_retries(|| self.download_deb(item, &sha256, &path, reporter))?;
        reporter.on_download_done(&item.name);
        Ok(path)
    }

    /// Whether a cached `.deb` at `path` has the expected digest. A corrupt
    /// entry is removed so it gets downloaded again.
    fn reuse_cached_deb(
        &self,
        path: &Path,
        item: &DebToFetch,
        sha256: &str,
        reporter: &dyn Reporter,
    ) -> Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        if cairn_store::sha256_file(path)? == sha256 {
            reporter.on_download_start(&item.name, item.size);
            reporter.on_download_progress(&item.name, item.size);
            reporter.on_download_done(&item.name);
            return Ok(true);
        }
        tracing::warn!(
            "cached {} does not match its sha256; fetching it again",
            path.display()
        );
        fs_err::remove_file(path)?;
        Ok(false)
    }

    /// One attempt: stream into a temp file beside `path` while hashing, check
    /// size and digest, then rename into place. The temp file is deleted on any
    /// error (dropping an uncommitted [`AtomicFile`]).
    fn download_deb(
        &self,
        item: &DebToFetch,
        sha256: &str,
        path: &Path,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let mut out = HashingWriter::new(AtomicFile::create(path)?);
        let mut body = self.open(&item.url)?;
        copy_limited(&mut body, &mut out, item.size + 1, &item.url, &mut |n| {
            reporter.on_download_progress(&item.name, n)
        })?;
        let (actual, size, file) = out.finish();
        let expected = FileDigest {
            sha256: sha256.to_string(),
            size: item.size,
        };
        check_digest(&item.name, &item.url, &expected, &actual, size)?;
        file.commit()?;
        Ok(())
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of retries,
    /// waiting 0.5 s, 1 s, 2 s between attempts (by default).
    fn with_retries<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut delay = self.retry_delay;
        for _ in 0..RETRIES {
            match attempt() {
                Err(e) if e.is_transient() => {
                    tracing::debug!("{e}; retrying in {delay:?}");
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                other => return other,
            }
        }
        attempt()
    }

    /// The whole body at `url`, refusing more than `limit` bytes.
    fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        let mut body = self.open(url)?;
        let mut bytes = Vec::new();
        copy_limited(&mut body, &mut bytes, limit, url, &mut |_| {})?;
        Ok(bytes)
    }

    /// Opens `url` for reading: an HTTP(S) response body or a local file.
    fn open(&self, url: &str) -> Result<Box<dyn Read + Send>> {
        if let Some(path) = url.strip_prefix("file://") {
            return match fs_err::File::open(path) {
                Ok(file) => Ok(Box::new(file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ArchiveError::NotFound {
                    url: url.to_string(),
                }),
                Err(e) => Err(e.into()),
            };
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ArchiveError::UnsupportedUrl {
                url: url.to_string(),
            });
        }
        let response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| ArchiveError::Unreachable {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        match response.status().as_u16() {
            200..=299 => Ok(Box::new(response.into_body().into_reader())),
            404 | 410 => Err(ArchiveError::NotFound {
                url: url.to_string(),
            }),
            status => Err(ArchiveError::HttpStatus {
                url: url.to_string(),
                status,
            }),
        }
    }
}

/// The `Contents` side of the client: which package ships a command.
impl ArchiveClient {
    /// The command table last built for `source` and `arch`, from the cache
    /// alone (no network): `None` when there is none or it cannot be trusted.
    pub fn cached_commands(&self, source: &Source, arch: &str) -> Result<Option<CommandTable>> {
        let indices = self.store.bucket(Bucket::Indices)?;
        let pointer = indices.join(commands_pointer_name(source, arch));
        let Ok(sha256) = fs_err::read_to_string(&pointer) else {
            return Ok(None);
        };
        let key = CommandsKey {
            inrelease_sha256: sha256.trim().to_string(),
            arch: arch.to_string(),
            components: source.components.clone(),
        };
        let Some(name) = key.file_name().filter(|_| is_sha256(&key.inrelease_sha256)) else {
            return Ok(None);
        };
        match contents::load(&indices.join(name), &key) {
            Ok(table) => Ok(table),
            Err(e) => {
                tracing::warn!("ignoring the cached command table: {e}; it will be rebuilt");
                Ok(None)
            }
        }
    }

    /// The command table of `source`'s current release for `arch`: every
    /// command in its components' `Contents-ARCH` and `Contents-all` indices,
    /// each checked against the sha256 in the verified InRelease. Built once
    /// per release and cached (keyed by the InRelease's sha256); the
    /// `Contents` files themselves are not kept.
    pub fn fetch_commands(
        &self,
        source: &Source,
        arch: &str,
        reporter: &dyn Reporter,
    ) -> Result<CommandTable> {
        let release = self.fetch_release(source)?;
        let indices = self.store.bucket(Bucket::Indices)?;
        let key = CommandsKey {
            inrelease_sha256: release.inrelease_sha256.clone(),
            arch: arch.to_string(),
            components: source.components.clone(),
        };
        let entry = key.file_name().map(|name| indices.join(name));
        if let Some(entry) = &entry {
            match contents::load(entry, &key) {
                Ok(Some(table)) => {
                    self.point_commands_at(source, arch, &key);
                    return Ok(table);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("ignoring the cached command table: {e}; rebuilding it"),
            }
        }
        let dists = format!("{}/dists/{}", source.url, source.suite);
        let listed = contents_indices(&release, &source.components, arch);
        if listed.is_empty() {
            return Err(ArchiveError::ContentsNotListed {
                url: format!("{dists}/InRelease"),
                arch: arch.to_string(),
            });
        }
        let mut table = CommandTable::default();
        for (path, digest) in listed {
            let name = format!("{}/{path}", source.suite);
            reporter.on_download_start(&name, digest.size);
            let part = self
                .with_retries(|| self.read_contents_file(&release, &dists, path, digest, &name))?;
            reporter.on_download_progress(&name, digest.size);
            reporter.on_download_done(&name);
            table.merge(part);
        }
        if let Some(entry) = &entry {
            match contents::store(entry, &key, &table) {
                Ok(()) => self.point_commands_at(source, arch, &key),
                // Only a lost speed-up: the table in hand is good either way.
                Err(e) => tracing::warn!("cannot cache the command table: {e}"),
            }
        }
        Ok(table)
    }

    /// Records which entry is `source`'s newest, so a lookup without network
    /// ([`ArchiveClient::cached_commands`]) finds it.
    fn point_commands_at(&self, source: &Source, arch: &str, key: &CommandsKey) {
        let write = || -> Result<()> {
            let pointer = self
                .store
                .bucket(Bucket::Indices)?
                .join(commands_pointer_name(source, arch));
            if fs_err::read_to_string(&pointer).ok().as_deref() != Some(&key.inrelease_sha256) {
                write_atomic(&pointer, |f| f.write_all(key.inrelease_sha256.as_bytes()))?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!("cannot record the newest command table: {e}");
        }
    }

    /// One attempt at one `Contents` file: downloaded, decompressed and
    /// reduced to its commands in a single pass (bookworm's are 670 MB of
    /// text; neither they nor the 45 MB download are held or stored), while
    /// its bytes are hashed. The table is returned only once the whole file
    /// matched the listed size and sha256; until then nothing built from it
    /// is used, and lines are bounded ([`contents::MAX_LINE_BYTES`]).
    fn read_contents_file(
        &self,
        release: &Release,
        dists: &str,
        path: &str,
        digest: &FileDigest,
        name: &str,
    ) -> Result<CommandTable> {
        let (url, body) = self.open_index(release, dists, path, digest)?;
        let mut hashing = HashingReader::new(body.take(digest.size + 1));
        let mut table = CommandTable::default();
        let parsed = {
            let decoder: Box<dyn Read + '_> = if path.ends_with(".gz") {
                Box::new(flate2::read::MultiGzDecoder::new(&mut hashing))
            } else if path.ends_with(".xz") {
                Box::new(liblzma::read::XzDecoder::new_multi_decoder(&mut hashing))
            } else {
                Box::new(&mut hashing)
            };
            let mut lines = std::io::BufReader::with_capacity(256 * 1024, decoder);
            contents::read_contents(&mut lines, &mut table, &url)
        };
        // Whatever the parse said, the digest decides first: a tampered or
        // truncated file is a digest mismatch, not a decompression error.
        let drained = std::io::copy(&mut hashing, &mut std::io::sink());
        if let Some(source) = hashing.failure.take() {
            return Err(ArchiveError::Transfer { url, source });
        }
        drained?;
        let (sha256, size) = hashing.finish();
        check_digest(name, &url, digest, &sha256, size)?;
        parsed.map_err(|e| ArchiveError::Decompress {
            url: url.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        })?;
        Ok(table)
    }

    /// Opens an index file for streaming, by hash when the release offers it
    /// (see [`ArchiveClient::get_index_bytes`]); returns the URL opened too.
    fn open_index(
        &self,
        release: &Release,
        dists: &str,
        path: &str,
        d: &FileDigest,
    ) -> Result<(String, Box<dyn Read + Send>)> {
        if release.acquire_by_hash {
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let url = format!("{dists}/{dir}/by-hash/SHA256/{}", d.sha256);
            match self.open(&url) {
                Err(ArchiveError::NotFound { .. }) => {}
                other => return other.map(|body| (url, body)),
            }
        }
        let url = format!("{dists}/{path}");
        self.open(&url).map(|body| (url, body))
    }
}

/// The `Contents` files to read for `components` and `arch`, in the best
/// compression listed: `COMPONENT/Contents-ARCH` and `COMPONENT/Contents-all`
/// (Debian since stretch), else the suite-wide `Contents-ARCH` of older
/// archives and of `apt-ftparchive`'s default layout.
pub fn contents_indices<'r>(
    release: &'r Release,
    components: &[String],
    arch: &str,
) -> Vec<(&'r str, &'r FileDigest)> {
    let pick = |base: String| {
        [".xz", ".gz", ""].iter().find_map(|ext| {
            release
                .sha256
                .get_key_value(&format!("{base}{ext}"))
                .map(|(p, d)| (p.as_str(), d))
        })
    };
    let per_component: Vec<_> = components
        .iter()
        .flat_map(|c| [format!("{c}/Contents-{arch}"), format!("{c}/Contents-all")])
        .filter_map(pick)
        .collect();
    if !per_component.is_empty() {
        return per_component;
    }
    [format!("Contents-{arch}"), "Contents-all".to_string()]
        .into_iter()
        .filter_map(pick)
        .collect()
}

/// Where the newest command table of a source is named: one small file per
/// source URL, suite, components and architecture.
fn commands_pointer_name(source: &Source, arch: &str) -> String {
    let identity = format!(
        "{}\n{}\n{}\n{arch}",
        source.url,
        source.suite,
        source.components.join(",")
    );
    format!(
        "{}.latest-commands-v{}",
        sha256_hex(identity.as_bytes()),
        contents::FORMAT_VERSION
    )
}

/// Hashes what passes through, and remembers a read error of the source (a
/// transfer failure, worth a retry) apart from what the decoder makes of it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    size: u64,
    failure: Option<std::io::Error>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        use sha2::Digest;
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            size: 0,
            failure: None,
        }
    }

    /// Lowercase hex sha256 and size of everything read.
    fn finish(self) -> (String, u64) {
        use sha2::Digest;
        (hex::encode(self.hasher.finalize()), self.size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.failure = Some(e);
                Err(copy)
            }
        }
    }
}

/// Copies `reader` into `writer`, stopping once more than `limit - 1` bytes
/// arrived (the caller then sees a size mismatch). Read errors are transfer
/// failures (retried); write errors are local I/O errors (not retried).
fn copy_limited(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    limit: u64,
    url: &str,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    while total < limit {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ArchiveError::Transfer {
                    url: url.to_string(),
                    source,
                });
            }
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
        on_bytes(n as u64);
    }
    Ok(total)
}

/// Fails with [`ArchiveError::DigestMismatch`] unless size and sha256 match.
fn check_digest(
    name: &str,
    url: &str,
    expected: &FileDigest,
    actual_sha256: &str,
    actual_size: u64,
) -> Result<()> {
    if actual_size == expected.size && actual_sha256 == expected.sha256 {
        return Ok(());
    }
    Err(ArchiveError::DigestMismatch {
        name: name.to_string(),
        url: url.to_string(),
        expected_sha256: expected.sha256.clone(),
        actual_sha256: actual_sha256.to_string(),
        expected_size: expected.size,
        actual_size,
    })
}

/// The `Packages` index to use for `component` and `arch`: the best compression
/// this client can read, among those the release lists.
pub fn pick_packages_index<'r>(
    release: &'r Release,
    component: &str,
    arch: &str,
) -> Option<(&'r str, &'r FileDigest)> {
    ["Packages.xz", "Packages.gz", "Packages"]
        .iter()
        .find_map(|file| {
            let path = format!("{component}/binary-{arch}/{file}");
            release
                .sha256
                .get_key_value(&path)
                .map(|(p, d)| (p.as_str(), d))
        })
}

/// Cache entries are named by content so a new release with an unchanged
/// index reuses the file, keeping the kind (`Packages`, `Translation-en`)
/// and the extension to know how to decompress it.
fn cache_name(sha256: &str, path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let (stem, ext) = match file.rsplit_once('.') {
        Some((stem, ext)) if matches!(ext, "xz" | "gz") => (stem, Some(ext)),
        _ => (file, None),
    };
    // Only names this client asks for reach the file system.
    let kind = match stem.strip_prefix("Translation-") {
        Some(lang)
            if !lang.is_empty() && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            stem
        }
        _ => "Packages",
    };
    match ext {
        Some(ext) => format!("{sha256}.{kind}.{ext}"),
        None => format!("{sha256}.{kind}"),
    }
}

/// The bytes of a cached index, if it exists and still matches `digest`.
fn read_if_digest_matches(path: &Path, digest: &FileDigest) -> Result<Option<Vec<u8>>> {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let matches = bytes.len() as u64 == digest.size && sha256_hex(&bytes) == digest.sha256;
    Ok(matches.then_some(bytes))
}

/// Decompresses an index according to the extension of its `path`.
fn decompress(bytes: &[u8], path: &str, url: &str) -> Result<String> {
    let error = |source| ArchiveError::Decompress {
        url: url.to_string(),
        source,
    };
    let mut reader: Box<dyn Read + '_> = if path.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(bytes))
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut raw = Vec::with_capacity(bytes.len() * 5);
    reader.read_to_end(&mut raw).map_err(error)?;
    String::from_utf8(raw)
        .map_err(|e| error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageRecord;
    use crate::testing::{FakeDeb, TestKey, file_url, keyring_file, write_archive};
    use std::collections::HashMap;
    use std::sync::Arc;

    /// Counts calls, to check what was downloaded and what came from the cache.
    #[derive(Default)]
    struct CountingReporter {
        started: AtomicUsize,
        done: AtomicUsize,
        bytes: std::sync::atomic::AtomicU64,
    }
    impl Reporter for CountingReporter {
        fn on_download_start(&self, _: &str, _: u64) {
            self.started.fetch_add(1, Ordering::Relaxed);
        }
        fn on_download_progress(&self, _: &str, bytes: u64) {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        fn on_download_done(&self, _: &str) {
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    struct Fixture {
        _key: TestKey,
        dir: tempfile::TempDir,
        debs: Vec<FakeDeb>,
        client: ArchiveClient,
    }

    impl Fixture {
        fn new() -> Option<Fixture> {
            let key = TestKey::generate("cairn test <t@example.invalid>")?;
            let dir = tempfile::tempdir().unwrap();
            let debs = vec![
                FakeDeb::new("libhello", "1.0-1"),
                FakeDeb::new("hello", "1.0-1"),
            ];
            write_archive(&dir.path().join("archive"), &key, &debs);
            keyring_file(dir.path(), &key);
            let store = Store::open(dir.path().join("cache")).unwrap();
            let mut client = ArchiveClient::new(store);
            client.retry_delay = Duration::from_millis(10);
            Some(Fixture {
                _key: key,
                dir,
                debs,
                client,
            })
        }

        fn archive(&self) -> PathBuf {
            self.dir.path().join("archive")
        }

        fn source(&self, url: String) -> Source {
            Source {
                name: "test".into(),
                url,
                suite: "bookworm".into(),
                components: vec!["main".into()],
                keyrings: vec![Keyring::File(self.dir.path().join("key.gpg"))],
            }
        }

        fn items(&self, url: &str) -> Vec<DebToFetch> {
            self.debs
                .iter()
                .map(|d| DebToFetch {
                    name: d.name.to_string(),
                    url: format!("{url}/{}", d.filename),
                    filename: d.filename.clone(),
                    size: d.bytes.len() as u64,
                    sha256: d.sha256(),
                })
                .collect()
        }

        fn deb_bucket_entries(&self) -> Vec<String> {
            let dir = self.client.store().bucket(Bucket::Debs).unwrap();
            let mut names: Vec<String> = fs_err::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".locks")
                .collect();
            names.sort();
            names
        }
    }

    #[test]
    fn file_archive_round_trip() {
        let Some(fx) = Fixture::new() else { return };
        let url = file_url(&fx.archive());
        let sources = [fx.source(url.clone())];
        let reporter = CountingReporter::default();
        let (index, infos) = fx.client.fetch_index(&sources, "amd64", &reporter).unwrap();
        assert_eq!(index.records.len(), 2);
        let hello = index.versions("hello")[0];
        assert_eq!(
            (hello.origin, hello.depends[0].to_string().as_str()),
            (0, "libhello (>= 1.0)")
        );
        assert_eq!(infos.len(), 1);
        assert_eq!(
            (infos[0].source.as_str(), infos[0].suite.as_str()),
            ("test", "bookworm")
        );
        assert_eq!(infos[0].date_epoch, 1_723_281_197);
        let inrelease = fs_err::read(fx.archive().join("dists/bookworm/InRelease")).unwrap();
        assert_eq!(infos[0].inrelease_sha256, sha256_hex(&inrelease));
        let cached = fx.client.store().bucket(Bucket::Indices).unwrap();
        assert!(
            cached
                .join(format!("{}.InRelease", infos[0].inrelease_sha256))
                .exists()
        );

        let paths = fx.client.fetch_debs(&fx.items(&url), &reporter).unwrap();
        for (path, deb) in paths.iter().zip(&fx.debs) {
            assert_eq!(path, &fx.client.store().deb_path(&deb.sha256()).unwrap());
            assert_eq!(fs_err::read(path).unwrap(), deb.bytes);
        }
        assert_eq!(fx.deb_bucket_entries().len(), 2, "no temp files left");
    }

    /// The parsed-index entries in the store.
    fn parsed_entries(client: &ArchiveClient) -> Vec<PathBuf> {
        let dir = client.store().bucket(Bucket::Indices).unwrap();
        let mut found: Vec<PathBuf> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".records-v"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn warm_index_comes_from_the_parsed_entry_and_a_corrupt_one_is_rebuilt() {
        let Some(fx) = Fixture::new() else { return };
        let sources = [fx.source(file_url(&fx.archive()))];
        let (cold, _) = fx
            .client
            .fetch_index(&sources, "amd64", &NoReporter)
            .unwrap();
        let entries = parsed_entries(&fx.client);
        assert_eq!(entries.len(), 1, "{entries:?}");
        let cold_records: Vec<PackageRecord> = cold.records.iter().cloned().collect();

        // Without any Packages file, cached or on the mirror, only the entry can serve.
        let indices = fx.client.store().bucket(Bucket::Indices).unwrap();
        for e in fs_err::read_dir(&indices).unwrap() {
            let path = e.unwrap().path();
            if path.to_string_lossy().contains(".Packages") {
                fs_err::remove_file(path).unwrap();
            }
        }
        let packages = fx
            .archive()
            .join("dists/bookworm/main/binary-amd64/Packages.xz");
        let saved = fs_err::read(&packages).unwrap();
        fs_err::remove_file(&packages).unwrap();
        let (warm, _) = fx
            .client
            .fetch_index(&sources, "amd64", &NoReporter)
            .unwrap();
        let warm_records: Vec<PackageRecord> = warm.records.iter().cloned().collect();
        assert_eq!(warm_records, cold_records);

        // A truncated entry is not trusted: the index is parsed again and the
        // entry rewritten whole.
        fs_err::write(&packages, &saved).unwrap();
        let good = fs_err::read(&entries[0]).unwrap();
        fs_err::write(&entries[0], &good[..good.len() / 2]).unwrap();
        let (rebuilt, _) = fx
            .client
            .fetch_index(&sources, "amd64", &NoReporter)
            .unwrap();
        let rebuilt_records: Vec<PackageRecord> = rebuilt.records.iter().cloned().collect();
        assert_eq!(rebuilt_records, cold_records);
        assert_eq!(fs_err::read(&entries[0]).unwrap(), good);
    }

    /// The command-table files in the store.
    fn command_entries(client: &ArchiveClient) -> Vec<PathBuf> {
        let dir = client.store().bucket(Bucket::Indices).unwrap();
        let mut found: Vec<PathBuf> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".commands-v1"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn commands_come_from_verified_contents_and_are_cached_compactly() {
        let Some(fx) = Fixture::new() else { return };
        let source = fx.source(file_url(&fx.archive()));
        assert!(
            fx.client
                .cached_commands(&source, "amd64")
                .unwrap()
                .is_none()
        );
        let reporter = CountingReporter::default();
        let table = fx
            .client
            .fetch_commands(&source, "amd64", &reporter)
            .unwrap();
        assert_eq!(table.packages("hello"), ["hello"]);
        assert_eq!(table.packages("greet"), ["hello", "libhello"]);
        assert_eq!(table.packages("hello-admin tool"), ["libhello"]);
        assert!(table.packages("copyright").is_empty());
        assert_eq!(table.len(), 3);
        assert_eq!(
            reporter.done.load(Ordering::Relaxed),
            2,
            "both Contents files"
        );
        // Only the compact entry and its pointer are kept, not the Contents files.
        let indices = fx.client.store().bucket(Bucket::Indices).unwrap();
        let kept: Vec<String> = fs_err::read_dir(&indices)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("ommands") || n.contains("Contents"))
            .collect();
        assert_eq!(kept.len(), 2, "{kept:?}");

        // Offline (no archive at all), the cache alone answers.
        let offline = fx.source("file:///nonexistent-archive".into());
        assert!(
            fx.client
                .cached_commands(&offline, "amd64")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            fx.client.cached_commands(&source, "amd64").unwrap(),
            Some(table.clone())
        );

        // A corrupt entry is not trusted: nothing offline, rebuilt whole online.
        let entries = command_entries(&fx.client);
        let good = fs_err::read(&entries[0]).unwrap();
        fs_err::write(&entries[0], &good[..good.len() / 2]).unwrap();
        assert!(
            fx.client
                .cached_commands(&source, "amd64")
                .unwrap()
                .is_none()
        );
        let rebuilt = fx
            .client
            .fetch_commands(&source, "amd64", &NoReporter)
            .unwrap();
        assert_eq!(rebuilt, table);
        assert_eq!(fs_err::read(&entries[0]).unwrap(), good);
    }

    #[test]
    fn tampered_contents_is_a_digest_mismatch_and_caches_nothing() {
        let Some(fx) = Fixture::new() else { return };
        let path = fx.archive().join("dists/bookworm/main/Contents-all.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"usr/bin/sudo evil/backdoor\n").unwrap();
        fs_err::write(&path, gz.finish().unwrap()).unwrap();
        let source = fx.source(file_url(&fx.archive()));
        let err = fx
            .client
            .fetch_commands(&source, "amd64", &NoReporter)
            .unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("Contents-all.gz"), "{err}");
        assert!(command_entries(&fx.client).is_empty());
        assert!(
            fx.client
                .cached_commands(&source, "amd64")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_release_without_contents_says_so() {
        let Some(fx) = Fixture::new() else { return };
        let mut source = fx.source(file_url(&fx.archive()));
        source.components = vec!["contrib".into()];
        let err = fx
            .client
            .fetch_commands(&source, "amd64", &NoReporter)
            .unwrap_err();
        assert!(
            matches!(err, ArchiveError::ContentsNotListed { .. }),
            "{err}"
        );
    }

    #[test]
    fn details_load_only_when_asked_and_a_missing_side_table_is_rebuilt() {
        let Some(fx) = Fixture::new() else { return };
        let sources = [fx.source(file_url(&fx.archive()))];
        let (plain, _) = fx
            .client
            .fetch_index(&sources, "amd64", &NoReporter)
            .unwrap();
        assert!(plain.details(0).is_none(), "install does not load them");
        let indices = fx.client.store().bucket(Bucket::Indices).unwrap();
        let side_tables = || -> Vec<PathBuf> {
            fs_err::read_dir(&indices)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(".details-v"))
                .collect()
        };
        let written = side_tables();
        assert_eq!(written.len(), 1, "written with the records entry");

        let check = |index: &PackageIndex| {
            let (at, _) = index.by_name("hello").next().unwrap();
            let details = index.details(at).unwrap();
            assert_eq!(details.long_description.as_deref(), Some(" long text"));
            assert_eq!(details.maintainer, None);
        };
        let (warm, _) = fx
            .client
            .fetch_index_with_details(&sources, "amd64", &NoReporter)
            .unwrap();
        check(&warm);

        // Gone (an older cairn's cache): the index is parsed again and the
        // side table written, beside the records entry it matches.
        fs_err::remove_file(&written[0]).unwrap();
        let (rebuilt, _) = fx
            .client
            .fetch_index_with_details(&sources, "amd64", &NoReporter)
            .unwrap();
        check(&rebuilt);
        assert_eq!(side_tables(), written);
    }

    #[test]
    fn cached_debs_are_rehashed_and_corrupt_ones_refetched() {
        let Some(fx) = Fixture::new() else { return };
        let url = file_url(&fx.archive());
        let items = fx.items(&url);
        fx.client.fetch_debs(&items, &NoReporter).unwrap();
        let corrupt = fx.client.store().deb_path(&items[0].sha256).unwrap();
        fs_err::write(&corrupt, b"bit rot").unwrap();
        // Make the source unreachable: only the cache can satisfy item 1.
        fs_err::remove_file(fx.archive().join(&items[1].filename)).unwrap();
        let paths = fx.client.fetch_debs(&items, &NoReporter).unwrap();
        assert_eq!(fs_err::read(&paths[0]).unwrap(), fx.debs[0].bytes);
        assert_eq!(fs_err::read(&paths[1]).unwrap(), fx.debs[1].bytes);
    }

    #[test]
    fn deb_digest_mismatch_fails_and_leaves_nothing() {
        let Some(fx) = Fixture::new() else { return };
        let url = file_url(&fx.archive());
        let mut items = fx.items(&url);
        fs_err::write(fx.archive().join(&items[1].filename), b"evil bytes").unwrap();
        items.truncate(2);
        let err = fx.client.fetch_debs(&items, &NoReporter).unwrap_err();
        let ArchiveError::DigestMismatch {
            name,
            url: bad_url,
            expected_sha256,
            actual_sha256,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(
            (name.as_str(), bad_url.as_str()),
            ("hello", items[1].url.as_str())
        );
        assert_eq!(expected_sha256, &items[1].sha256);
        assert_eq!(actual_sha256, &sha256_hex(b"evil bytes"));
        let msg = err.to_string();
        assert!(
            msg.contains(expected_sha256) && msg.contains(actual_sha256),
            "{msg}"
        );
        assert!(
            !fx.deb_bucket_entries()
                .contains(&format!("{}.deb", items[1].sha256))
        );
        assert!(
            fx.deb_bucket_entries().iter().all(|n| n.ends_with(".deb")),
            "temp file left"
        );
    }

    #[test]
    fn tampered_index_is_rejected_before_decompressing() {
        let Some(fx) = Fixture::new() else { return };
        let packages = fx
            .archive()
            .join("dists/bookworm/main/binary-amd64/Packages.xz");
        fs_err::write(&packages, b"not the signed index").unwrap();
        let sources = [fx.source(file_url(&fx.archive()))];
        let err = fx
            .client
            .fetch_index(&sources, "amd64", &NoReporter)
            .unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("Packages.xz"), "{err}");
    }

    #[test]
    fn wrong_suite_and_missing_component_are_errors() {
        let Some(fx) = Fixture::new() else { return };
        let dists = fx.archive().join("dists");
        fs_err::create_dir_all(dists.join("trixie")).unwrap();
        fs_err::copy(
            dists.join("bookworm/InRelease"),
            dists.join("trixie/InRelease"),
        )
        .unwrap();
        let mut source = fx.source(file_url(&fx.archive()));
        source.suite = "trixie".into();
        let err = fx.client.fetch_release(&source).unwrap_err();
        assert!(matches!(err, ArchiveError::SuiteMismatch { .. }), "{err}");
        source.suite = "stable".into();
        assert!(
            fx.client.fetch_release(&source).is_err(),
            "dists/stable does not exist"
        );
        let mut source = fx.source(file_url(&fx.archive()));
        source.components = vec!["contrib".into()];
        let err = fx
            .client
            .fetch_index(&[source], "amd64", &NoReporter)
            .unwrap_err();
        assert!(matches!(err, ArchiveError::IndexNotListed { .. }), "{err}");
    }

    /// Serves `root` on 127.0.0.1, logging request paths; `failures` maps a path
    /// to statuses returned (in order) before the file is served.
    struct TestServer {
        url: String,
        log: Arc<Mutex<Vec<String>>>,
        failures: Arc<Mutex<HashMap<String, Vec<u16>>>>,
    }

    impl TestServer {
        fn start(root: PathBuf) -> TestServer {
            let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
            let addr = server.server_addr().to_ip().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let failures: Arc<Mutex<HashMap<String, Vec<u16>>>> = Arc::default();
            let (log2, failures2) = (log.clone(), failures.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_string();
                    log2.lock().unwrap().push(path.clone());
                    let failure = failures2
                        .lock()
                        .unwrap()
                        .get_mut(&path)
                        .and_then(|f| f.pop());
                    let response = match (failure, fs_err::read(root.join(&path[1..]))) {
                        (Some(status), _) => {
                            tiny_http::Response::from_data(Vec::new()).with_status_code(status)
                        }
                        (None, Ok(bytes)) => tiny_http::Response::from_data(bytes),
                        (None, Err(_)) => {
                            tiny_http::Response::from_data(Vec::new()).with_status_code(404)
                        }
                    };
                    let _ = request.respond(response);
                }
            });
            TestServer {
                url: format!("http://{addr}"),
                log,
                failures,
            }
        }

        fn take_log(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    #[test]
    fn http_warm_run_downloads_only_inrelease_and_retries_5xx() {
        let Some(fx) = Fixture::new() else { return };
        let server = TestServer::start(fx.archive());
        let sources = [fx.source(server.url.clone())];
        let packages = "/dists/bookworm/main/binary-amd64/Packages.xz";
        server
            .failures
            .lock()
            .unwrap()
            .insert(packages.into(), vec![503, 500]);
        let reporter = CountingReporter::default();
        let (index, _) = fx.client.fetch_index(&sources, "amd64", &reporter).unwrap();
        assert_eq!(index.records.len(), 2);
        let log = server.take_log();
        assert_eq!(log.iter().filter(|p| *p == packages).count(), 3, "{log:?}");
        assert_eq!(reporter.done.load(Ordering::Relaxed), 1);

        let (warm, _) = fx.client.fetch_index(&sources, "amd64", &reporter).unwrap();
        assert_eq!(warm.records.len(), 2);
        assert_eq!(server.take_log(), ["/dists/bookworm/InRelease"]);

        let items = fx.items(&server.url);
        let paths = fx.client.fetch_debs(&items, &reporter).unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(server.take_log().len(), 2);
        fx.client.fetch_debs(&items, &reporter).unwrap();
        assert!(
            server.take_log().is_empty(),
            "cached debs are not downloaded again"
        );
        let total: u64 = items.iter().map(|i| i.size).sum();
        let index_size = fs_err::metadata(fx.archive().join(&packages[1..]))
            .unwrap()
            .len();
        assert_eq!(
            reporter.bytes.load(Ordering::Relaxed),
            index_size + 2 * total
        );
    }

    #[test]
    fn http_errors_name_the_url() {
        let Some(fx) = Fixture::new() else { return };
        let server = TestServer::start(fx.archive());
        let mut items = fx.items(&server.url);
        items[0].url = format!("{}/pool/missing.deb", server.url);
        let err = fx.client.fetch_debs(&items[..1], &NoReporter).unwrap_err();
        assert!(matches!(err, ArchiveError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("/pool/missing.deb"), "{err}");

        server
            .failures
            .lock()
            .unwrap()
            .insert("/dists/bookworm/InRelease".into(), vec![500; 4]);
        let err = fx
            .client
            .fetch_release(&fx.source(server.url.clone()))
            .unwrap_err();
        assert!(
            matches!(err, ArchiveError::HttpStatus { status: 500, .. }),
            "{err}"
        );
        assert_eq!(
            server
                .take_log()
                .iter()
                .filter(|p| p.ends_with("InRelease"))
                .count(),
            4
        );

        // Nothing listens on port 9 (discard) of 127.0.0.1 in the test environment.
        let err = fx
            .client
            .fetch_release(&fx.source("http://127.0.0.1:9".into()))
            .unwrap_err();
        assert!(matches!(err, ArchiveError::Unreachable { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("http://127.0.0.1:9/dists/bookworm/InRelease"),
            "{err}"
        );
        let err = fx
            .client
            .fetch_release(&fx.source("ftp://x".into()))
            .unwrap_err();
        assert!(matches!(err, ArchiveError::UnsupportedUrl { .. }), "{err}");
    }

    /// The real bookworm index end to end: signature, digest, xz, ~63k records.
    /// Ignored by default (downloads ~9 MB); run with `--ignored`.
    #[test]
    #[ignore]
    fn real_bookworm_index() {
        let dir = tempfile::tempdir().unwrap();
        let client = ArchiveClient::new(Store::open(dir.path()).unwrap());
        let source = Source {
            name: "debian".into(),
            url: "http://deb.debian.org/debian".into(),
            suite: "bookworm".into(),
            components: vec!["main".into()],
            keyrings: vec![Keyring::DebianArchive],
        };
        for round in ["cold", "warm"] {
            let start = std::time::Instant::now();
            let (index, _) =
                match client.fetch_index(std::slice::from_ref(&source), "amd64", &NoReporter) {
                    Ok(found) => found,
                    Err(ArchiveError::Unreachable { url, reason }) => {
                        eprintln!("skipping: {url} unreachable: {reason}");
                        return;
                    }
                    Err(e) => panic!("{e}"),
                };
            eprintln!(
                "{round}: {} records in {:?}",
                index.records.len(),
                start.elapsed()
            );
            assert!(index.records.len() > 60_000);
            let names: Vec<&str> = index
                .search("python3")
                .iter()
                .take(3)
                .map(|r| r.name.as_str())
                .collect();
            assert_eq!(names[0], "python3");
        }
    }
}
