//! Registry authentication as data: parsing `WWW-Authenticate` challenges,
//! the scopes a push asks for, the token request URL and the token answer.
//!
//! Sending requests is `client.rs`; this module is pure so every branch is
//! unit-tested. Tokens print as `<redacted>`.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`: send the user and password with each request.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`: fetch a token from `realm`.
    Bearer {
        /// The token server URL.
        realm: String,
        /// The `service` to ask for, if given.
        service: Option<String>,
        /// The scope the registry wanted for the refused request, if given.
        scope: Option<String>,
    },
}

/// A bearer token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Parses the first challenge of a `WWW-Authenticate` value, or `None` for a
/// scheme cairn does not speak.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `key=value` and `key="quoted, with \"escapes\""` pairs separated by commas.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() || chars.next() != Some('=') {
            return params;
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            quoted_value(&mut chars)
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>()
        };
        params.insert(key, value.trim().to_owned());
    }
}

fn quoted_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            '"' => break,
            other => value.push(other),
        }
    }
    value
}

/// `repository:NAME:pull,push`, the scope a push to NAME needs.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// `repository:NAME:pull`, the scope a mount needs on its source.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// Characters escaped in query values: everything but unreserved ones.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The token request: `realm?service=S&scope=A&scope=B`.
pub fn token_url(realm: &str, service: Option<&str>, scopes: &[String]) -> String {
    let mut pairs: Vec<String> = Vec::new();
    if let Some(service) = service {
        pairs.push(format!("service={}", utf8_percent_encode(service, QUERY)));
    }
    for scope in scopes {
        pairs.push(format!("scope={}", utf8_percent_encode(scope, QUERY)));
    }
    let separator = if realm.contains('?') { '&' } else { '?' };
    if pairs.is_empty() {
        realm.to_owned()
    } else {
        format!("{realm}{separator}{}", pairs.join("&"))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// The token in a token server's JSON answer (`token`, or OAuth's `access_token`).
pub fn parse_token_answer(body: &[u8]) -> Option<Token> {
    let answer: TokenAnswer = serde_json::from_slice(body).ok()?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .map(Token)
}

/// Scopes as a stable cache key (sorted, deduplicated).
pub fn scope_key(scopes: &[String]) -> String {
    let mut sorted: Vec<&str> = scopes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges_with_quoted_commas() {
        let header = r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:team/app:pull,push".into()),
            })
        );
        let unquoted = "bearer realm=http://127.0.0.1:1/t, service = reg";
        assert_eq!(
            parse_challenge(unquoted),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("reg".into()),
                scope: None,
            })
        );
        let escaped = r#"Bearer realm="a\"b""#;
        assert!(
            matches!(parse_challenge(escaped), Some(Challenge::Bearer { realm, .. }) if realm == "a\"b")
        );
    }

    #[test]
    fn parses_basic_and_ignores_unknown_schemes() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None, "no realm");
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn builds_token_urls() {
        let scopes = vec![push_scope("team/a"), pull_scope("team/b")];
        assert_eq!(
            token_url("http://h/token", Some("reg"), &scopes),
            "http://h/token?service=reg&scope=repository%3Ateam%2Fa%3Apull%2Cpush&scope=repository%3Ateam%2Fb%3Apull"
        );
        assert_eq!(token_url("http://h/t?x=1", None, &[]), "http://h/t?x=1");
        assert_eq!(
            token_url("http://h/t?x=1", Some("s"), &[]),
            "http://h/t?x=1&service=s"
        );
    }

    #[test]
    fn reads_token_answers() {
        assert_eq!(
            parse_token_answer(br#"{"token":"abc","expires_in":60}"#),
            Some(Token("abc".into()))
        );
        assert_eq!(
            parse_token_answer(br#"{"access_token":"xyz"}"#),
            Some(Token("xyz".into()))
        );
        assert_eq!(parse_token_answer(br#"{"token":""}"#), None);
        assert_eq!(parse_token_answer(b"nope"), None);
        assert_eq!(format!("{:?}", Token("secret".into())), "Token(<redacted>)");
    }

    #[test]
    fn scope_keys_ignore_order_and_duplicates() {
        let a = vec!["b".to_owned(), "a".to_owned(), "b".to_owned()];
        assert_eq!(scope_key(&a), "a b");
    }
}
