//! The lower bound for a cold `cairn containerize`: decompress every `.deb`'s
//! `data.tar` and gzip it once at level 6, in parallel over the packages with
//! rayon, using the same crates cairn uses (ar, liblzma, flate2 with zlib-rs,
//! zstd). No tar parsing, no sorting, no hashing, no files written: whatever a
//! real build spends beyond this is cairn's own overhead.
//!
//!     cargo run --release -p cairn-oci --example baseline -- [--runs N] [--ignore-check] A.deb B.deb...
//!
//! xz's own integrity check (CRC64) is computed, as any xz decoder does by
//! default. cairn skips it where it checks the `.deb`'s sha256 instead;
//! `--ignore-check` skips it here too, for the limit of that stricter reading.
//!
//! Prints one line per run and then the median, in seconds; `bench/containerize.sh`
//! runs it over the `.deb`s of the benchmark environment.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let (runs, ignore_check, debs) = parse_args(std::env::args().skip(1).collect())?;
    let mut times = Vec::with_capacity(runs);
    for run in 1..=runs {
        let start = Instant::now();
        let bytes = recompress_all(&debs, ignore_check)?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "run {run}: {secs:.3} s ({} packages, {:.1} MiB of data.tar in, {:.1} MiB gzip out, {} threads)",
            debs.len(),
            bytes.0 as f64 / (1 << 20) as f64,
            bytes.1 as f64 / (1 << 20) as f64,
            rayon::current_num_threads(),
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!("median: {:.3} s", times[times.len() / 2]);
    Ok(())
}

fn parse_args(args: Vec<String>) -> Result<(usize, bool, Vec<PathBuf>), Error> {
    let mut runs = 5;
    let mut ignore_check = false;
    let mut debs = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs = args.next().ok_or("--runs needs a number")?.parse()?;
        } else if arg == "--ignore-check" {
            ignore_check = true;
        } else {
            debs.push(PathBuf::from(arg));
        }
    }
    if debs.is_empty() || runs == 0 {
        return Err("usage: baseline [--runs N] [--ignore-check] A.deb B.deb...".into());
    }
    Ok((runs, ignore_check, debs))
}

/// (uncompressed data.tar bytes, gzip bytes) over all packages.
fn recompress_all(debs: &[PathBuf], ignore_check: bool) -> Result<(u64, u64), Error> {
    // Largest first, so the biggest package never starts last on a busy pool.
    let mut order: Vec<&PathBuf> = debs.iter().collect();
    order.sort_by_key(|d| std::cmp::Reverse(std::fs::metadata(d).map_or(0, |m| m.len())));
    order
        .par_iter()
        .map(|deb| recompress(deb, ignore_check))
        .try_reduce(|| (0, 0), |a, b| Ok((a.0 + b.0, a.1 + b.1)))
}

fn recompress(deb: &Path, ignore_check: bool) -> Result<(u64, u64), Error> {
    let mut ar = ar::Archive::new(BufReader::with_capacity(256 * 1024, File::open(deb)?));
    while let Some(member) = ar.next_entry() {
        let member = member?;
        let name = String::from_utf8_lossy(member.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        let Some(suffix) = name.strip_prefix("data.tar") else {
            continue;
        };
        let mut reader: Box<dyn Read> = match suffix {
            "" => Box::new(member),
            ".gz" => Box::new(flate2::read::GzDecoder::new(member)),
            ".xz" => {
                let mut flags = liblzma::stream::CONCATENATED;
                if ignore_check {
                    flags |= liblzma::stream::IGNORE_CHECK;
                }
                let stream = liblzma::stream::Stream::new_auto_decoder(u64::MAX, flags)?;
                Box::new(liblzma::read::XzDecoder::new_stream(member, stream))
            }
            ".zst" => Box::new(zstd::stream::read::Decoder::new(member)?),
            other => return Err(format!("{}: data.tar{other}", deb.display()).into()),
        };
        // Fed in large chunks, as cairn feeds its compressor (io::copy fills
        // a BufWriter's buffer directly).
        let mut gzip = BufWriter::with_capacity(
            256 * 1024,
            flate2::write::GzEncoder::new(CountingSink::default(), flate2::Compression::new(6)),
        );
        let read = io::copy(&mut reader, &mut gzip)?;
        let written = gzip.into_inner().map_err(|e| e.into_error())?.finish()?.0;
        return Ok((read, written));
    }
    Err(format!("{}: no data.tar member", deb.display()).into())
}

/// Counts the compressed bytes and throws them away: the baseline measures
/// CPU, not the disk.
#[derive(Default)]
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
