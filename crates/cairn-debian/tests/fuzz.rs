//! Property-based fuzzing of the parsers that read untrusted archive bytes:
//! deb822 paragraphs, `Packages` records, versions, relations, `InRelease`
//! text, and the ar/tar readers of `.deb` files. Each must return a value or
//! an error for any input, never panic or hang. These proptest properties run
//! on stable in the normal suite; the coverage-guided targets in `fuzz/`
//! (cargo-fuzz, run by `.ci/fuzz`) explore further. Crashers either finds are
//! kept below as regression cases.

use cairn_debian::Version;
use proptest::prelude::*;
use std::str::FromStr;

/// Text that looks like deb822: field names, colons, continuation lines.
fn deb822_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[A-Za-z-]{1,12}: [ -~]{0,40}",
        " [ -~]{0,40}",
        " \\.",
        "",
        "[ -~]{0,30}",
        "Package: [a-z0-9.+-]{1,10}",
        "Version: [0-9:.~+a-z-]{1,12}",
        "Depends: [a-z0-9 ,|()<>=.:-]{0,40}",
        "SHA256: [0-9a-f]{0,64}",
    ];
    prop::collection::vec(line, 0..20).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn deb822_never_panics(text in deb822_like()) {
        let _ = cairn_debian::deb822::parse(&text);
    }

    #[test]
    fn packages_index_never_panics(text in deb822_like()) {
        let _ = cairn_debian::index::parse_packages(&text, "amd64", 0, "http://x/Packages");
    }

    #[test]
    fn versions_never_panic_and_order_totally(a in "[0-9:.~+a-zA-Z-]{0,16}", b in "[0-9:.~+a-zA-Z-]{0,16}") {
        if let (Ok(a), Ok(b)) = (Version::from_str(&a), Version::from_str(&b)) {
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            prop_assert_eq!(a.cmp(&a), std::cmp::Ordering::Equal);
            // The lock stores the printed form: it must read back as the same version.
            let again = Version::from_str(&a.to_string());
            prop_assert!(again.is_ok(), "{:?} prints as {}, which does not parse", a, a);
            prop_assert_eq!(again.unwrap().cmp(&a), std::cmp::Ordering::Equal);
        }
    }

    #[test]
    fn relations_never_panic(text in "[a-z0-9 ,|()<>=.:!\\[\\]-]{0,60}") {
        let _ = cairn_debian::Dependency::parse_list(&text, "amd64");
        let _ = cairn_debian::Relation::parse(&text);
    }

    #[test]
    fn inrelease_text_never_panics(text in deb822_like()) {
        let _ = cairn_debian::Release::parse(&text, "http://x/InRelease", 0, "0");
        let _ = cairn_debian::release::parse_rfc2822(&text);
    }

    #[test]
    fn deb_readers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), prefix in prop::bool::ANY) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        // Half the cases start like a real ar archive, so the member parsers run.
        let mut data = if prefix { b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n".to_vec() } else { Vec::new() };
        data.extend(bytes);
        std::fs::write(&path, &data).unwrap();
        let _ = cairn_debian::read_control(&path);
        let _ = cairn_debian::visit_data(&path, |_, _| Ok::<(), cairn_debian::DebError>(()));
    }
}

/// Found by the `version_relation` cargo-fuzz target: a zero epoch with a colon
/// in the upstream part printed without "0:", so the text read back with
/// "1.cr10" as an epoch and failed to parse.
#[test]
fn zero_epoch_with_colon_in_upstream_prints_back() {
    let v = Version::from_str("0:1.cr10:1.cr~0+dfsg-0.1").unwrap();
    assert_eq!(v.upstream, "1.cr10:1.cr~0+dfsg");
    assert_eq!(v.to_string(), "0:1.cr10:1.cr~0+dfsg-0.1");
    let again = Version::from_str(&v.to_string()).unwrap();
    assert_eq!(again, v);
    // The implied zero epoch stays implied when nothing is ambiguous.
    assert_eq!(Version::from_str("0:1.0-1").unwrap().to_string(), "1.0-1");
}
