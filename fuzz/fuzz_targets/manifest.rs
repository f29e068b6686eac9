//! Fuzzes the user-written files: `manifest.toml` (validated, and as the
//! comment-keeping edit document) and `manifest.lock`. Any text must give a
//! value or a located error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = cairn_manifest::Manifest::parse(Path::new("manifest.toml"), text);
    let _ = cairn_manifest::ManifestDoc::parse(Path::new("manifest.toml"), text);
    let _ = cairn_manifest::Lock::parse(Path::new("manifest.lock"), text);
});
