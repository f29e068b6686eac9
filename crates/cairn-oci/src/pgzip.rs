//! Gzip on every core, with output that depends only on the input: pigz's
//! method. The input is cut into fixed 1 MiB chunks; each is deflated on its
//! own (primed with the 32 KiB before it as the dictionary, so matches still
//! reach back) and ends in a sync flush, the last in a final block; the raw
//! deflate pieces are joined under one gzip header and trailer.
//!
//! [`GzipWriter`] does this on a stream: it holds a small batch of chunks,
//! deflates the batch on rayon's pool (the calling thread takes part, so a
//! layer built on a pool thread never waits on a blocked pool), writes the
//! pieces in order, and moves on. Memory stays at a few MiB per layer
//! whatever the layer's size, and the bytes are those of deflating the whole
//! input at once, since the cut points and dictionaries are the same.
//!
//! Hand-written on flate2's `Compress` (zlib-rs) because the crates that do
//! parallel gzip (gzp) bring their own deflate backends and thread pools,
//! while layers must keep flate2 + zlib-rs and share rayon's pool. The chunk
//! size and level are part of cairn's layer format: changing either changes
//! every layer digest.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

/// Bytes of input per independently deflated piece.
pub(crate) const CHUNK: usize = 1 << 20;
/// Deflate's window: how far back a match may reach.
const WINDOW: usize = 32 * 1024;
/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown), as the single
/// stream encoder wrote it, so the header carries no time or host.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A gzip stream whose bytes are those of [`write_gzip`] over everything
/// written to it, holding at most a batch of chunks (two per pool thread).
pub(crate) struct GzipWriter<W: Write> {
    out: W,
    level: u32,
    batch: usize,
    /// Full chunks waiting to be deflated; more input followed each of them,
    /// so none is the last.
    full: Vec<Vec<u8>>,
    /// The chunk being filled; the last one if the stream ends now.
    current: Vec<u8>,
    /// The 32 KiB of input before `full[0]` (or `current`): its dictionary.
    window: Vec<u8>,
    /// Emptied chunk buffers, reused so a long stream allocates once.
    spare: Vec<Vec<u8>>,
    crc: flate2::Crc,
    total: u64,
}

impl<W: Write> GzipWriter<W> {
    /// Starts a gzip stream at `level` on `out`, writing its header.
    pub fn new(mut out: W, level: u32) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        Ok(GzipWriter {
            out,
            level,
            batch: (2 * rayon::current_num_threads()).max(2),
            full: Vec::new(),
            current: Vec::with_capacity(CHUNK),
            window: Vec::new(),
            spare: Vec::new(),
            crc: flate2::Crc::new(),
            total: 0,
        })
    }

    /// Deflates what is left, the last chunk with a final block, writes the
    /// trailer and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        let last = std::mem::take(&mut self.current);
        self.full.push(last);
        self.deflate_full(true)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        // ISIZE is the length modulo 2^32 (RFC 1952).
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.out)
    }

    /// Deflates `full` in parallel and writes the pieces in order; with
    /// `ends`, its last chunk ends the stream.
    fn deflate_full(&mut self, ends: bool) -> io::Result<()> {
        let (full, window, level) = (&self.full, &self.window, self.level);
        let count = full.len();
        let pieces: Vec<io::Result<Vec<u8>>> = (0..count)
            .into_par_iter()
            .with_max_len(1)
            .map(|i| {
                let dictionary = match i {
                    0 => window.as_slice(),
                    _ => tail(&full[i - 1]),
                };
                deflate_piece(dictionary, &full[i], ends && i + 1 == count, level)
            })
            .collect();
        for piece in pieces {
            self.out.write_all(&piece?)?;
        }
        if let Some(last) = self.full.last() {
            self.window.clear();
            self.window.extend_from_slice(tail(last));
        }
        for mut chunk in self.full.drain(..) {
            chunk.clear();
            self.spare.push(chunk);
        }
        Ok(())
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.current.len() == CHUNK {
                // More input follows, so this chunk is not the last.
                let fresh = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(CHUNK));
                let chunk = std::mem::replace(&mut self.current, fresh);
                self.full.push(chunk);
                if self.full.len() == self.batch {
                    self.deflate_full(false)?;
                }
            }
            let take = (CHUNK - self.current.len()).min(rest.len());
            self.current.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        self.crc.update(buf);
        self.total += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Pieces are cut at fixed offsets, so a flush cannot end one early.
        self.out.flush()
    }
}

/// The last [`WINDOW`] bytes of a chunk: the next chunk's dictionary.
fn tail(chunk: &[u8]) -> &[u8] {
    &chunk[chunk.len().saturating_sub(WINDOW)..]
}

/// Writes `data` gzipped at `level` to `out` in one call, deflating chunks in
/// parallel: the whole-buffer form, kept as the reference [`GzipWriter`] is
/// tested against.
#[cfg(test)]
pub fn write_gzip(data: &[u8], level: u32, out: &mut impl Write) -> io::Result<()> {
    let pieces = data.len().div_ceil(CHUNK).max(1);
    let deflated: Vec<io::Result<Vec<u8>>> = (0..pieces)
        .into_par_iter()
        .with_max_len(1)
        .map(|i| {
            let start = i * CHUNK;
            let input = &data[start..(start + CHUNK).min(data.len())];
            let dictionary = &data[start.saturating_sub(WINDOW)..start];
            deflate_piece(dictionary, input, i + 1 == pieces, level)
        })
        .collect();
    out.write_all(&HEADER)?;
    for piece in deflated {
        out.write_all(&piece?)?;
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    Ok(())
}

/// Raw deflate of one chunk, primed with the window before it (empty for
/// the first chunk).
///
/// A fresh deflate state and output buffer per piece, on purpose: zlib-rs's
/// `reset` keeps the old window's bytes, and `set_dictionary` hashes one
/// byte past the dictionary, so a reused state's output depended on the
/// piece its thread deflated before (`pieces_do_not_depend_on_what_ran_before`);
/// and a reused buffer would offer the deflater output space that depends
/// on earlier pieces, which no test can show to be harmless for every input.
fn deflate_piece(dictionary: &[u8], input: &[u8], last: bool, level: u32) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(Compression::new(level), false);
    deflate_into(&mut deflate, dictionary, input, last)
}

fn deflate_into(
    deflate: &mut Compress,
    dictionary: &[u8],
    mut input: &[u8],
    last: bool,
) -> io::Result<Vec<u8>> {
    if !dictionary.is_empty() {
        deflate
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        input = &input[(deflate.total_in() - before) as usize..];
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(out),
            // zlib's rule: a flush is complete once it returns with input
            // consumed and output space to spare.
            _ if !last && input.is_empty() && room_left => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn round_trips_and_is_deterministic_at_every_size() {
        let text: Vec<u8> = (0..3 * CHUNK + 12_345)
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        for len in [0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, text.len()] {
            let data = &text[..len];
            let mut a = Vec::new();
            write_gzip(data, 6, &mut a).unwrap();
            let mut b = Vec::new();
            write_gzip(data, 6, &mut b).unwrap();
            assert_eq!(a, b, "deterministic at {len}");
            assert_eq!(gunzip(&a), data, "round trip at {len}");
            // GNU gzip accepts it too: the header, trailer and blocks are standard.
            assert_eq!(&a[..10], &HEADER);
        }
    }

    /// A xorshift64 sequence from `seed`: test data that is the same on
    /// every run.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn streaming_writer_is_byte_identical_to_the_whole_buffer_form() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let data: Vec<u8> = (0..5 * CHUNK + 4_321)
            .map(|i| {
                let noise = next();
                // Half noise, half text: both stored and matched blocks.
                if (i / 100_000) % 2 == 0 {
                    noise as u8
                } else {
                    b"layer "[i % 6]
                }
            })
            .collect();
        let sizes = [
            0,
            1,
            WINDOW,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK,
            data.len(),
        ];
        for len in sizes {
            let mut reference = Vec::new();
            write_gzip(&data[..len], 6, &mut reference).unwrap();
            // Odd write sizes, so chunk edges fall inside writes.
            for step in [1 << 20, 512, 70_001] {
                let mut writer = GzipWriter::new(Vec::new(), 6).unwrap();
                writer.batch = 2;
                for piece in data[..len].chunks(step) {
                    writer.write_all(piece).unwrap();
                }
                let streamed = writer.finish().unwrap();
                assert!(
                    streamed == reference,
                    "differs at {len} bytes, writes of {step}"
                );
            }
        }
    }

    /// Each piece's bytes depend only on its input and dictionary, not on
    /// what the thread deflated before: pieces deflated in another order,
    /// after other data, give the same bytes.
    #[test]
    fn pieces_do_not_depend_on_what_ran_before() {
        let mut noise = xorshift(0x2545_f491_4f6c_dd1d);
        let text: Vec<u8> = (0..3 * CHUNK)
            .map(|i| {
                let noise = noise();
                // Tar-like: names and text with noise between.
                if (i / 4096) % 3 == 0 {
                    noise as u8
                } else {
                    b"usr/share/doc/cairn/changelog "[i % 30]
                }
            })
            .collect();
        let piece = |i: usize| {
            let start = i * CHUNK;
            let dictionary = &text[start.saturating_sub(WINDOW)..start];
            deflate_piece(dictionary, &text[start..start + CHUNK], i == 2, 6).unwrap()
        };
        // Pieces of many sizes one after another on this thread, each
        // against a state made for it alone. A state carried over (zlib-rs's
        // `reset` keeps the old window) differed at the 17th and 36th of
        // these, and in about 1 in 80 overall.
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for case in 0..80 {
            let len = match next() % 4 {
                0 => next() as usize % 300,
                1 => next() as usize % 70_000,
                2 => next() as usize % 300_000,
                _ => CHUNK,
            } + WINDOW;
            // Bytes from an alphabet of 1-255, with copies from up to 40 KB back.
            let alphabet = 1 + next() % 255;
            let mut data: Vec<u8> = Vec::with_capacity(len);
            while data.len() < len {
                if data.len() > 10 && next().is_multiple_of(3) {
                    let back = 1 + next() as usize % data.len().min(40_000);
                    let start = data.len() - back;
                    for k in 0..3 + next() as usize % 300 {
                        if data.len() >= len {
                            break;
                        }
                        data.push(data[start + k]);
                    }
                } else {
                    data.push((next() % alphabet) as u8);
                }
            }
            let dictionary_len = match next() % 2 {
                0 => 0,
                _ => WINDOW - (next() as usize % 3) * 1000,
            };
            let (before, input) = data.split_at(WINDOW);
            let dictionary = &before[WINDOW - dictionary_len..];
            let last = next().is_multiple_of(2);
            let got = deflate_piece(dictionary, input, last, 6).unwrap();
            let mut fresh = Compress::new(Compression::new(6), false);
            let expected = deflate_into(&mut fresh, dictionary, input, last).unwrap();
            assert!(
                got == expected,
                "case {case} depends on the pieces before it"
            );
        }
        let forward: Vec<Vec<u8>> = (0..3).map(piece).collect();
        let backward: Vec<Vec<u8>> = (0..3).rev().map(piece).collect();
        for i in 0..3 {
            assert!(forward[i] == backward[2 - i], "piece {i} depends on order");
        }
        let mut whole = Vec::new();
        write_gzip(&text, 6, &mut whole).unwrap();
        for _ in 0..3 {
            let mut again = Vec::new();
            write_gzip(&text, 6, &mut again).unwrap();
            assert!(again == whole, "write_gzip is not deterministic");
        }
    }

    #[test]
    fn compresses_about_as_well_as_one_stream() {
        let data: Vec<u8> = (0..4 * CHUNK)
            .map(|i| b"cairn layer "[i % 12] ^ (i / 4096) as u8)
            .collect();
        let mut parallel = Vec::new();
        write_gzip(&data, 6, &mut parallel).unwrap();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        assert!(
            parallel.len() <= single.len() + single.len() / 50 + 64,
            "{} vs {}",
            parallel.len(),
            single.len()
        );
    }
}
