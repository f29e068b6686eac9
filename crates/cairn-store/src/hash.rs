//! sha256 helpers that hash while streaming, so no content is read twice.

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::Path;

/// Hex sha256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of a file's contents, streamed.
pub fn sha256_file(path: impl AsRef<Path>) -> io::Result<String> {
    let mut reader = HashingReader::new(fs_err::File::open(path.as_ref())?);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(reader.finish().0)
}

/// A sha256 fed piece by piece that can be copied mid-way: an upload sent in
/// several requests (each maybe resent) advances it only by the pieces the
/// registry took, and checks the whole before the last byte leaves.
#[derive(Debug, Clone, Default)]
pub struct RunningSha256 {
    hasher: Sha256,
    count: u64,
}

impl RunningSha256 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.count += bytes.len() as u64;
    }
    /// Bytes hashed so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Hex sha256 of everything so far (the state is kept).
    pub fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// A writer that hashes and counts everything written through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Returns (hex sha256, byte count, inner writer).
    pub fn finish(self) -> (String, u64, W) {
        (hex::encode(self.hasher.finalize()), self.count, self.inner)
    }
    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Returns (hex sha256, byte count).
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_with_oneshot() {
        let data = b"hello cairn";
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(data).unwrap();
        let (hex_w, n, out) = w.finish();
        assert_eq!((n, out.as_slice()), (11, &data[..]));
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish().0, hex_w);
        assert_eq!(sha256_hex(data), hex_w);
        let mut running = RunningSha256::default();
        running.update(b"hello ");
        let before = running.clone();
        running.update(b"cairn");
        assert_eq!((running.hex(), running.count()), (hex_w, 11));
        assert_eq!(before.hex(), sha256_hex(b"hello "));
    }
}
