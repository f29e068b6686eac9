//! Reproducible, cached OCI layers: one per package, one per group of
//! packages, or a small custom top layer composed by the CLI.
//!
//! A package layer is a pure function of the `.deb` bytes and the options, so
//! it is cached under `layers-v1/<key>.json` (key = hash of the layer format
//! version, the `.deb` sha256s, the compressor with its level and the locked
//! versions of the crates doing it, and the mtime clamp) next to its blob
//! `layers-v1/blobs/sha256/<digest>`. A hit reads one small JSON file and
//! decompresses nothing. A miss streams in bounded memory: data.tar is read
//! once, its metadata into a sorted tree and its file contents into a spool
//! (`spool.rs`: memory up to a cap, then an unnamed temp file); then the tree
//! is written as a tar with contents streamed from the spool, through the
//! chunked parallel compressor, to a temp file, hashing the tar (diff_id) and
//! the compressed bytes (digest) on the way. No whole layer and no whole
//! file of a package is held in memory.
//!
//! Image assembly is `image.rs`; which packages share a layer is `group.rs`.

pub(crate) mod spool;

use rayon::iter::{ParallelBridge, ParallelIterator};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use cairn_store::{Bucket, HashingWriter, Store, sha256_hex};
use serde::{Deserialize, Serialize};

use crate::pgzip::GzipWriter;
use crate::tree::{Data, Node, Tree};
use crate::{OciError, Result};
use cairn_debian::deb::facts::{FactsCollector, FactsRequest, store_facts};
use cairn_debian::deb::{EntryKind, read_deb_verified_with_control};
use spool::Spool;

/// Bumped whenever the bytes of a layer built from the same inputs would change
/// (normalisation, ordering, headers, compressor settings), so stale cache
/// entries are never reused.
const LAYER_FORMAT: &str = "cairn-layer-v2";

/// File contents a layer build keeps in memory before spooling to disk: most
/// packages fit, and one build per pool thread stays far below the memory
/// goal (200 MB for a cold containerize).
const SPOOL_MEMORY: usize = 8 << 20;

/// gzip's level and zstd's, fixed for reproducibility.
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip, level 6: every engine and tool reads it.
    Gzip,
    /// zstd, level 3: faster to build and smaller. Docker 20.10.24, podman 4,
    /// containerd 1.6 and skopeo load it; Docker before 20.10 and umoci 0.4.7
    /// do not.
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The tar inside a layer blob, decompressed as its media type says (gzip,
/// zstd, or an uncompressed `…tar`).
pub fn layer_tar_reader<'a>(
    blob: impl Read + 'a,
    media_type: &str,
) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(if media_type.ends_with("zstd") {
        Box::new(zstd::stream::read::Decoder::new(blob)?)
    } else if media_type.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else {
        Box::new(blob)
    })
}

/// Options shared by every layer of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOptions {
    /// Blob compression.
    pub compression: Compression,
    /// If set, no entry has an mtime later than this (like SOURCE_DATE_EPOCH).
    pub mtime_clamp: Option<u64>,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            compression: Compression::Gzip,
            mtime_clamp: None,
        }
    }
}

/// A locked package to turn into (part of) a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInput {
    /// Package name, for history and errors.
    pub name: String,
    /// Package version, for history.
    pub version: String,
    /// The `.deb` on disk (normally in the store's `debs-v1/`).
    pub deb_path: PathBuf,
    /// Hex sha256 of the `.deb`, as locked; it keys the cache and the `.deb` is checked against it.
    pub deb_sha256: String,
}

/// A layer blob in the store, ready to be referenced by an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltLayer {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes (what the layer takes unpacked,
    /// give or take the filesystem).
    pub uncompressed_size: u64,
    /// OCI media type of the blob.
    pub media_type: String,
    /// Where the blob lives in the store.
    pub blob_path: PathBuf,
    /// History line for the image config, e.g. `cairn: libc6 2.36-9`.
    pub created_by: String,
    /// True if the layer came from the cache without being rebuilt.
    pub from_cache: bool,
    /// Built by this process, which hashed the blob as it wrote it moments
    /// ago: an archive copies it without hashing it again. Never read from
    /// a record (it deserialises as false), so a layer kept in a record and
    /// any cache hit is verified as it is copied.
    #[serde(skip)]
    pub fresh: bool,
    /// Keeps `cairn cache gc` from evicting the blob while this layer (and
    /// every clone of it, e.g. inside an [`crate::Image`]) is alive.
    #[serde(skip)]
    pub blob_use: BlobUse,
}

/// A shared hold on a layer blob ([`Store::use_layer_blob`]); empty for a
/// layer read back from a record until [`BlobUse::hold`] is called.
#[derive(Debug, Clone, Default)]
pub struct BlobUse {
    /// Only held (released on the last drop), never read.
    _held: Option<std::sync::Arc<cairn_store::EntryLock>>,
}

impl BlobUse {
    /// Marks the blob `digest` in use; take it before checking the blob is there.
    pub fn hold(store: &Store, digest: &str) -> Result<BlobUse> {
        let held = std::sync::Arc::new(store.use_layer_blob(digest)?);
        Ok(BlobUse { _held: Some(held) })
    }
}

/// Two layers are equal by their content; who holds the blob does not count.
impl PartialEq for BlobUse {
    fn eq(&self, _: &BlobUse) -> bool {
        true
    }
}
impl Eq for BlobUse {}

/// What the cache records per key; the blob path is derived from the digest.
#[derive(Debug, Serialize, Deserialize)]
struct CacheRecord {
    digest: String,
    diff_id: String,
    size: u64,
    /// `None` in records written before cairn kept it: such a record reads
    /// as a miss, and the rebuild (the same bytes) records it.
    #[serde(default)]
    uncompressed_size: Option<u64>,
    media_type: String,
}

/// Builds (or fetches from the cache) the layer of one package.
pub fn build_package_layer(
    store: &Store,
    input: &LayerInput,
    opts: &LayerOptions,
) -> Result<BuiltLayer> {
    build_group_layer(store, std::slice::from_ref(input), opts)
}

/// Builds (or fetches from the cache) one layer holding several packages,
/// their entries merged and sorted. Where two packages ship the same path,
/// the one later by (name, version) wins.
pub fn build_group_layer(
    store: &Store,
    inputs: &[LayerInput],
    opts: &LayerOptions,
) -> Result<BuiltLayer> {
    let layer = group_layer_unsynced(store, inputs, opts, None)?;
    if !layer.from_cache {
        sync_layers_later(store)?;
    }
    Ok(layer)
}

/// [`build_group_layer`] leaving the new cache entry for the caller to sync;
/// with `facts`, each `.deb` read also leaves its [`DebFacts`] in the store.
///
/// [`DebFacts`]: cairn_debian::deb::facts::DebFacts
fn group_layer_unsynced(
    store: &Store,
    inputs: &[LayerInput],
    opts: &LayerOptions,
    facts: Option<&FactsRequest>,
) -> Result<BuiltLayer> {
    group_layer_keyed(store, inputs, opts, &compressor_id(opts.compression), facts)
}

/// [`group_layer_unsynced`] with the compressor's identity given, so a test
/// can stand in for another build of the compressor.
fn group_layer_keyed(
    store: &Store,
    inputs: &[LayerInput],
    opts: &LayerOptions,
    compressor: &str,
    facts: Option<&FactsRequest>,
) -> Result<BuiltLayer> {
    let mut inputs: Vec<&LayerInput> = inputs.iter().collect();
    inputs.sort_by(|a, b| {
        (&a.name, &a.version, &a.deb_sha256).cmp(&(&b.name, &b.version, &b.deb_sha256))
    });
    let mut shas: Vec<&str> = inputs.iter().map(|i| i.deb_sha256.as_str()).collect();
    shas.sort_unstable();
    let key = cache_key(&format!("debs:{}", shas.join(",")), opts, compressor);
    let created_by = created_by(&inputs);

    let _lock = store.lock_entry(Bucket::Layers, &key)?;
    if let Some((hit, held)) = read_cache(store, &key)? {
        tracing::debug!(%created_by, digest = %hit.digest, "layer cache hit");
        return built(store, hit, held, created_by, true);
    }
    let mut tree = Tree::default();
    let mut spool = Spool::new(store.bucket(Bucket::Layers)?, SPOOL_MEMORY);
    for input in &inputs {
        // The lock's sha256 is the trust anchor: a `.deb` changed in the cache
        // since download is evicted (and refetched next run), never layered.
        // It is hashed as it is read, and the blob is only written once every
        // `.deb` has matched, so a mismatch leaves nothing in the cache.
        let _in_use = store.use_entry(Bucket::Debs, &input.deb_sha256)?;
        add_deb(store, &mut tree, &mut spool, input, opts.mtime_clamp, facts)?;
    }
    spool.seal()?;
    tree.finish(&created_by, opts.mtime_clamp.unwrap_or(0))?;
    let (record, held) = write_blob(store, opts.compression, |out| tree.write_tar(out, &spool))?;
    write_cache(store, &key, &record)?;
    tracing::debug!(%created_by, digest = %record.digest, "layer built");
    built(store, record, held, created_by, false)
}

/// Builds the layers of an image in parallel, one per element of `layers`
/// (each a package or a group), in the same order. `on_layer_done` is called
/// from worker threads as each finishes, with its index.
pub fn build_layers(
    store: &Store,
    layers: &[Vec<LayerInput>],
    opts: &LayerOptions,
    on_layer_done: impl Fn(usize, &BuiltLayer) + Sync,
) -> Result<Vec<BuiltLayer>> {
    build_layers_with_facts(store, layers, opts, None, on_layer_done)
}

/// [`build_layers`], also storing the [`FactsRequest`]'s facts of every
/// `.deb` it reads, so configuration need not read them again.
pub fn build_layers_with_facts(
    store: &Store,
    layers: &[Vec<LayerInput>],
    opts: &LayerOptions,
    facts: Option<&FactsRequest>,
    on_layer_done: impl Fn(usize, &BuiltLayer) + Sync,
) -> Result<Vec<BuiltLayer>> {
    // Largest first, one at a time per worker: the long layers start at once
    // and the short ones fill in, so no core idles at the end (LPT
    // scheduling). Workers take the next layer from one shared queue: a
    // rayon `par_iter` over the list splits it in halves instead, and a worker held
    // up by a long layer left the other to finish its half and then the
    // mid-sized layers of the first, so the largest of those ran last.
    let mut order: Vec<usize> = (0..layers.len()).collect();
    let size = |i: &usize| -> u64 {
        let debs = layers[*i].iter();
        debs.map(|input| fs_err::metadata(&input.deb_path).map_or(0, |m| m.len()))
            .sum()
    };
    order.sort_by_cached_key(|i| std::cmp::Reverse(size(i)));
    // `par_bridge` hands the workers one item at a time from the iterator,
    // in its order: a shared queue.
    let mut built: Vec<(usize, BuiltLayer)> = order
        .iter()
        .par_bridge()
        .map(|&index| {
            let layer = group_layer_unsynced(store, &layers[index], opts, facts)?;
            on_layer_done(index, &layer);
            Ok((index, layer))
        })
        .collect::<Result<_>>()?;
    // Flushed while the caller builds the rest and writes the archive.
    if built.iter().any(|(_, layer)| !layer.from_cache) {
        sync_layers_later(store)?;
    }
    built.sort_by_key(|(index, _)| *index);
    Ok(built.into_iter().map(|(_, layer)| layer).collect())
}

fn created_by(inputs: &[&LayerInput]) -> String {
    let packages: Vec<String> = inputs
        .iter()
        .map(|i| format!("{} {}", i.name, i.version))
        .collect();
    format!("cairn: {}", packages.join(", "))
}

/// Adds a package's entries to `tree`, copying file contents into `spool` as
/// the data.tar streams past (read once, in archive order, hashed on the way
/// and checked against the locked sha256 at the end).
fn add_deb(
    store: &Store,
    tree: &mut Tree,
    spool: &mut Spool,
    input: &LayerInput,
    clamp: Option<u64>,
    facts: Option<&FactsRequest>,
) -> Result<()> {
    let deb = input.deb_path.as_path();
    let collector = std::cell::RefCell::new(facts.map(|request| FactsCollector::new(*request)));
    let on_control = |control: &cairn_debian::ControlFiles| {
        if let Some(collector) = collector.borrow_mut().as_mut() {
            collector.control_read(control);
        }
    };
    let control = read_deb_verified_with_control(
        deb,
        &input.deb_sha256,
        on_control,
        |entry, reader| {
            // Configuration's copy of what it needs, taken as the bytes pass.
            let mut collector = collector.borrow_mut();
            let kept = match collector.as_mut() {
                Some(collector) => collector.observe(deb, entry, reader)?,
                None => None,
            };
            // A `.wh.` name would read as an overlay whiteout and delete files
            // from lower layers; no Debian package ships one on purpose.
            let name = entry.path.rsplit('/').next().unwrap_or_default();
            if name.starts_with(".wh.") {
                tracing::warn!(deb = %deb.display(), path = %entry.path, "skipping whiteout-like entry");
                return Ok(());
            }
            let data = if entry.kind == EntryKind::File && entry.size > 0 {
                let spooled = match kept {
                    Some(mut bytes) => spool.append(&mut bytes, entry.size),
                    None => spool.append(reader, entry.size),
                };
                let spooled = spooled.map_err(|e| cairn_debian::deb::read_error(deb, e))?;
                Data::Spooled(spooled)
            } else {
                Data::None
            };
            let node = Node {
                kind: entry.kind.clone(),
                mode: entry.mode,
                mtime: clamp.map_or(entry.mtime, |c| entry.mtime.min(c)),
                uid: 0,
                gid: 0,
                uname: entry.uname.clone(),
                gname: entry.gname.clone(),
                data,
            };
            tree.insert(entry.path.clone(), node);
            Ok::<(), OciError>(())
        },
    )?;
    // Stored only now that the whole `.deb` matched its sha256.
    if let (Some(collector), Some(request)) = (collector.into_inner(), facts) {
        store_facts(
            store,
            &input.deb_sha256,
            request,
            &collector.finish(control),
        )?;
    }
    Ok(())
}

/// One entry of a custom layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomEntry {
    /// Path inside the image; a leading `/` is dropped, `..` is refused.
    pub path: String,
    /// What the entry is.
    pub kind: CustomKind,
    /// Permission bits, including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner id (0 unless set with [`CustomEntry::owned_by`]).
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// The type of a [`CustomEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomKind {
    /// A directory.
    Dir,
    /// A regular file.
    File(FileContent),
    /// A symbolic link to `target`, kept verbatim.
    Symlink { target: String },
}

/// Where a custom file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The contents of this host file (e.g. the cairn binary itself).
    Path(PathBuf),
}

impl CustomEntry {
    /// A root-owned directory.
    pub fn dir(path: impl Into<String>, mode: u32) -> CustomEntry {
        CustomEntry::new(path, CustomKind::Dir, mode)
    }

    /// A root-owned file.
    pub fn file(path: impl Into<String>, mode: u32, content: FileContent) -> CustomEntry {
        CustomEntry::new(path, CustomKind::File(content), mode)
    }

    /// A root-owned symlink.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> CustomEntry {
        let target = target.into();
        CustomEntry::new(path, CustomKind::Symlink { target }, 0o777)
    }

    /// The same entry with another owner.
    pub fn owned_by(self, uid: u32, gid: u32) -> CustomEntry {
        CustomEntry { uid, gid, ..self }
    }

    fn new(path: impl Into<String>, kind: CustomKind, mode: u32) -> CustomEntry {
        CustomEntry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// The merged-`/usr` symlinks (`bin -> usr/bin`, `sbin`, `lib`, `lib64`) that
/// package layers rely on, for the CLI's top layer.
pub fn merged_usr_symlinks() -> Vec<CustomEntry> {
    ["bin", "sbin", "lib", "lib64"]
        .into_iter()
        .map(|dir| CustomEntry::symlink(dir, format!("usr/{dir}")))
        .collect()
}

/// Builds (or fetches from the cache) a layer of custom entries, with every
/// mtime set to the clamp (or 0). The cache is keyed by the entries and their
/// contents' sha256, so a hit (cairn's own 15 MB binary on every rebuild)
/// costs one streamed hash and no tar; on a miss host files stream into the
/// tar.
pub fn build_custom_layer(
    store: &Store,
    entries: Vec<CustomEntry>,
    opts: &LayerOptions,
) -> Result<BuiltLayer> {
    let compressor = compressor_id(opts.compression);
    let key = cache_key(
        &format!("custom:{}", custom_key(&entries)?),
        opts,
        &compressor,
    );
    let created_by = "cairn: custom layer".to_owned();
    let _lock = store.lock_entry(Bucket::Layers, &key)?;
    if let Some((hit, held)) = read_cache(store, &key)? {
        return built(store, hit, held, created_by, true);
    }
    let mtime = opts.mtime_clamp.unwrap_or(0);
    let mut tree = Tree::default();
    for entry in entries {
        let (path, node) = custom_node(entry, mtime)?;
        tree.insert(path, node);
    }
    tree.finish("custom", mtime)?;
    // Custom entries bring their own contents: the spool stays empty.
    let spool = Spool::new(store.bucket(Bucket::Layers)?, 0);
    let (record, held) = write_blob(store, opts.compression, |out| tree.write_tar(out, &spool))?;
    write_cache(store, &key, &record)?;
    sync_layers_later(store)?;
    built(store, record, held, created_by, false)
}

/// A digest of everything a custom layer's tar depends on besides the
/// options: each entry in order, with its content's sha256.
fn custom_key(entries: &[CustomEntry]) -> Result<String> {
    let mut text = String::new();
    for entry in entries {
        let content = match &entry.kind {
            CustomKind::Dir => "dir".to_owned(),
            CustomKind::File(FileContent::Bytes(bytes)) => format!("file {}", sha256_hex(bytes)),
            CustomKind::File(FileContent::Path(source)) => {
                format!("file {}", cairn_store::sha256_file(source)?)
            }
            CustomKind::Symlink { target } => format!("symlink {target:?}"),
        };
        let (path, mode, uid, gid) = (&entry.path, entry.mode, entry.uid, entry.gid);
        text.push_str(&format!("{path:?} {mode:o} {uid}:{gid} {content}\n"));
    }
    Ok(sha256_hex(text.as_bytes()))
}

fn custom_node(entry: CustomEntry, mtime: u64) -> Result<(String, Node)> {
    let invalid = |reason: &str| OciError::InvalidCustomEntry {
        path: entry.path.clone(),
        reason: reason.to_owned(),
    };
    let path = custom_path(&entry.path).map_err(invalid)?;
    let (kind, data) = match &entry.kind {
        CustomKind::Dir => (EntryKind::Dir, Data::None),
        CustomKind::File(FileContent::Bytes(bytes)) => {
            (EntryKind::File, Data::Bytes(bytes.clone()))
        }
        CustomKind::File(FileContent::Path(source)) => {
            let len = fs_err::metadata(source)?.len();
            let path = source.clone();
            (EntryKind::File, Data::HostFile { path, len })
        }
        CustomKind::Symlink { target } => (
            EntryKind::Symlink {
                target: target.clone(),
            },
            Data::None,
        ),
    };
    let root = entry.uid == 0 && entry.gid == 0;
    let name = if root { "root" } else { "" };
    let node = Node {
        kind,
        mode: entry.mode & 0o7777,
        mtime,
        uid: entry.uid.into(),
        gid: entry.gid.into(),
        uname: name.into(),
        gname: name.into(),
        data,
    };
    Ok((path, node))
}

/// Custom paths are taken as written (no merged-/usr rewrite: the top layer is
/// where `bin -> usr/bin` itself lives), only made relative and canonical.
fn custom_path(raw: &str) -> Result<String, &'static str> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path contains '..'"),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("path names the image root");
    }
    Ok(parts.join("/"))
}

/// What produced a blob's compressed bytes: the method, its settings, and the
/// versions of the code doing it (locked crate versions, recorded by
/// build.rs, and the zstd library's own version). Two builds of cairn with
/// different compressors may write different bytes for the same tar, so their
/// cached layers must not mix: a cold build and a warm one of the same lock
/// would otherwise disagree.
/// The compressor's identity and version for `compression`: part of every
/// cache key, so outputs of two compressor builds never mix.
pub fn compressor_id(compression: Compression) -> String {
    match compression {
        Compression::Gzip => format!(
            "gzip level={GZIP_LEVEL} pgzip chunk={} flate2={} zlib-rs={}",
            crate::pgzip::CHUNK,
            env!("CAIRN_LOCKED_FLATE2"),
            env!("CAIRN_LOCKED_ZLIB_RS"),
        ),
        Compression::Zstd => format!(
            "zstd level={ZSTD_LEVEL} zstd={} zstd-safe={} zstd-sys={} libzstd={}",
            env!("CAIRN_LOCKED_ZSTD"),
            env!("CAIRN_LOCKED_ZSTD_SAFE"),
            env!("CAIRN_LOCKED_ZSTD_SYS"),
            zstd::zstd_safe::version_number(),
        ),
    }
}

fn cache_key(inputs: &str, opts: &LayerOptions, compressor: &str) -> String {
    let clamp = opts
        .mtime_clamp
        .map_or("none".to_owned(), |c| c.to_string());
    let compression = opts.compression.name();
    let text = format!("{LAYER_FORMAT}\n{inputs}\n{compression}\n{compressor}\nclamp:{clamp}\n");
    sha256_hex(text.as_bytes())
}

/// Makes the layer blobs and records written so far durable, in the
/// background ([`Store::sync_later`]).
fn sync_layers_later(store: &Store) -> Result<()> {
    store.sync_later(vec![blobs_dir(store)?, store.bucket(Bucket::Layers)?]);
    Ok(())
}

fn blobs_dir(store: &Store) -> Result<PathBuf> {
    Ok(store.bucket_subdir(Bucket::Layers, "blobs/sha256")?)
}

fn record_path(store: &Store, key: &str) -> Result<PathBuf> {
    Ok(store.bucket(Bucket::Layers)?.join(format!("{key}.json")))
}

/// A usable cache record: it parses and its blob exists with the recorded
/// size (and is now held in use). Anything else is a miss (and gets
/// rebuilt), so a damaged cache heals.
fn read_cache(store: &Store, key: &str) -> Result<Option<(CacheRecord, BlobUse)>> {
    let path = record_path(store, key)?;
    let bytes = match fs_err::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let record: CacheRecord = match serde_json::from_slice(&bytes) {
        Ok(record) => record,
        Err(source) => {
            tracing::warn!("{}", OciError::CorruptCache { path, source });
            return Ok(None);
        }
    };
    if record.uncompressed_size.is_none() {
        return Ok(None);
    }
    let blob = blob_path(store, &record.digest)?;
    // In use before it is checked: gc cannot evict it between the check and
    // the archive that reads it.
    let held = BlobUse::hold(store, &record.digest)?;
    let size = fs_err::metadata(&blob).map(|m| m.len()).ok();
    Ok((size == Some(record.size)).then_some((record, held)))
}

fn write_cache(store: &Store, key: &str, record: &CacheRecord) -> Result<()> {
    let json = serde_json::to_vec(record).map_err(|source| OciError::Json {
        what: "layer cache record",
        source,
    })?;
    // Durable with the blob at the caller's `Store::sync_later`; until then a
    // record whose blob did not survive a crash reads as a miss (size check).
    let mut file = cairn_store::AtomicFile::create(record_path(store, key)?)?;
    file.write_all(&json)?;
    file.commit_unsynced()?;
    Ok(())
}

fn blob_path(store: &Store, digest: &str) -> Result<PathBuf> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    Ok(blobs_dir(store)?.join(hex))
}

fn built(
    store: &Store,
    record: CacheRecord,
    blob_use: BlobUse,
    created_by: String,
    from_cache: bool,
) -> Result<BuiltLayer> {
    Ok(BuiltLayer {
        blob_use,
        blob_path: blob_path(store, &record.digest)?,
        digest: record.digest,
        diff_id: record.diff_id,
        size: record.size,
        uncompressed_size: record.uncompressed_size.unwrap_or(0),
        media_type: record.media_type,
        created_by,
        from_cache,
        fresh: !from_cache,
    })
}

/// Streams `fill`'s tar through the compressor into a temp file in the blobs
/// directory, hashing both sides, then renames it to its digest. The digest is
/// only known at the end, hence a temp file rather than `AtomicFile`.
fn write_blob(
    store: &Store,
    compression: Compression,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(CacheRecord, BlobUse)> {
    let dir = blobs_dir(store)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".blob-")
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    let out = HashingWriter::new(BufWriter::with_capacity(1 << 20, temp.as_file_mut()));
    let (diff_id, uncompressed_size, out) = compress(compression, out, fill)?;
    let (digest, size, out) = out.finish();
    // No fsync here: the caller syncs the store once for all layers.
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .flush()?;
    let target = dir.join(&digest);
    // Held before the blob appears, so gc never sees it unheld.
    let held = BlobUse::hold(store, &digest)?;
    temp.persist(&target).map_err(|e| e.error)?;
    let record = CacheRecord {
        digest: format!("sha256:{digest}"),
        diff_id: format!("sha256:{diff_id}"),
        size,
        uncompressed_size: Some(uncompressed_size),
        media_type: compression.media_type().to_owned(),
    };
    Ok((record, held))
}

/// Compresses what `fill` writes into `out`; returns the hex sha256 and the
/// size of the uncompressed stream, and `out`. Settings are fixed for reproducibility:
/// gzip level 6 in 1 MiB pieces deflated on every core (`pgzip`), mtime 0 and
/// OS byte 255 in the header; zstd level 3, single-threaded, no checksum.
fn compress<W: Write>(
    compression: Compression,
    out: W,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<(String, u64, W)> {
    match compression {
        Compression::Gzip => {
            let gzip = GzipWriter::new(out, GZIP_LEVEL)?;
            let (diff_id, size, gzip) = hash_through(gzip, fill)?;
            Ok((diff_id, size, gzip.finish()?))
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
            encoder.include_checksum(false)?;
            let (diff_id, size, encoder) = hash_through(encoder, fill)?;
            Ok((diff_id, size, encoder.finish()?))
        }
    }
}

/// Runs `fill` into `inner` through a hash, buffered: tar writes 512-byte
/// headers one by one, and compressors are much faster fed in large chunks.
fn hash_through<W: Write>(
    inner: W,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<(String, u64, W)> {
    let mut buffered = BufWriter::with_capacity(256 * 1024, HashingWriter::new(inner));
    fill(&mut buffered)?;
    let (diff_id, size, inner) = buffered
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .finish();
    Ok((diff_id, size, inner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_debian::deb::fixtures::sample_deb;
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::path::Path;

    fn input(deb: &Path) -> LayerInput {
        LayerInput {
            name: "sample".into(),
            version: "1.0".into(),
            deb_path: deb.to_path_buf(),
            deb_sha256: cairn_store::sha256_file(deb).unwrap(),
        }
    }

    struct Listed {
        kind: tar::EntryType,
        mode: u32,
        mtime: u64,
        uid: u64,
        link: String,
        body: Vec<u8>,
    }

    fn list_layer(layer: &BuiltLayer) -> Vec<(String, Listed)> {
        let blob = fs_err::File::open(&layer.blob_path).unwrap();
        let reader = layer_tar_reader(blob, &layer.media_type).unwrap();
        let mut archive = tar::Archive::new(reader);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let path = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap())
                .unwrap_or_default();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            let listed = Listed {
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                mtime: header.mtime().unwrap(),
                uid: header.uid().unwrap(),
                link,
                body,
            };
            out.push((path, listed));
        }
        out
    }

    #[test]
    fn package_layer_is_normalised_sorted_and_complete() {
        let (tmp, deb) = sample_deb("xz");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let opts = LayerOptions::default();
        let layer = build_package_layer(&store, &input(&deb), &opts).unwrap();
        assert_eq!(layer.created_by, "cairn: sample 1.0");
        assert_eq!(
            layer.media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let listed = list_layer(&layer);
        let paths: Vec<&str> = listed.iter().map(|(p, _)| p.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted, "entries are sorted bytewise");
        assert!(!paths.iter().any(|p| *p == "bin" || p.starts_with("bin/")));
        let map: BTreeMap<&str, &Listed> = listed.iter().map(|(p, l)| (p.as_str(), l)).collect();
        assert!(map.values().all(|l| l.uid == 0));
        // The hardlink sorted before its target, so it took the data.
        assert_eq!(map["usr/bin/a-tool"].kind, tar::EntryType::Regular);
        assert_eq!(map["usr/bin/a-tool"].body, b"#!/bin/sh\necho tool\n");
        assert_eq!(map["usr/bin/tool"].kind, tar::EntryType::Link);
        assert_eq!(map["usr/bin/tool"].link, "usr/bin/a-tool");
        assert_eq!(map["usr/bin/suid"].mode, 0o4755);
        assert_eq!(map["usr/bin/tool-link"].link, "../../bin/tool");
        assert_eq!(
            map["usr/share/doc/sample/zz-data"].link,
            "usr/share/doc/sample/aa-link"
        );
        let long = format!("usr/share/{}/file.txt", "d".repeat(120));
        assert_eq!(map[long.as_str()].body, b"long");
        assert_eq!(map["usr"].kind, tar::EntryType::Directory);
    }

    #[test]
    fn layers_are_identical_across_builds_and_stores() {
        let (tmp, deb) = sample_deb("zstd");
        for compression in [Compression::Gzip, Compression::Zstd] {
            let opts = LayerOptions {
                compression,
                mtime_clamp: Some(1_000),
            };
            let a = Store::open(tmp.path().join(format!("a-{compression:?}"))).unwrap();
            let b = Store::open(tmp.path().join(format!("b-{compression:?}"))).unwrap();
            let la = build_package_layer(&a, &input(&deb), &opts).unwrap();
            let lb = build_package_layer(&b, &input(&deb), &opts).unwrap();
            assert_eq!(
                (&la.digest, &la.diff_id, la.size),
                (&lb.digest, &lb.diff_id, lb.size)
            );
            assert_eq!(
                fs_err::read(&la.blob_path).unwrap(),
                fs_err::read(&lb.blob_path).unwrap()
            );
            assert!(list_layer(&la).iter().all(|(_, l)| l.mtime <= 1_000));
        }
    }

    #[test]
    fn a_deb_that_no_longer_matches_its_locked_sha256_is_evicted_not_layered() {
        let (tmp, deb) = sample_deb("gzip");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let locked = input(&deb);
        // Another valid .deb copied over the cached one.
        let (_other_tmp, other) = sample_deb("xz");
        fs_err::copy(&other, &deb).unwrap();
        let err = build_package_layer(&store, &locked, &LayerOptions::default()).unwrap_err();
        assert!(
            matches!(&err, OciError::Store(cairn_store::StoreError::DigestMismatch { path, .. }) if path == &deb),
            "{err}"
        );
        assert!(
            !deb.exists(),
            "the substituted .deb is evicted for a refetch"
        );
        let layers = store.bucket(Bucket::Layers).unwrap();
        let records = fs_err::read_dir(&layers).unwrap().filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".json")
        });
        assert_eq!(records.count(), 0, "no layer record is cached");
        let blobs = fs_err::read_dir(blobs_dir(&store).unwrap()).unwrap();
        assert_eq!(blobs.count(), 0, "no blob is cached");
    }

    /// The bytes checked are the bytes layered, read once: the `.deb` is a
    /// FIFO that serves the locked package on the first open and a doctored
    /// one (same size, another script) on any second open. A check that reads
    /// the file before the layer reads it again would pass the first and
    /// layer the second.
    #[test]
    fn the_deb_is_hashed_as_it_is_layered_in_one_read() {
        let (tmp, deb) = sample_deb("none");
        let locked = fs_err::read(&deb).unwrap();
        let at = locked
            .windows(9)
            .position(|w| w == b"echo tool")
            .expect("the script is stored uncompressed");
        let mut doctored = locked.clone();
        doctored[at..at + 9].copy_from_slice(b"echo pwnd");
        let fifo = tmp.path().join("served.deb");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut pipe = fs_err::OpenOptions::new().write(true).open(&fifo).unwrap();
                let _ = pipe.write_all(&locked);
                drop(pipe);
                serve_to_a_second_reader(&fifo, &doctored);
            });
        }
        let input = LayerInput {
            deb_path: fifo,
            ..input(&deb)
        };
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let layer = build_package_layer(&store, &input, &LayerOptions::default()).unwrap();
        let bodies: Vec<Vec<u8>> = list_layer(&layer)
            .into_iter()
            .map(|(_, l)| l.body)
            .collect();
        // usr/bin/tool and its hardlink a-tool: one carries the bytes.
        assert!(bodies.iter().any(|b| b == b"#!/bin/sh\necho tool\n"));
        assert!(!bodies.iter().any(|b| b.windows(4).any(|w| w == b"pwnd")));
    }

    /// Writes `body` to the next reader of `fifo` that opens it after the
    /// current one is gone. A non-blocking open for writing fails (ENXIO)
    /// while no reader has the FIFO open, so it tells "the first reader left"
    /// from "a second one came". Gives up after a while: with a single read
    /// there is never a second reader.
    fn serve_to_a_second_reader(fifo: &Path, body: &[u8]) {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000; // Linux, x86_64 and aarch64
        let open = || {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(O_NONBLOCK)
                .open(fifo)
        };
        let mut first_gone = false;
        for _ in 0..3000 {
            match open() {
                Err(_) => first_gone = true,
                Ok(mut pipe) if first_gone => {
                    let _ = pipe.write_all(body);
                    return;
                }
                Ok(_) => {}
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn uncompressed_size_is_the_tar_and_survives_the_cache() {
        let (tmp, deb) = sample_deb("gzip");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let opts = LayerOptions::default();
        let built = build_package_layer(&store, &input(&deb), &opts).unwrap();
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(fs_err::File::open(&built.blob_path).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(built.uncompressed_size, tar.len() as u64);
        assert_eq!(
            built.size,
            fs_err::metadata(&built.blob_path).unwrap().len()
        );
        let hit = build_package_layer(&store, &input(&deb), &opts).unwrap();
        assert!(hit.from_cache);
        assert_eq!(hit.uncompressed_size, built.uncompressed_size);
        // A record from before cairn kept the size is a miss, rebuilt alike.
        for record in fs_err::read_dir(store.bucket(Bucket::Layers).unwrap()).unwrap() {
            let path = record.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let mut json: serde_json::Value =
                    serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
                json.as_object_mut().unwrap().remove("uncompressed_size");
                fs_err::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
            }
        }
        let old = build_package_layer(&store, &input(&deb), &opts).unwrap();
        assert!(!old.from_cache);
        assert_eq!(
            (old.digest, old.uncompressed_size),
            (built.digest, built.uncompressed_size)
        );
    }

    #[test]
    fn cache_hit_does_no_work_and_a_broken_entry_heals() {
        let (tmp, deb) = sample_deb("gzip");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let opts = LayerOptions::default();
        let first = build_package_layer(&store, &input(&deb), &opts).unwrap();
        assert!(!first.from_cache);
        let mtime = fs_err::metadata(&first.blob_path)
            .unwrap()
            .modified()
            .unwrap();
        // A hit never opens the .deb: remove it to prove it.
        let moved = tmp.path().join("moved.deb");
        fs_err::rename(&deb, &moved).unwrap();
        let second = build_package_layer(&store, &input(&moved), &opts);
        let mut second = second.unwrap();
        assert!(second.from_cache);
        assert_eq!(
            fs_err::metadata(&first.blob_path)
                .unwrap()
                .modified()
                .unwrap(),
            mtime
        );
        (second.from_cache, second.fresh) = (false, true);
        assert_eq!(second, first);
        // A truncated blob is a miss, and is rebuilt.
        fs_err::write(&first.blob_path, b"junk").unwrap();
        let third = build_package_layer(&store, &input(&moved), &opts).unwrap();
        assert!(!third.from_cache);
        assert_eq!(third.digest, first.digest);
    }

    #[test]
    fn the_compressor_identity_keys_the_cache() {
        let gzip = compressor_id(Compression::Gzip);
        let zstd = compressor_id(Compression::Zstd);
        assert!(
            gzip.contains("level=6") && gzip.contains("zlib-rs="),
            "{gzip}"
        );
        assert!(
            !gzip.contains("unlocked"),
            "versions come from Cargo.lock: {gzip}"
        );
        assert!(
            zstd.contains("level=3") && zstd.contains("libzstd=1"),
            "{zstd}"
        );
        let (tmp, deb) = sample_deb("gzip");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let opts = LayerOptions::default();
        let inputs = [input(&deb)];
        let first = group_layer_keyed(&store, &inputs, &opts, &gzip, None).unwrap();
        let hit = group_layer_keyed(&store, &inputs, &opts, &gzip, None).unwrap();
        assert!(!first.from_cache && hit.from_cache);
        // Another build of zlib-rs: a miss, and the layer is compressed again.
        let bumped = gzip.replace("zlib-rs=", "zlib-rs=99.0.0-was-");
        let rebuilt = group_layer_keyed(&store, &inputs, &opts, &bumped, None).unwrap();
        assert!(!rebuilt.from_cache, "a compressor change must rebuild");
        assert_eq!(rebuilt.digest, first.digest, "same code, same bytes");
        let again = group_layer_keyed(&store, &inputs, &opts, &bumped, None).unwrap();
        assert!(again.from_cache);
        // Every key input separates entries.
        let clamped = LayerOptions {
            mtime_clamp: Some(5),
            ..opts
        };
        let keys = [
            cache_key("debs:a", &opts, &gzip),
            cache_key("debs:a", &opts, &bumped),
            cache_key("debs:b", &opts, &gzip),
            cache_key("debs:a", &clamped, &gzip),
            cache_key("debs:a", &opts, &gzip.replace("level=6", "level=9")),
        ];
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
    }

    #[test]
    fn group_layer_merges_packages_and_parallel_build_keeps_order() {
        let (tmp, deb) = sample_deb("gzip");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let opts = LayerOptions::default();
        let other = LayerInput {
            name: "aaa".into(),
            ..input(&deb)
        };
        let group = build_group_layer(&store, &[input(&deb), other.clone()], &opts).unwrap();
        assert_eq!(group.created_by, "cairn: aaa 1.0, sample 1.0");
        let layers = vec![vec![input(&deb)], vec![input(&deb), other]];
        let built = build_layers(&store, &layers, &opts, |_, _| {}).unwrap();
        assert_eq!(built[1].digest, group.digest);
        assert_eq!(built[0].created_by, "cairn: sample 1.0");
    }

    #[test]
    fn custom_layer_has_fixed_metadata_and_is_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let host_file = tmp.path().join("bin-src");
        fs_err::write(&host_file, b"ELF").unwrap();
        let mut entries = merged_usr_symlinks();
        entries.push(CustomEntry::file(
            "/usr/bin/cairn",
            0o755,
            FileContent::Path(host_file),
        ));
        entries.push(CustomEntry::file(
            "etc/motd",
            0o644,
            FileContent::Bytes(b"hi".to_vec()),
        ));
        entries.push(CustomEntry::dir("/home/app", 0o700).owned_by(1000, 1000));
        let opts = LayerOptions {
            compression: Compression::Gzip,
            mtime_clamp: Some(42),
        };
        let layer = build_custom_layer(&store, entries.clone(), &opts).unwrap();
        let listed = list_layer(&layer);
        let map: BTreeMap<&str, &Listed> = listed.iter().map(|(p, l)| (p.as_str(), l)).collect();
        assert_eq!(map["bin"].link, "usr/bin");
        assert_eq!(map["usr/bin/cairn"].body, b"ELF");
        assert_eq!(map["home/app"].uid, 1000);
        assert_eq!(map["home"].mode, 0o755);
        assert!(map.values().all(|l| l.mtime == 42));
        let again = build_custom_layer(&store, entries, &opts).unwrap();
        assert!(again.from_cache);
        assert_eq!(again.digest, layer.digest);
        let bad = vec![CustomEntry::dir("../x", 0o755)];
        assert!(build_custom_layer(&store, bad, &opts).is_err());
    }
}

/// Layers built from generated packages, pinned to the digests the in-memory
/// builder (before streaming) produced for them: streaming, spooling and the
/// chunked gzip writer must not change a single byte of any layer.
#[cfg(test)]
mod digest_pins {
    use super::*;
    use cairn_debian::deb::fixtures::sample_deb;
    use std::path::Path;

    /// A package of a few MiB that crosses several gzip chunks and defeats
    /// dpkg-deb's order: big pseudo-random and text files, entries under
    /// `bin/` and `lib/` (moved under `usr/`), `usr/bin-extra` (which sorts
    /// before `usr/bin/…`), and a hardlink whose target sorts after it.
    pub(crate) fn big_deb(dir: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let root = dir.join(format!("{name}-root"));
        let write = |rel: &str, body: &[u8], mode: u32| {
            let p = root.join(rel);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, body).unwrap();
            fs_err::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let control = format!(
            "Package: {name}\nVersion: 2.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: big\n"
        );
        write("DEBIAN/control", control.as_bytes(), 0o644);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let random: Vec<u8> = (0..3 * (1 << 20) + 777)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let text: Vec<u8> = (0..5 * (1 << 20) + 4321)
            .map(|i| b"cairn streams layers "[i % 21] ^ ((i / 65_536) as u8 & 3))
            .collect();
        write("bin/zz-random", &random, 0o755);
        write("lib/x86_64-linux-gnu/libbig.so.1", &text, 0o644);
        write("usr/bin/tool", b"tool", 0o755);
        write("usr/bin-extra/helper", &random[..70_000], 0o755);
        write("usr/share/big/text", &text[..1_500_000], 0o644);
        write("usr/share/big/empty", b"", 0o644);
        std::fs::hard_link(
            root.join("usr/share/big/text"),
            root.join("usr/share/big/a-text"),
        )
        .unwrap();
        let deb = dir.join(format!("{name}_2.0_all.deb"));
        cairn_debian::deb::fixtures::dpkg_deb_build(&root, &deb, &["-Zxz", "-z0"]);
        deb
    }

    fn input(name: &str, deb: &Path) -> LayerInput {
        LayerInput {
            name: name.into(),
            version: "1.0".into(),
            deb_path: deb.to_path_buf(),
            deb_sha256: cairn_store::sha256_file(deb).unwrap(),
        }
    }

    /// (label, digest, diff_id) of every pinned layer.
    fn pinned_layers() -> Vec<(String, String, String)> {
        let (tmp, sample) = sample_deb("xz");
        let big = big_deb(tmp.path(), "big");
        let host_file = tmp.path().join("big-root/lib/x86_64-linux-gnu/libbig.so.1");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let mut out = Vec::new();
        for compression in [Compression::Gzip, Compression::Zstd] {
            let opts = LayerOptions {
                compression,
                mtime_clamp: Some(1_000),
            };
            let layers: Vec<(&str, Vec<LayerInput>)> = vec![
                ("sample", vec![input("sample", &sample)]),
                ("big", vec![input("big", &big)]),
                ("group", vec![input("sample", &sample), input("big", &big)]),
            ];
            for (label, inputs) in layers {
                let layer = build_group_layer(&store, &inputs, &opts).unwrap();
                out.push((
                    format!("{label} {compression:?}"),
                    layer.digest,
                    layer.diff_id,
                ));
            }
            let entries = vec![
                CustomEntry::file("usr/bin/cairn", 0o755, FileContent::Path(host_file.clone())),
                CustomEntry::file("etc/motd", 0o644, FileContent::Bytes(b"hi".to_vec())),
                CustomEntry::dir("home/app", 0o700).owned_by(1000, 1000),
            ];
            let layer = build_custom_layer(&store, entries, &opts).unwrap();
            out.push((
                format!("custom {compression:?}"),
                layer.digest,
                layer.diff_id,
            ));
        }
        out
    }

    /// Recorded with the in-memory builder (commit b51ab54), mtimes clamped
    /// to 1000 so the generated packages' build times do not matter.
    const PINS: [(&str, &str, &str); 8] = [
        (
            "sample Gzip",
            "sha256:2252799606c3ad4e7259ef04a9386de17428a517909200c09e262652f25c5dea",
            "sha256:d8ca0096930d7a2261e97452dd39e373109183704476197ce1f68f14ee349048",
        ),
        (
            "big Gzip",
            "sha256:645fa0a03066faf65f599522fa4ad9965d1ec2abbcbfa442383a815d29ede6db",
            "sha256:462de98438b17df8010bf91feed56bd3a10807c18c93c0969aa1cbfb5cad9460",
        ),
        (
            "group Gzip",
            "sha256:6ef1e3a45323eb5187f60f783272088887a6fef85276ac991078df84bccef2e2",
            "sha256:441985af736af810196d38b1f1c2ca157c56a4373da152dc688a891986d0fa1b",
        ),
        (
            "custom Gzip",
            "sha256:1d373b0fc4c892b09351dc09e9cdbc836297b08c3534dc311e16f6ddfc2cca31",
            "sha256:98a3d0a495c7882f2c65b6f25b212c1f86c1af887346b2d442b6ee374954e0e4",
        ),
        (
            "sample Zstd",
            "sha256:5a6c212a58dcbd30c3d840d6d05b19507d6949ddaf7deee8166e3dd73383e005",
            "sha256:d8ca0096930d7a2261e97452dd39e373109183704476197ce1f68f14ee349048",
        ),
        (
            "big Zstd",
            "sha256:d8529dccce158769c08a061d7fb6ee5f79484f8dcdc2253d376533aa7ea78eec",
            "sha256:462de98438b17df8010bf91feed56bd3a10807c18c93c0969aa1cbfb5cad9460",
        ),
        (
            "group Zstd",
            "sha256:af4a17a66c6165fd4ef4169918eb63db0272c85e911d408160395b697b0c3ff0",
            "sha256:441985af736af810196d38b1f1c2ca157c56a4373da152dc688a891986d0fa1b",
        ),
        (
            "custom Zstd",
            "sha256:b27c84ba57ea85ca9cdc62493b8bc45fecd96ee31cebead07ffcf620817c4bbb",
            "sha256:98a3d0a495c7882f2c65b6f25b212c1f86c1af887346b2d442b6ee374954e0e4",
        ),
    ];

    #[test]
    fn layers_are_byte_identical_to_the_in_memory_builder() {
        let built = pinned_layers();
        let pins: Vec<(String, String, String)> = PINS
            .iter()
            .map(|(l, d, i)| (l.to_string(), d.to_string(), i.to_string()))
            .collect();
        assert_eq!(built, pins);
    }
}
