//! A package's license, read from its `/usr/share/doc/PKG/copyright` when that
//! file is machine-readable (DEP-5, Debian's copyright format 1.0), as an SPDX
//! license expression.
//!
//! Owns the translation of Debian's short names into SPDX identifiers: DEP-5
//! predates SPDX and spells `GPL-2+`, `Expat`, `BSD-3-clause`, `Artistic`,
//! `public-domain`; an SBOM validator accepts only SPDX ids or declared
//! `LicenseRef-` names. Each distinct short name of every `Files:`
//! paragraph's `License:` becomes one term, the terms are joined with `AND`
//! (the package ships files under each of them), and a name SPDX does not
//! list becomes `LicenseRef-<name>` with the text of its stand-alone
//! `License:` paragraph, as `hasExtractedLicensingInfos` requires. A file
//! that is not DEP-5 yields no expression (NOASSERTION): free-form copyright
//! text is not guessed at.
//!
//! The SPDX list is the `spdx` crate's (the one cargo-deny uses) rather than a
//! hand-kept table, so every id written is one the validators know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A license found in a copyright file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    /// The SPDX expression; `None` means NOASSERTION.
    pub expression: Option<String>,
    /// Every `LicenseRef-…` the expression uses, with its text.
    pub references: Vec<LicenseRef>,
}

/// A license that is not on SPDX's list, declared with its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LicenseRef {
    /// `LicenseRef-public-domain`.
    pub id: String,
    /// The Debian short name, `public-domain`.
    pub name: String,
    /// The license text from the copyright file (or where to find it).
    pub text: String,
}

/// The `Format:` URLs of DEP-5 files, without scheme, in every spelling
/// Debian has used (the 1.0 format and the DEP drafts before it).
const FORMAT_PREFIXES: &[&str] = &[
    "www.debian.org/doc/packaging-manuals/copyright-format/1.0",
    "dep.debian.net/deps/dep5",
    "anonscm.debian.org/viewvc/dep/web/deps/dep5",
    "svn.debian.org/wsvn/dep/web/deps/dep5",
    "anonscm.debian.org/loggerhead/dep/dep5",
];

/// The license of a copyright file's text; `package` names it in the
/// `LicenseRef` texts that point back at the file.
pub fn parse_copyright(package: &str, text: &str) -> License {
    let Ok(paragraphs) = cairn_debian::deb822::parse(text) else {
        return License::default();
    };
    let Some(header) = paragraphs.first() else {
        return License::default();
    };
    let is_dep5 = header.first_line("Format").is_some_and(|format| {
        let url = format
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        FORMAT_PREFIXES.iter().any(|p| url.starts_with(p))
    });
    if !is_dep5 {
        return License::default();
    }
    // Stand-alone `License:` paragraphs hold the texts Files paragraphs name.
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for paragraph in &paragraphs[1..] {
        let Some(value) = paragraph.get("License") else {
            continue;
        };
        let (first, body) = value.split_once('\n').unwrap_or((value, ""));
        let name = first.trim().to_string();
        if name.is_empty() {
            continue;
        }
        if paragraph.get("Files").is_some() && !names.contains(&name) {
            names.push(name.clone());
        }
        if !body.trim().is_empty() {
            texts
                .entry(name.to_lowercase())
                .or_insert_with(|| body_text(body));
        }
    }
    if names.is_empty() {
        return License::default();
    }
    let mut refs = BTreeMap::new();
    let mut terms: Vec<String> = Vec::new();
    for name in &names {
        let term = translate(name, &mut |short| {
            let id = license_ref_id(short);
            let text = texts
                .get(&short.to_lowercase())
                .cloned()
                .unwrap_or_else(|| {
                    format!("See /usr/share/doc/{package}/copyright (License: {short}).")
                });
            refs.entry(id.clone()).or_insert(LicenseRef {
                id: id.clone(),
                name: short.to_string(),
                text,
            });
            id
        });
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    let expression = if terms.len() == 1 {
        terms.remove(0)
    } else {
        terms
            .iter()
            .map(|t| {
                if t.contains(" OR ") || t.contains(" AND ") {
                    format!("({t})")
                } else {
                    t.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    License {
        expression: Some(expression),
        references: refs.into_values().collect(),
    }
}

/// A license paragraph's text: continuation lines without their leading
/// space, `.` lines as blank lines (deb822's way of writing them).
fn body_text(body: &str) -> String {
    body.lines()
        .map(|line| {
            let line = line.strip_prefix(' ').unwrap_or(line);
            if line.trim() == "." { "" } else { line }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// One `License:` short-name expression (`GPL-2+ or Artistic`, `LGPL-2.1+
/// and BSD-3-clause`, `GPL-3+ with GCC-exception-3.1`) in SPDX syntax.
/// `unknown` turns a name SPDX lacks into a declared `LicenseRef-`.
fn translate(expression: &str, unknown: &mut dyn FnMut(&str) -> String) -> String {
    // DEP-5 separates terms with `or`/`and` (any case) and binds `and` tighter,
    // as SPDX does, so the operators translate one for one; commas are
    // DEP-5's lowest-precedence `and`.
    let clauses: Vec<String> = expression
        .split(',')
        .map(|clause| translate_clause(clause, unknown))
        .filter(|c| !c.is_empty())
        .collect();
    if clauses.len() == 1 {
        return clauses.into_iter().next().unwrap_or_default();
    }
    clauses
        .into_iter()
        .map(|c| if c.contains(' ') { format!("({c})") } else { c })
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn translate_clause(clause: &str, unknown: &mut dyn FnMut(&str) -> String) -> String {
    let words: Vec<&str> = clause.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut term: Vec<&str> = Vec::new();
    let mut flush = |term: &mut Vec<&str>, out: &mut Vec<String>| {
        if !term.is_empty() {
            out.push(translate_term(&term.join(" "), unknown));
            term.clear();
        }
    };
    for word in words {
        match word.to_ascii_lowercase().as_str() {
            // After a comma DEP-5 files write `, and GPL-2+`: an operator
            // with nothing before it joins nothing.
            "or" | "and" if term.is_empty() && out.is_empty() => {}
            "or" | "and" if !term.is_empty() => {
                flush(&mut term, &mut out);
                out.push(word.to_ascii_uppercase());
            }
            _ => term.push(word),
        }
    }
    flush(&mut term, &mut out);
    // A dangling operator (`GPL-2+ or`) is not an expression.
    if out.last().is_some_and(|last| last == "OR" || last == "AND") {
        out.pop();
    }
    out.join(" ")
}

/// One license (`GPL-2+`, `GPL-3+ with GCC-exception-3.1`).
fn translate_term(term: &str, unknown: &mut dyn FnMut(&str) -> String) -> String {
    let lower = term.to_ascii_lowercase();
    if let Some(at) = lower.find(" with ") {
        let (license, exception) = (&term[..at], term[at + 6..].trim());
        if let (Some(id), Some(exception)) = (spdx_id(license), spdx_exception(exception)) {
            return format!("{id} WITH {exception}");
        }
        return unknown(term);
    }
    spdx_id(term).unwrap_or_else(|| unknown(term))
}

/// The SPDX id of a Debian short name, if SPDX lists it.
fn spdx_id(name: &str) -> Option<String> {
    let name = name.trim();
    let (base, or_later) = match name.strip_suffix('+') {
        Some(base) => (base, true),
        None => (name, false),
    };
    // Debian's own spellings of licenses SPDX names differently.
    let base = match base.to_ascii_lowercase().as_str() {
        "expat" => "MIT",
        "artistic" | "artistic-1" => "Artistic-1.0-Perl",
        "psf-2" => "PSF-2.0",
        "zope-2.1" => "ZPL-2.1",
        "public-domain" => return None,
        _ => base,
    };
    // GNU licenses: `GPL-2` is GPL-2.0-only, `GPL-2+` GPL-2.0-or-later.
    for candidate in [base.to_string(), format!("{base}.0")] {
        let suffix = if or_later { "-or-later" } else { "-only" };
        if let Some(id) = lookup(&format!("{candidate}{suffix}")) {
            return Some(id.to_string());
        }
    }
    for candidate in [base.to_string(), format!("{base}.0")] {
        if let Some(id) = lookup(&candidate) {
            return Some(if or_later {
                format!("{id}+")
            } else {
                id.to_string()
            });
        }
    }
    None
}

/// A current (not deprecated) SPDX license id, matched case-insensitively.
fn lookup(name: &str) -> Option<&'static str> {
    spdx::identifiers::LICENSES
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(name))
        .and_then(|l| spdx::license_id(l.name))
        .filter(|id| !id.is_deprecated())
        .map(|id| id.name)
}

/// The SPDX id of an exception (`GCC-exception-3.1`, `OpenSSL exception`).
fn spdx_exception(name: &str) -> Option<&'static str> {
    let name = name.trim();
    let dashed = name.replace(' ', "-");
    let candidates = [
        name.to_string(),
        dashed.clone(),
        format!("{}-exception", dashed.trim_end_matches("-exception")),
    ];
    candidates.iter().find_map(|candidate| {
        spdx::identifiers::EXCEPTIONS
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(candidate))
            .map(|e| e.name)
    })
}

/// `LicenseRef-` plus the name with every character SPDX does not allow in an
/// id (letters, digits, `.`, `-`) replaced by `-`.
pub fn license_ref_id(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-{cleaned}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: &str =
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n";

    fn expression(text: &str) -> Option<String> {
        parse_copyright("pkg", text).expression
    }

    #[test]
    fn debian_short_names_become_spdx_ids() {
        let cases = [
            ("GPL-2+", "GPL-2.0-or-later"),
            ("GPL-2", "GPL-2.0-only"),
            ("GPL-3+", "GPL-3.0-or-later"),
            ("LGPL-2.1+", "LGPL-2.1-or-later"),
            ("LGPL-2.1", "LGPL-2.1-only"),
            ("Expat", "MIT"),
            ("BSD-3-clause", "BSD-3-Clause"),
            ("Apache-2.0", "Apache-2.0"),
            ("Artistic", "Artistic-1.0-Perl"),
            ("MPL-1.1+", "MPL-1.1+"),
            ("zlib", "Zlib"),
            (
                "GPL-2+ or Artistic",
                "GPL-2.0-or-later OR Artistic-1.0-Perl",
            ),
            (
                "GPL-2+ and BSD-3-clause",
                "GPL-2.0-or-later AND BSD-3-Clause",
            ),
            (
                "GPL-3+ with GCC-exception-3.1",
                "GPL-3.0-or-later WITH GCC-exception-3.1",
            ),
        ];
        for (debian, spdx) in cases {
            let text = format!("{FORMAT}\nFiles: *\nCopyright: x\nLicense: {debian}\n");
            assert_eq!(expression(&text).as_deref(), Some(spdx), "{debian}");
        }
    }

    #[test]
    fn files_paragraphs_combine_and_unknown_names_are_declared() {
        let text = format!(
            "{FORMAT}Upstream-Name: x\n\nFiles: *\nCopyright: 1999 A\nLicense: GPL-2+\n\nFiles: lib/*\nCopyright: B\nLicense: public-domain\n\nFiles: doc/*\nCopyright: C\nLicense: GPL-2+\n\nLicense: GPL-2+\n On Debian systems, see /usr/share/common-licenses/GPL-2.\n\nLicense: public-domain\n The author places this\n .\n in the public domain.\n"
        );
        let license = parse_copyright("pkg", &text);
        assert_eq!(
            license.expression.as_deref(),
            Some("GPL-2.0-or-later AND LicenseRef-public-domain")
        );
        assert_eq!(
            license.references,
            vec![LicenseRef {
                id: "LicenseRef-public-domain".into(),
                name: "public-domain".into(),
                text: "The author places this\n\nin the public domain.".into(),
            }]
        );
    }

    #[test]
    fn a_name_without_a_text_points_at_the_file() {
        let text = format!("{FORMAT}\nFiles: *\nCopyright: x\nLicense: permissive\n");
        let license = parse_copyright("zlib1g", &text);
        assert_eq!(license.expression.as_deref(), Some("LicenseRef-permissive"));
        assert!(
            license.references[0]
                .text
                .contains("/usr/share/doc/zlib1g/copyright")
        );
    }

    #[test]
    fn free_form_copyright_files_are_no_assertion() {
        let free = "This package was debianized by someone.\n\nCopyright: GPL\n";
        assert_eq!(parse_copyright("x", free), License::default());
        let other_format = "Format: http://example.org/my-format\n\nFiles: *\nLicense: GPL-2\n";
        assert_eq!(expression(other_format), None);
        assert_eq!(expression(""), None);
        // A header alone names no license of the files.
        assert_eq!(expression(&format!("{FORMAT}License: GPL-2\n")), None);
    }

    #[test]
    fn old_dep5_urls_count() {
        let text =
            "Format: http://dep.debian.net/deps/dep5\n\nFiles: *\nCopyright: x\nLicense: ISC\n";
        assert_eq!(expression(text).as_deref(), Some("ISC"));
    }

    #[test]
    fn a_with_clause_on_an_unknown_exception_is_one_reference() {
        let text =
            format!("{FORMAT}\nFiles: *\nCopyright: x\nLicense: GPL-2+ with Font exception foo\n");
        let license = parse_copyright("pkg", &text);
        assert_eq!(
            license.expression.as_deref(),
            Some("LicenseRef-GPL-2--with-Font-exception-foo")
        );
    }
}
