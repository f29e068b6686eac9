//! The details side table of a parsed index: per record, what `cairn show`
//! prints and no resolver reads ([`PackageDetails`]: maintainer, homepage,
//! `Suggests`, the description's md5, a long description the index carries).
//!
//! Owns the side table's file format. It sits beside the records entry of
//! [`crate::index_cache`] under the same key (`<index-sha256>.<arch>`), with
//! its details in the same record order, rather than inside it: `install`
//! loads and checksums its whole records entry on every run, and these
//! fields would add about a quarter to it (maintainers and homepages of 63k
//! bookworm packages) for nobody on that path. Only `show` loads this file,
//! and decodes only the records it prints.
//!
//! Layout of `<index-sha256>.<arch>.details-v<FORMAT_VERSION>`: the same
//! header as a records entry (magic `CAIRNDTL`, format version, payload
//! length, CRC-32), then `postcard(CachedDetails)`: the key, each record's
//! details encoded on its own back to back, and a `u32` array of where each
//! ends. A wrong version, length, checksum, key or record count means the
//! entry is ignored and the verified index parsed again.

use crate::index_cache::{
    Bytes, CacheEntryError, CacheKey, HEADER_LEN, U32s, checked_payload, header, push_u32,
};
use crate::package::PackageDetails;
use cairn_store::AtomicFile;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Bumped whenever [`PackageDetails`] or the parse that fills it changes.
pub const FORMAT_VERSION: u32 = 1;

pub(crate) const MAGIC: &[u8; 8] = b"CAIRNDTL";

/// The details of one index, decoded one record at a time.
pub struct EncodedDetails {
    bytes: Vec<u8>,
    path: PathBuf,
    details: Range<usize>,
    ends: Range<usize>,
}

impl std::fmt::Debug for EncodedDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedDetails")
            .field("path", &self.path)
            .field("records", &self.len())
            .finish_non_exhaustive()
    }
}

impl EncodedDetails {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.ends.len() / 4
    }

    /// Whether the index has no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The details of record `i`; `None` when `i` is out of range or the
    /// bytes do not decode (logged: the entry passed its checksum, so that
    /// would be a bug, and `show` can still print the record).
    pub fn get(&self, i: usize) -> Option<PackageDetails> {
        let ends = U32s(&self.bytes[self.ends.clone()]);
        if i >= ends.len() {
            return None;
        }
        let bytes = &self.bytes[self.details.clone()][ends.item(i)];
        postcard::from_bytes(bytes)
            .map_err(|e| {
                tracing::warn!("details {i} of {} do not decode: {e}", self.path.display())
            })
            .ok()
    }
}

#[derive(Serialize, Deserialize)]
struct CachedDetails<'a> {
    index_sha256: &'a str,
    arch: &'a str,
    #[serde(borrow)]
    details: Bytes<'a>,
    #[serde(borrow)]
    ends: Bytes<'a>,
}

/// Reads the side table at `path`, checked against `key` and the number of
/// records of its index. `Ok(None)` when there is none.
pub fn load(
    path: &Path,
    key: &CacheKey<'_>,
    records: usize,
) -> Result<Option<EncodedDetails>, CacheEntryError> {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    from_bytes(bytes, path, key, records).map(Some)
}

fn from_bytes(
    bytes: Vec<u8>,
    path: &Path,
    key: &CacheKey<'_>,
    records: usize,
) -> Result<EncodedDetails, CacheEntryError> {
    let payload = checked_payload(&bytes, path, MAGIC, FORMAT_VERSION)?;
    let invalid = |reason: String| CacheEntryError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let cached: CachedDetails<'_> =
        postcard::from_bytes(payload).map_err(|e| invalid(e.to_string()))?;
    if cached.index_sha256 != key.index_sha256 || cached.arch != key.arch {
        return Err(CacheEntryError::Key {
            path: path.to_path_buf(),
            expected: format!("{} ({})", key.index_sha256, key.arch),
            found: format!("{} ({})", cached.index_sha256, cached.arch),
        });
    }
    let ends = U32s(cached.ends.0);
    if !ends.delimit(cached.details.0.len()) {
        return Err(invalid("detail offsets out of order or range".into()));
    }
    if ends.len() != records {
        return Err(invalid(format!(
            "{} details for {records} records",
            ends.len()
        )));
    }
    let base = bytes.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let (details, ends) = (span(cached.details.0), span(cached.ends.0));
    Ok(EncodedDetails {
        path: path.to_path_buf(),
        details,
        ends,
        bytes,
    })
}

/// Writes `details` (one per record of the index `key` names, in record
/// order) to `path` atomically, and returns them as they will load.
pub fn store(
    path: &Path,
    key: &CacheKey<'_>,
    details: &[PackageDetails],
) -> Result<EncodedDetails, CacheEntryError> {
    let invalid = |reason: String| CacheEntryError::Decode {
        path: path.to_path_buf(),
        reason: format!("cannot encode: {reason}"),
    };
    let mut encoded = Vec::with_capacity(details.len() * 96);
    let mut ends = Vec::with_capacity(details.len() * 4);
    for d in details {
        encoded = postcard::to_extend(d, encoded).map_err(|e| invalid(e.to_string()))?;
        push_u32(&mut ends, encoded.len()).ok_or_else(|| invalid("too large".into()))?;
    }
    let cached = CachedDetails {
        index_sha256: key.index_sha256,
        arch: key.arch,
        details: Bytes(&encoded),
        ends: Bytes(&ends),
    };
    let bytes = vec![0; HEADER_LEN];
    let mut bytes = postcard::to_extend(&cached, bytes).map_err(|e| invalid(e.to_string()))?;
    let header = header(MAGIC, FORMAT_VERSION, &bytes[HEADER_LEN..]);
    bytes[..HEADER_LEN].copy_from_slice(&header);
    let mut file = AtomicFile::create(path)?;
    file.write_all(&bytes)?;
    // Unsynced, like the records entry: a torn file fails its checksum and
    // is rebuilt.
    file.commit_unsynced()?;
    from_bytes(bytes, path, key, details.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey<'static> {
        CacheKey {
            index_sha256: "a1b2",
            arch: "amd64",
        }
    }

    fn details() -> Vec<PackageDetails> {
        vec![
            PackageDetails {
                maintainer: Some("Santiago Vila <sanvila@debian.org>".into()),
                homepage: Some("https://www.gnu.org/software/hello/".into()),
                suggests: Some("hello-doc".into()),
                description_md5: Some("c4a4aec43084cfb4a44c959b27e3a6d6".into()),
                ..PackageDetails::default()
            },
            PackageDetails::default(),
            PackageDetails {
                long_description: Some(" line one\n .\n line two".into()),
                ..PackageDetails::default()
            },
        ]
    }

    #[test]
    fn details_round_trip_one_record_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = key().details_path_in(dir.path());
        let written = details();
        store(&path, &key(), &written).unwrap();
        let loaded = load(&path, &key(), 3).unwrap().unwrap();
        assert_eq!(loaded.len(), 3);
        for (i, d) in written.iter().enumerate() {
            assert_eq!(loaded.get(i).as_ref(), Some(d), "record {i}");
        }
        assert_eq!(loaded.get(3), None);
        assert!(
            path.to_string_lossy()
                .ends_with(&format!("a1b2.amd64.details-v{FORMAT_VERSION}"))
        );
    }

    #[test]
    fn a_damaged_old_or_mismatched_side_table_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key().details_path_in(dir.path());
        store(&path, &key(), &details()).unwrap();
        let good = fs_err::read(&path).unwrap();

        let err = load(&path, &key(), 4).unwrap_err();
        assert!(err.to_string().contains("3 details for 4 records"), "{err}");

        let other = CacheKey {
            index_sha256: "ffff",
            arch: "amd64",
        };
        let err = load(&path, &other, 3).unwrap_err();
        assert!(matches!(err, CacheEntryError::Key { .. }), "{err}");

        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        fs_err::write(&path, &flipped).unwrap();
        let err = load(&path, &key(), 3).unwrap_err();
        assert!(matches!(err, CacheEntryError::Checksum { .. }), "{err}");

        let mut old = good.clone();
        old[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs_err::write(&path, &old).unwrap();
        let err = load(&path, &key(), 3).unwrap_err();
        assert!(matches!(err, CacheEntryError::Version { .. }), "{err}");

        // A records entry is not a side table, even under its name.
        let mut records = good.clone();
        records[..8].copy_from_slice(b"CAIRNIDX");
        fs_err::write(&path, &records).unwrap();
        let err = load(&path, &key(), 3).unwrap_err();
        assert!(matches!(err, CacheEntryError::BadMagic { .. }), "{err}");

        fs_err::remove_file(&path).unwrap();
        assert!(load(&path, &key(), 3).unwrap().is_none());
    }
}
