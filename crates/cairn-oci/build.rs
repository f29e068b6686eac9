//! Records the locked versions of the compression crates (from the
//! workspace's Cargo.lock) for the layer cache key in `src/layer.rs`, so a
//! layer compressed by one build of zlib-rs or zstd is never served to
//! another: their output bytes may differ even where the format does not.

use std::path::Path;

/// Crates whose code decides a layer blob's compressed bytes.
const COMPRESSORS: [&str; 5] = ["flate2", "zlib-rs", "zstd", "zstd-safe", "zstd-sys"];

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lock = Path::new(&manifest_dir).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed=build.rs");
    // Outside this workspace there is no lock to read; "unlocked" still keys
    // the cache apart from any locked build.
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for name in COMPRESSORS {
        let versions = locked_versions(&text, name);
        let value = if versions.is_empty() {
            "unlocked".to_owned()
        } else {
            versions.join("+")
        };
        let var = name.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=CAIRN_LOCKED_{var}={value}");
    }
}

/// Every version of `name` in a Cargo.lock (usually one).
fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let mut versions = Vec::new();
    for package in lock.split("[[package]]") {
        let mut lines = package.lines().map(str::trim);
        if lines.any(|l| l == format!("name = \"{name}\"")) {
            let version = package.lines().map(str::trim).find_map(|l| {
                l.strip_prefix("version = \"")
                    .and_then(|v| v.strip_suffix('"'))
            });
            versions.extend(version.map(str::to_owned));
        }
    }
    versions
}
