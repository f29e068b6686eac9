//! Fuzzes the version and relation parsers with the fields a `Packages` record
//! carries. Beyond "never panic", parsed versions must order totally (the
//! resolver sorts with them) and print back to text that parses to an equal
//! version (the lock stores that text).
#![no_main]

use std::cmp::Ordering;
use std::str::FromStr;

use cairn_debian::{Dependency, Relation, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = Dependency::parse_list(text, "amd64");
    let _ = Relation::parse(text);
    // Two versions per input, split at the first newline, to compare them.
    let (a, b) = text.split_once('\n').unwrap_or((text, ""));
    let (Ok(a), b) = (Version::from_str(a), Version::from_str(b)) else {
        return;
    };
    assert_eq!(a.cmp(&a), Ordering::Equal);
    let printed = a.to_string();
    let again = Version::from_str(&printed)
        .unwrap_or_else(|e| panic!("{a:?} prints as {printed:?}, which does not parse: {e}"));
    assert_eq!(
        again.cmp(&a),
        Ordering::Equal,
        "{a:?} vs its printed form {printed:?}"
    );
    if let Ok(b) = b {
        assert_eq!(a.cmp(&b), b.cmp(&a).reverse(), "{a:?} vs {b:?}");
    }
});
