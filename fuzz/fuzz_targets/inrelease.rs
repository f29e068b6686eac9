//! Fuzzes an `InRelease` file as it arrives: the OpenPGP cleartext framing
//! (checked against no trusted key, so every input is rejected, but only after
//! parsing), then the Release fields and their RFC 2822 dates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = cairn_debian::release::verify_inrelease(bytes, &[], "http://x/InRelease");
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = cairn_debian::Release::parse(text, "http://x/InRelease", 0, "0");
        let _ = cairn_debian::release::parse_rfc2822(text);
    }
});
