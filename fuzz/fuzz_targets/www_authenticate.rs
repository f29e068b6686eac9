//! Fuzzes the text a registry or a user hands the client: `WWW-Authenticate`
//! challenges, and image and environment references.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = cairn_registry::auth::parse_challenge(text);
    let _ = cairn_registry::Reference::parse(text);
    let _ = cairn_registry::environment::EnvironmentRef::parse(text);
});
