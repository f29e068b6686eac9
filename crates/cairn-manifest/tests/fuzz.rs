//! Property-based fuzzing of the manifest and lock parsers: any text gives a
//! manifest or a located error, never a panic (proptest in the
//! suite; coverage-guided targets for the same entry points are in `fuzz/`).

use proptest::prelude::*;
use std::path::Path;

fn toml_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "\\[[a-z.-]{1,20}\\]",
        "\\[\\[[a-z]{1,10}\\]\\]",
        "[a-z.-]{1,16} = \"[ -~]{0,20}\"",
        "[a-z.-]{1,16} = [0-9-]{1,6}",
        "[a-z.-]{1,16} = \\[\"[ -~]{0,10}\"\\]",
        "[a-z.-]{1,16} = (true|false)",
        "version = 1",
        "release = \"[a-z]{0,8}\"",
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..25).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parse_never_panics(text in toml_like()) {
        let _ = cairn_manifest::Manifest::parse(Path::new("manifest.toml"), &text);
    }

    #[test]
    fn lock_parse_never_panics(text in toml_like()) {
        let _ = cairn_manifest::Lock::parse(Path::new("manifest.lock"), &text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = cairn_manifest::Manifest::parse(Path::new("manifest.toml"), &text);
    }
}
