//! Where a layer's file contents wait between reading a package and writing
//! its sorted tar.
//!
//! A package's data.tar is read once, in archive order, but the layer wants
//! bytewise order (merged-/usr moves `bin/…` under `usr/`, and group layers
//! interleave packages), so contents are copied here as they stream past and
//! read back in tar order. Contents stay in memory in segments drawn from a
//! [`MemoryBudget`] that every layer built at the same time shares (so a
//! large group layer keeps what a small package would leave unused, and
//! memory stays bounded however many cores build); what the budget cannot
//! hold goes to an unnamed temp file in the layer bucket, which the kernel
//! deletes when it is closed, even after a kill -9. Where contents wait never
//! changes the layer's bytes.
//! Reading a package twice instead (metadata, then data) would decompress
//! every xz data.tar twice, which costs far more than this sequential copy.
//! It does not decide the order (`tree.rs`) or write tars.

use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where one entry's contents are in a [`Spool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spooled {
    place: Place,
    /// Length in bytes.
    pub len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In memory segment `segment`, from `offset`.
    Memory { segment: usize, offset: usize },
    /// In the spool file, from `offset`.
    File { offset: u64 },
}

/// Memory that spools borrow in segments of `segment_len` bytes, at most
/// `segments` lent at once; a spool gives its segments back when dropped.
pub(crate) struct MemoryBudget {
    segment_len: usize,
    left: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `segments` segments of `segment_len` bytes each.
    pub const fn new(segment_len: usize, segments: usize) -> MemoryBudget {
        MemoryBudget {
            segment_len,
            left: AtomicUsize::new(segments),
        }
    }

    /// Takes one segment, if any is left.
    fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    fn give_back(&self, segments: usize) {
        self.left.fetch_add(segments, Ordering::AcqRel);
    }
}

/// File contents of one layer, in memory segments while the budget lasts and
/// on disk beyond it.
///
/// Copies to the file go through `copy_buf`, zeroed once: a `Read` without
/// `read_buf` (a tar entry) makes `io::copy` into a `BufWriter` zero the
/// writer's whole spare capacity on every call, 1 MiB per spooled file (37
/// ms of CPU on the flask example's cold build).
pub(crate) struct Spool<'b> {
    dir: PathBuf,
    budget: &'b MemoryBudget,
    /// Filled in order; an entry that does not fit in the last one starts the
    /// next, leaving the tail unused.
    segments: Vec<Vec<u8>>,
    file: Option<BufWriter<std::fs::File>>,
    file_len: u64,
    copy_buf: Vec<u8>,
}

/// Bytes per read when copying to the spool file, and the most a reader
/// of a spooled entry buffers.
const COPY_CHUNK: usize = 256 * 1024;

impl<'b> Spool<'b> {
    /// An empty spool keeping contents in segments of `budget` while it
    /// lasts, and the rest in a temp file created in `dir` when first needed.
    pub fn new(dir: PathBuf, budget: &'b MemoryBudget) -> Spool<'b> {
        Spool {
            dir,
            budget,
            segments: Vec::new(),
            file: None,
            file_len: 0,
            copy_buf: Vec::new(),
        }
    }

    /// Copies exactly `len` bytes of `reader` in; a reader that ends early is
    /// an `UnexpectedEof` error.
    pub fn append(&mut self, reader: &mut dyn Read, len: u64) -> io::Result<Spooled> {
        let mut exact = exact(reader, len);
        let room = usize::try_from(len)
            .ok()
            .and_then(|n| Some((self.segment_with_room(n)?, n)));
        if let Some((segment, n)) = room {
            let memory = &mut self.segments[segment];
            let start = memory.len();
            // One exact read into place, with no probing reads. (Zeroing
            // first costs little: each byte is zeroed once, in cache.)
            memory.resize(start + n, 0);
            if let Err(e) = exact.read_exact(&mut memory[start..]) {
                memory.truncate(start);
                return Err(e);
            }
            return Ok(Spooled {
                place: Place::Memory {
                    segment,
                    offset: start,
                },
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
            place: Place::File { offset },
            len,
        })
    }

    /// The segment an `n`-byte entry goes to: the last one if it has room,
    /// else a new one while the budget lasts.
    fn segment_with_room(&mut self, n: usize) -> Option<usize> {
        let segment_len = self.budget.segment_len;
        if let Some(last) = self.segments.last()
            && last.len().checked_add(n)? <= segment_len
        {
            return Some(self.segments.len() - 1);
        }
        if n > segment_len || !self.budget.take() {
            return None;
        }
        // The whole segment at once: untouched pages cost nothing, and it
        // never reallocates.
        self.segments.push(Vec::with_capacity(segment_len));
        Some(self.segments.len() - 1)
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
        let Place::Memory { segment, offset } = entry.place else {
            return None;
        };
        let end = offset.checked_add(usize::try_from(entry.len).ok()?)?;
        self.segments.get(segment)?.get(offset..end)
    }

    /// The contents of `entry`, after [`Spool::seal`].
    pub fn reader(&self, entry: Spooled) -> io::Result<Box<dyn Read + '_>> {
        let start = match entry.place {
            Place::File { offset } => offset,
            Place::Memory { .. } => {
                let bytes = self
                    .in_memory(entry)
                    .ok_or_else(|| io::Error::other("spool entry out of range"))?;
                return Ok(Box::new(bytes));
            }
        };
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

impl Drop for Spool<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.segments.len());
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
        let budget = MemoryBudget::new(10, 1);
        let mut spool = Spool::new(tmp.path().to_path_buf(), &budget);
        let a = spool.append(&mut &b"hello"[..], 5).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let b = spool.append(&mut big.as_slice(), big.len() as u64).unwrap();
        let c = spool.append(&mut &b"abc"[..], 3).unwrap();
        let d = spool.append(&mut &b"overflow"[..], 8).unwrap();
        let in_memory = |e: Spooled| spool.in_memory(e).is_some();
        assert!(in_memory(a) && in_memory(c) && !in_memory(b) && !in_memory(d));
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
        let budget = MemoryBudget::new(0, 0);
        let mut spool = Spool::new(tmp.path().to_path_buf(), &budget);
        let err = spool.append(&mut &b"abc"[..], 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut long = exact(&b"abcdef"[..], 2);
        let mut out = Vec::new();
        long.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn spools_share_the_budget_and_give_it_back_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let budget = MemoryBudget::new(4, 3);
        let mut first = Spool::new(tmp.path().to_path_buf(), &budget);
        // Two segments: the second entry does not fit after the first.
        let a = first.append(&mut &b"abc"[..], 3).unwrap();
        let b = first.append(&mut &b"defg"[..], 4).unwrap();
        assert!(first.in_memory(a).is_some() && first.in_memory(b).is_some());
        let mut second = Spool::new(tmp.path().to_path_buf(), &budget);
        let c = second.append(&mut &b"hi"[..], 2).unwrap();
        // The budget is spent: the next segment's worth goes to the file.
        let d = second.append(&mut &b"jklm"[..], 4).unwrap();
        assert!(second.in_memory(c).is_some() && second.in_memory(d).is_none());
        second.seal().unwrap();
        assert_eq!(read_all(&second, d), b"jklm");
        assert_eq!(read_all(&first, b), b"defg");
        drop(first);
        let mut third = Spool::new(tmp.path().to_path_buf(), &budget);
        let e = third.append(&mut &b"nopq"[..], 4).unwrap();
        assert_eq!(third.in_memory(e), Some(&b"nopq"[..]));
        drop((second, third));
        assert_eq!(budget.left.load(Ordering::Acquire), 3);
    }

    #[test]
    fn a_failed_read_leaves_the_segment_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let budget = MemoryBudget::new(16, 1);
        let mut spool = Spool::new(tmp.path().to_path_buf(), &budget);
        let a = spool.append(&mut &b"abc"[..], 3).unwrap();
        spool.append(&mut &b"de"[..], 4).unwrap_err();
        let b = spool.append(&mut &b"fgh"[..], 3).unwrap();
        assert_eq!(spool.in_memory(a), Some(&b"abc"[..]));
        assert_eq!(spool.in_memory(b), Some(&b"fgh"[..]));
    }
}
