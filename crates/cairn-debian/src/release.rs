//! Signed `InRelease` files: OpenPGP verification against a keyring, then the
//! per-file sha256 list that every index is checked against.
//!
//! Owns the trust step: nothing in an InRelease is read until one of its
//! signatures verifies against a trusted key, and only the signed text is parsed.
//! Fetching the file is [`crate::fetch`]; keys come from [`crate::keyring`].

use crate::deb822;
use crate::error::{ArchiveError, Result};
use pgp::composed::{CleartextSignedMessage, SignedPublicKey};
use pgp::packet::Signature;
use std::collections::BTreeMap;

/// A file listed in a Release's `SHA256:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Lowercase hex sha256.
    pub sha256: String,
    pub size: u64,
}

/// A verified, parsed `InRelease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: String,
    pub codename: String,
    /// `Date:` as written (RFC 2822), and as seconds since the Unix epoch.
    pub date: String,
    pub date_epoch: i64,
    /// `Valid-Until:` as written and as epoch seconds, when present.
    pub valid_until: Option<(String, i64)>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Whether indices may be fetched as `.../by-hash/SHA256/<sha256>`.
    pub acquire_by_hash: bool,
    /// Path relative to `dists/<suite>/` -> digest and size.
    pub sha256: BTreeMap<String, FileDigest>,
    /// sha256 of the whole InRelease file as downloaded.
    pub inrelease_sha256: String,
}

/// What a lock records about the release a package came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseInfo {
    /// Source name from the manifest.
    pub source: String,
    pub url: String,
    pub suite: String,
    pub date: String,
    pub date_epoch: i64,
    pub inrelease_sha256: String,
}

/// Checks that `inrelease` carries at least one valid signature by a key (or
/// signing subkey) in `keys`, and returns the signed text with `\n` line ends.
/// `url` names the file in errors.
pub fn verify_inrelease(inrelease: &[u8], keys: &[SignedPublicKey], url: &str) -> Result<String> {
    let bad = |reason: String| ArchiveError::BadSignature {
        url: url.to_string(),
        reason,
    };
    let text = std::str::from_utf8(inrelease)
        .map_err(|_| bad("not a UTF-8 cleartext-signed file".to_string()))?;
    let (message, _headers) = CleartextSignedMessage::from_string(text)
        .map_err(|e| bad(format!("not an OpenPGP cleartext-signed file: {e}")))?;
    if message.signatures().is_empty() {
        return Err(bad("the file carries no signature".to_string()));
    }
    // The exact bytes the signatures cover: dash-unescaped, CRLF-normalised.
    let signed = message.signed_text();
    let trusted = message
        .signatures()
        .iter()
        .any(|sig| signed_by_any(sig, signed.as_bytes(), keys));
    if !trusted {
        return Err(bad(format!(
            "{} signature(s), none valid for the {} trusted key(s)",
            message.signatures().len(),
            keys.len()
        )));
    }
    Ok(signed.replace("\r\n", "\n"))
}

/// Whether `sig` over `data` verifies against a primary key in `keys`, or one of
/// their subkeys whose binding to the primary key verifies and allows signing.
fn signed_by_any(sig: &Signature, data: &[u8], keys: &[SignedPublicKey]) -> bool {
    keys.iter().any(|key| {
        if sig.verify(&key.primary_key, data).is_ok() {
            return true;
        }
        key.public_subkeys.iter().any(|sub| {
            let may_sign = sub.signatures.iter().any(|b| b.key_flags().sign());
            may_sign
                && sig.verify(&sub.key, data).is_ok()
                && sub.verify_bindings(&key.primary_key).is_ok()
        })
    })
}

impl Release {
    /// Parses the verified text of an InRelease. `url` names the file in errors,
    /// `now` (epoch seconds) is checked against `Valid-Until`, and `sha256` is the
    /// digest of the InRelease bytes.
    pub fn parse(text: &str, url: &str, now: i64, inrelease_sha256: &str) -> Result<Release> {
        let syntax = |source| ArchiveError::Syntax {
            url: url.to_string(),
            source,
        };
        let paragraph = deb822::paragraphs(text)
            .next()
            .transpose()
            .map_err(syntax)?
            .ok_or_else(|| invalid(url, "file", "no fields".to_string()))?;
        let field = |name: &str| paragraph.get(name).map(str::to_string);
        let required = |name: &str| field(name).ok_or_else(|| invalid(url, name, "missing".into()));
        let suite = required("Suite")?;
        let codename = field("Codename").unwrap_or_else(|| suite.clone());
        let date = required("Date")?;
        let date_epoch = parse_rfc2822(&date).map_err(|e| invalid(url, "Date", e))?;
        let valid_until = match field("Valid-Until") {
            Some(v) => Some((
                v.clone(),
                parse_rfc2822(&v).map_err(|e| invalid(url, "Valid-Until", e))?,
            )),
            None => None,
        };
        if let Some((text, epoch)) = &valid_until
            && *epoch < now
        {
            return Err(ArchiveError::Expired {
                url: url.to_string(),
                valid_until: text.clone(),
            });
        }
        let words = |name: &str| -> Vec<String> {
            paragraph
                .get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        Ok(Release {
            origin: field("Origin"),
            label: field("Label"),
            suite,
            codename,
            date,
            date_epoch,
            valid_until,
            architectures: words("Architectures"),
            components: words("Components"),
            acquire_by_hash: paragraph
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            sha256: parse_sha256_list(paragraph.get("SHA256").unwrap_or(""), url)?,
            inrelease_sha256: inrelease_sha256.to_string(),
        })
    }

    /// Whether this release is for `requested`, given as a suite or a codename.
    /// Checked so a mirror cannot pass off another suite's validly signed
    /// release (say, an old one) as the one asked for.
    pub fn matches_suite(&self, requested: &str) -> bool {
        self.suite == requested || self.codename == requested
    }

    /// The [`ReleaseInfo`] a lock records for this release of `source`.
    pub fn info(&self, source: &str, url: &str, suite: &str) -> ReleaseInfo {
        ReleaseInfo {
            source: source.to_string(),
            url: url.to_string(),
            suite: suite.to_string(),
            date: self.date.clone(),
            date_epoch: self.date_epoch,
            inrelease_sha256: self.inrelease_sha256.clone(),
        }
    }
}

fn invalid(url: &str, field: &str, reason: String) -> ArchiveError {
    ArchiveError::InvalidRelease {
        url: url.to_string(),
        field: field.to_string(),
        reason,
    }
}

/// Parses the ` <sha256> <size> <path>` lines of a `SHA256:` field.
fn parse_sha256_list(value: &str, url: &str) -> Result<BTreeMap<String, FileDigest>> {
    let mut files = BTreeMap::new();
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let bad = || invalid(url, "SHA256", format!("malformed line '{line}'"));
        let mut parts = line.split_whitespace();
        let (Some(sha), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let size = size.parse().map_err(|_| bad())?;
        let digest = FileDigest {
            sha256: sha.to_ascii_lowercase(),
            size,
        };
        files.insert(path.to_string(), digest);
    }
    Ok(files)
}

/// Parses an RFC 2822 date as used by Debian (`Sat, 10 Aug 2024 09:13:17 UTC`)
/// into Unix epoch seconds. Hand-written because the only date crates in reach
/// either reject `UTC` (httpdate wants `GMT`) or are far larger than one format.
pub fn parse_rfc2822(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not an RFC 2822 date");
    let body = match text.split_once(',') {
        Some((_weekday, rest)) => rest,
        None => text,
    };
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [day, month, year, time, zone] = parts[..] else {
        return Err(bad());
    };
    let day: i64 = day.parse().map_err(|_| bad())?;
    let month = month_number(month).ok_or_else(bad)?;
    let year: i64 = year.parse().map_err(|_| bad())?;
    let hms: Vec<i64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let [h, m, s] = hms[..] else {
        return Err(bad());
    };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(bad());
    }
    let offset = zone_offset_seconds(zone).ok_or_else(bad)?;
    Ok(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset)
}

fn month_number(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let i = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    Some(i as i64 + 1)
}

/// `UTC`, `GMT`, `Z` or `±hhmm`, as seconds east of UTC.
fn zone_offset_seconds(zone: &str) -> Option<i64> {
    if ["UTC", "GMT", "UT", "Z"]
        .iter()
        .any(|z| z.eq_ignore_ascii_case(zone))
    {
        return Some(0);
    }
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{Keyring, parse_keys};
    use crate::testing::TestKey;

    const RELEASE: &str = "Origin: Debian\n\
Label: Debian\n\
Suite: stable\n\
Codename: bookworm\n\
Date: Sat, 10 Aug 2024 09:13:17 UTC\n\
Valid-Until: Sat, 17 Aug 2024 09:13:17 UTC\n\
Acquire-By-Hash: yes\n\
Architectures: all amd64 arm64\n\
Components: main contrib\n\
Description: Debian 12.6 Released 29 June 2024\n\
SHA256:\n \
0000000000000000000000000000000000000000000000000000000000000001   123 main/binary-amd64/Packages\n \
00000000000000000000000000000000000000000000000000000000000000AB    45 main/binary-amd64/Packages.xz\n";

    /// 2024-08-10T09:13:17Z
    const DATE: i64 = 1_723_281_197;

    #[test]
    fn parses_rfc2822_dates() {
        assert_eq!(parse_rfc2822("Sat, 10 Aug 2024 09:13:17 UTC"), Ok(DATE));
        assert_eq!(parse_rfc2822("10 Aug 2024 09:13:17 GMT"), Ok(DATE));
        assert_eq!(parse_rfc2822("Sat, 10 Aug 2024 11:13:17 +0200"), Ok(DATE));
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Ok(0));
        assert_eq!(
            parse_rfc2822("Tue, 29 Feb 2000 00:00:00 UTC"),
            Ok(951_782_400)
        );
        for bad in [
            "",
            "Sat, 10 Foo 2024 09:13:17 UTC",
            "10 Aug 2024 25:00:00 UTC",
            "10 Aug 2024 09:13 UTC",
        ] {
            assert!(parse_rfc2822(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_release_fields() {
        let r = Release::parse(RELEASE, "u", DATE, "abc").unwrap();
        assert_eq!(r.origin.as_deref(), Some("Debian"));
        assert_eq!(
            (r.suite.as_str(), r.codename.as_str()),
            ("stable", "bookworm")
        );
        assert_eq!(r.date_epoch, DATE);
        assert_eq!(r.date, "Sat, 10 Aug 2024 09:13:17 UTC");
        assert_eq!(r.valid_until.as_ref().map(|v| v.1), Some(DATE + 7 * 86_400));
        assert!(r.acquire_by_hash);
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(r.sha256.len(), 2);
        let xz = &r.sha256["main/binary-amd64/Packages.xz"];
        assert_eq!(
            (xz.sha256.as_str(), xz.size),
            (&format!("{:0>64}", "ab")[..], 45)
        );
        assert!(r.matches_suite("stable") && r.matches_suite("bookworm"));
        assert!(!r.matches_suite("trixie"));
        let info = r.info("debian", "http://x", "bookworm");
        assert_eq!(
            (info.date_epoch, info.inrelease_sha256.as_str()),
            (DATE, "abc")
        );
    }

    #[test]
    fn rejects_expired_and_incomplete_releases() {
        let err = Release::parse(RELEASE, "http://m/InRelease", DATE + 8 * 86_400, "").unwrap_err();
        assert!(matches!(err, ArchiveError::Expired { .. }), "{err}");
        assert!(err.to_string().contains("http://m/InRelease"), "{err}");
        let err = Release::parse("Origin: x\n", "u", 0, "").unwrap_err();
        assert!(err.to_string().contains("Suite"), "{err}");
        let bad_sum = RELEASE.replace(" 45 main", " x45 main");
        assert!(Release::parse(&bad_sum, "u", DATE, "").is_err());
    }

    fn signed_release(key: &TestKey) -> Vec<u8> {
        key.clearsign(RELEASE, &[])
    }

    #[test]
    fn verifies_a_signed_release_and_returns_the_signed_text() {
        let Some(key) = TestKey::generate("cairn test <t@example.invalid>") else {
            return;
        };
        let keys = parse_keys(&key.export(false), "test").unwrap();
        let text = verify_inrelease(&signed_release(&key), &keys, "u").unwrap();
        assert_eq!(text.trim_end(), RELEASE.trim_end());
        // An armored export of the same key works as well.
        let armored = parse_keys(&key.export(true), "test.asc").unwrap();
        assert!(verify_inrelease(&signed_release(&key), &armored, "u").is_ok());
    }

    #[test]
    fn rejects_tampered_body_and_unknown_key() {
        let Some(key) = TestKey::generate("cairn test <t@example.invalid>") else {
            return;
        };
        let Some(stranger) = TestKey::generate("stranger <s@example.invalid>") else {
            return;
        };
        let keys = parse_keys(&key.export(false), "test").unwrap();
        let signed = String::from_utf8(signed_release(&key)).unwrap();

        let tampered = signed.replace("Codename: bookworm", "Codename: bookwurm");
        assert_ne!(tampered, signed);
        let err = verify_inrelease(tampered.as_bytes(), &keys, "http://m/InRelease").unwrap_err();
        assert!(matches!(err, ArchiveError::BadSignature { .. }), "{err}");
        assert!(err.to_string().contains("http://m/InRelease"), "{err}");

        let by_stranger = signed_release(&stranger);
        let err = verify_inrelease(&by_stranger, &keys, "u").unwrap_err();
        assert!(matches!(err, ArchiveError::BadSignature { .. }), "{err}");

        let err = verify_inrelease(RELEASE.as_bytes(), &keys, "u").unwrap_err();
        assert!(matches!(err, ArchiveError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn one_trusted_signature_among_several_is_enough() {
        let Some(key) = TestKey::generate("cairn test <t@example.invalid>") else {
            return;
        };
        let Some(stranger) = TestKey::generate("stranger <s@example.invalid>") else {
            return;
        };
        let signed = stranger.clearsign(RELEASE, &[&key]);
        let trusted = parse_keys(&key.export(false), "test").unwrap();
        assert!(verify_inrelease(&signed, &trusted, "u").is_ok());
        let untrusted = parse_keys(&stranger.export(false), "s").unwrap();
        assert!(verify_inrelease(&signed, &untrusted, "u").is_ok());
        let neither = Keyring::DebianArchive.load().unwrap();
        assert!(verify_inrelease(&signed, &neither, "u").is_err());
    }

    /// Fetches the real bookworm InRelease and checks it against the shipped keys.
    #[test]
    fn real_bookworm_inrelease_verifies_with_embedded_keys() {
        let url = "http://deb.debian.org/debian/dists/bookworm/InRelease";
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        let bytes = match agent
            .get(url)
            .call()
            .and_then(|r| r.into_body().read_to_vec())
        {
            Ok(bytes) => bytes,
            Err(e) => {
                // Debian's archive is reachable in CI: a failure there is real.
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "cannot fetch {url}: {e}"
                );
                eprintln!("skipping: cannot fetch {url}: {e}");
                return;
            }
        };
        let keys = Keyring::DebianArchive.load().unwrap();
        let text = verify_inrelease(&bytes, &keys, url).unwrap();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let release = Release::parse(&text, url, now, "").unwrap();
        assert_eq!(release.codename, "bookworm");
        assert!(release.sha256.contains_key("main/binary-amd64/Packages.xz"));
        let mut tampered = bytes.clone();
        let at = String::from_utf8_lossy(&bytes)
            .find("Codename: bookworm")
            .unwrap();
        tampered[at + 10] = b'B';
        assert!(verify_inrelease(&tampered, &keys, url).is_err());
    }
}
