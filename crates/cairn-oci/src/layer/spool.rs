//! Where a layer's file contents wait between reading a package and writing
//! its sorted tar.
//!
//! A package's data.tar is read once, in archive order, but the layer wants
//! bytewise order (merged-/usr moves `bin/…` under `usr/`, and group layers
//! interleave packages), so contents are copied here as they stream past and
//! read back in tar order. The first few MiB stay in memory (most packages
//! never touch the disk); the rest goes to an unnamed temp file in the layer
//! bucket, which the kernel deletes when it is closed, even after a kill -9.
//! Reading a package twice instead (metadata, then data) would decompress
//! every xz data.tar twice, which costs far more than this sequential copy.
//! It does not decide the order (`tree.rs`) or write tars.

use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Where one entry's contents are in a [`Spool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spooled {
    in_memory: bool,
    offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// File contents of one layer, in memory up to a cap and on disk beyond it.
///
/// Copies to the file go through `copy_buf`, zeroed once: a `Read` without
/// `read_buf` (a tar entry) makes `io::copy` into a `BufWriter` zero the
/// writer's whole spare capacity on every call, 1 MiB per spooled file (37
/// ms of CPU on the flask example's cold build).
pub(crate) struct Spool {
    dir: PathBuf,
    memory: Vec<u8>,
    memory_cap: usize,
    file: Option<BufWriter<std::fs::File>>,
    file_len: u64,
    copy_buf: Vec<u8>,
}

/// Bytes per read when copying to the spool file, and the most a reader
/// of a spooled entry buffers.
const COPY_CHUNK: usize = 256 * 1024;

impl Spool {
    /// An empty spool keeping up to `memory_cap` bytes in memory and the rest
    /// in a temp file created in `dir` when first needed.
    pub fn new(dir: PathBuf, memory_cap: usize) -> Spool {
        Spool {
            dir,
            memory: Vec::new(),
            memory_cap,
            file: None,
            file_len: 0,
            copy_buf: Vec::new(),
        }
    }

    /// Copies exactly `len` bytes of `reader` in; a reader that ends early is
    /// an `UnexpectedEof` error.
    pub fn append(&mut self, reader: &mut dyn Read, len: u64) -> io::Result<Spooled> {
        let mut exact = exact(reader, len);
        let fits = usize::try_from(len)
            .ok()
            .filter(|n| self.memory.len() + n <= self.memory_cap);
        if let Some(n) = fits {
            let start = self.memory.len();
            if self.memory.capacity() < self.memory_cap {
                // Once, the whole cap: untouched pages cost nothing, and the
                // buffer never doubles past the cap.
                self.memory.reserve_exact(self.memory_cap - start);
            }
            // One exact read into place, with no probing reads. (Zeroing
            // first costs little: each byte is zeroed once, in cache.)
            self.memory.resize(start + n, 0);
            if let Err(e) = exact.read_exact(&mut self.memory[start..]) {
                self.memory.truncate(start);
                return Err(e);
            }
            return Ok(Spooled {
                in_memory: true,
                offset: start as u64,
                len,
            });
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let file = tempfile::tempfile_in(&self.dir).map_err(|e| {
                    io::Error::new(e.kind(), format!("spool in {}: {e}", self.dir.display()))
                })?;
                self.file.insert(BufWriter::with_capacity(1 << 20, file))
            }
        };
        if self.copy_buf.is_empty() {
            self.copy_buf = vec![0; COPY_CHUNK];
        }
        let offset = self.file_len;
        loop {
            let n = match exact.read(&mut self.copy_buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            file.write_all(&self.copy_buf[..n])?;
        }
        self.file_len += len;
        Ok(Spooled {
            in_memory: false,
            offset,
            len,
        })
    }

    /// Flushes what was appended, so [`Spool::reader`] sees it.
    pub fn seal(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    /// The contents of `entry` if the spool keeps them in memory.
    pub fn in_memory(&self, entry: Spooled) -> Option<&[u8]> {
        if !entry.in_memory {
            return None;
        }
        let start = usize::try_from(entry.offset).ok()?;
        let end = start.checked_add(usize::try_from(entry.len).ok()?)?;
        self.memory.get(start..end)
    }

    /// The contents of `entry`, after [`Spool::seal`].
    pub fn reader(&self, entry: Spooled) -> io::Result<Box<dyn Read + '_>> {
        let start = entry.offset;
        if entry.in_memory {
            let range = usize::try_from(start).ok().and_then(|s| {
                let end = s.checked_add(usize::try_from(entry.len).ok()?)?;
                self.memory.get(s..end)
            });
            let bytes = range.ok_or_else(|| io::Error::other("spool entry out of range"))?;
            return Ok(Box::new(bytes));
        }
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("spool entry without a spool file"))?
            .get_ref();
        let slice = FileSlice {
            file,
            pos: start,
            end: start + entry.len,
        };
        // Large reads: the tar writer asks for 8 KiB at a time. The buffer
        // is zeroed on first use, so it is no larger than the entry.
        let capacity = usize::try_from(entry.len).map_or(COPY_CHUNK, |n| n.clamp(1, COPY_CHUNK));
        Ok(Box::new(exact(
            io::BufReader::with_capacity(capacity, slice),
            entry.len,
        )))
    }
}

/// `len` bytes of `inner` exactly: reads stop there, and an early end is an
/// error rather than a silently short tar entry.
pub(crate) fn exact<R: Read>(inner: R, len: u64) -> Exact<R> {
    Exact {
        inner,
        remaining: len,
    }
}

/// See [`exact`].
pub(crate) struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("contents end {} bytes early", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A byte range of a file, read with positioned reads.
struct FileSlice<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl Read for FileSlice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let want = left.min(buf.len());
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(spool: &Spool, entry: Spooled) -> Vec<u8> {
        let mut out = Vec::new();
        spool.reader(entry).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn small_entries_stay_in_memory_and_large_ones_go_to_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(tmp.path().to_path_buf(), 10);
        let a = spool.append(&mut &b"hello"[..], 5).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let b = spool.append(&mut big.as_slice(), big.len() as u64).unwrap();
        let c = spool.append(&mut &b"abc"[..], 3).unwrap();
        let d = spool.append(&mut &b"overflow"[..], 8).unwrap();
        assert!(a.in_memory && c.in_memory && !b.in_memory && !d.in_memory);
        spool.seal().unwrap();
        assert_eq!(read_all(&spool, d), b"overflow");
        assert_eq!(read_all(&spool, b), big);
        assert_eq!(read_all(&spool, a), b"hello");
        assert_eq!(read_all(&spool, c), b"abc");
        // The temp file has no name: nothing is left in the directory.
        assert_eq!(fs_err::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_short_entry_is_an_error_not_a_short_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(tmp.path().to_path_buf(), 0);
        let err = spool.append(&mut &b"abc"[..], 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut long = exact(&b"abcdef"[..], 2);
        let mut out = Vec::new();
        long.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }
}
