//! The Debian release an environment is locked against (`release =
//! "trixie"`), and the archives it implies when the manifest has no
//! `[sources]`: the release and its `-updates` from Debian's archive, and its
//! `-security` from Debian's security archive, all checked with Debian's keys.
//!
//! The manifest names a codename, never a moving alias (`stable`), so it
//! means the same thing next year; manifests without `release` keep the
//! release they were written for, bookworm.

use std::collections::BTreeMap;

use crate::schema::SourceEntry;
use crate::validate::Broken;

/// The release of manifests that do not name one (they predate `release`).
pub const LEGACY_RELEASE: &str = "bookworm";

/// Aliases that move from one release to the next.
const MOVING_ALIASES: &[&str] = &[
    "stable",
    "oldstable",
    "oldoldstable",
    "testing",
    "unstable",
    "experimental",
];

/// Debian's main archive.
pub const DEBIAN_URL: &str = "http://deb.debian.org/debian";
/// Debian's security archive.
pub const DEBIAN_SECURITY_URL: &str = "http://deb.debian.org/debian-security";

/// A release codename: lowercase letters and digits, not a moving alias.
pub fn check_release(release: &str) -> Result<(), Broken> {
    if MOVING_ALIASES.contains(&release) {
        return Err(Broken {
            message: format!("'{release}' is an alias that moves to the next release"),
            help: Some(
                "name the codename, e.g. release = \"trixie\" (`cairn init` resolves today's stable)"
                    .into(),
            ),
        });
    }
    let ok = release.starts_with(|c: char| c.is_ascii_lowercase())
        && release
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Broken {
            message: format!("'{release}' is not a Debian release codename"),
            help: Some("use a codename such as \"bookworm\", \"trixie\" or \"sid\"".into()),
        })
    }
}

/// The suites of `release` in Debian's main archive and in its security
/// archive (sid has neither updates nor security suites).
pub fn release_suites(release: &str) -> (Vec<String>, Vec<String>) {
    if release == "sid" {
        return (vec!["sid".into()], Vec::new());
    }
    (
        vec![release.to_string(), format!("{release}-updates")],
        vec![format!("{release}-security")],
    )
}

/// Debian's archives for `release`, used when the manifest has no `[sources]`.
pub fn default_sources_for(release: &str) -> BTreeMap<String, SourceEntry> {
    let source = |url: &str, suites: Vec<String>| SourceEntry {
        url: url.to_string(),
        suites,
        components: vec!["main".to_string()],
        architectures: None,
        keyring: Some("debian".to_string()),
    };
    let (main, security) = release_suites(release);
    let mut sources = BTreeMap::from([("debian".to_string(), source(DEBIAN_URL, main))]);
    if !security.is_empty() {
        sources.insert(
            "debian-security".to_string(),
            source(DEBIAN_SECURITY_URL, security),
        );
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codenames_pass_and_aliases_are_refused() {
        for ok in ["bookworm", "trixie", "sid", "forky"] {
            assert!(check_release(ok).is_ok(), "{ok}");
        }
        for bad in ["stable", "testing", "Trixie", "../x", "", "13"] {
            assert!(check_release(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_sources_follow_the_release() {
        let trixie = default_sources_for("trixie");
        assert_eq!(trixie["debian"].suites, ["trixie", "trixie-updates"]);
        assert_eq!(trixie["debian-security"].suites, ["trixie-security"]);
        assert_eq!(trixie["debian-security"].url, DEBIAN_SECURITY_URL);
        let sid = default_sources_for("sid");
        assert_eq!(sid["debian"].suites, ["sid"]);
        assert!(!sid.contains_key("debian-security"));
    }
}
