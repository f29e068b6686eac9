//! Gzip on every core, with output that depends only on the input: pigz's
//! method. The input is cut into fixed 1 MiB chunks; each is deflated on its
//! own (primed with the 32 KiB before it as the dictionary, so matches still
//! reach back) and ends in a sync flush, the last in a final block; the raw
//! deflate pieces are joined under one gzip header and trailer.
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
const CHUNK: usize = 1 << 20;
/// Deflate's window: how far back a match may reach.
const WINDOW: usize = 32 * 1024;
/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown), as the single
/// stream encoder wrote it, so the header carries no time or host.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Writes `data` gzipped at `level` to `out`, deflating chunks in parallel.
pub fn write_gzip(data: &[u8], level: u32, out: &mut impl Write) -> io::Result<()> {
    let pieces = data.len().div_ceil(CHUNK).max(1);
    let deflated: Vec<io::Result<Vec<u8>>> = (0..pieces)
        .into_par_iter()
        .with_max_len(1)
        .map(|i| deflate_piece(data, i, i + 1 == pieces, level))
        .collect();
    out.write_all(&HEADER)?;
    for piece in deflated {
        out.write_all(&piece?)?;
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.write_all(&crc.sum().to_le_bytes())?;
    // ISIZE is the length modulo 2^32 (RFC 1952).
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    Ok(())
}

/// Raw deflate of chunk `index`, primed with the window before it.
fn deflate_piece(data: &[u8], index: usize, last: bool, level: u32) -> io::Result<Vec<u8>> {
    let start = index * CHUNK;
    let mut input = &data[start..(start + CHUNK).min(data.len())];
    let mut deflate = Compress::new(Compression::new(level), false);
    if start > 0 {
        deflate
            .set_dictionary(&data[start.saturating_sub(WINDOW)..start])
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
