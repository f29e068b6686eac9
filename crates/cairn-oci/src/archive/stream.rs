//! The archive's bytes as a stream of large buffers, produced on one thread
//! and written on another.
//!
//! A warm containerize is mostly copying cached layer blobs into the archive,
//! and every blob is hashed on the way out (the cache's trust model,
//! `cairn_store::verify`). Done with `tar::Builder` and `io::copy`, that was
//! 8 KiB reads, each hashed and then written, one after the other on one
//! thread. Here the producer reads each blob straight into a 256 KiB buffer
//! and hashes it there, while the caller's thread writes the buffers before
//! it: the bytes hashed are the bytes written (one read, no second pass), and
//! hashing, the larger cost, overlaps writing on a second core.
//!
//! A buffer holding the end of a blob is handed over only once the blob has
//! matched its digest, so a corrupt blob never reaches the output whole: the
//! stream stops inside its entry, and whoever reads a pipe sees a truncated
//! archive rather than a well-formed one carrying a bad blob.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use crate::{OciError, Result};

/// Bytes per buffer: large enough that syscalls and channel hand-offs are
/// few (about 300 for the flask image), small enough to stay in cache
/// between the read, the hash and the write.
const CHUNK: usize = 256 * 1024;
/// Full buffers the producer may run ahead of the writer; with the one being
/// filled and the one being written, memory stays around 1.5 MiB.
const AHEAD: usize = 4;

/// A filled buffer and how much of it is filled.
type Filled = (Box<[u8]>, usize);

/// The producer's side: bytes go into the current buffer, which is handed to
/// the writer only when more room is needed (or at the end), never as soon
/// as it is full; see [`Chunks::copy_verified`] for why.
pub(super) struct Chunks {
    buf: Box<[u8]>,
    len: usize,
    full: SyncSender<Filled>,
    spare: Receiver<Box<[u8]>>,
}

impl Chunks {
    /// Free space in the current buffer, handing it over first if it is full.
    fn room(&mut self) -> io::Result<&mut [u8]> {
        if self.len == self.buf.len() {
            self.hand_over()?;
        }
        Ok(&mut self.buf[self.len..])
    }

    fn hand_over(&mut self) -> io::Result<()> {
        // The writer returns written buffers; a new one is only needed while
        // it has not returned any yet (at most AHEAD + 2 exist at once).
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| vec![0; CHUNK].into_boxed_slice());
        let full = std::mem::replace(&mut self.buf, next);
        let len = std::mem::take(&mut self.len);
        self.full
            .send((full, len))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the archive writer stopped"))
    }

    /// Copies exactly `size` bytes of `reader` (a blob being verified, see
    /// `cairn_store::VerifyingReader`) into the stream, reading straight into
    /// the buffers, then reads once more to reach end of file, which is where
    /// the verifying reader compares the digest. Only after that can the
    /// buffer holding the last bytes be handed over.
    pub(super) fn copy_verified(&mut self, reader: &mut impl Read, size: u64) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            let room = self.room()?;
            let want = room.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match reader.read(&mut room[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the blob ended {left} bytes early"),
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.len += n;
            left -= n as u64;
        }
        let mut probe = [0u8; 1];
        loop {
            match reader.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the blob grew past its {size} bytes while it was read"),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Hands over what is left.
    fn finish(mut self) -> io::Result<()> {
        if self.len > 0 {
            self.hand_over()?;
        }
        Ok(())
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = self.room()?;
        let n = room.len().min(bytes.len());
        room[..n].copy_from_slice(&bytes[..n]);
        self.len += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `produce` on a thread of its own and writes what it produces to
/// `out` on this one, in order. The first error wins: a failed write stops
/// the producer, and a producer's error (a corrupt blob) stops the stream
/// where it was.
pub(super) fn stream<W: Write>(
    out: &mut W,
    produce: impl FnOnce(&mut Chunks) -> Result<()> + Send,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Filled>(AHEAD);
        let (spare_tx, spare_rx) = channel();
        let producer = scope.spawn(move || {
            let mut chunks = Chunks {
                buf: vec![0; CHUNK].into_boxed_slice(),
                len: 0,
                full: full_tx,
                spare: spare_rx,
            };
            produce(&mut chunks)?;
            chunks.finish().map_err(OciError::from)
        });
        let mut written = Ok(());
        // On a failed write the receiver drops with the loop, so the
        // producer's next hand-over fails and it stops.
        for (buf, len) in full_rx {
            if let Err(e) = out.write_all(&buf[..len]) {
                written = Err(e);
                break;
            }
            // Only fails once the producer is done: nothing left to reuse.
            let _ = spare_tx.send(buf);
        }
        let produced = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // A producer that failed on its own stopped first; one that failed
        // because the writer did only reports that nobody was reading.
        written?;
        produced
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes `limit` bytes and then fails, like a full disk.
    struct Failing {
        taken: Vec<u8>,
        limit: usize,
    }

    impl Write for Failing {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.taken.len() + bytes.len() > self.limit {
                return Err(io::Error::other("disk full"));
            }
            self.taken.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_arrive_in_order_across_many_buffers() {
        let body: Vec<u8> = (0..3 * CHUNK + 123).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        stream(&mut out, |chunks| {
            chunks.write_all(b"head")?;
            chunks.copy_verified(&mut body.as_slice(), body.len() as u64)?;
            chunks.write_all(b"tail")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(&out[..4], b"head");
        assert_eq!(&out[4..4 + body.len()], body.as_slice());
        assert_eq!(&out[4 + body.len()..], b"tail");
    }

    #[test]
    fn a_short_or_grown_source_is_an_error() {
        let body = vec![7u8; 1000];
        let short = stream(&mut io::sink(), |chunks| {
            Ok(chunks.copy_verified(&mut body.as_slice(), 1001)?)
        });
        assert!(short.unwrap_err().to_string().contains("1 bytes early"));
        let grown = stream(&mut io::sink(), |chunks| {
            Ok(chunks.copy_verified(&mut body.as_slice(), 999)?)
        });
        assert!(grown.unwrap_err().to_string().contains("grew"));
    }

    #[test]
    fn the_buffer_with_a_failing_blobs_end_is_never_written() {
        // A source whose final read (at end of file) fails, as a verifying
        // reader does on a digest mismatch.
        struct FailsAtEof(io::Cursor<Vec<u8>>);
        impl Read for FailsAtEof {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "digest mismatch",
                    )),
                    n => Ok(n),
                }
            }
        }
        // Exactly two buffers' worth: the end fills the second buffer.
        let body = vec![1u8; 2 * CHUNK];
        let mut out = Vec::new();
        let err = stream(&mut out, |chunks| {
            let mut source = FailsAtEof(io::Cursor::new(body.clone()));
            Ok(chunks.copy_verified(&mut source, body.len() as u64)?)
        })
        .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        assert_eq!(out.len(), CHUNK, "only the first buffer went out");
    }

    #[test]
    fn a_failed_write_stops_the_producer_and_is_reported() {
        let body = vec![3u8; 10 * CHUNK];
        let mut out = Failing {
            taken: Vec::new(),
            limit: 2 * CHUNK,
        };
        let err = stream(&mut out, |chunks| {
            Ok(chunks.copy_verified(&mut body.as_slice(), body.len() as u64)?)
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(out.taken.len(), 2 * CHUNK);
    }
}
