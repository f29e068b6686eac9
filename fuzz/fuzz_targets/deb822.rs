//! Fuzzes what an archive mirror sends as a `Packages` index: the deb822
//! paragraph splitter, then record and details parsing for one architecture.
//! Any text must give records or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = cairn_debian::deb822::parse(text);
    let _ = cairn_debian::index::parse_packages_with_details(text, "amd64", 0, "http://x/Packages");
});
