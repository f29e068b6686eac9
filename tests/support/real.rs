//! The machine's real Debian mirror, for the few tests that resolve against
//! Debian itself: where it is (from apt's own configuration) and whether it
//! answers.
//!
//! It reads apt's files but never runs apt.

use std::path::Path;
use std::time::Duration;

const DEB822_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const ONE_LINE_SOURCES: &str = "/etc/apt/sources.list";

/// A Debian mirror and the suites of its first `deb` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealArchive {
    /// e.g. `http://deb.debian.org/debian`, without a trailing slash.
    pub url: String,
    /// e.g. `["bookworm", "bookworm-updates"]`.
    pub suites: Vec<String>,
    pub components: Vec<String>,
}

impl RealArchive {
    /// `{url}/dists/{first suite}/InRelease`.
    pub fn inrelease_url(&self) -> String {
        format!("{}/dists/{}/InRelease", self.url, self.suites[0])
    }

    /// A `[sources.debian]` table using Debian's built-in keys.
    pub fn sources_toml(&self) -> String {
        format!(
            "[sources.debian]\nurl = {}\nsuites = {}\ncomponents = {}\nkeyring = \"debian\"\n",
            toml_string(&self.url),
            toml_array(&self.suites),
            toml_array(&self.components),
        )
    }
}

/// The machine's Debian mirror from apt's configuration (deb822 first, then the
/// one-line format), falling back to `http://deb.debian.org/debian` bookworm.
pub fn real_archive() -> RealArchive {
    read_to_string(DEB822_SOURCES)
        .and_then(|text| parse_deb822_sources(&text))
        .or_else(|| read_to_string(ONE_LINE_SOURCES).and_then(|t| parse_one_line_sources(&t)))
        .unwrap_or_else(|| RealArchive {
            url: "http://deb.debian.org/debian".to_owned(),
            suites: vec!["bookworm".to_owned()],
            components: vec!["main".to_owned()],
        })
}

/// The machine's Debian archive when it answers; otherwise `None`, after
/// saying that the calling test skips. With `CI=true` an unreachable archive
/// panics instead: the real-Debian tests must not pass by skipping there.
pub fn reachable_real_archive() -> Option<RealArchive> {
    reachable_or_skip(
        real_archive(),
        crate::tools::in_ci(),
        real_archive_reachable,
    )
}

fn reachable_or_skip(
    archive: RealArchive,
    in_ci: bool,
    reachable: impl FnOnce(&RealArchive) -> bool,
) -> Option<RealArchive> {
    if reachable(&archive) {
        return Some(archive);
    }
    if in_ci {
        panic!(
            "Debian mirror unreachable ({}), but CI=true requires the real-archive tests to run",
            archive.inrelease_url()
        );
    }
    eprintln!(
        "skipping: Debian mirror unreachable ({})",
        archive.inrelease_url()
    );
    None
}

/// Whether the archive's InRelease answers with a success within a few seconds.
pub fn real_archive_reachable(archive: &RealArchive) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    match agent.head(archive.inrelease_url()).call() {
        Ok(response) => response.status().is_success(),
        Err(e) => {
            eprintln!("{} unreachable: {e}", archive.inrelease_url());
            false
        }
    }
}

fn read_to_string(path: &str) -> Option<String> {
    Path::new(path)
        .exists()
        .then(|| fs_err::read_to_string(path).ok())
        .flatten()
}

/// The first stanza with `Types: deb` (and not disabled) of a deb822 `.sources` file.
fn parse_deb822_sources(text: &str) -> Option<RealArchive> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| deb822_field(stanza, name);
        let types = field("Types")?;
        let enabled = field("Enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if !enabled || !types.split_whitespace().any(|t| t == "deb") {
            return None;
        }
        archive_from(
            field("URIs")?.split_whitespace().next()?,
            field("Suites")?.split_whitespace(),
            field("Components").unwrap_or_default().split_whitespace(),
        )
    })
}

/// A single-line field value (`Name: value`), ignoring comment lines.
fn deb822_field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// The first `deb [options] URL SUITE COMPONENT...` line of a `sources.list`.
fn parse_one_line_sources(text: &str) -> Option<RealArchive> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let rest = line.trim().strip_prefix("deb ")?.trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(options) => options.split_once(']')?.1,
            None => rest,
        };
        let mut words = rest.split_whitespace();
        let url = words.next()?;
        let suite = words.next()?;
        archive_from(url, std::iter::once(suite), words)
    })
}

fn archive_from<'a>(
    url: &str,
    suites: impl Iterator<Item = &'a str>,
    components: impl Iterator<Item = &'a str>,
) -> Option<RealArchive> {
    let suites: Vec<String> = suites.map(str::to_owned).collect();
    let mut components: Vec<String> = components.map(str::to_owned).collect();
    if suites.is_empty() {
        return None;
    }
    if components.is_empty() {
        components.push("main".to_owned());
    }
    Some(RealArchive {
        url: url.trim_end_matches('/').to_owned(),
        suites,
        components,
    })
}

/// A TOML basic string (JSON string escapes are valid TOML).
pub fn toml_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// A TOML array of basic strings.
pub fn toml_array(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| toml_string(v)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_deb822_sources() {
        let text = "Types: deb-src\nURIs: http://src.example/debian\nSuites: x\n\n\
                    Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                    URIs: http://deb.debian.org/debian/\nSuites: bookworm bookworm-updates\n\
                    Components: main contrib\nSigned-By: /usr/share/keyrings/k.gpg\n\n\
                    Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        let archive = parse_deb822_sources(text).unwrap();
        assert_eq!(archive.url, "http://deb.debian.org/debian");
        assert_eq!(archive.suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(archive.components, ["main", "contrib"]);
        assert_eq!(
            archive.inrelease_url(),
            "http://deb.debian.org/debian/dists/bookworm/InRelease"
        );
    }

    #[test]
    fn parses_one_line_sources() {
        let text = "# comment\ndeb-src http://x/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        let archive = parse_one_line_sources(text).unwrap();
        assert_eq!(archive.url, "http://mirror.example/debian");
        assert_eq!(archive.suites, ["bookworm"]);
        assert_eq!(archive.components, ["main"]);
    }

    #[test]
    fn sources_toml_is_valid_toml() {
        let archive = RealArchive {
            url: "http://deb.debian.org/debian".into(),
            suites: vec!["bookworm".into()],
            components: vec!["main".into()],
        };
        let doc: toml_edit::DocumentMut = archive.sources_toml().parse().unwrap();
        assert_eq!(
            doc["sources"]["debian"]["suites"][0].as_str(),
            Some("bookworm")
        );
    }

    fn unreachable() -> RealArchive {
        RealArchive {
            url: "http://127.0.0.1:9/debian".to_owned(),
            suites: vec!["bookworm".to_owned()],
            components: vec!["main".to_owned()],
        }
    }

    #[test]
    fn an_unreachable_archive_skips_locally() {
        assert_eq!(reachable_or_skip(unreachable(), false, |_| false), None);
        assert!(reachable_or_skip(unreachable(), false, |_| true).is_some());
    }

    #[test]
    #[should_panic(expected = "CI=true requires the real-archive tests to run")]
    fn an_unreachable_archive_fails_in_ci() {
        reachable_or_skip(unreachable(), true, |_| false);
    }
}
