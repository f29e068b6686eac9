//! Relationship fields (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`,
//! `Breaks`): parsing and matching a single relation against a version.
//!
//! Owns the syntax of deb-src-relationships(5) as it appears in binary
//! `Packages` indices and in user requests: `,` entries, `|` alternatives,
//! `(op version)`, `name:arch` qualifiers, `[arch]` restrictions evaluated for
//! one architecture, and `<profile>` lists (ignored). It does not decide which
//! package satisfies a relation; that is [`crate::resolve`].

use crate::version::Version;
use std::fmt;

/// A version operator in a relation: `<< <= = >= >>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// One `name[:arch] [(op version)]` term.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub name: String,
    /// `any`, `native`, or an architecture name, from `name:arch`.
    pub arch: Option<String>,
    pub constraint: Option<(VersionOp, Version)>,
}

/// One comma-separated entry: alternatives joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub alternatives: Vec<Relation>,
}

/// A relationship field that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid relation '{input}': {reason}")]
pub struct RelationError {
    pub input: String,
    pub reason: String,
}

impl Dependency {
    /// Parses a whole field value, e.g. `libc6 (>= 2.34), python3:any | python3-minimal`.
    /// Architecture restrictions `[amd64]` and build profiles `<!nocheck>` are
    /// evaluated for `arch` and dropped.
    pub fn parse_list(field: &str, arch: &str) -> Result<Vec<Dependency>, RelationError> {
        let mut out = Vec::new();
        for entry in field.split(',') {
            // Empty entries (a trailing comma, folded blank lines) are tolerated
            // the way apt tolerates them.
            if entry.trim().is_empty() {
                continue;
            }
            if let Some(dep) = parse_entry(entry, arch)? {
                out.push(dep);
            }
        }
        Ok(out)
    }
}

/// Parses one `a | b | c` entry; `None` when every alternative is excluded on `arch`.
fn parse_entry(entry: &str, arch: &str) -> Result<Option<Dependency>, RelationError> {
    let mut alternatives = Vec::new();
    for term in entry.split('|') {
        let parsed = parse_term(term)?;
        if parsed
            .arch_list
            .as_deref()
            .is_none_or(|list| arch_list_includes(list, arch))
        {
            alternatives.push(parsed.relation);
        }
    }
    Ok((!alternatives.is_empty()).then_some(Dependency { alternatives }))
}

/// A term together with its `[arch ...]` restriction, if any.
struct Term {
    relation: Relation,
    arch_list: Option<Vec<String>>,
}

fn error(input: &str, reason: impl Into<String>) -> RelationError {
    RelationError {
        input: input.trim().to_string(),
        reason: reason.into(),
    }
}

/// Parses `name[:arch] [(op version)] [[arch ...]] [<profile ...>]*`.
fn parse_term(term: &str) -> Result<Term, RelationError> {
    let mut rest = term.trim_start();
    let name_len = rest
        .find(|c: char| c.is_whitespace() || "()[]<>:,|".contains(c))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if name.is_empty() {
        return Err(error(term, "missing package name"));
    }
    rest = &rest[name_len..];
    let mut arch = None;
    if let Some(after) = rest.strip_prefix(':') {
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(after.len());
        if len == 0 {
            return Err(error(term, "missing architecture after ':'"));
        }
        arch = Some(after[..len].to_string());
        rest = &after[len..];
    }
    rest = rest.trim_start();
    let mut constraint = None;
    if let Some(after) = rest.strip_prefix('(') {
        let (inner, after) = after
            .split_once(')')
            .ok_or_else(|| error(term, "missing ')'"))?;
        constraint = Some(parse_constraint(term, inner)?);
        rest = after.trim_start();
    }
    let mut arch_list = None;
    if let Some(after) = rest.strip_prefix('[') {
        let (inner, after) = after
            .split_once(']')
            .ok_or_else(|| error(term, "missing ']'"))?;
        arch_list = Some(parse_arch_list(term, inner)?);
        rest = after.trim_start();
    }
    // Build profiles only matter when building from source; skip them.
    while let Some(after) = rest.strip_prefix('<') {
        let (_, after) = after
            .split_once('>')
            .ok_or_else(|| error(term, "missing '>'"))?;
        rest = after.trim_start();
    }
    if !rest.is_empty() {
        return Err(error(term, format!("unexpected '{rest}'")));
    }
    Ok(Term {
        relation: Relation {
            name: name.to_string(),
            arch,
            constraint,
        },
        arch_list,
    })
}

/// Parses the inside of `(op version)`.
fn parse_constraint(term: &str, inner: &str) -> Result<(VersionOp, Version), RelationError> {
    let inner = inner.trim();
    // Longest operators first; bare `<` and `>` are the obsolete spellings of
    // `<=` and `>=` that dpkg still accepts.
    let ops = [
        ("<<", VersionOp::Lt),
        ("<=", VersionOp::Le),
        (">>", VersionOp::Gt),
        (">=", VersionOp::Ge),
        ("=", VersionOp::Eq),
        ("<", VersionOp::Le),
        (">", VersionOp::Ge),
    ];
    let (op, version) = ops
        .iter()
        .find_map(|(text, op)| inner.strip_prefix(text).map(|v| (*op, v)))
        .ok_or_else(|| error(term, "expected one of << <= = >= >> before the version"))?;
    let version = version.trim();
    if version.is_empty() {
        return Err(error(term, "missing version after the operator"));
    }
    let version = version
        .parse::<Version>()
        .map_err(|e| error(term, e.reason))?;
    Ok((op, version))
}

fn parse_arch_list(term: &str, inner: &str) -> Result<Vec<String>, RelationError> {
    let list: Vec<String> = inner.split_whitespace().map(str::to_string).collect();
    if list.is_empty() {
        return Err(error(term, "empty architecture list"));
    }
    let negated = list.iter().filter(|a| a.starts_with('!')).count();
    if negated != 0 && negated != list.len() {
        return Err(error(
            term,
            "architecture list mixes negated and plain entries",
        ));
    }
    Ok(list)
}

/// Whether a `[...]` restriction keeps the term on `arch`: a plain list names
/// the architectures that keep it, a `!` list those that drop it.
fn arch_list_includes(list: &[String], arch: &str) -> bool {
    let negated = list.iter().all(|a| a.starts_with('!'));
    let matched = list
        .iter()
        .any(|a| arch_matches(a.trim_start_matches('!'), arch));
    matched != negated
}

/// Matches an architecture name or wildcard (`any`, `linux-any`, `any-amd64`)
/// against a concrete Debian architecture.
pub fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == "any" || pattern == arch {
        return true;
    }
    let (os, cpu) = split_arch(arch);
    match pattern.split_once('-') {
        Some(("any", p_cpu)) => p_cpu == cpu,
        Some((p_os, "any")) => p_os == os,
        _ => false,
    }
}

/// Splits a Debian architecture into (os, cpu); plain names are Linux.
fn split_arch(arch: &str) -> (&str, &str) {
    const OSES: [&str; 4] = ["kfreebsd", "hurd", "musl-linux", "uclibc-linux"];
    for os in OSES {
        if let Some(cpu) = arch.strip_prefix(os).and_then(|r| r.strip_prefix('-')) {
            return (os, cpu);
        }
    }
    ("linux", arch)
}

impl Relation {
    /// Parses one term, e.g. `python3 (>= 3.11)`.
    pub fn parse(term: &str) -> Result<Relation, RelationError> {
        if term.contains([',', '|']) {
            return Err(error(term, "expected a single package, not a list"));
        }
        let parsed = parse_term(term)?;
        if parsed.arch_list.is_some() {
            return Err(error(
                term,
                "architecture restrictions are not allowed here",
            ));
        }
        Ok(parsed.relation)
    }

    /// An unconstrained relation on `name`.
    pub fn named(name: &str) -> Relation {
        Relation {
            name: name.to_string(),
            arch: None,
            constraint: None,
        }
    }

    /// Whether `version` satisfies this relation's constraint (true when unconstrained).
    pub fn accepts(&self, version: &Version) -> bool {
        let Some((op, wanted)) = &self.constraint else {
            return true;
        };
        let ord = version.cmp(wanted);
        match op {
            VersionOp::Lt => ord.is_lt(),
            VersionOp::Le => ord.is_le(),
            VersionOp::Eq => ord.is_eq(),
            VersionOp::Ge => ord.is_ge(),
            VersionOp::Gt => ord.is_gt(),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, v)) = &self.constraint {
            let op = match op {
                VersionOp::Lt => "<<",
                VersionOp::Le => "<=",
                VersionOp::Eq => "=",
                VersionOp::Ge => ">=",
                VersionOp::Gt => ">>",
            };
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alt}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(field: &str) -> Vec<String> {
        match Dependency::parse_list(field, "amd64") {
            Ok(deps) => deps.iter().map(Dependency::to_string).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    fn rel(term: &str) -> Relation {
        match Relation::parse(term) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    fn ver(s: &str) -> Version {
        match s.parse() {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn parses_a_real_depends_field() {
        let field = "libc6 (>= 2.34), libssl3 (>= 3.0.0),\n python3:any | python3-minimal (<< 3.12~),zlib1g";
        assert_eq!(
            list(field),
            [
                "libc6 (>= 2.34)",
                "libssl3 (>= 3.0.0)",
                "python3:any | python3-minimal (<< 3.12~)",
                "zlib1g",
            ]
        );
    }

    #[test]
    fn parses_every_operator() {
        let ops = [
            ("a (<< 1)", VersionOp::Lt),
            ("a (<= 1)", VersionOp::Le),
            ("a (= 1)", VersionOp::Eq),
            ("a (>= 1)", VersionOp::Ge),
            ("a (>> 1)", VersionOp::Gt),
            ("a (< 1)", VersionOp::Le),
            ("a (> 1)", VersionOp::Ge),
            ("a(>=1)", VersionOp::Ge),
            ("a ( >=  1 )", VersionOp::Ge),
        ];
        for (text, op) in ops {
            let r = rel(text);
            assert_eq!(r.name, "a", "{text}");
            assert_eq!(r.constraint, Some((op, ver("1"))), "{text}");
        }
    }

    #[test]
    fn parses_arch_qualifiers() {
        assert_eq!(rel("python3:any").arch.as_deref(), Some("any"));
        assert_eq!(rel("gcc:native").arch.as_deref(), Some("native"));
        let r = rel("libc6:amd64 (>= 2.36)");
        assert_eq!(r.arch.as_deref(), Some("amd64"));
        assert_eq!(r.to_string(), "libc6:amd64 (>= 2.36)");
        assert_eq!(rel("perl").arch, None);
    }

    #[test]
    fn names_keep_their_punctuation() {
        assert_eq!(rel("libstdc++6").name, "libstdc++6");
        assert_eq!(rel("python3.11-minimal").name, "python3.11-minimal");
    }

    #[test]
    fn arch_restrictions_are_evaluated() {
        assert_eq!(
            list("a [amd64], b [i386], c [!amd64], d [!i386 !arm64]"),
            ["a", "d"]
        );
        assert_eq!(list("a [i386] | b, c [i386] | d [arm64]"), ["b"]);
        assert_eq!(
            list("a [linux-any], b [any-amd64], c [kfreebsd-any], d [any-arm64]"),
            ["a", "b"]
        );
        let arm = Dependency::parse_list("a [amd64] | b", "arm64");
        assert_eq!(arm.map(|d| d.len()), Ok(1));
    }

    #[test]
    fn build_profiles_are_ignored() {
        assert_eq!(
            list("debhelper-compat (= 13), python3 <!nocheck>, dh <!cross> <stage1 nodoc>"),
            ["debhelper-compat (= 13)", "python3", "dh"]
        );
        assert_eq!(list("a (>= 1) [amd64] <!nocheck>"), ["a (>= 1)"]);
    }

    #[test]
    fn tolerates_whitespace_and_empty_entries() {
        assert_eq!(list(""), Vec::<String>::new());
        assert_eq!(list("  a  ,\n\tb|c ,"), ["a", "b | c"]);
        assert_eq!(list("a,,b"), ["a", "b"]);
    }

    #[test]
    fn rejects_malformed_terms() {
        for bad in [
            "a (>= 1",
            "a (~> 1)",
            "a (>=)",
            "a (>= 1.0 with space)",
            "a | | b",
            "a [amd64",
            "a [amd64 !i386]",
            "a b",
            "(>= 1)",
            "a:",
            "a [ ]",
            "a (>= :1)",
        ] {
            assert!(
                Dependency::parse_list(bad, "amd64").is_err(),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn relation_parse_refuses_lists_and_restrictions() {
        assert!(Relation::parse("a, b").is_err());
        assert!(Relation::parse("a | b").is_err());
        assert!(Relation::parse("a [amd64]").is_err());
        let err = Relation::parse("a (>= x)").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid relation 'a (>= x)': version number does not start with digit")
        );
    }

    #[test]
    fn accepts_compares_with_the_operator() {
        let cases = [
            ("a (<< 2.0)", "1.9", true),
            ("a (<< 2.0)", "2.0", false),
            ("a (<= 2.0)", "2.0", true),
            ("a (<= 2.0)", "2.0-1", false),
            ("a (= 2.0-1)", "2.0-1", true),
            ("a (= 2.0-1)", "0:2.0-1", true),
            ("a (= 2.0-1)", "2.0-1+b1", false),
            ("a (>= 2.0)", "2.0~rc1", false),
            ("a (>= 2.0~)", "2.0~rc1", true),
            ("a (>> 2.0)", "2.0", false),
            ("a (>> 2.0)", "2.0-1", true),
            ("a", "0", true),
        ];
        for (text, version, want) in cases {
            assert_eq!(
                rel(text).accepts(&ver(version)),
                want,
                "{text} vs {version}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for field in ["a (>= 1:2.0-1) | b:any, c (<< 3~)", "d (= 1.0)"] {
            let shown = list(field).join(", ");
            assert_eq!(list(&shown).join(", "), shown);
        }
    }
}
