//! Debian version numbers and their exact dpkg ordering (epochs, `~`, revisions).
//!
//! Owns parsing with dpkg's validity rules (`parseversion` in lib/dpkg/parsehelp.c)
//! and comparison (`verrevcmp` in lib/dpkg/version.c). It does not know about
//! relation operators; those live in [`crate::relation`].
//!
//! Hand-written rather than taken from a crate: the algorithm is thirty lines,
//! it must match dpkg byte for byte, and the published crates either lag on
//! dpkg's validity rules or pull in unrelated Debian tooling.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A parsed `[epoch:]upstream[-revision]` version.
#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u32,
    pub upstream: String,
    pub revision: String,
}

/// A version string that dpkg would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version '{input}': {reason}")]
pub struct VersionError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_version(s).map_err(|reason| VersionError {
            input: s.to_string(),
            reason: reason.to_string(),
        })
    }
}

/// dpkg's `parseversion`, including the checks dpkg reports as warnings
/// (they make dpkg refuse the version in every context that matters to us).
fn parse_version(input: &str) -> Result<Version, &'static str> {
    // dpkg trims surrounding blanks but rejects anything after inner whitespace.
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if s.is_empty() {
        return Err("version string is empty");
    }
    if s.contains(|c: char| c.is_ascii_whitespace()) {
        return Err("version string has embedded spaces");
    }
    let (epoch, rest) = match s.split_once(':') {
        Some((epoch, rest)) => (parse_epoch(epoch)?, rest),
        None => (0, s),
    };
    if rest.is_empty() {
        return Err("nothing after colon in version number");
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err("revision number is empty"),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    check_upstream(upstream)?;
    check_revision(revision)?;
    Ok(Version {
        epoch,
        upstream: upstream.to_string(),
        revision: revision.to_string(),
    })
}

fn parse_epoch(epoch: &str) -> Result<u32, &'static str> {
    if epoch.is_empty() {
        return Err("epoch in version is empty");
    }
    if epoch.starts_with('-') {
        return Err("epoch in version is negative");
    }
    if !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return Err("epoch in version is not number");
    }
    // dpkg stores the epoch in an int.
    match epoch.parse::<u32>() {
        Ok(n) if n <= i32::MAX as u32 => Ok(n),
        _ => Err("epoch in version is too big"),
    }
}

fn check_upstream(upstream: &str) -> Result<(), &'static str> {
    let Some(first) = upstream.bytes().next() else {
        return Err("upstream version is empty");
    };
    if !first.is_ascii_digit() {
        return Err("version number does not start with digit");
    }
    if !upstream
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-+~:".contains(&b))
    {
        return Err("invalid character in version number");
    }
    Ok(())
}

fn check_revision(revision: &str) -> Result<(), &'static str> {
    if !revision
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
    {
        return Err("invalid character in revision number");
    }
    Ok(())
}

impl Version {
    /// Builds a version from parts that are already known to be valid.
    pub fn new(epoch: u32, upstream: &str, revision: &str) -> Version {
        Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        }
    }
}

/// The weight of one non-digit character: `~` sorts before the end of the
/// string, which sorts before letters, which sort before everything else.
fn char_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs, the former by
/// [`char_order`], the latter numerically (without overflow, by length then digits).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while a.get(i).is_some_and(|c| !c.is_ascii_digit())
            || b.get(j).is_some_and(|c| !c.is_ascii_digit())
        {
            let (ac, bc) = (char_order(a.get(i).copied()), char_order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        let (da, next_i) = digit_run(a, i);
        let (db, next_j) = digit_run(b, j);
        let numeric = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if numeric != Ordering::Equal {
            return numeric;
        }
        (i, j) = (next_i, next_j);
    }
    Ordering::Equal
}

/// The digits starting at `start` without leading zeros, and the position after them.
fn digit_run(s: &[u8], start: usize) -> (&[u8], usize) {
    let start = start.min(s.len());
    let len = s[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    let run = &s[start..start + len];
    let zeros = run.iter().take_while(|&&c| c == b'0').count();
    (&run[zeros..], start + len)
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A zero epoch is implied, except when the upstream part has a colon of
        // its own: without "0:" the text would parse back with that colon read
        // as the epoch's (dpkg's non-ambiguous form does the same).
        if self.epoch > 0 || self.upstream.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        match s.parse() {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    fn cmp(a: &str, b: &str) -> Ordering {
        v(a).cmp(&v(b))
    }

    #[test]
    fn parses_parts() {
        let p = v("1:2.30-4ubuntu1");
        assert_eq!(
            (p.epoch, &*p.upstream, &*p.revision),
            (1, "2.30", "4ubuntu1")
        );
        let p = v("2.30");
        assert_eq!((p.epoch, &*p.upstream, &*p.revision), (0, "2.30", ""));
    }

    /// lib/dpkg/t/t-version.c, test_version_parse: valid inputs.
    #[test]
    fn dpkg_parse_vectors() {
        let cases = [
            ("0", (0, "0", "")),
            ("0:0", (0, "0", "")),
            ("0:0-0", (0, "0", "0")),
            ("0:0.0-0.0", (0, "0.0", "0.0")),
            ("1:0", (1, "0", "")),
            ("5:1", (5, "1", "")),
            ("0:0-0-0", (0, "0-0", "0")),
            ("0:0-0-0-0", (0, "0-0-0", "0")),
            ("0:0:0-0", (0, "0:0", "0")),
            ("0:0:0:0-0", (0, "0:0:0", "0")),
            ("0:0:0-0-0", (0, "0:0-0", "0")),
            ("0:0-0:0-0", (0, "0-0:0", "0")),
            ("0:09azAZ.-+~:-0", (0, "09azAZ.-+~:", "0")),
            ("0:0-azAZ09.+~", (0, "0", "azAZ09.+~")),
            ("  \t0:0-1", (0, "0", "1")),
            ("0:0-1\t  ", (0, "0", "1")),
            ("\t  0:0-1  \t", (0, "0", "1")),
        ];
        for (input, (epoch, upstream, revision)) in cases {
            let got = v(input);
            assert_eq!(got, Version::new(epoch, upstream, revision), "{input}");
            assert_eq!(
                (got.epoch, &*got.upstream, &*got.revision),
                (epoch, upstream, revision),
                "{input}"
            );
        }
    }

    /// lib/dpkg/t/t-version.c, test_version_parse: rejected inputs.
    #[test]
    fn dpkg_invalid_vectors() {
        let mut cases = vec![
            "",
            "  ",
            "0:",
            "1:",
            ":1.0",
            "1.0-",
            "0:0 0-1",
            "1.0 with space",
            "-1:0-1",
            "999999999999999999999999:0-1",
            "2147483648:0",
            "a:0-0",
            "A:0-0",
            "a:1",
            "-0",
            "0:-0",
            "0:abc3-0",
            "0:0-0:0",
        ];
        let upstream: Vec<String> = "!#@$%&/|\\<>()[]{};,_=*^'"
            .chars()
            .map(|c| format!("0:0{c}-0"))
            .collect();
        let revision: Vec<String> = "!#@$%&/|\\<>()[]{}:;,_=*^'"
            .chars()
            .map(|c| format!("0:0-0{c}"))
            .collect();
        cases.extend(upstream.iter().map(String::as_str));
        cases.extend(revision.iter().map(String::as_str));
        for input in cases {
            assert!(input.parse::<Version>().is_err(), "accepted {input:?}");
        }
    }

    #[test]
    fn error_names_input_and_reason() {
        let err = "1:".parse::<Version>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid Debian version '1:': nothing after colon in version number")
        );
    }

    /// lib/dpkg/t/t-version.c, test_version_compare, as (epoch, upstream, revision).
    #[test]
    fn dpkg_compare_vectors() {
        let o = |e, u: &str, r: &str| Version::new(e, u, r);
        assert_eq!(o(0, "", ""), o(0, "", ""));
        assert_ne!(o(1, "", ""), o(2, "", ""));
        assert_ne!(o(0, "1", "1"), o(0, "2", "1"));
        assert_ne!(o(0, "1", "1"), o(0, "1", "2"));
        assert_eq!(o(0, "0", "0"), o(0, "0", "0"));
        assert_eq!(o(0, "0", "00"), o(0, "00", "0"));
        assert_eq!(o(1, "2", "3"), o(1, "2", "3"));
        assert!(o(0, "0", "0") < o(1, "0", "0"));
        assert!(o(1, "0", "0") > o(0, "0", "0"));
        assert!(o(0, "a", "0") < o(0, "b", "0"));
        assert!(o(0, "0", "a") < o(0, "0", "b"));
        assert!(o(0, "1", "1") < o(1, "1", "1"));
    }

    #[test]
    fn ordering_vectors() {
        use Ordering::{Equal, Greater, Less};
        let cases = [
            ("1.0~rc1", "1.0", Less),
            ("1:0", "2.0", Greater),
            ("1.0-1", "1.0-1.1", Less),
            ("0:1.0", "1.0", Equal),
            ("1.0.0", "1.0", Greater),
            ("1.0", "1.0-0", Equal),
            ("1.0", "1.0-1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0.", Less),
            ("1.0+b1", "1.0", Greater),
            ("1.0+b1", "1.0a", Greater),
            ("1.0~", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0~~", "1.0~~a", Less),
            ("1.2.3", "1.2.10", Less),
            ("1.002", "1.2", Equal),
            ("10", "9", Greater),
            ("1.0-10", "1.0-9", Greater),
            ("2.30-1~deb12u1", "2.30-1", Less),
            ("2.36-9+deb12u4", "2.36-9", Greater),
            ("7.4.052", "7.4.52", Equal),
            ("1:1.0", "99.0", Greater),
            ("1.0-1ubuntu1", "1.0-1", Greater),
            ("1a", "1b", Less),
            ("1Z", "1a", Less),
            ("1.0", "1.0", Equal),
            // Digit runs longer than any integer type still compare numerically.
            (
                "123456789012345678901234567890",
                "123456789012345678901234567889",
                Greater,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// `~~ < ~~a < ~ < (empty) < a`, as in the Debian policy manual.
    #[test]
    fn tilde_sorts_before_everything() {
        let sorted = ["~~", "~~a", "~", "", "a"];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare_part(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["1.0", "1:2.3-4", "2.30-1~deb12u1", "0:1.0"] {
            let shown = v(s).to_string();
            assert_eq!(v(&shown), v(s));
        }
        assert_eq!(v("0:1.0-1").to_string(), "1.0-1");
    }

    #[test]
    fn sorting_is_total() {
        let mut list: Vec<Version> = ["1.0", "1.0~rc1", "1:0.1", "1.0-1", "0.9", "1.0+b1"]
            .into_iter()
            .map(v)
            .collect();
        list.sort();
        let shown: Vec<String> = list.iter().map(Version::to_string).collect();
        assert_eq!(shown, ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0+b1", "1:0.1"]);
    }
}
