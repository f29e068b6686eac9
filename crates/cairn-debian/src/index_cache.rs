//! The parsed-index cache: each verified `Packages` index parsed once, then
//! loaded as binary records instead of decompressed and parsed again.
//!
//! Owns the entry format, its key and its validation. It does not decide
//! which index bytes are trusted (that is [`crate::fetch`], against the signed
//! InRelease) nor how text becomes records (that is [`crate::index`]).
//!
//! An entry is keyed by what determines the parse: the sha256 of the index
//! file as listed in a verified InRelease, the architecture (it filters records
//! and evaluates `[arch]` restrictions), and [`FORMAT_VERSION`]. The source
//! position (`origin`) is not part of the key: it is a tag set on load.
//!
//! Layout of `<index-sha256>.<arch>.records-v<FORMAT_VERSION>`:
//!
//! ```text
//! magic "CAIRNIDX" | format version u32 LE | payload length u64 LE |
//! CRC-32 of payload u32 LE | payload
//! payload = postcard(CachedIndex): key, the records (each encoded on its
//!           own, back to back, with a u32 array of where each ends), and
//!           name -> positions and provided name -> positions tables (sorted
//!           names back to back, positions, and u32 arrays of ends)
//! ```
//!
//! The payload is checked against its length and CRC before anything is
//! decoded, so a truncated or bit-rotten entry is never trusted: the caller
//! re-parses the verified text and rewrites it. The CRC guards against
//! accidents (crash, disk); someone who can write to the cache could rewrite
//! any checksum, as they could any other cache entry, so a cryptographic hash
//! would cost 10 ms per load for nothing.
//!
//! Why this shape: decoding all 63k bookworm records into owned
//! [`PackageRecord`]s and building hash maps over them costs ~0.3 s (millions
//! of small allocations, then as many frees), which is the whole budget of a
//! warm install. So an entry is loaded by validating it and noting where
//! its arrays are (no allocation per record); lookups binary-search the
//! sorted names in place, and a record is decoded only when someone asks for
//! it. The fixed-width offset arrays are the one hand-made part of the
//! format: they are what lets a lookup jump straight to a name or record.
//!
//! The encoding is postcard (serde): small, maintained, with a documented
//! stable wire format and no alignment requirements, so reading the file into
//! a `Vec` is enough and borrowed `&str`/`&[u8]` decode without copies. rkyv
//! would give zero-copy tables too, but needs aligned buffers and either a
//! full validation pass or `unsafe` access.

use crate::package::{MultiArch, PackageRecord};
use crate::relation::{Dependency, Relation, VersionOp};
use crate::version::Version;
use cairn_store::AtomicFile;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Bumped whenever the cached form or the parse that produces it changes, so
/// entries from older cairn versions are ignored rather than misread.
pub const FORMAT_VERSION: u32 = 2;

const MAGIC: &[u8; 8] = b"CAIRNIDX";
/// Magic, format version, payload length, payload CRC-32.
pub(crate) const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Why an entry was not used; logged, then the index is parsed again.
#[derive(Debug, thiserror::Error)]
pub enum CacheEntryError {
    #[error("{path}: not a parsed-index entry (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("{path}: format version {found}, expected {expected}")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{path}: {actual} payload bytes, header says {expected} (truncated?)")]
    Length {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: payload checksum mismatch (corrupt entry)")]
    Checksum { path: PathBuf },
    #[error("{path}: cannot decode: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: entry is for index {found}, expected {expected}")]
    Key {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The key of one entry: which verified index, parsed for which architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey<'a> {
    /// Lowercase hex sha256 of the index file, from the verified InRelease.
    pub index_sha256: &'a str,
    pub arch: &'a str,
}

impl CacheKey<'_> {
    /// The entry's file name inside the indices bucket.
    pub fn file_name(&self) -> String {
        format!(
            "{}.{}.records-v{FORMAT_VERSION}",
            self.index_sha256, self.arch
        )
    }

    /// The entry's path inside `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    /// The path of the same index's details side table inside `dir`
    /// ([`crate::index_details`]).
    pub fn details_path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!(
            "{}.{}.details-v{}",
            self.index_sha256,
            self.arch,
            crate::index_details::FORMAT_VERSION
        ))
    }
}

/// One verified `Packages` index in its cached form: the entry's bytes, plus
/// where each record and each name's record list sits in them. Records are
/// decoded one at a time, on first use ([`crate::index::Records`]), so a warm
/// `cairn install` decodes the few hundred it looks at rather than all 63k.
pub struct EncodedPart {
    bytes: Vec<u8>,
    /// Where the entry came from, for errors.
    path: PathBuf,
    origin: usize,
    /// Every record's postcard bytes back to back, and where each ends.
    records: Range<usize>,
    record_ends: Range<usize>,
    names: TableRanges,
    provides: TableRanges,
}

/// Where the arrays of one [`CachedTable`] sit in the entry's bytes.
#[derive(Debug, Clone)]
struct TableRanges {
    names: Range<usize>,
    name_ends: Range<usize>,
    positions: Range<usize>,
    position_ends: Range<usize>,
}

impl std::fmt::Debug for EncodedPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedPart")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("records", &self.len())
            .finish_non_exhaustive()
    }
}

/// Which lookup table of an entry to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Records by package name.
    Names,
    /// Records by provided (virtual) name.
    Provides,
}

/// A little-endian `u32` array inside an entry.
#[derive(Clone, Copy)]
pub(crate) struct U32s<'b>(pub(crate) &'b [u8]);

impl U32s<'_> {
    pub(crate) fn len(self) -> usize {
        self.0.len() / 4
    }

    pub(crate) fn get(self, i: usize) -> usize {
        let b = &self.0[4 * i..4 * i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// Where item `i` of the concatenated items these ends delimit lies.
    pub(crate) fn item(self, i: usize) -> Range<usize> {
        let start = if i == 0 { 0 } else { self.get(i - 1) };
        start..self.get(i)
    }

    fn iter(self) -> impl Iterator<Item = usize> {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Whether these are item ends: non-decreasing, the last one `total`.
    pub(crate) fn delimit(self, total: usize) -> bool {
        let ascending = (1..self.len()).all(|i| self.get(i - 1) <= self.get(i));
        let last = if self.len() == 0 {
            0
        } else {
            self.get(self.len() - 1)
        };
        self.0.len().is_multiple_of(4) && ascending && last == total
    }
}

impl EncodedPart {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.record_ends.len() / 4
    }

    /// Whether the index has no record for this architecture.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn u32s(&self, range: &Range<usize>) -> U32s<'_> {
        U32s(&self.bytes[range.clone()])
    }

    /// Decodes record `i` (a position inside this part), tagged with the
    /// part's origin.
    ///
    /// # Panics
    /// If `i` is out of range, or if the record does not decode: the entry
    /// passed its checksum and was written by this format version, so that
    /// would be a bug in [`store`], not bad input.
    pub fn record(&self, i: usize) -> PackageRecord {
        let span = self.u32s(&self.record_ends).item(i);
        let bytes = &self.bytes[self.records.clone()][span];
        match postcard::from_bytes::<CachedRecord>(bytes) {
            Ok(record) => record.into_record(self.origin),
            Err(e) => panic!(
                "record {i} of {} does not decode ({e}); delete the file to rebuild it",
                self.path.display()
            ),
        }
    }

    /// Whether record `i` is `Essential: yes`, read from the record's leading
    /// fields in place (nothing allocated, the rest not decoded): finding the
    /// Essential set looks at every record, and decoding all 70k of them
    /// took most of a warm install.
    ///
    /// # Panics
    /// As [`EncodedPart::record`].
    pub fn is_essential(&self, i: usize) -> bool {
        let span = self.u32s(&self.record_ends).item(i);
        let bytes = &self.bytes[self.records.clone()][span];
        match postcard::from_bytes::<CachedRecordHead<'_>>(bytes) {
            Ok(head) => head.essential,
            Err(e) => panic!(
                "record {i} of {} does not decode ({e}); delete the file to rebuild it",
                self.path.display()
            ),
        }
    }

    fn table(&self, table: Table) -> &TableRanges {
        match table {
            Table::Names => &self.names,
            Table::Provides => &self.provides,
        }
    }

    fn name(&self, t: &TableRanges, i: usize) -> &[u8] {
        &self.bytes[t.names.clone()][self.u32s(&t.name_ends).item(i)]
    }

    /// Positions (inside this part) of the records listed under `name`, in
    /// index order.
    pub fn positions(&self, table: Table, name: &str) -> Vec<usize> {
        let t = self.table(table);
        let count = self.u32s(&t.name_ends).len();
        // Binary search over the sorted names, read in place.
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(t, mid).cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let span = self.u32s(&t.position_ends).item(mid);
                    let positions = self.u32s(&t.positions);
                    return span.map(|p| positions.get(p)).collect();
                }
            }
        }
        Vec::new()
    }

    /// Every package name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let count = self.u32s(&self.names.name_ends).len();
        // Checked as UTF-8 when the entry was loaded.
        (0..count).filter_map(|i| std::str::from_utf8(self.name(&self.names, i)).ok())
    }

    /// Validates a whole entry (header, checksum, key, array shapes, sorted
    /// names, positions in range) and notes where its arrays are. Records
    /// themselves are decoded on use. Linear in the entry's size, with no
    /// allocation per record.
    fn from_bytes(
        bytes: Vec<u8>,
        path: &Path,
        key: &CacheKey<'_>,
        origin: usize,
    ) -> Result<EncodedPart, CacheEntryError> {
        let payload = checked_payload(&bytes, path, MAGIC, FORMAT_VERSION)?;
        let invalid = |reason: String| CacheEntryError::Decode {
            path: path.to_path_buf(),
            reason,
        };
        let index: CachedIndex<'_> =
            postcard::from_bytes(payload).map_err(|e| invalid(e.to_string()))?;
        if index.index_sha256 != key.index_sha256 || index.arch != key.arch {
            return Err(CacheEntryError::Key {
                path: path.to_path_buf(),
                expected: format!("{} ({})", key.index_sha256, key.arch),
                found: format!("{} ({})", index.index_sha256, index.arch),
            });
        }
        let count = index.record_ends.0.len() / 4;
        if !U32s(index.record_ends.0).delimit(index.records.0.len()) {
            return Err(invalid("record offsets out of order or range".into()));
        }
        for table in [&index.names, &index.provides] {
            if !table.is_sound(count) {
                return Err(invalid("lookup table out of order or range".into()));
            }
        }
        // Byte ranges rather than borrowed slices, so the part can own the bytes.
        let base = bytes.as_ptr() as usize;
        let span = |s: Bytes<'_>| {
            let start = s.0.as_ptr() as usize - base;
            start..start + s.0.len()
        };
        let table = |t: &CachedTable<'_>| TableRanges {
            names: span(t.names),
            name_ends: span(t.name_ends),
            positions: span(t.positions),
            position_ends: span(t.position_ends),
        };
        let (records, record_ends) = (span(index.records), span(index.record_ends));
        let (names, provides) = (table(&index.names), table(&index.provides));
        Ok(EncodedPart {
            path: path.to_path_buf(),
            origin,
            records,
            record_ends,
            names,
            provides,
            bytes,
        })
    }
}

/// Reads the entry at `path` and checks it against `key`; its records will
/// be tagged with `origin`. `Ok(None)` when there is no entry; an error when
/// there is one that cannot be trusted.
pub fn load(
    path: &Path,
    key: &CacheKey<'_>,
    origin: usize,
) -> Result<Option<EncodedPart>, CacheEntryError> {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    EncodedPart::from_bytes(bytes, path, key, origin).map(Some)
}

/// Writes `records` (parsed for `key`, from the source at `origin`) to
/// `path` atomically, so a crash leaves either no entry or a whole one, and
/// returns the entry as it will be loaded next time.
pub fn store(
    path: &Path,
    key: &CacheKey<'_>,
    records: &[PackageRecord],
    origin: usize,
) -> Result<EncodedPart, CacheEntryError> {
    let invalid = |reason: String| CacheEntryError::Decode {
        path: path.to_path_buf(),
        reason: format!("cannot encode: {reason}"),
    };
    // One buffer for all records: no allocation per record.
    let mut encoded = Vec::with_capacity(records.len() * 400);
    let mut record_ends = Vec::with_capacity(records.len() * 4);
    for r in records {
        encoded = postcard::to_extend(&CachedRecordRef::of(r), encoded)
            .map_err(|e| invalid(e.to_string()))?;
        push_u32(&mut record_ends, encoded.len()).ok_or_else(|| invalid("too large".into()))?;
    }
    let names = TableBuilder::new(
        records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i)),
    )
    .ok_or_else(|| invalid("too large".into()))?;
    let provides = TableBuilder::new(
        records
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.provides.iter().map(move |p| (p.name.as_str(), i))),
    )
    .ok_or_else(|| invalid("too large".into()))?;
    let index = CachedIndex {
        index_sha256: key.index_sha256,
        arch: key.arch,
        records: Bytes(&encoded),
        record_ends: Bytes(&record_ends),
        names: names.table(),
        provides: provides.table(),
    };
    // Header and payload in one buffer, which the returned part then owns.
    let mut bytes = vec![0; HEADER_LEN];
    bytes.reserve(encoded.len() + encoded.len() / 8);
    let mut bytes = postcard::to_extend(&index, bytes).map_err(|e| invalid(e.to_string()))?;
    let header = header(MAGIC, FORMAT_VERSION, &bytes[HEADER_LEN..]);
    bytes[..HEADER_LEN].copy_from_slice(&header);
    let mut file = AtomicFile::create(path)?;
    file.write_all(&bytes)?;
    // No fsync (~0.1 s for bookworm's 28 MB): after a power cut the entry may
    // be empty or garbage, which its length and CRC reveal, and it is rebuilt.
    file.commit_unsynced()?;
    EncodedPart::from_bytes(bytes, path, key, origin)
}

/// Checks a parsed-index entry, or its details side table
/// ([`crate::index_details`]), as their loaders do before trusting them
/// (magic, format version, length, CRC), for `cairn cache verify`. `None`
/// when `path` is neither, in this format version: older ones are never
/// read again, and `cairn cache gc` ages them out.
pub fn check_entry(path: &Path) -> Option<Result<(), String>> {
    use crate::index_details as details;
    let name = path.file_name()?.to_str()?;
    let (magic, version) = if name.ends_with(&format!(".records-v{FORMAT_VERSION}")) {
        (MAGIC, FORMAT_VERSION)
    } else if name.ends_with(&format!(".details-v{}", details::FORMAT_VERSION)) {
        (details::MAGIC, details::FORMAT_VERSION)
    } else {
        return None;
    };
    Some(match fs_err::read(path) {
        Ok(bytes) => checked_payload(&bytes, path, magic, version)
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    })
}

/// Appends `n` as a `u32` LE; `None` when it does not fit.
pub(crate) fn push_u32(out: &mut Vec<u8>, n: usize) -> Option<()> {
    out.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
    Some(())
}

/// The arrays of one lookup table, built from (name, position) pairs.
struct TableBuilder {
    names: Vec<u8>,
    name_ends: Vec<u8>,
    positions: Vec<u8>,
    position_ends: Vec<u8>,
}

impl TableBuilder {
    fn new<'r>(pairs: impl Iterator<Item = (&'r str, usize)>) -> Option<TableBuilder> {
        let mut pairs: Vec<(&str, usize)> = pairs.collect();
        // Stable: each name's positions stay ascending. A record providing
        // the same name twice is listed once.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.dedup();
        let mut t = TableBuilder {
            names: Vec::new(),
            name_ends: Vec::new(),
            positions: Vec::new(),
            position_ends: Vec::new(),
        };
        for (k, (name, position)) in pairs.iter().enumerate() {
            if k > 0 && pairs[k - 1].0 != *name {
                push_u32(&mut t.position_ends, t.positions.len() / 4)?;
            }
            if k == 0 || pairs[k - 1].0 != *name {
                t.names.extend_from_slice(name.as_bytes());
                push_u32(&mut t.name_ends, t.names.len())?;
            }
            push_u32(&mut t.positions, *position)?;
        }
        if !pairs.is_empty() {
            push_u32(&mut t.position_ends, t.positions.len() / 4)?;
        }
        Some(t)
    }

    fn table(&self) -> CachedTable<'_> {
        CachedTable {
            names: Bytes(&self.names),
            name_ends: Bytes(&self.name_ends),
            positions: Bytes(&self.positions),
            position_ends: Bytes(&self.position_ends),
        }
    }
}

/// The header of an entry of the kind `magic`, format `version`, for `payload`
/// (also used by [`crate::index_details`]).
pub(crate) fn header(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(magic);
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// The payload of an entry, once magic, version, length and checksum agree.
pub(crate) fn checked_payload<'b>(
    bytes: &'b [u8],
    path: &Path,
    magic: &[u8; 8],
    version: u32,
) -> Result<&'b [u8], CacheEntryError> {
    let path_buf = || path.to_path_buf();
    if bytes.len() < HEADER_LEN || &bytes[..8] != magic {
        return Err(CacheEntryError::BadMagic { path: path_buf() });
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    let word = |at: usize| [header[at], header[at + 1], header[at + 2], header[at + 3]];
    let found = u32::from_le_bytes(word(8));
    if found != version {
        return Err(CacheEntryError::Version {
            path: path_buf(),
            found,
            expected: version,
        });
    }
    let expected =
        u64::from(u32::from_le_bytes(word(12))) | u64::from(u32::from_le_bytes(word(16))) << 32;
    if expected != payload.len() as u64 {
        return Err(CacheEntryError::Length {
            path: path_buf(),
            expected,
            actual: payload.len() as u64,
        });
    }
    if crc32fast::hash(payload) != u32::from_le_bytes(word(20)) {
        return Err(CacheEntryError::Checksum { path: path_buf() });
    }
    Ok(payload)
}

/// The whole entry: its key, every record encoded on its own (a postcard
/// [`CachedRecord`]) so it can be decoded alone, and the two lookup tables.
/// Offsets are fixed-width `u32` arrays so that loading is a few slices and
/// lookups read them in place.
#[derive(Serialize, Deserialize)]
struct CachedIndex<'a> {
    index_sha256: &'a str,
    arch: &'a str,
    #[serde(borrow)]
    records: Bytes<'a>,
    /// End of each record in `records`.
    #[serde(borrow)]
    record_ends: Bytes<'a>,
    #[serde(borrow)]
    names: CachedTable<'a>,
    #[serde(borrow)]
    provides: CachedTable<'a>,
}

/// Name -> record positions, sorted by name, as four arrays.
#[derive(Serialize, Deserialize)]
struct CachedTable<'a> {
    /// The names back to back, sorted by bytes.
    #[serde(borrow)]
    names: Bytes<'a>,
    /// End of each name in `names` (u32 LE).
    #[serde(borrow)]
    name_ends: Bytes<'a>,
    /// Every name's record positions (u32 LE, ascending), name after name.
    #[serde(borrow)]
    positions: Bytes<'a>,
    /// End of each name's run in `positions`, counted in positions.
    #[serde(borrow)]
    position_ends: Bytes<'a>,
}

impl CachedTable<'_> {
    /// Whether the arrays agree: ends delimit their items, names are sorted
    /// and UTF-8, and every position names one of `count` records.
    fn is_sound(&self, count: usize) -> bool {
        let (name_ends, position_ends) = (U32s(self.name_ends.0), U32s(self.position_ends.0));
        let positions = U32s(self.positions.0);
        let shapes = name_ends.delimit(self.names.0.len())
            && self.positions.0.len().is_multiple_of(4)
            && position_ends.delimit(positions.len())
            && position_ends.len() == name_ends.len();
        shapes
            && std::str::from_utf8(self.names.0).is_ok()
            && positions.iter().all(|p| p < count)
            && (1..name_ends.len()).all(|i| {
                let name = |i: usize| &self.names.0[name_ends.item(i)];
                name(i - 1) < name(i)
            })
    }
}

/// A byte string encoded as one length-prefixed run rather than serde's
/// default of a sequence of `u8`, so it decodes as a borrowed slice.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de [u8]>::deserialize(d).map(Bytes)
    }
}

// The cached form mirrors `PackageRecord` field for field, in owned (decode)
// and borrowed (encode, no clones on the cold path) versions. It is kept
// separate from the in-memory types so that the on-disk format only changes
// deliberately, with FORMAT_VERSION; the round-trip test catches a mismatch
// between the two versions.

#[derive(Deserialize)]
struct CachedRecord {
    name: String,
    version: CachedVersion,
    architecture: String,
    multi_arch: CachedMultiArch,
    essential: bool,
    priority: Option<String>,
    section: Option<String>,
    source: Option<String>,
    pre_depends: Vec<Vec<CachedRelation>>,
    depends: Vec<Vec<CachedRelation>>,
    recommends: Vec<Vec<CachedRelation>>,
    provides: Vec<CachedRelation>,
    conflicts: Vec<Vec<CachedRelation>>,
    breaks: Vec<Vec<CachedRelation>>,
    filename: String,
    size: u64,
    sha256: String,
    installed_size: Option<u64>,
    summary: String,
}

/// The fields of a [`CachedRecord`] up to `essential`, borrowed; postcard
/// stops there. Must list `CachedRecord`'s leading fields in its order
/// (`essential_flag_reads_like_the_whole_record` checks).
#[derive(Deserialize)]
struct CachedRecordHead<'a> {
    #[serde(borrow)]
    _name: &'a str,
    #[serde(borrow)]
    _version: (u32, &'a str, &'a str),
    #[serde(borrow)]
    _architecture: &'a str,
    _multi_arch: CachedMultiArch,
    essential: bool,
}

#[derive(Serialize)]
struct CachedRecordRef<'a> {
    name: &'a str,
    version: CachedVersionRef<'a>,
    architecture: &'a str,
    multi_arch: CachedMultiArch,
    essential: bool,
    priority: Option<&'a str>,
    section: Option<&'a str>,
    source: Option<&'a str>,
    pre_depends: DepsRef<'a>,
    depends: DepsRef<'a>,
    recommends: DepsRef<'a>,
    provides: RelationsRef<'a>,
    conflicts: DepsRef<'a>,
    breaks: DepsRef<'a>,
    filename: &'a str,
    size: u64,
    sha256: &'a str,
    installed_size: Option<u64>,
    summary: &'a str,
}

/// Dependencies encoded as `Vec<Vec<CachedRelation>>` without building those
/// vectors: encoding allocates nothing per record.
#[derive(Clone, Copy)]
struct DepsRef<'a>(&'a [Dependency]);

impl Serialize for DepsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|d| RelationsRef(&d.alternatives)))
    }
}

/// Relations encoded as `Vec<CachedRelation>`.
#[derive(Clone, Copy)]
struct RelationsRef<'a>(&'a [Relation]);

impl Serialize for RelationsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(CachedRelationRef::of))
    }
}

#[derive(Deserialize)]
struct CachedVersion {
    epoch: u32,
    upstream: String,
    revision: String,
}

#[derive(Serialize)]
struct CachedVersionRef<'a> {
    epoch: u32,
    upstream: &'a str,
    revision: &'a str,
}

#[derive(Deserialize)]
struct CachedRelation {
    name: String,
    arch: Option<String>,
    constraint: Option<(CachedOp, CachedVersion)>,
}

#[derive(Serialize)]
struct CachedRelationRef<'a> {
    name: &'a str,
    arch: Option<&'a str>,
    constraint: Option<(CachedOp, CachedVersionRef<'a>)>,
}

impl<'a> CachedRecordRef<'a> {
    fn of(r: &'a PackageRecord) -> CachedRecordRef<'a> {
        CachedRecordRef {
            name: &r.name,
            version: CachedVersionRef::of(&r.version),
            architecture: &r.architecture,
            multi_arch: r.multi_arch.into(),
            essential: r.essential,
            priority: r.priority.as_deref(),
            section: r.section.as_deref(),
            source: r.source.as_deref(),
            pre_depends: DepsRef(&r.pre_depends),
            depends: DepsRef(&r.depends),
            recommends: DepsRef(&r.recommends),
            provides: RelationsRef(&r.provides),
            conflicts: DepsRef(&r.conflicts),
            breaks: DepsRef(&r.breaks),
            filename: &r.filename,
            size: r.size,
            sha256: &r.sha256,
            installed_size: r.installed_size,
            summary: &r.summary,
        }
    }
}

impl<'a> CachedVersionRef<'a> {
    fn of(v: &'a Version) -> CachedVersionRef<'a> {
        CachedVersionRef {
            epoch: v.epoch,
            upstream: &v.upstream,
            revision: &v.revision,
        }
    }
}

impl<'a> CachedRelationRef<'a> {
    fn of(r: &'a Relation) -> CachedRelationRef<'a> {
        CachedRelationRef {
            name: &r.name,
            arch: r.arch.as_deref(),
            constraint: r
                .constraint
                .as_ref()
                .map(|(op, v)| ((*op).into(), CachedVersionRef::of(v))),
        }
    }
}

impl CachedRecord {
    fn into_record(self, origin: usize) -> PackageRecord {
        let deps = |deps: Vec<Vec<CachedRelation>>| -> Vec<Dependency> {
            deps.into_iter()
                .map(|alternatives| Dependency {
                    alternatives: alternatives
                        .into_iter()
                        .map(CachedRelation::into_relation)
                        .collect(),
                })
                .collect()
        };
        PackageRecord {
            name: self.name,
            version: self.version.into_version(),
            architecture: self.architecture,
            multi_arch: self.multi_arch.into(),
            essential: self.essential,
            priority: self.priority,
            section: self.section,
            source: self.source,
            pre_depends: deps(self.pre_depends),
            depends: deps(self.depends),
            recommends: deps(self.recommends),
            provides: self
                .provides
                .into_iter()
                .map(CachedRelation::into_relation)
                .collect(),
            conflicts: deps(self.conflicts),
            breaks: deps(self.breaks),
            filename: self.filename,
            size: self.size,
            sha256: self.sha256,
            installed_size: self.installed_size,
            summary: self.summary,
            origin,
        }
    }
}

impl CachedVersion {
    /// The parts were validated when the index text was parsed.
    fn into_version(self) -> Version {
        Version {
            epoch: self.epoch,
            upstream: self.upstream,
            revision: self.revision,
        }
    }
}

impl CachedRelation {
    fn into_relation(self) -> Relation {
        Relation {
            name: self.name,
            arch: self.arch,
            constraint: self.constraint.map(|(op, v)| (op.into(), v.into_version())),
        }
    }
}

/// `MultiArch` on disk; an unknown variant fails to decode.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum CachedMultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

impl From<MultiArch> for CachedMultiArch {
    fn from(m: MultiArch) -> CachedMultiArch {
        match m {
            MultiArch::No => CachedMultiArch::No,
            MultiArch::Same => CachedMultiArch::Same,
            MultiArch::Foreign => CachedMultiArch::Foreign,
            MultiArch::Allowed => CachedMultiArch::Allowed,
        }
    }
}

impl From<CachedMultiArch> for MultiArch {
    fn from(m: CachedMultiArch) -> MultiArch {
        match m {
            CachedMultiArch::No => MultiArch::No,
            CachedMultiArch::Same => MultiArch::Same,
            CachedMultiArch::Foreign => MultiArch::Foreign,
            CachedMultiArch::Allowed => MultiArch::Allowed,
        }
    }
}

/// `VersionOp` on disk; an unknown variant fails to decode.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum CachedOp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl From<VersionOp> for CachedOp {
    fn from(op: VersionOp) -> CachedOp {
        match op {
            VersionOp::Lt => CachedOp::Lt,
            VersionOp::Le => CachedOp::Le,
            VersionOp::Eq => CachedOp::Eq,
            VersionOp::Ge => CachedOp::Ge,
            VersionOp::Gt => CachedOp::Gt,
        }
    }
}

impl From<CachedOp> for VersionOp {
    fn from(op: CachedOp) -> VersionOp {
        match op {
            CachedOp::Lt => VersionOp::Lt,
            CachedOp::Le => VersionOp::Le,
            CachedOp::Eq => VersionOp::Eq,
            CachedOp::Ge => VersionOp::Ge,
            CachedOp::Gt => VersionOp::Gt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{IndexPart, PackageIndex, parse_packages};

    fn packages_text() -> String {
        let sha = |n: u8| format!("{n:064x}");
        format!(
            "Package: hello\nVersion: 1:2.10-3~bpo1\nArchitecture: amd64\nMulti-Arch: foreign\n\
Essential: yes\nPriority: optional\nSection: devel\nSource: hello (2.10-3)\nInstalled-Size: 280\n\
Pre-Depends: dpkg (>= 1.19)\nDepends: libc6 (>= 2.34), libfoo:any | libbar (<< 2) [amd64]\n\
Provides: greeter (= 1.0), greeter, hello-world\nConflicts: hello-old\nBreaks: b (<= 1)\n\
Filename: pool/h/hello.deb\nSize: 53000\nSHA256: {}\nDescription: says hello\n more\n\n\
Package: greeter-two\nVersion: 3\nArchitecture: all\nMulti-Arch: same\nProvides: greeter\n\
Filename: pool/g/g.deb\nSize: 1\nSHA256: {}\n\n\
Package: hello\nVersion: 2.9\nArchitecture: amd64\nMulti-Arch: allowed\nDepends: x (= 1), y (>> 2)\n\
Filename: pool/h/hello-old.deb\nSize: 2\nSHA256: {}\n",
            sha(1),
            sha(2),
            sha(3)
        )
    }

    fn key() -> CacheKey<'static> {
        CacheKey {
            index_sha256: "a1b2",
            arch: "amd64",
        }
    }

    fn stored(dir: &Path) -> (PathBuf, Vec<PackageRecord>) {
        let records = parse_packages(&packages_text(), "amd64", 1, "u").unwrap();
        let path = key().path_in(dir);
        store(&path, &key(), &records, 1).unwrap();
        (path, records)
    }

    fn cached_index(part: EncodedPart) -> PackageIndex {
        PackageIndex::from_parts(vec![IndexPart::Cached(part)])
    }

    #[test]
    fn round_trip_gives_equal_records_and_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let (path, records) = stored(dir.path());
        let part = load(&path, &key(), 1).unwrap().unwrap();
        assert_eq!(part.len(), 3);
        let cached = cached_index(part);
        let parsed = PackageIndex::new(records.clone());
        let loaded: Vec<PackageRecord> = cached.records.iter().cloned().collect();
        assert_eq!(loaded, records);
        // Version equality is dpkg ordering; compare the text as well.
        let text = |i: &PackageIndex| -> Vec<String> {
            let versions = i.records.iter().map(|r| r.version.to_string());
            let deps = i
                .records
                .iter()
                .flat_map(|r| r.depends.iter().map(|d| d.to_string()));
            versions.chain(deps).collect()
        };
        assert_eq!(text(&cached), text(&parsed));
        assert_eq!(cached.records[0].version.to_string(), "1:2.10-3~bpo1");
        assert_eq!(cached.records[0].origin, 1);
        for name in [
            "hello",
            "greeter",
            "greeter-two",
            "hello-world",
            "libc6",
            "zzz",
        ] {
            let by_name = |i: &PackageIndex| i.by_name(name).map(|(p, _)| p).collect::<Vec<_>>();
            let providers =
                |i: &PackageIndex| i.providers(name).map(|(p, _)| p).collect::<Vec<_>>();
            assert_eq!(by_name(&cached), by_name(&parsed), "by_name({name})");
            assert_eq!(providers(&cached), providers(&parsed), "providers({name})");
        }
        assert_eq!(
            cached.providers("greeter").count(),
            2,
            "listed once per record"
        );
        assert_eq!(
            cached.names().collect::<Vec<_>>(),
            parsed.names().collect::<Vec<_>>()
        );
        assert_eq!(
            cached.versions("hello")[0].version.to_string(),
            "1:2.10-3~bpo1"
        );
    }

    #[test]
    fn essential_flag_reads_like_the_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let (path, records) = stored(dir.path());
        let part = load(&path, &key(), 1).unwrap().unwrap();
        let flags: Vec<bool> = (0..part.len()).map(|i| part.is_essential(i)).collect();
        let expected: Vec<bool> = records.iter().map(|r| r.essential).collect();
        assert_eq!(flags, expected);
        assert_eq!(flags, [true, false, false], "the sample has both kinds");
        // Through the index: undecoded and decoded records answer alike.
        let cached = cached_index(part);
        assert!(cached.records.is_essential(0) && !cached.records.is_essential(2));
        let _ = &cached.records[0];
        assert!(cached.records.is_essential(0));
    }

    #[test]
    fn a_missing_entry_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            load(&key().path_in(dir.path()), &key(), 0)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn corrupt_or_truncated_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = stored(dir.path());
        let good = fs_err::read(&path).unwrap();

        let mut flipped = good.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0x40;
        fs_err::write(&path, &flipped).unwrap();
        let err = load(&path, &key(), 0).unwrap_err();
        assert!(matches!(err, CacheEntryError::Checksum { .. }), "{err}");

        fs_err::write(&path, &good[..good.len() - 1]).unwrap();
        let err = load(&path, &key(), 0).unwrap_err();
        assert!(matches!(err, CacheEntryError::Length { .. }), "{err}");

        fs_err::write(&path, &good[..HEADER_LEN - 1]).unwrap();
        let err = load(&path, &key(), 0).unwrap_err();
        assert!(matches!(err, CacheEntryError::BadMagic { .. }), "{err}");

        let mut old = good.clone();
        old[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs_err::write(&path, &old).unwrap();
        let err = load(&path, &key(), 0).unwrap_err();
        assert!(matches!(err, CacheEntryError::Version { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        fs_err::write(&path, &good).unwrap();
        assert!(load(&path, &key(), 0).unwrap().is_some());
    }

    #[test]
    fn another_index_or_arch_never_reuses_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = stored(dir.path());
        let other = CacheKey {
            index_sha256: "ffff",
            arch: "amd64",
        };
        let arm = CacheKey {
            index_sha256: "a1b2",
            arch: "arm64",
        };
        assert_ne!(other.path_in(dir.path()), path);
        assert_ne!(arm.path_in(dir.path()), path);
        assert!(
            load(&other.path_in(dir.path()), &other, 0)
                .unwrap()
                .is_none()
        );
        // Even under another key's name, the key stored inside is checked.
        for wrong in [&other, &arm] {
            let renamed = wrong.path_in(dir.path());
            fs_err::copy(&path, &renamed).unwrap();
            let err = load(&renamed, wrong, 0).unwrap_err();
            assert!(matches!(err, CacheEntryError::Key { .. }), "{err}");
        }
        assert!(
            key().file_name().contains(&format!("v{FORMAT_VERSION}")),
            "the format version is part of the name"
        );
    }
}
