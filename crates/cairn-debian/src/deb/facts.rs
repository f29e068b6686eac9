//! Per-package facts: what package configuration needs from a `.deb` (its
//! control files, the listing of its data entries, and the bytes of the few
//! data files the caller selects), kept in the store by the `.deb`'s sha256.
//!
//! They exist so a cold build reads each `.deb` once: the layer pass, which
//! reads every data.tar anyway, collects them on the way
//! ([`FactsCollector`]) and stores them; configuration then loads them
//! instead of decompressing every package a second time. When they are
//! missing (a layer came from the cache, or an older cairn filled it),
//! [`read_facts`] reads the `.deb` once, checked against its sha256.
//!
//! It does not decide which files configuration reads (the caller's
//! [`FactsRequest`]) nor what configuration does with them (cairn-image).
//! Entries are trusted like the parsed-index cache: a length and CRC-32 catch
//! accidents; someone who can write the cache can plant `.deb`s as well.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use cairn_store::{AtomicFile, Bucket, Store, StoreError, sha256_hex};
use serde::{Deserialize, Serialize};

use super::{ControlFiles, DebEntry, DebError, EntryKind, read_deb_verified_with_control};

/// Bumped whenever the stored form changes.
const FORMAT: &str = "cairn-deb-facts-v1";

/// The facts this process stored, by path: configuration later in the same
/// build takes them from here instead of reading and decoding the files
/// again (15 ms of CPU at the end of the flask example's cold build). An
/// entry is named by the `.deb`'s sha256 and the selection, so it never goes
/// stale.
static STORED: std::sync::Mutex<BTreeMap<PathBuf, std::sync::Arc<DebFacts>>> =
    std::sync::Mutex::new(BTreeMap::new());

fn stored() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, std::sync::Arc<DebFacts>>> {
    STORED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
const MAGIC: &[u8; 8] = b"CAIRNFCT";

/// The largest data file whose bytes a request may keep (CA certificates,
/// `ld.so.conf.d` snippets and account lists are a few KB).
const MAX_CONTENTS: u64 = 4 << 20;

/// Which data files' bytes to keep, and under what name: `version` must
/// change whenever `wants` does, so facts collected for another selection
/// are never reused.
#[derive(Debug, Clone, Copy)]
pub struct FactsRequest {
    /// Whether to keep the bytes of the data file at this normalised path
    /// (`usr/share/ca-certificates/x.crt`).
    pub wants: fn(&str) -> bool,
    /// Paths (normalised the same way) whose bytes to keep because of the
    /// package's own control files: the helpers its maintainer scripts
    /// source with `.`, which configuration follows.
    pub wants_from_control: fn(&ControlFiles) -> Vec<String>,
    pub version: &'static str,
}

/// What configuration needs from one `.deb`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebFacts {
    pub control: ControlFiles,
    /// Every data entry, in archive order.
    pub entries: Vec<DebEntry>,
    /// The bytes of the entries the request wanted, by normalised path.
    pub contents: BTreeMap<String, Vec<u8>>,
}

/// Collects [`DebFacts`] while a data.tar streams past for another purpose.
#[derive(Debug)]
pub struct FactsCollector {
    request: FactsRequest,
    entries: Vec<DebEntry>,
    contents: BTreeMap<String, Vec<u8>>,
    /// [`FactsRequest::wants_from_control`]'s paths, once the control is read.
    from_control: std::collections::BTreeSet<String>,
}

impl FactsCollector {
    /// Starts collecting for `request`.
    pub fn new(request: FactsRequest) -> FactsCollector {
        FactsCollector {
            request,
            entries: Vec::new(),
            contents: BTreeMap::new(),
            from_control: std::collections::BTreeSet::new(),
        }
    }

    /// Takes the control files, read before any data entry.
    pub fn control_read(&mut self, control: &ControlFiles) {
        self.from_control = (self.request.wants_from_control)(control)
            .into_iter()
            .collect();
    }

    /// Records `entry`. When the request wants its bytes, reads them from
    /// `reader` and returns them: the caller uses these instead of the
    /// reader, which is then spent.
    pub fn observe(
        &mut self,
        deb: &Path,
        entry: &DebEntry,
        reader: &mut dyn Read,
    ) -> Result<Option<&[u8]>, DebError> {
        self.entries.push(entry.clone());
        let wanted = (self.request.wants)(&entry.path) || self.from_control.contains(&entry.path);
        if entry.kind != EntryKind::File || !wanted {
            return Ok(None);
        }
        if entry.size > MAX_CONTENTS {
            return Err(DebError::TooLarge {
                deb: deb.to_path_buf(),
                member: "data.tar".into(),
                reason: format!(
                    "'{}' is {} bytes, more than the {MAX_CONTENTS} configuration reads",
                    entry.path, entry.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| super::read_error(deb, e))?;
        Ok(Some(
            self.contents.entry(entry.path.clone()).or_insert(bytes),
        ))
    }

    /// The facts, with the control files read in the same pass.
    pub fn finish(self, control: ControlFiles) -> DebFacts {
        DebFacts {
            control,
            entries: self.entries,
            contents: self.contents,
        }
    }
}

/// Where the facts of the `.deb` with this sha256 live for `request`.
fn facts_path(store: &Store, sha256: &str, request: &FactsRequest) -> Result<PathBuf, StoreError> {
    let selection = sha256_hex(format!("{FORMAT}\n{}", request.version).as_bytes());
    Ok(store
        .bucket(Bucket::Facts)?
        .join(format!("{sha256}.{}", &selection[..16])))
}

/// Stores `facts` for the `.deb` with this sha256 (renamed into place; made
/// durable by the caller's next [`Store::sync`] or [`Store::sync_later`], a
/// loss only costs a re-read).
pub fn store_facts(
    store: &Store,
    sha256: &str,
    request: &FactsRequest,
    facts: &DebFacts,
) -> Result<(), DebError> {
    let payload =
        postcard::to_allocvec(facts).map_err(|e| DebError::Io(std::io::Error::other(e)))?;
    let path = facts_path(store, sha256, request)?;
    let mut file = AtomicFile::create(&path)?;
    std::io::Write::write_all(&mut file, MAGIC)?;
    std::io::Write::write_all(&mut file, &crc32fast::hash(&payload).to_le_bytes())?;
    std::io::Write::write_all(&mut file, &payload)?;
    file.commit_unsynced()?;
    stored().insert(path, std::sync::Arc::new(facts.clone()));
    Ok(())
}

/// The stored facts of the `.deb` with this sha256, if a sound entry exists.
pub fn load_facts(store: &Store, sha256: &str, request: &FactsRequest) -> Option<DebFacts> {
    let path = facts_path(store, sha256, request).ok()?;
    if let Some(facts) = stored().get(&path).cloned() {
        return Some(DebFacts::clone(&facts));
    }
    let bytes = fs_err::read(&path).ok()?;
    let rest = bytes.strip_prefix(MAGIC)?;
    let (crc, payload) = rest.split_at_checked(4)?;
    if crc32fast::hash(payload).to_le_bytes() != crc {
        tracing::warn!(path = %path.display(), "damaged package facts; reading the .deb again");
        return None;
    }
    postcard::from_bytes(payload).ok()
}

/// Checks a stored facts entry as [`load_facts`] does before trusting it
/// (magic, CRC-32, decoding), for `cairn cache verify`. `None` when `path`
/// is not named as a facts entry (`<sha256>.<selection>`).
pub fn check_entry(path: &Path) -> Option<Result<(), String>> {
    let name = path.file_name()?.to_str()?;
    let (sha256, selection) = name.split_once('.')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(sha256, 64) && hex(selection, 16)) {
        return None;
    }
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Some(Err(e.to_string())),
    };
    let Some((crc, payload)) = bytes
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.split_at_checked(4))
    else {
        return Some(Err("not a package facts entry (bad magic)".into()));
    };
    if crc32fast::hash(payload).to_le_bytes() != crc {
        return Some(Err("payload checksum mismatch".into()));
    }
    Some(
        postcard::from_bytes::<DebFacts>(payload)
            .map(drop)
            .map_err(|e| format!("cannot decode: {e}")),
    )
}

/// The facts of one `.deb`: from the store, or read from the file once
/// (checked against `sha256` as it is read) and stored.
pub fn read_facts<E: From<DebError> + From<StoreError>>(
    store: &Store,
    deb: &Path,
    sha256: &str,
    request: &FactsRequest,
) -> Result<DebFacts, E> {
    if let Some(facts) = load_facts(store, sha256, request) {
        return Ok(facts);
    }
    let collector = std::cell::RefCell::new(FactsCollector::new(*request));
    let control = read_deb_verified_with_control(
        deb,
        sha256,
        |control| collector.borrow_mut().control_read(control),
        |entry, reader| {
            collector.borrow_mut().observe(deb, entry, reader)?;
            Ok::<(), E>(())
        },
    )?;
    let collector = collector.into_inner();
    let facts = collector.finish(control);
    store_facts(store, sha256, request, &facts)?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::fixtures::sample_deb;

    const REQUEST: FactsRequest = FactsRequest {
        wants: |path| path == "usr/bin/tool",
        wants_from_control: |_| Vec::new(),
        version: "test-v1",
    };

    #[test]
    fn facts_are_read_once_stored_and_loaded_without_the_deb() {
        let (tmp, deb) = sample_deb("xz");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let sha = cairn_store::sha256_file(&deb).unwrap();
        let read: DebFacts = read_facts::<DebError>(&store, &deb, &sha, &REQUEST).unwrap();
        assert!(read.control.control.starts_with("Package: sample\n"));
        assert_eq!(read.control.other["postinst"], b"#!/bin/sh\nexit 0\n");
        assert!(read.entries.iter().any(|e| e.path == "usr/bin/suid"));
        assert_eq!(
            read.contents.keys().collect::<Vec<_>>(),
            ["usr/bin/tool"],
            "only the wanted bytes are kept"
        );
        fs_err::remove_file(&deb).unwrap();
        let loaded = read_facts::<DebError>(&store, &deb, &sha, &REQUEST).unwrap();
        assert_eq!(loaded, read, "loaded from the store; the .deb is gone");
        let other = FactsRequest {
            version: "test-v2",
            ..REQUEST
        };
        assert!(
            load_facts(&store, &sha, &other).is_none(),
            "keyed by the selection"
        );
    }

    /// What the control files name (the helpers a postinst sources) is
    /// kept too, decided before the first data entry streams past.
    #[test]
    fn the_control_files_can_name_data_files_to_keep() {
        let (tmp, deb) = sample_deb("zstd");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let sha = cairn_store::sha256_file(&deb).unwrap();
        let request = FactsRequest {
            wants_from_control: |control| {
                // The sample's postinst sources nothing; its presence stands
                // for a `. /usr/bin/suid` line.
                if control.other.contains_key("postinst") {
                    vec!["usr/bin/suid".into()]
                } else {
                    Vec::new()
                }
            },
            version: "test-control",
            ..REQUEST
        };
        let read: DebFacts = read_facts::<DebError>(&store, &deb, &sha, &request).unwrap();
        assert_eq!(
            read.contents.keys().collect::<Vec<_>>(),
            ["usr/bin/suid", "usr/bin/tool"]
        );
        assert_eq!(read.contents["usr/bin/suid"], b"suid");
    }

    #[test]
    fn a_damaged_entry_is_not_trusted() {
        let (tmp, deb) = sample_deb("gzip");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let sha = cairn_store::sha256_file(&deb).unwrap();
        read_facts::<DebError>(&store, &deb, &sha, &REQUEST).unwrap();
        let path = facts_path(&store, &sha, &REQUEST).unwrap();
        let mut bytes = fs_err::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs_err::write(&path, bytes).unwrap();
        // As a later process finds it: not from this one's memory.
        stored().clear();
        assert!(load_facts(&store, &sha, &REQUEST).is_none());
    }
}
