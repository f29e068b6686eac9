//! Builds the layer of one `.deb` through cairn-oci's API, cold, for
//! `bench/memory.sh` to measure peak memory (RSS) with `/usr/bin/time -v`:
//!
//!     cargo run --release -p cairn-oci --example layer_memory -- CACHE_DIR A.deb [gzip|zstd]
//!
//! `CACHE_DIR` should be empty (or its layers-v1/ removed) so the layer is
//! really built. Prints the layer's digest, sizes and build time.

use std::path::PathBuf;
use std::time::Instant;

use cairn_oci::{Compression, LayerInput, LayerOptions, build_package_layer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cache, deb, compression) = match args.as_slice() {
        [cache, deb] => (cache, deb, Compression::Gzip),
        [cache, deb, c] if c == "zstd" => (cache, deb, Compression::Zstd),
        [cache, deb, c] if c == "gzip" => (cache, deb, Compression::Gzip),
        _ => return Err("usage: layer_memory CACHE_DIR A.deb [gzip|zstd]".into()),
    };
    let store = cairn_store::Store::open(cache)?;
    let deb_path = PathBuf::from(deb);
    let input = LayerInput {
        name: "bench".into(),
        version: "1".into(),
        deb_sha256: cairn_store::sha256_file(&deb_path)?,
        deb_path,
    };
    let opts = LayerOptions {
        compression,
        mtime_clamp: Some(1_700_000_000),
    };
    let start = Instant::now();
    let layer = build_package_layer(&store, &input, &opts)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} {:.1} MiB compressed, {secs:.2} s, from cache: {}",
        layer.digest,
        layer.size as f64 / (1 << 20) as f64,
        layer.from_cache
    );
    Ok(())
}
