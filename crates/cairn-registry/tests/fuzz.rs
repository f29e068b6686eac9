//! Property-based fuzzing of what a registry sends back: `WWW-Authenticate`
//! challenges, token answers and image references (proptest in the
//! suite; coverage-guided targets for the same entry points are in `fuzz/`).

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn challenges_never_panic(header in "(Bearer|Basic|bearer)? ?([a-z]{1,8}=\"[ -~]{0,20}\",?){0,4}[ -~]{0,10}") {
        let _ = cairn_registry::auth::parse_challenge(&header);
    }

    #[test]
    fn token_answers_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = cairn_registry::auth::parse_token_answer(&body);
    }

    #[test]
    fn json_like_token_answers_never_panic(body in "\\{(\"(token|access_token|expires_in)\": ?(\"[ -~]{0,12}\"|[0-9-]{1,12}),?){0,3}\\}") {
        let _ = cairn_registry::auth::parse_token_answer(body.as_bytes());
    }

    #[test]
    fn references_never_panic(text in "[ -~]{0,80}") {
        let _ = cairn_registry::Reference::parse(&text);
    }
}
