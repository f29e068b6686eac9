//! Reading `.deb` files: the ar container, its compressed control and data
//! tars, and the normalisation of data entries that layers and unpacking share.
//!
//! Normalised paths are relative and canonical (`usr/bin/x`, never `./usr/bin/x`
//! or `/usr/bin/x`), and merged-`/usr`: bookworm's packages still ship `/bin`,
//! `/sbin` and `/lib*`, while the image provides `bin -> usr/bin` symlinks, so
//! entries under those directories move under `usr/` and the directories
//! themselves are dropped. Symlink targets are kept verbatim (they resolve
//! through the image's symlinks); hardlink targets are rewritten like paths.
//!
//! Writing layer tars is cairn-oci's; extracting to disk safely is [`unpack`].

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

use cairn_store::StoreError;

pub mod facts;
pub mod unpack;

pub use unpack::unpack_deb;

/// Errors from reading a `.deb`. Each names the package file.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The cache: a `.deb` that does not match its locked sha256, or a lock.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {deb}: {source}")]
    Read {
        deb: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{deb} is not a valid Debian package: {reason}")]
    Invalid {
        deb: std::path::PathBuf,
        reason: String,
    },
    #[error(
        "{deb}: member '{member}' uses a compression cairn cannot read (it reads gzip, xz, zstd and plain tar)"
    )]
    UnsupportedCompression {
        deb: std::path::PathBuf,
        member: String,
    },
    #[error(
        "{deb}: {member} is too large to read safely: {reason}; the package is broken or hostile, refusing to use it"
    )]
    TooLarge {
        deb: std::path::PathBuf,
        member: String,
        reason: String,
    },
    #[error("{deb}: entry '{entry}' is unsafe: {reason}; refusing to use this package")]
    UnsafeEntry {
        deb: std::path::PathBuf,
        entry: String,
        reason: String,
    },
}

/// Shorthand for results carrying a [`DebError`].
pub type Result<T, E = DebError> = std::result::Result<T, E>;

/// Top-level directories that merged-`/usr` systems replace with symlinks into `usr/`.
pub const MERGED_USR_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// One normalised entry of a package's data tar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebEntry {
    /// Relative, canonical, merged-`/usr` path, e.g. `usr/bin/hello`. Never empty.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    /// Modification time in seconds since the epoch, as recorded in the package.
    pub mtime: u64,
    /// Owner name as recorded in the package (may be empty).
    pub uname: String,
    /// Group name as recorded in the package (may be empty).
    pub gname: String,
    /// Size of the file contents (0 for anything but regular files).
    pub size: u64,
}

/// The type of a [`DebEntry`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file; its contents follow.
    File,
    /// A symbolic link; the target is kept exactly as the package has it.
    Symlink { target: String },
    /// A hardlink to an earlier entry, whose path is normalised like any path.
    Hardlink { target: String },
    /// A character device.
    CharDevice { major: u32, minor: u32 },
    /// A block device.
    BlockDevice { major: u32, minor: u32 },
    /// A named pipe.
    Fifo,
}

/// The files of a package's `control.tar`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControlFiles {
    /// The `control` paragraph.
    pub control: String,
    /// `md5sums`, if the package has one.
    pub md5sums: Option<String>,
    /// `conffiles`, if the package has one.
    pub conffiles: Option<String>,
    /// Every other file (maintainer scripts, `triggers`, `shlibs`, ...), by name.
    pub other: BTreeMap<String, Vec<u8>>,
}

/// Normalises a path from a package's data tar. `Ok(None)` means the entry is
/// dropped (the root directory, or a merged-`/usr` top-level directory itself).
pub fn normalize_path(raw: &str) -> Result<Option<String>, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path contains '..'"),
            part => parts.push(part),
        }
    }
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    if MERGED_USR_DIRS.contains(first) {
        if parts.len() == 1 {
            return Ok(None);
        }
        parts.insert(0, "usr");
    }
    Ok(Some(parts.join("/")))
}

/// Streams the normalised entries of a package's data tar to `visit`, with a
/// reader over each entry's contents. Entries come in archive order, unsorted.
///
/// The visitor's error type is the caller's, so a layer writer or unpacker can
/// fail with its own errors; reading errors convert from [`DebError`].
pub fn visit_data<E: From<DebError>>(
    deb: &Path,
    mut visit: impl FnMut(&DebEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    with_member(deb, "data.tar", |reader| visit_tar(deb, reader, &mut visit))
}

fn visit_tar<E: From<DebError>>(
    deb: &Path,
    reader: &mut dyn Read,
    visit: &mut impl FnMut(&DebEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    walk_tar(deb, "data.tar", reader, &Limits::DEFAULT, |entry, names| {
        if let Some(meta) = normalize_entry(deb, entry, &names)? {
            let mut exact = Exact {
                inner: entry,
                left: meta.size,
                path: &meta.path,
            };
            visit(&meta, &mut exact)?;
        }
        Ok(())
    })
}

/// Bounds on what one member tar of a package may make cairn hold: the tar
/// crate reads GNU long names and PAX headers whole into memory, whatever
/// size their header claims, so a few KB of xz can ask for gigabytes.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// A GNU long name or link: PATH_MAX, the longest path Linux takes.
    long_name: u64,
    /// One PAX extended header (all its records together).
    pax_header: u64,
    /// Entries in one tar, extension headers included. Debian's largest
    /// packages hold about 100k files; each entry costs a layer some memory.
    entries: usize,
    /// One file of control.tar (held in memory; md5sums is the largest).
    control_file: u64,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        long_name: 4096,
        pax_header: 1 << 20,
        entries: 1 << 19,
        control_file: 64 << 20,
    };
}

/// A path and link target given by extension headers (GNU `L`/`K`, PAX
/// `path`/`linkpath`) for the entry that follows them.
#[derive(Debug, Default)]
struct Names {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    /// PAX `size`, which would change where the next header starts.
    size: Option<u64>,
}

impl Names {
    fn is_empty(&self) -> bool {
        self.path.is_none() && self.link.is_none() && self.size.is_none()
    }
}

/// Walks a tar's entries in raw mode, reading the extension headers itself
/// within `limits` (rather than letting the tar crate read them whole), and
/// hands each real entry to `each` with the names they gave it. Hand-written
/// because the tar crate has no bound for these; it still does the framing.
fn walk_tar<E: From<DebError>>(
    deb: &Path,
    member: &str,
    reader: &mut dyn Read,
    limits: &Limits,
    mut each: impl FnMut(&mut tar::Entry<'_, &mut dyn Read>, Names) -> Result<(), E>,
) -> Result<(), E> {
    use tar::EntryType as T;
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| read_error(deb, e))?.raw(true);
    let mut names = Names::default();
    for (index, entry) in entries.enumerate() {
        if index >= limits.entries {
            let reason = format!("it has more than {} entries", limits.entries);
            return Err(too_large(deb, member, reason).into());
        }
        let mut entry = entry.map_err(|e| read_error(deb, e))?;
        let size = entry
            .header()
            .entry_size()
            .map_err(|e| read_error(deb, e))?;
        match entry.header().entry_type() {
            T::GNULongName | T::GNULongLink => {
                let kind = entry.header().entry_type();
                let what = if kind == T::GNULongName {
                    "GNU long name"
                } else {
                    "GNU long link"
                };
                let mut bytes =
                    read_bounded(deb, member, &mut entry, size, limits.long_name, what)?;
                while bytes.last() == Some(&0) {
                    bytes.pop();
                }
                let slot = if kind == T::GNULongName {
                    &mut names.path
                } else {
                    &mut names.link
                };
                if slot.replace(bytes).is_some() {
                    return Err(invalid(
                        deb,
                        format!("{member}: two {what} headers for one entry"),
                    )
                    .into());
                }
            }
            T::XHeader => {
                let bytes = read_bounded(
                    deb,
                    member,
                    &mut entry,
                    size,
                    limits.pax_header,
                    "PAX header",
                )?;
                pax_names(deb, member, &bytes, &mut names)?;
            }
            // Global PAX records (a comment, a charset) change no entry of ours.
            T::XGlobalHeader => {
                read_bounded(
                    deb,
                    member,
                    &mut entry,
                    size,
                    limits.pax_header,
                    "PAX global header",
                )?;
            }
            T::GNUSparse => {
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let reason = format!(
                    "entry '{path}' is a GNU sparse file, which Debian packages never ship"
                );
                return Err(invalid(deb, reason).into());
            }
            _ => {
                if let Some(pax) = names.size
                    && pax != size
                {
                    let reason = format!(
                        "{member}: a PAX size of {pax} bytes overrides the header's {size} (files over 8 GiB are not supported)"
                    );
                    return Err(invalid(deb, reason).into());
                }
                each(&mut entry, std::mem::take(&mut names))?;
            }
        }
    }
    if !names.is_empty() {
        let reason = format!("{member} ends with an extension header and no entry after it");
        return Err(invalid(deb, reason).into());
    }
    Ok(())
}

/// Reads an extension header's body, refusing one larger than `limit`
/// before reading any of it.
fn read_bounded(
    deb: &Path,
    member: &str,
    entry: &mut dyn Read,
    size: u64,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    if size > limit {
        let reason = format!("a {what} of {size} bytes (at most {limit} are read)");
        return Err(too_large(deb, member, reason));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    entry
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(deb, e))?;
    Ok(bytes)
}

/// The PAX records cairn uses: `path`, `linkpath`, and `size` (checked
/// against the header's, since cairn leaves the framing to the tar crate).
fn pax_names(deb: &Path, member: &str, bytes: &[u8], names: &mut Names) -> Result<()> {
    let bad = |what: String| invalid(deb, format!("{member}: malformed PAX header: {what}"));
    for record in tar::PaxExtensions::new(bytes) {
        let record = record.map_err(|e| bad(e.to_string()))?;
        match record.key_bytes() {
            b"path" => names.path = Some(record.value_bytes().to_vec()),
            b"linkpath" => names.link = Some(record.value_bytes().to_vec()),
            b"size" => {
                let value = String::from_utf8_lossy(record.value_bytes()).into_owned();
                let size = value.parse().map_err(|_| bad(format!("size '{value}'")))?;
                names.size = Some(size);
            }
            _ => {}
        }
    }
    Ok(())
}

fn too_large(deb: &Path, member: &str, reason: String) -> DebError {
    DebError::TooLarge {
        deb: deb.to_path_buf(),
        member: member.to_owned(),
        reason,
    }
}

/// An entry's contents, failing (naming the entry) when the archive ends
/// before the size its header claims: the tar crate would hand out a short
/// file without complaint.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a str,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "entry '{}' is cut short: the archive ends {} bytes before the size its header gives",
                    self.path, self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads a package once, as its sha256 is checked: returns its control
/// files and streams its data entries to `visit`, hashing every byte of the
/// file on the way (the rest of the file after data.tar too). The bytes
/// checked are the bytes used: a file swapped between a check and a second
/// read cannot slip in, and nothing is read twice.
///
/// On a mismatch the file is evicted from the cache and the result is
/// [`StoreError::DigestMismatch`], also when the visitor failed first (a
/// substituted package is reported as such, not as whatever it contains).
/// The visitor may have seen entries by then: callers keep what they build
/// uncommitted until this returns `Ok`.
pub fn read_deb_verified<E: From<DebError> + From<StoreError>>(
    deb: &Path,
    sha256: &str,
    visit: impl FnMut(&DebEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<ControlFiles, E> {
    read_deb_verified_with_control(deb, sha256, |_| {}, visit)
}

/// [`read_deb_verified`], handing the control files to `on_control` before
/// the first data entry (the control member precedes data.tar), so what is
/// kept of the data can depend on the maintainer scripts.
pub fn read_deb_verified_with_control<E: From<DebError> + From<StoreError>>(
    deb: &Path,
    sha256: &str,
    mut on_control: impl FnMut(&ControlFiles),
    mut visit: impl FnMut(&DebEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<ControlFiles, E> {
    let file = fs_err::File::open(deb).map_err(DebError::from)?;
    let mut hashed = cairn_store::VerifyingReader::new(file, deb, sha256);
    let read = read_members(
        deb,
        &mut hashed,
        Integrity::Sha256,
        &mut on_control,
        &mut visit,
    );
    // Whatever the members left unread (tar padding, trailing members) is
    // part of the file the lock names.
    let checked = std::io::copy(&mut hashed, &mut std::io::sink());
    match (read, checked) {
        (_, Err(e)) => match StoreError::from_io(e) {
            mismatch @ StoreError::DigestMismatch { .. } => Err(mismatch.into()),
            StoreError::Io(e) => Err(read_error(deb, e).into()),
            other => Err(other.into()),
        },
        (read, Ok(_)) => read,
    }
}

/// The control files, then the data entries to `visit`, from one pass over
/// the ar members of `source`, whose bytes `integrity` says what guards.
fn read_members<E: From<DebError>>(
    deb: &Path,
    source: impl Read,
    integrity: Integrity,
    on_control: &mut impl FnMut(&ControlFiles),
    visit: &mut impl FnMut(&DebEntry, &mut dyn Read) -> Result<(), E>,
) -> Result<ControlFiles, E> {
    let mut ar = ar::Archive::new(BufReader::with_capacity(256 * 1024, source));
    let mut control = None;
    let mut first = true;
    while let Some(member) = ar.next_entry() {
        let member = member.map_err(|e| read_error(deb, e))?;
        let name = member_name(member.header().identifier());
        check_first_member(deb, first, &name)?;
        first = false;
        if let Some(suffix) = name.strip_prefix("control.tar") {
            let mut reader = decompress(deb, &name, suffix, member, integrity)?;
            control = Some(control_from_tar(deb, &mut *reader)?);
        } else if let Some(suffix) = name.strip_prefix("data.tar") {
            let control =
                control.ok_or_else(|| invalid(deb, "data.tar comes before control.tar"))?;
            on_control(&control);
            let mut reader = decompress(deb, &name, suffix, member, integrity)?;
            visit_tar(deb, &mut *reader, visit)?;
            return Ok(control);
        }
    }
    Err(invalid(deb, "no data.tar member").into())
}

/// Reads the control files of a package.
pub fn read_control(deb: &Path) -> Result<ControlFiles> {
    with_member(deb, "control.tar", |reader| control_from_tar(deb, reader))
}

fn control_from_tar(deb: &Path, reader: &mut dyn Read) -> Result<ControlFiles> {
    let limits = Limits::DEFAULT;
    let mut files = BTreeMap::new();
    walk_tar(deb, "control.tar", reader, &limits, |entry, names| {
        if !entry.header().entry_type().is_file() {
            return Ok(());
        }
        let path = names
            .path
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = String::from_utf8_lossy(&path).into_owned();
        let name = name.trim_start_matches("./").to_owned();
        let size = entry.size();
        let what = format!("control file '{name}'");
        let bytes = read_bounded(deb, "control.tar", entry, size, limits.control_file, &what)?;
        files.insert(name, bytes);
        Ok::<(), DebError>(())
    })?;
    control_files(deb, files)
}

fn control_files(deb: &Path, mut files: BTreeMap<String, Vec<u8>>) -> Result<ControlFiles> {
    let mut text = |name: &str| -> Result<Option<String>> {
        files
            .remove(name)
            .map(|bytes| {
                String::from_utf8(bytes).map_err(|_| invalid(deb, format!("{name} is not UTF-8")))
            })
            .transpose()
    };
    let control =
        text("control")?.ok_or_else(|| invalid(deb, "control.tar has no control file"))?;
    let md5sums = text("md5sums")?;
    let conffiles = text("conffiles")?;
    Ok(ControlFiles {
        control,
        md5sums,
        conffiles,
        other: files,
    })
}

/// Opens the ar member whose name starts with `prefix` (`data.tar`,
/// `control.tar`), decompresses it by its suffix, and hands it to `read`.
fn with_member<T, E: From<DebError>>(
    deb: &Path,
    prefix: &str,
    read: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<T, E> {
    let file = fs_err::File::open(deb).map_err(DebError::from)?;
    let mut ar = ar::Archive::new(BufReader::with_capacity(256 * 1024, file));
    let mut first = true;
    while let Some(member) = ar.next_entry() {
        let member = member.map_err(|e| read_error(deb, e))?;
        let name = member_name(member.header().identifier());
        check_first_member(deb, first, &name)?;
        first = false;
        if let Some(suffix) = name.strip_prefix(prefix) {
            let mut reader = decompress(deb, &name, suffix, member, Integrity::Member)?;
            return read(&mut *reader);
        }
    }
    Err(invalid(deb, format!("no {prefix} member")).into())
}

fn check_first_member(deb: &Path, first: bool, name: &str) -> Result<()> {
    if first && name != "debian-binary" {
        return Err(invalid(
            deb,
            format!("first member is '{name}', not 'debian-binary'"),
        ));
    }
    Ok(())
}

fn member_name(identifier: &[u8]) -> String {
    // GNU ar terminates names with '/'; dpkg-deb writes them without.
    let name = String::from_utf8_lossy(identifier);
    name.trim_end_matches('/').trim().to_owned()
}

/// What guards the bytes of a member being decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Integrity {
    /// Only the member's own check (xz's CRC64, gzip's CRC32), which the
    /// decoder verifies.
    Member,
    /// The whole `.deb` is being hashed and checked against the sha256 that
    /// a signed index gave, and nothing read counts until it matched
    /// ([`read_deb_verified`]). xz's check (CRC64 in Debian's packages) is
    /// then skipped: it can only catch what the sha256 catches, and
    /// computing it was 3 % of a cold containerize's CPU.
    Sha256,
}

fn decompress<'a>(
    deb: &Path,
    name: &str,
    suffix: &str,
    member: impl Read + 'a,
    integrity: Integrity,
) -> Result<Box<dyn Read + 'a>> {
    Ok(match suffix {
        "" => Box::new(member),
        ".gz" => Box::new(flate2::read::GzDecoder::new(member)),
        ".xz" => {
            // As `XzDecoder::new_multi_decoder`: any number of concatenated
            // streams, no memory limit (the bounds that matter are on what
            // the tar makes cairn hold, see `Limits`).
            let mut flags = liblzma::stream::CONCATENATED;
            if integrity == Integrity::Sha256 {
                flags |= liblzma::stream::IGNORE_CHECK;
            }
            let stream = liblzma::stream::Stream::new_auto_decoder(u64::MAX, flags)
                .map_err(|e| read_error(deb, e.into()))?;
            Box::new(liblzma::read::XzDecoder::new_stream(member, stream))
        }
        ".zst" => {
            Box::new(zstd::stream::read::Decoder::new(member).map_err(|e| read_error(deb, e))?)
        }
        _ => {
            return Err(DebError::UnsupportedCompression {
                deb: deb.to_path_buf(),
                member: name.to_owned(),
            });
        }
    })
}

fn normalize_entry<R: Read>(
    deb: &Path,
    entry: &tar::Entry<'_, R>,
    names: &Names,
) -> Result<Option<DebEntry>> {
    let header = entry.header();
    let raw_path = match &names.path {
        Some(path) => utf8(deb, path)?,
        None => utf8(deb, &entry.path_bytes())?,
    };
    let unsafe_entry = |reason: &str| DebError::UnsafeEntry {
        deb: deb.to_path_buf(),
        entry: raw_path.clone(),
        reason: reason.to_owned(),
    };
    let Some(path) = normalize_path(&raw_path).map_err(unsafe_entry)? else {
        return Ok(None);
    };
    let link = || -> Result<String> {
        match &names.link {
            Some(bytes) => utf8(deb, bytes),
            None => utf8(deb, &entry.link_name_bytes().unwrap_or_default()),
        }
    };
    let device = || -> (u32, u32) {
        let major = header.device_major().ok().flatten().unwrap_or(0);
        let minor = header.device_minor().ok().flatten().unwrap_or(0);
        (major, minor)
    };
    use tar::EntryType as T;
    let kind = match header.entry_type() {
        T::Directory => EntryKind::Dir,
        T::Regular | T::Continuous => EntryKind::File,
        T::Symlink => EntryKind::Symlink { target: link()? },
        T::Link => {
            let target = normalize_path(&link()?).map_err(unsafe_entry)?;
            let target = target.ok_or_else(|| unsafe_entry("hardlink to a directory"))?;
            EntryKind::Hardlink { target }
        }
        T::Char => {
            let (major, minor) = device();
            EntryKind::CharDevice { major, minor }
        }
        T::Block => {
            let (major, minor) = device();
            EntryKind::BlockDevice { major, minor }
        }
        T::Fifo => EntryKind::Fifo,
        // Extension headers are read by `walk_tar`; these never get here.
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(None),
        other => {
            let reason = format!("entry '{raw_path}' has unsupported tar type {other:?}");
            return Err(invalid(deb, reason));
        }
    };
    let size = if kind == EntryKind::File {
        entry.size()
    } else {
        0
    };
    Ok(Some(DebEntry {
        path,
        kind,
        mode: header.mode().map_err(|e| read_error(deb, e))? & 0o7777,
        mtime: header.mtime().map_err(|e| read_error(deb, e))?,
        uname: name_field(header.username_bytes()),
        gname: name_field(header.groupname_bytes()),
        size,
    }))
}

fn name_field(bytes: Option<&[u8]>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn utf8(deb: &Path, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        let lossy = String::from_utf8_lossy(bytes);
        invalid(deb, format!("entry name '{lossy}' is not UTF-8"))
    })
}

/// A read error of `deb`, naming it.
pub fn read_error(deb: &Path, source: std::io::Error) -> DebError {
    DebError::Read {
        deb: deb.to_path_buf(),
        source,
    }
}

fn invalid(deb: &Path, reason: impl Into<String>) -> DebError {
    DebError::Invalid {
        deb: deb.to_path_buf(),
        reason: reason.into(),
    }
}

/// Packages built with dpkg-deb for tests here and in other crates.
#[cfg(any(test, feature = "test-fixtures"))]
#[allow(clippy::unwrap_used)] // a broken fixture is a test failure
pub mod fixtures {
    use std::process::Command;

    /// A `.deb` named `NAME.deb` in `dir`, built with dpkg-deb from (path,
    /// text) pairs; `DEBIAN/` paths are control files (`*inst` executable),
    /// and a minimal control file is added.
    pub fn deb_from_files(
        dir: &std::path::Path,
        name: &str,
        files: &[(&str, &str)],
    ) -> std::path::PathBuf {
        let root = dir.join(name);
        let control = format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: t\n"
        );
        for (path, body) in [("DEBIAN/control", control.as_str())].iter().chain(files) {
            let mode = if path.ends_with("inst") { 0o755 } else { 0o644 };
            write_file(&root, path, body.as_bytes(), mode);
        }
        let deb = dir.join(format!("{name}.deb"));
        dpkg_deb_build(&root, &deb, &[]);
        deb
    }

    /// Writes `root/rel` with `body` and `mode`, creating its directories.
    fn write_file(root: &std::path::Path, rel: &str, body: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// `dpkg-deb --root-owner-group [ARGS] --build ROOT DEB`, which must succeed.
    pub fn dpkg_deb_build(root: &std::path::Path, deb: &std::path::Path, args: &[&str]) {
        let status = Command::new("dpkg-deb")
            .arg("--root-owner-group")
            .args(args)
            .arg("--build")
            .arg(root)
            .arg(deb)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("dpkg-deb is needed for these tests");
        assert!(status.success());
    }

    /// A small `.deb` built with dpkg-deb: setuid, hardlinks, a merged-/usr
    /// move, a symlink and a long name (`compression` as dpkg-deb's `-Z`).
    pub fn sample_deb(compression: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("pkg");
        let write = |rel: &str, body: &[u8], mode: u32| write_file(&root, rel, body, mode);
        write(
            "DEBIAN/control",
            b"Package: sample\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: sample\n",
            0o644,
        );
        write("DEBIAN/postinst", b"#!/bin/sh\nexit 0\n", 0o755);
        write("DEBIAN/md5sums", b"0123  usr/bin/suid\n", 0o644);
        write("bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
        write("usr/bin/suid", b"suid", 0o4755);
        write("usr/share/doc/sample/zz-data", b"shared inode", 0o644);
        std::fs::hard_link(
            root.join("usr/share/doc/sample/zz-data"),
            root.join("usr/share/doc/sample/aa-link"),
        )
        .unwrap();
        // After the merged-/usr rewrite this hardlink sorts before its target.
        std::fs::hard_link(root.join("bin/tool"), root.join("usr/bin/a-tool")).unwrap();
        symlink("../../bin/tool", root.join("usr/bin/tool-link")).unwrap();
        let long = format!("usr/share/{}/file.txt", "d".repeat(120));
        write(&long, b"long", 0o644);
        let deb = tmp.path().join("sample_1.0_all.deb");
        dpkg_deb_build(&root, &deb, &[&format!("-Z{compression}")]);
        (tmp, deb)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::sample_deb;
    use super::*;

    #[test]
    fn normalize_makes_paths_relative_and_merges_usr() {
        let cases = [
            ("./usr/bin/x", Some("usr/bin/x")),
            ("usr//share/./doc/", Some("usr/share/doc")),
            ("./bin/ls", Some("usr/bin/ls")),
            ("./sbin/init", Some("usr/sbin/init")),
            (
                "./lib/x86_64-linux-gnu/libc.so.6",
                Some("usr/lib/x86_64-linux-gnu/libc.so.6"),
            ),
            (
                "./lib64/ld-linux-x86-64.so.2",
                Some("usr/lib64/ld-linux-x86-64.so.2"),
            ),
            ("./libx32/a", Some("usr/libx32/a")),
            ("./lib32/a", Some("usr/lib32/a")),
            ("./library/a", Some("library/a")),
            ("./bin/", None),
            ("./lib64", None),
            ("./", None),
            (".", None),
            ("./etc/binfmt", Some("etc/binfmt")),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw).unwrap().as_deref(), want, "{raw}");
        }
        assert!(normalize_path("../evil").is_err());
        assert!(normalize_path("./usr/../../evil").is_err());
        assert!(normalize_path("/etc/passwd").is_err());
    }

    #[test]
    fn visit_yields_normalised_entries_for_every_compression() {
        for comp in ["gzip", "xz", "zstd", "none"] {
            let (_tmp, deb) = sample_deb(comp);
            let mut seen = BTreeMap::new();
            visit_data(&deb, |e, r| {
                let mut body = Vec::new();
                r.read_to_end(&mut body)?;
                seen.insert(e.path.clone(), (e.kind.clone(), e.mode, body));
                Ok::<(), DebError>(())
            })
            .unwrap();
            assert!(
                !seen.keys().any(|p| p == "bin" || p.starts_with("bin/")),
                "{comp}"
            );
            let tool = &seen["usr/bin/tool"];
            assert_eq!(
                (tool.1, tool.2.as_slice()),
                (0o755, &b"#!/bin/sh\necho tool\n"[..])
            );
            assert_eq!(seen["usr/bin/suid"].1, 0o4755);
            assert_eq!(
                seen["usr/bin/tool-link"].0,
                EntryKind::Symlink {
                    target: "../../bin/tool".into()
                }
            );
            let long = format!("usr/share/{}/file.txt", "d".repeat(120));
            assert_eq!(seen[&long].2, b"long");
            let links = seen
                .values()
                .filter(|v| matches!(v.0, EntryKind::Hardlink { .. }));
            assert_eq!(links.count(), 2, "{comp}");
        }
    }

    #[test]
    fn read_control_returns_control_and_scripts() {
        let (_tmp, deb) = sample_deb("xz");
        let files = read_control(&deb).unwrap();
        assert!(files.control.starts_with("Package: sample\n"));
        assert!(files.md5sums.is_some());
        assert_eq!(files.conffiles, None);
        assert_eq!(files.other["postinst"], b"#!/bin/sh\nexit 0\n");
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error(transparent)]
        Deb(#[from] DebError),
        #[error(transparent)]
        Store(#[from] StoreError),
    }

    #[test]
    fn read_deb_verified_returns_control_and_data_then_checks_the_whole_file() {
        let (_tmp, deb) = sample_deb("xz");
        let sha = cairn_store::sha256_file(&deb).unwrap();
        let mut paths = Vec::new();
        let control = read_deb_verified(&deb, &sha, |e, _| {
            paths.push(e.path.clone());
            Ok::<(), TestError>(())
        })
        .unwrap();
        assert!(control.control.starts_with("Package: sample\n"));
        assert!(paths.iter().any(|p| p == "usr/bin/tool"), "{paths:?}");

        let wrong = cairn_store::sha256_hex(b"another package");
        let mut visited = 0;
        let err = read_deb_verified(&deb, &wrong, |_, _| {
            visited += 1;
            Ok::<(), TestError>(())
        })
        .unwrap_err();
        assert!(visited > 0, "the check streams with the read");
        assert!(
            matches!(&err, TestError::Store(StoreError::DigestMismatch { path, expected, .. }) if path == &deb && expected == &wrong),
            "{err}"
        );
        assert!(!deb.exists(), "a mismatching .deb is evicted");
    }

    /// `bytes` as one xz stream whose one block's check (CRC64) is wrong.
    fn xz_with_bad_check(bytes: &[u8]) -> Vec<u8> {
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        std::io::Write::write_all(&mut xz, bytes).unwrap();
        let mut xz = xz.finish().unwrap();
        // The stream footer (12 bytes) gives the index's size; the check's 8
        // bytes are just before the index.
        let footer = xz.len() - 12;
        let backward = u32::from_le_bytes(xz[footer + 4..footer + 8].try_into().unwrap());
        let index = (backward as usize + 1) * 4;
        xz[footer - index - 8] ^= 0xff;
        xz
    }

    /// xz's own check is skipped where the whole `.deb` is checked against
    /// a sha256 (it can only catch what the sha256 does), and kept where
    /// nothing else guards the bytes.
    #[test]
    fn xz_checks_are_left_to_the_sha256_only_where_one_is_checked() {
        let data = crate::testing::tar_of(&[("./usr/share/crc/file", b"contents".as_slice())]);
        let xz = xz_with_bad_check(&data);
        let deb = Path::new("crc.deb");
        let read_all = |integrity| {
            let mut out = Vec::new();
            decompress(deb, "data.tar.xz", ".xz", xz.as_slice(), integrity)
                .unwrap()
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert!(read_all(Integrity::Member).is_err(), "the CRC64 is checked");
        assert_eq!(read_all(Integrity::Sha256).unwrap(), data);

        let tmp = tempfile::tempdir().unwrap();
        let deb = tmp.path().join("crc.deb");
        let control =
            crate::testing::tar_of(&[("./control", b"Package: crc\nVersion: 1\n".as_slice())]);
        crate::testing::write_deb_members(&deb, [("control.tar", control), ("data.tar.xz", xz)]);
        let sha = cairn_store::sha256_file(&deb).unwrap();
        let mut seen = Vec::new();
        read_deb_verified(&deb, &sha, |entry, reader| {
            let mut body = Vec::new();
            reader
                .read_to_end(&mut body)
                .map_err(|e| read_error(&deb, e))?;
            seen.push((entry.path.clone(), body));
            Ok::<(), TestError>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [("usr/share/crc/file".to_owned(), b"contents".to_vec())]
        );
    }

    /// A substituted package whose content also breaks the visitor is
    /// reported as substituted: the digest is the root cause.
    #[test]
    fn a_mismatch_wins_over_the_visitors_own_error() {
        let (_tmp, deb) = sample_deb("gzip");
        let wrong = cairn_store::sha256_hex(b"locked");
        let err = read_deb_verified(&deb, &wrong, |_, _| {
            Err::<(), TestError>(invalid(Path::new("x"), "visitor gave up").into())
        })
        .unwrap_err();
        assert!(
            matches!(err, TestError::Store(StoreError::DigestMismatch { .. })),
            "{err}"
        );
    }

    /// Crafted tar streams: a header built by hand, then a body that may
    /// be far larger than anything that should be read (made lazily).
    mod crafted {
        use super::super::*;
        use std::io::Read;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};

        /// Counts the bytes the reader under test pulled.
        pub struct Counted<R>(pub R, pub Arc<AtomicU64>);
        impl<R: Read> Read for Counted<R> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
        }

        pub fn header(kind: tar::EntryType, path: &str, size: u64) -> Vec<u8> {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_path(path).unwrap();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_cksum();
            header.as_bytes().to_vec()
        }

        /// A PAX extended header carrying `records` (`key=value` each).
        pub fn pax(records: &[(&str, &str)]) -> Vec<u8> {
            let mut body = Vec::new();
            for (key, value) in records {
                let rest = format!(" {key}={value}\n");
                // The length prefix counts itself.
                let mut len = rest.len() + 1;
                while format!("{len}{rest}").len() != len {
                    len += 1;
                }
                body.extend_from_slice(format!("{len}{rest}").as_bytes());
            }
            let mut out = header(tar::EntryType::XHeader, "./PaxHeaders/x", body.len() as u64);
            out.extend_from_slice(&padded(body));
            out
        }

        pub fn padded(mut body: Vec<u8>) -> Vec<u8> {
            body.resize(body.len().div_ceil(512) * 512, 0);
            body
        }

        pub fn end() -> Vec<u8> {
            vec![0; 1024]
        }

        /// Walks `stream` as data.tar of `pkg_1.0_all.deb`; the normalised
        /// paths and link targets seen (contents read whole), or the error,
        /// and how many bytes of the stream were read.
        pub fn walk(stream: impl Read, limits: &Limits) -> (Result<Vec<String>, DebError>, u64) {
            let read = Arc::new(AtomicU64::new(0));
            let mut counted = Counted(stream, read.clone());
            let deb = Path::new("/cache/pkg_1.0_all.deb");
            let mut seen = Vec::new();
            let result = walk_tar(deb, "data.tar", &mut counted, limits, |entry, names| {
                if let Some(meta) = normalize_entry(deb, entry, &names)? {
                    let mut exact = Exact {
                        inner: entry,
                        left: meta.size,
                        path: &meta.path,
                    };
                    let mut body = Vec::new();
                    exact
                        .read_to_end(&mut body)
                        .map_err(|e| read_error(deb, e))?;
                    let link = match &meta.kind {
                        EntryKind::Symlink { target } => format!(" -> {target}"),
                        _ => String::new(),
                    };
                    seen.push(format!("{}{link}", meta.path));
                }
                Ok::<(), DebError>(())
            });
            (result.map(|()| seen), read.load(Ordering::Relaxed))
        }
    }

    fn too_large_reason(result: Result<Vec<String>, DebError>) -> String {
        let err = result.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("pkg_1.0_all.deb"),
            "names the package: {text}"
        );
        match err {
            DebError::TooLarge { reason, .. } => reason,
            other => panic!("not TooLarge: {other}"),
        }
    }

    #[test]
    fn an_absurd_gnu_long_name_is_refused_before_it_is_read() {
        use crafted::*;
        let size = 256 << 20;
        let stream =
            std::io::Cursor::new(header(tar::EntryType::GNULongName, "././@LongLink", size))
                .chain(std::io::repeat(b'a').take(size));
        let (result, read) = walk(stream, &Limits::DEFAULT);
        assert!(too_large_reason(result).contains("GNU long name of 268435456 bytes"));
        assert!(read < 1 << 20, "read {read} bytes of a hostile long name");
    }

    #[test]
    fn a_huge_pax_header_is_refused_before_it_is_read() {
        use crafted::*;
        let size = 512 << 20;
        let stream = std::io::Cursor::new(header(tar::EntryType::XHeader, "./PaxHeaders/x", size))
            .chain(std::io::repeat(b'9').take(size));
        let (result, read) = walk(stream, &Limits::DEFAULT);
        assert!(too_large_reason(result).contains("PAX header"));
        assert!(read < 1 << 20, "read {read} bytes of a hostile PAX header");
    }

    #[test]
    fn long_names_from_gnu_and_pax_headers_name_the_next_entry() {
        use crafted::*;
        let long = format!("./usr/share/{}/f", "d".repeat(200));
        let mut stream = header(
            tar::EntryType::GNULongName,
            "././@LongLink",
            long.len() as u64 + 1,
        );
        stream.extend(padded(format!("{long}\0").into_bytes()));
        stream.extend(header(tar::EntryType::Regular, "./truncated-name", 2));
        stream.extend(padded(b"hi".to_vec()));
        stream.extend(pax(&[
            ("path", "./usr/bin/from-pax"),
            ("linkpath", "target-from-pax"),
        ]));
        stream.extend(header(tar::EntryType::Symlink, "./short", 0));
        stream.extend(end());
        let (result, _) = walk(std::io::Cursor::new(stream), &Limits::DEFAULT);
        assert_eq!(
            result.unwrap(),
            [
                long.trim_start_matches("./").to_owned(),
                "usr/bin/from-pax -> target-from-pax".to_owned()
            ]
        );
    }

    #[test]
    fn a_size_past_the_end_of_the_archive_is_an_error_naming_entry_and_package() {
        use crafted::*;
        let mut stream = header(tar::EntryType::Regular, "./usr/bin/tool", 10 << 20);
        stream.extend(vec![b'x'; 100]);
        let (result, _) = walk(std::io::Cursor::new(stream), &Limits::DEFAULT);
        let text = result.unwrap_err().to_string();
        assert!(text.contains("pkg_1.0_all.deb"), "{text}");
        assert!(text.contains("'usr/bin/tool' is cut short"), "{text}");
    }

    #[test]
    fn too_many_entries_and_odd_headers_are_refused() {
        use crafted::*;
        let mut many = Vec::new();
        for i in 0..20 {
            many.extend(header(tar::EntryType::Regular, &format!("./f{i}"), 0));
        }
        many.extend(end());
        let limits = Limits {
            entries: 10,
            ..Limits::DEFAULT
        };
        let (result, _) = walk(std::io::Cursor::new(many.clone()), &limits);
        assert!(too_large_reason(result).contains("more than 10 entries"));
        assert_eq!(
            walk(std::io::Cursor::new(many), &Limits::DEFAULT)
                .0
                .unwrap()
                .len(),
            20
        );

        let mut resized = pax(&[("size", "99999999999")]);
        resized.extend(header(tar::EntryType::Regular, "./big", 0));
        resized.extend(end());
        let text = walk(std::io::Cursor::new(resized), &Limits::DEFAULT)
            .0
            .unwrap_err()
            .to_string();
        assert!(text.contains("PAX size of 99999999999 bytes"), "{text}");

        let mut sparse = header(tar::EntryType::GNUSparse, "./holes", 0);
        sparse.extend(end());
        let text = walk(std::io::Cursor::new(sparse), &Limits::DEFAULT)
            .0
            .unwrap_err()
            .to_string();
        assert!(text.contains("GNU sparse file"), "{text}");

        let mut dangling = pax(&[("path", "./x")]);
        dangling.extend(end());
        let text = walk(std::io::Cursor::new(dangling), &Limits::DEFAULT)
            .0
            .unwrap_err()
            .to_string();
        assert!(text.contains("no entry after it"), "{text}");
    }

    /// The same bounds hold for a whole `.deb` (ar + control.tar +
    /// data.tar), control files included, and the error names the file.
    #[test]
    fn a_crafted_deb_with_a_bomb_in_either_tar_is_refused_by_name() {
        use crafted::*;
        fn deb_with(control: Vec<u8>, data: Vec<u8>) -> (tempfile::TempDir, std::path::PathBuf) {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("bomb_1.0_all.deb");
            crate::testing::write_raw_deb(&path, control, data);
            (tmp, path)
        }
        let mut control = header(tar::EntryType::Regular, "./control", 17);
        control.extend(padded(b"Package: bomb\n\n\n".to_vec()));
        control.extend(end());
        // A long name claiming 1 GiB, with a few bytes behind it.
        let mut data = header(tar::EntryType::GNULongName, "././@LongLink", 1 << 30);
        data.extend(vec![b'a'; 4096]);
        let (_tmp, deb) = deb_with(control.clone(), data);
        let err = visit_data(&deb, |_, _| Ok::<(), DebError>(())).unwrap_err();
        assert!(matches!(err, DebError::TooLarge { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("bomb_1.0_all.deb: data.tar is too large"),
            "{err}"
        );

        let mut postinst = header(tar::EntryType::Regular, "./postinst", 100 << 20);
        postinst.extend(vec![b'#'; 4096]);
        let mut hostile = control.clone();
        hostile.truncate(hostile.len() - 1024);
        hostile.extend(postinst);
        let (_tmp, deb) = deb_with(hostile, end());
        let err = read_control(&deb).unwrap_err().to_string();
        assert!(
            err.contains("control file 'postinst' of 104857600 bytes"),
            "{err}"
        );
    }

    #[test]
    fn not_a_deb_is_reported_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let bogus = tmp.path().join("bogus.deb");
        std::fs::write(&bogus, b"hello").unwrap();
        let err = visit_data(&bogus, |_, _| Ok::<(), DebError>(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus.deb"), "{err}");
    }
}
