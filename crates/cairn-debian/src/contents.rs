//! Which package ships a command: the archive's `Contents` indices reduced to
//! a compact table of command name → packages, and its cache entry.
//!
//! Owns the `Contents` line format, the reduction (only files directly in
//! `bin/`, `sbin/`, `usr/bin/`, `usr/sbin/` and `usr/games/`, with merged-`/usr`
//! paths counting as the same command) and the entry format. It does not decide
//! which bytes are trusted (that is [`crate::fetch`], which checks every
//! `Contents` file against the sha256 in the verified InRelease before a table
//! built from it is returned or cached).
//!
//! Why a table of our own rather than the `Contents` files: bookworm's
//! `main/Contents-amd64.gz` and `main/Contents-all.gz` are 45 MB compressed
//! and 670 MB of text, almost all of it `/usr/share`; the commands in them are
//! ~1 MB. The table is built once per release (keyed by the InRelease's
//! sha256) and loaded in milliseconds, so a `command not found` can afford it.
//!
//! Layout of `<inrelease-sha256>.<arch>.<components>.commands-v<FORMAT_VERSION>`:
//!
//! ```text
//! magic "CAIRNCMD" | format version u32 LE | payload length u64 LE |
//! CRC-32 of payload u32 LE | payload = postcard(Entry)
//! ```
//!
//! As for the parsed-index cache ([`crate::index_cache`]), the length and CRC
//! catch a truncated or bit-rotten entry, which is then rebuilt, never trusted;
//! the key inside is compared with the one asked for.

use cairn_store::AtomicFile;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// Bumped whenever the entry format or the reduction that produces it changes.
pub const FORMAT_VERSION: u32 = 1;
/// Directories whose direct children are commands, as `Contents` writes them
/// (relative, no leading slash).
pub const COMMAND_DIRS: [&str; 5] = ["usr/bin/", "usr/sbin/", "usr/games/", "bin/", "sbin/"];

const MAGIC: &[u8; 8] = b"CAIRNCMD";
/// Magic, format version, payload length, payload CRC-32.
const HEADER_LEN: usize = 8 + 4 + 8 + 4;
/// bookworm's whole archive gives an entry of about 1 MB; far above this is
/// not an entry cairn wrote, and is not read into memory.
const MAX_ENTRY_BYTES: u64 = 64 << 20;
/// The longest `Contents` line accepted. Real lines are under 1 KiB; the
/// bound keeps a hostile stream from growing one line without end before its
/// digest is checked.
pub const MAX_LINE_BYTES: u64 = 64 << 10;

/// Why a `Contents` stream or a cache entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentsError {
    #[error("{name}: line {line} is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { name: String, line: u64 },
    #[error("{name}: {source}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a command-table entry (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("{path}: format version {found}, expected {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
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
    #[error("{path}: entry is for {found}, expected {expected}")]
    Key {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: {size} bytes, more than a command table can be ({MAX_ENTRY_BYTES})")]
    TooLarge { path: PathBuf, size: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Command name → the packages that ship it, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandTable {
    commands: BTreeMap<String, BTreeSet<String>>,
}

impl CommandTable {
    /// The packages that ship `command`, sorted; empty when none does.
    pub fn packages(&self, command: &str) -> Vec<&str> {
        self.commands
            .get(command)
            .map(|p| p.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Number of distinct commands.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether no command is known.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Adds every command of `other` (another component, `Contents-all`, or
    /// another suite of the same environment).
    pub fn merge(&mut self, other: CommandTable) {
        for (command, packages) in other.commands {
            self.commands.entry(command).or_default().extend(packages);
        }
    }

    /// Adds one `Contents` line. Lines that are not a command (another
    /// directory, a header, a blank line) are skipped.
    pub fn add_line(&mut self, line: &str) {
        if let Some((command, packages)) = parse_line(line) {
            let entry = self.commands.entry(command.to_string()).or_default();
            entry.extend(packages.map(str::to_string));
        }
    }
}

/// The command and package names of one `Contents` line, or `None` when the
/// line lists no command.
///
/// The format is `PATH<whitespace>LOCATIONS`, where the path may itself hold
/// spaces and LOCATIONS is a comma-separated list of `[component/]section/name`
/// without spaces, so the line splits at its last run of whitespace.
pub fn parse_line(line: &str) -> Option<(&str, impl Iterator<Item = &str>)> {
    let line = line.trim_end();
    let (path, locations) = line.rsplit_once([' ', '\t'])?;
    let path = path.trim_end_matches([' ', '\t']).trim_start_matches("./");
    let path = path.strip_prefix('/').unwrap_or(path);
    let command = COMMAND_DIRS
        .iter()
        .find_map(|dir| path.strip_prefix(dir))
        .filter(|name| is_command_name(name))?;
    let packages = locations
        .split(',')
        .filter_map(|location| location.rsplit('/').next())
        .filter(|name| is_package_name(name));
    Some((command, packages))
}

/// A file name directly in the directory: no subdirectory, not `.` or `..`.
fn is_command_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

/// Debian policy 5.6.1: lowercase letters, digits, `+`, `-`, `.`, at least
/// two characters, starting with a letter or digit.
fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Reads a decompressed `Contents` stream into `table`, line by line, with
/// no line longer than [`MAX_LINE_BYTES`]. `name` names the file in errors.
/// Lines that are not UTF-8 cannot name a command a shell looks up by a UTF-8
/// name we print, so they are skipped.
pub fn read_contents(
    reader: &mut dyn BufRead,
    table: &mut CommandTable,
    name: &str,
) -> Result<(), ContentsError> {
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        line.clear();
        number += 1;
        let read = reader
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| ContentsError::Read {
                name: name.to_string(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        if line.len() as u64 > MAX_LINE_BYTES {
            return Err(ContentsError::LineTooLong {
                name: name.to_string(),
                line: number,
            });
        }
        // Most of the file is /usr/share: skip it before any UTF-8 check.
        let wanted = COMMAND_DIRS
            .iter()
            .any(|dir| line.starts_with(dir.as_bytes()));
        if wanted && let Ok(text) = std::str::from_utf8(&line) {
            table.add_line(text);
        }
    }
}

/// The key of one entry: which verified release, for which architecture and
/// components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandsKey {
    /// Lowercase hex sha256 of the InRelease the `Contents` files were listed in.
    pub inrelease_sha256: String,
    pub arch: String,
    pub components: Vec<String>,
}

impl CommandsKey {
    /// The entry's file name, or `None` when a part is not a plain name (the
    /// key becomes a file name, so nothing else may go into it).
    pub fn file_name(&self) -> Option<String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let parts_ok = plain(&self.inrelease_sha256)
            && plain(&self.arch)
            && self.components.iter().all(|c| plain(c));
        parts_ok.then(|| {
            format!(
                "{}.{}.{}.commands-v{FORMAT_VERSION}",
                self.inrelease_sha256,
                self.arch,
                self.components.join("+")
            )
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}, {})",
            self.inrelease_sha256,
            self.arch,
            self.components.join(",")
        )
    }
}

/// The payload: packages interned once, commands pointing at them.
#[derive(Serialize, Deserialize)]
struct Entry {
    inrelease_sha256: String,
    arch: String,
    components: Vec<String>,
    packages: Vec<String>,
    commands: Vec<(String, Vec<u32>)>,
}

/// Writes `table` for `key` to `path` atomically (temp file, then rename).
pub fn store(path: &Path, key: &CommandsKey, table: &CommandTable) -> Result<(), ContentsError> {
    let packages: BTreeSet<&str> = table
        .commands
        .values()
        .flat_map(|p| p.iter().map(String::as_str))
        .collect();
    let packages: Vec<&str> = packages.into_iter().collect();
    let position = |name: &str| packages.binary_search(&name).unwrap_or(0) as u32;
    let entry = Entry {
        inrelease_sha256: key.inrelease_sha256.clone(),
        arch: key.arch.clone(),
        components: key.components.clone(),
        packages: packages.iter().map(|p| p.to_string()).collect(),
        commands: table
            .commands
            .iter()
            .map(|(c, p)| (c.clone(), p.iter().map(|n| position(n)).collect()))
            .collect(),
    };
    let mut bytes = vec![0; HEADER_LEN];
    bytes = postcard::to_extend(&entry, bytes).map_err(|e| ContentsError::Decode {
        path: path.to_path_buf(),
        reason: format!("cannot encode: {e}"),
    })?;
    let payload = &bytes[HEADER_LEN..];
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[20..24].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes[..HEADER_LEN].copy_from_slice(&header);
    let mut file = AtomicFile::create(path)?;
    file.write_all(&bytes)?;
    file.commit()?;
    Ok(())
}

/// Reads the entry at `path` and checks it against `key`. `Ok(None)` when
/// there is none; an error when there is one that cannot be trusted.
pub fn load(path: &Path, key: &CommandsKey) -> Result<Option<CommandTable>, ContentsError> {
    let file = match fs_err::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let size = file.metadata()?.len();
    if size > MAX_ENTRY_BYTES {
        return Err(ContentsError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes)?;
    let payload = checked_payload(&bytes, path)?;
    let decode = |reason: String| ContentsError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let entry: Entry = postcard::from_bytes(payload).map_err(|e| decode(e.to_string()))?;
    let found = CommandsKey {
        inrelease_sha256: entry.inrelease_sha256,
        arch: entry.arch,
        components: entry.components,
    };
    if &found != key {
        return Err(ContentsError::Key {
            path: path.to_path_buf(),
            expected: key.describe(),
            found: found.describe(),
        });
    }
    let mut commands = BTreeMap::new();
    for (command, positions) in entry.commands {
        let names = positions
            .iter()
            .map(|&i| entry.packages.get(i as usize).cloned())
            .collect::<Option<BTreeSet<String>>>()
            .ok_or_else(|| decode(format!("'{command}' names a package out of range")))?;
        commands.insert(command, names);
    }
    Ok(Some(CommandTable { commands }))
}

/// Checks a command-table entry as [`load`] does before trusting it (magic,
/// format version, length, CRC), for `cairn cache verify`. `None` when
/// `path` is not one, in this format version.
pub fn check_entry(path: &Path) -> Option<Result<(), String>> {
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(&format!(".commands-v{FORMAT_VERSION}")) {
        return None;
    }
    let checked = fs_err::metadata(path)
        .map_err(ContentsError::from)
        .and_then(|m| match m.len() > MAX_ENTRY_BYTES {
            true => Err(ContentsError::TooLarge {
                path: path.to_path_buf(),
                size: m.len(),
            }),
            false => Ok(fs_err::read(path)?),
        })
        .and_then(|bytes| checked_payload(&bytes, path).map(drop));
    Some(checked.map_err(|e| e.to_string()))
}

/// The payload of an entry whose header, length and CRC check out.
fn checked_payload<'b>(bytes: &'b [u8], path: &Path) -> Result<&'b [u8], ContentsError> {
    let path_buf = || path.to_path_buf();
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(ContentsError::BadMagic { path: path_buf() });
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(ContentsError::Version {
            path: path_buf(),
            found: version,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let expected = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != expected {
        return Err(ContentsError::Length {
            path: path_buf(),
            expected,
            actual: payload.len() as u64,
        });
    }
    if crc32fast::hash(payload) != u32_at(20) {
        return Err(ContentsError::Checksum { path: path_buf() });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> CommandTable {
        let mut table = CommandTable::default();
        read_contents(&mut text.as_bytes(), &mut table, "Contents-amd64").unwrap();
        table
    }

    #[test]
    fn real_line_formats() {
        let t = table(
            "usr/bin/awk                                             utils/mawk,utils/gawk\n\
             usr/bin/hello\tdevel/hello\n\
             bin/bash shells/bash\n\
             sbin/ip net/iproute2\n\
             usr/games/fortune games/fortune-mod\n\
             usr/sbin/nginx non-free/httpd/nginx-extras,httpd/nginx-core\n\
             usr/share/doc/hello/copyright devel/hello\n\
             usr/bin/sub/dir/tool devel/nothing\n\
             usr/local/bin/x devel/nothing\n\
             usr/bin/with space\tutils/spacey\n",
        );
        assert_eq!(t.packages("awk"), ["gawk", "mawk"]);
        assert_eq!(t.packages("hello"), ["hello"]);
        assert_eq!(t.packages("bash"), ["bash"]);
        assert_eq!(t.packages("ip"), ["iproute2"]);
        assert_eq!(t.packages("fortune"), ["fortune-mod"]);
        assert_eq!(t.packages("nginx"), ["nginx-core", "nginx-extras"]);
        assert_eq!(t.packages("with space"), ["spacey"]);
        assert!(t.packages("copyright").is_empty());
        assert!(t.packages("tool").is_empty());
        assert!(t.packages("x").is_empty());
        assert_eq!(t.len(), 7);
    }

    #[test]
    fn merged_usr_paths_are_one_command_and_parts_merge() {
        let mut t = table("bin/sh shells/dash\nusr/bin/sh shells/bash-static\n");
        t.merge(table(
            "usr/bin/sh shells/zsh-static\nusr/bin/env utils/coreutils\n",
        ));
        assert_eq!(t.packages("sh"), ["bash-static", "dash", "zsh-static"]);
        assert_eq!(t.packages("env"), ["coreutils"]);
    }

    #[test]
    fn headers_blank_lines_and_bad_names_are_skipped() {
        let t = table(
            "This file maps each file available in the Debian\n\
             FILE                                                    LOCATION\n\
             \n\
             usr/bin/ok utils/Bad_Name,utils/good\n\
             usr/bin/ utils/empty\n\
             usr/bin/.. utils/dots\n",
        );
        assert_eq!(t.packages("ok"), ["good"]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let long = format!("usr/bin/{} utils/x\n", "a".repeat(MAX_LINE_BYTES as usize));
        let mut t = CommandTable::default();
        let err = read_contents(&mut long.as_bytes(), &mut t, "Contents-all").unwrap_err();
        assert!(
            matches!(err, ContentsError::LineTooLong { line: 1, .. }),
            "{err}"
        );
    }

    fn key() -> CommandsKey {
        CommandsKey {
            inrelease_sha256: "ab".repeat(32),
            arch: "amd64".into(),
            components: vec!["main".into(), "contrib".into()],
        }
    }

    #[test]
    fn entries_round_trip_and_a_corrupt_or_foreign_one_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let key = key();
        let path = dir.path().join(key.file_name().unwrap());
        assert!(load(&path, &key).unwrap().is_none());
        let t = table("usr/bin/awk utils/mawk,utils/gawk\nbin/ls utils/coreutils\n");
        store(&path, &key, &t).unwrap();
        assert_eq!(load(&path, &key).unwrap(), Some(t.clone()));

        let mut other = key.clone();
        other.arch = "arm64".into();
        assert!(matches!(
            load(&path, &other),
            Err(ContentsError::Key { .. })
        ));

        let good = fs_err::read(&path).unwrap();
        fs_err::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(matches!(
            load(&path, &key),
            Err(ContentsError::Length { .. })
        ));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        fs_err::write(&path, &flipped).unwrap();
        assert!(matches!(
            load(&path, &key),
            Err(ContentsError::Checksum { .. })
        ));
        fs_err::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load(&path, &key),
            Err(ContentsError::BadMagic { .. })
        ));
        let entries = fs_err::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no temp file left beside the entry");
    }

    #[test]
    fn keys_with_path_characters_have_no_file_name() {
        let mut k = key();
        k.arch = "../x".into();
        assert!(k.file_name().is_none());
        assert!(
            key()
                .file_name()
                .unwrap()
                .ends_with(".amd64.main+contrib.commands-v1")
        );
    }
}
