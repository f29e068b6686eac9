//! A set of verified `Packages` indices, searchable by name and by provided name.
//!
//! Owns turning `Packages` text into [`PackageRecord`]s and looking them up.
//! Which bytes are trusted is decided before this point ([`crate::fetch`]);
//! relationship syntax is [`crate::relation`], version order [`crate::version`].

use crate::deb822::{self, Paragraph};
use crate::error::{ArchiveError, Result};
use crate::index_cache::{EncodedPart, Table};
use crate::index_details::EncodedDetails;
use crate::package::{MultiArch, PackageDetails, PackageRecord};
use crate::relation::{Dependency, Relation};
use crate::version::Version;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// All package records from the configured sources, for one architecture.
#[derive(Debug, Clone, Default)]
pub struct PackageIndex {
    /// Every record, indexed by position (what the resolver's choices refer to).
    pub records: Records,
    /// One lookup per part, in record order.
    lookups: Vec<Lookup>,
    /// The details side tables that were asked for, with the position of
    /// their part's first record.
    details: Vec<(usize, Arc<DetailsPart>)>,
}

/// The details of one part's records, in the same order.
#[derive(Debug)]
pub enum DetailsPart {
    Parsed(Vec<PackageDetails>),
    Cached(EncodedDetails),
}

impl DetailsPart {
    fn len(&self) -> usize {
        match self {
            DetailsPart::Parsed(details) => details.len(),
            DetailsPart::Cached(encoded) => encoded.len(),
        }
    }

    fn get(&self, i: usize) -> Option<PackageDetails> {
        match self {
            DetailsPart::Parsed(details) => details.get(i).cloned(),
            DetailsPart::Cached(encoded) => encoded.get(i),
        }
    }
}

/// One part of an index: records parsed just now, or a cached entry.
#[derive(Debug)]
pub enum IndexPart {
    Parsed(Vec<PackageRecord>),
    Cached(EncodedPart),
}

/// Name lookups over the records `base..` of one part.
#[derive(Debug, Clone)]
enum Lookup {
    /// Tables built in memory; positions are relative to `base`.
    Memory {
        base: usize,
        by_name: HashMap<String, Vec<usize>>,
        by_provides: HashMap<String, Vec<usize>>,
    },
    /// The sorted tables of a cached entry, searched in place.
    Encoded { base: usize, part: Arc<EncodedPart> },
}

impl Lookup {
    fn memory(base: usize, records: &[PackageRecord]) -> Lookup {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_provides: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            by_name.entry(r.name.clone()).or_default().push(i);
            for p in &r.provides {
                let positions = by_provides.entry(p.name.clone()).or_default();
                // A record providing the same name twice is listed once.
                if positions.last() != Some(&i) {
                    positions.push(i);
                }
            }
        }
        Lookup::Memory {
            base,
            by_name,
            by_provides,
        }
    }

    /// Absolute positions of the records listed under `name`, in order.
    fn positions(&self, table: Table, name: &str) -> Vec<usize> {
        match self {
            Lookup::Memory {
                base,
                by_name,
                by_provides,
            } => {
                let map = match table {
                    Table::Names => by_name,
                    Table::Provides => by_provides,
                };
                map.get(name)
                    .map(|found| found.iter().map(|i| base + i).collect())
                    .unwrap_or_default()
            }
            Lookup::Encoded { base, part } => {
                let mut found = part.positions(table, name);
                found.iter_mut().for_each(|i| *i += base);
                found
            }
        }
    }
}

/// The records of a [`PackageIndex`], by position. Records from a cached
/// entry are decoded on first access and then kept, so looking up a few
/// hundred packages never pays for decoding all of them.
#[derive(Debug, Clone, Default)]
pub struct Records {
    slots: Vec<OnceLock<Box<PackageRecord>>>,
    /// Cached parts with the position of their first record.
    encoded: Vec<(usize, Arc<EncodedPart>)>,
}

impl Records {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The record at position `i`, decoding it on first access.
    pub fn get(&self, i: usize) -> Option<&PackageRecord> {
        let slot = self.slots.get(i)?;
        Some(slot.get_or_init(|| Box::new(self.decode(i))))
    }

    /// Every record, in position order.
    pub fn iter(&self) -> impl Iterator<Item = &PackageRecord> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Whether record `i` is `Essential: yes`, without decoding a cached
    /// record that has not been decoded yet (see [`EncodedPart::is_essential`]).
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn is_essential(&self, i: usize) -> bool {
        if let Some(record) = self.slots[i].get() {
            return record.essential;
        }
        match self.part_of(i) {
            Some((base, part)) => part.is_essential(i - base),
            None => unreachable!("record {i} is neither in memory nor in a cached part"),
        }
    }

    /// Decodes every record not decoded yet, on all cores: for callers that
    /// are about to look at all of them (search).
    pub fn decode_all(&self) {
        (0..self.len()).into_par_iter().for_each(|i| {
            self.get(i);
        });
    }

    /// Only called for an empty slot, and only encoded parts leave slots empty.
    fn decode(&self, i: usize) -> PackageRecord {
        match self.part_of(i) {
            Some((base, part)) => part.record(i - base),
            None => unreachable!("record {i} is neither in memory nor in a cached part"),
        }
    }

    /// The cached part holding position `i`, with the position of its first record.
    fn part_of(&self, i: usize) -> Option<(usize, &EncodedPart)> {
        self.encoded
            .iter()
            .find(|(base, part)| (*base..base + part.len()).contains(&i))
            .map(|(base, part)| (*base, part.as_ref()))
    }
}

impl std::ops::Index<usize> for Records {
    type Output = PackageRecord;

    fn index(&self, i: usize) -> &PackageRecord {
        match self.get(i) {
            Some(record) => record,
            None => panic!("record {i} out of range ({} records)", self.len()),
        }
    }
}

impl PackageIndex {
    /// Builds the lookup tables over `records`.
    pub fn new(records: Vec<PackageRecord>) -> PackageIndex {
        PackageIndex::from_parts(vec![IndexPart::Parsed(records)])
    }

    /// An index over `parts`, in order (records keep their `origin`).
    pub fn from_parts(parts: Vec<IndexPart>) -> PackageIndex {
        PackageIndex::from_parts_with_details(parts.into_iter().map(|p| (p, None)).collect())
    }

    /// Like [`PackageIndex::from_parts`], with each part's details side table
    /// when it was loaded (one per record, in record order).
    pub fn from_parts_with_details(parts: Vec<(IndexPart, Option<DetailsPart>)>) -> PackageIndex {
        let mut index = PackageIndex::default();
        for (part, details) in parts {
            let base = index.records.len();
            if let Some(details) = details {
                index.details.push((base, Arc::new(details)));
            }
            match part {
                IndexPart::Parsed(records) => {
                    index.lookups.push(Lookup::memory(base, &records));
                    let slots = records.into_iter().map(|r| OnceLock::from(Box::new(r)));
                    index.records.slots.extend(slots);
                }
                IndexPart::Cached(part) => {
                    let part = Arc::new(part);
                    let slots = (0..part.len()).map(|_| OnceLock::new());
                    index.records.slots.extend(slots);
                    index.records.encoded.push((base, part.clone()));
                    index.lookups.push(Lookup::Encoded { base, part });
                }
            }
        }
        index
    }

    /// The details of record `i`, when its part's side table was loaded
    /// ([`crate::ArchiveClient::fetch_index_with_details`]).
    pub fn details(&self, i: usize) -> Option<PackageDetails> {
        self.details
            .iter()
            .find(|(base, part)| (*base..base + part.len()).contains(&i))
            .and_then(|(base, part)| part.get(i - base))
    }

    fn positions(&self, table: Table, name: &str) -> impl Iterator<Item = usize> + use<'_> {
        let name = name.to_string();
        self.lookups
            .iter()
            .flat_map(move |l| l.positions(table, &name))
    }

    /// Records whose package name is `name`.
    pub fn by_name(&self, name: &str) -> impl Iterator<Item = (usize, &PackageRecord)> {
        self.positions(Table::Names, name)
            .map(|i| (i, &self.records[i]))
    }

    /// Records that provide `name` (virtual packages).
    pub fn providers(&self, name: &str) -> impl Iterator<Item = (usize, &PackageRecord)> {
        self.positions(Table::Provides, name)
            .map(|i| (i, &self.records[i]))
    }

    /// All distinct package names (for suggestions and search), sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = Vec::new();
        for lookup in &self.lookups {
            match lookup {
                Lookup::Memory { by_name, .. } => names.extend(by_name.keys().map(String::as_str)),
                Lookup::Encoded { part, .. } => names.extend(part.names()),
            }
        }
        names.sort_unstable();
        names.dedup();
        names.into_iter()
    }

    /// Every record named `name`, highest version first; equal versions keep
    /// source order (`origin`), so the first source wins ties.
    pub fn versions(&self, name: &str) -> Vec<&PackageRecord> {
        let mut found: Vec<&PackageRecord> = self.by_name(name).map(|(_, r)| r).collect();
        found.sort_by(|a, b| b.version.cmp(&a.version).then(a.origin.cmp(&b.origin)));
        found
    }

    /// The highest version of `name` (the first source wins ties).
    pub fn best(&self, name: &str) -> Option<&PackageRecord> {
        self.by_name(name)
            .map(|(_, r)| r)
            .reduce(|best, r| if r.version > best.version { r } else { best })
    }

    /// Packages whose name or summary contains `term` (case-insensitive), one
    /// record per name at its highest version. Name matches come first, the
    /// exact name before the rest; each group is sorted by name.
    pub fn search(&self, term: &str) -> Vec<&PackageRecord> {
        let term = term.to_lowercase();
        // Summaries of every package are read below.
        self.records.decode_all();
        let mut hits: Vec<((u8, usize), &PackageRecord)> = self
            .names()
            .filter_map(|name| {
                let lower = name.to_lowercase();
                // Exact name, then a whole word of the name (`python3-flask`
                // for `flask`), then any substring; shorter names first within
                // a rank, since they are usually the package people mean.
                let whole_word = lower.split(['-', '.', '+']).any(|w| w == term);
                let rank = match lower.contains(&term) {
                    true if lower == term => 0,
                    true if whole_word => 1,
                    true => 2,
                    false => 3,
                };
                // Versions are only ordered for the names that can match.
                let best = self.best(name)?;
                let matches = rank < 3 || best.summary.to_lowercase().contains(&term);
                matches.then_some(((rank, name.len()), best))
            })
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        hits.into_iter().map(|(_, r)| r).collect()
    }
}

/// Parses a `Packages` file into records for `arch` (keeping `Architecture:
/// arch` and `all`), tagged with `origin`. `url` names the file in errors.
/// Paragraphs are split first and converted in parallel, since version and
/// relation parsing dominate on a 63k-package index.
pub fn parse_packages(
    text: &str,
    arch: &str,
    origin: usize,
    url: &str,
) -> Result<Vec<PackageRecord>> {
    Ok(parse_packages_with_details(text, arch, origin, url)?.0)
}

/// [`parse_packages`], plus each record's [`PackageDetails`] (same order).
pub fn parse_packages_with_details(
    text: &str,
    arch: &str,
    origin: usize,
    url: &str,
) -> Result<(Vec<PackageRecord>, Vec<PackageDetails>)> {
    let paragraphs: Vec<Paragraph<'_>> =
        deb822::parse(text).map_err(|source| ArchiveError::Syntax {
            url: url.to_string(),
            source,
        })?;
    let parsed: Vec<Option<(PackageRecord, PackageDetails)>> = paragraphs
        .par_iter()
        .map(|p| {
            let record = parse_record(p, arch, origin, url)?;
            Ok(record.map(|r| (r, parse_details(p))))
        })
        .collect::<Result<_>>()?;
    Ok(parsed.into_iter().flatten().unzip())
}

/// The display-only fields of one paragraph.
pub fn parse_details(p: &Paragraph<'_>) -> PackageDetails {
    let text = |field: &str| {
        p.get(field)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty())
    };
    let long_description = p
        .get("Description")
        .and_then(|v| v.split_once('\n'))
        .map(|(_, rest)| rest.replace("\r\n", "\n"))
        .filter(|rest| !rest.trim().is_empty());
    PackageDetails {
        maintainer: text("Maintainer"),
        homepage: text("Homepage"),
        suggests: text("Suggests"),
        replaces: text("Replaces"),
        enhances: text("Enhances"),
        description_md5: text("Description-md5").map(|m| m.to_ascii_lowercase()),
        long_description,
    }
}

/// One paragraph as a record, or `None` when it is for another architecture.
pub fn parse_record(
    p: &Paragraph<'_>,
    arch: &str,
    origin: usize,
    url: &str,
) -> Result<Option<PackageRecord>> {
    let fields = RecordFields { p, url };
    let name = fields.required("Package")?;
    let architecture = fields.required("Architecture")?;
    if architecture != arch && architecture != "all" {
        return Ok(None);
    }
    let version: Version = fields
        .required("Version")?
        .parse()
        .map_err(|e| fields.invalid(name, "Version", e))?;
    let sha256 = fields.required("SHA256")?.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(fields.invalid(name, "SHA256", "not a sha256 digest"));
    }
    Ok(Some(PackageRecord {
        name: name.to_string(),
        version,
        architecture: architecture.to_string(),
        multi_arch: fields.multi_arch(name)?,
        essential: p
            .get("Essential")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        priority: p.get("Priority").map(str::to_string),
        section: p.get("Section").map(str::to_string),
        source: p.get("Source").map(source_name),
        pre_depends: fields.relations(name, "Pre-Depends", arch)?,
        depends: fields.relations(name, "Depends", arch)?,
        recommends: fields.relations(name, "Recommends", arch)?,
        provides: fields.provides(name, arch)?,
        conflicts: fields.relations(name, "Conflicts", arch)?,
        breaks: fields.relations(name, "Breaks", arch)?,
        filename: fields.required("Filename")?.to_string(),
        size: fields
            .number(name, "Size")?
            .ok_or_else(|| fields.invalid(name, "Size", "missing"))?,
        sha256,
        installed_size: fields.number(name, "Installed-Size")?,
        summary: p.first_line("Description").unwrap_or("").to_string(),
        origin,
    }))
}

/// `Source: glibc (2.36-9)` names the source package `glibc`.
fn source_name(value: &str) -> String {
    value.split_whitespace().next().unwrap_or("").to_string()
}

/// Field accessors that turn absent or malformed values into errors naming
/// the file, package and field.
struct RecordFields<'p, 'a> {
    p: &'p Paragraph<'a>,
    url: &'p str,
}

impl<'a> RecordFields<'_, 'a> {
    fn required(&self, field: &str) -> Result<&'a str> {
        match self.p.get(field) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.invalid(
                self.p.get("Package").unwrap_or("?"),
                field,
                format!("missing (paragraph at line {})", self.p.line),
            )),
        }
    }

    fn number(&self, package: &str, field: &str) -> Result<Option<u64>> {
        self.p
            .get(field)
            .map(|v| {
                v.parse()
                    .map_err(|_| self.invalid(package, field, format!("'{v}' is not a number")))
            })
            .transpose()
    }

    fn multi_arch(&self, package: &str) -> Result<MultiArch> {
        match self
            .p
            .get("Multi-Arch")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("no") => Ok(MultiArch::No),
            Some("same") => Ok(MultiArch::Same),
            Some("foreign") => Ok(MultiArch::Foreign),
            Some("allowed") => Ok(MultiArch::Allowed),
            Some(other) => {
                Err(self.invalid(package, "Multi-Arch", format!("unknown value '{other}'")))
            }
        }
    }

    fn relations(&self, package: &str, field: &str, arch: &str) -> Result<Vec<Dependency>> {
        match self.p.get(field) {
            None => Ok(Vec::new()),
            Some(v) => Dependency::parse_list(v, arch).map_err(|e| self.invalid(package, field, e)),
        }
    }

    /// `Provides` uses the relation syntax but never has alternatives.
    fn provides(&self, package: &str, arch: &str) -> Result<Vec<Relation>> {
        let deps = self.relations(package, "Provides", arch)?;
        Ok(deps.into_iter().flat_map(|d| d.alternatives).collect())
    }

    fn invalid(&self, package: &str, field: &str, reason: impl ToString) -> ArchiveError {
        ArchiveError::InvalidRecord {
            url: self.url.to_string(),
            package: package.to_string(),
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(n: u8) -> String {
        format!("{n:064x}")
    }

    fn packages_text() -> String {
        format!(
            "Package: hello\n\
Version: 2.10-3\n\
Architecture: amd64\n\
Maintainer: Santiago Vila <sanvila@debian.org>\n\
Installed-Size: 280\n\
Pre-Depends: dpkg (>= 1.19)\n\
Depends: libc6 (>= 2.34),\n libfoo | libbar\n\
Provides: hello-world (= 2.10), greeter\n\
Conflicts: hello-traditional\n\
Breaks: old-hello (<< 2)\n\
Source: hello (2.10-3)\n\
Section: devel\n\
Priority: optional\n\
Multi-Arch: foreign\n\
Filename: pool/main/h/hello/hello_2.10-3_amd64.deb\n\
Size: 53000\n\
SHA256: {}\n\
Description: example package based on GNU hello\n The GNU hello program.\n\
\n\
Package: hello\n\
Version: 2.10-2\n\
Architecture: amd64\n\
Filename: pool/main/h/hello/hello_2.10-2_amd64.deb\n\
Size: 52000\n\
SHA256: {}\n\
Description: an older hello\n\
\n\
Package: hello\n\
Version: 2.10-3\n\
Architecture: arm64\n\
Filename: pool/main/h/hello/hello_2.10-3_arm64.deb\n\
Size: 1\n\
SHA256: {}\n\
\n\
Package: base-files\n\
Essential: yes\n\
Version: 12.4\n\
Architecture: all\n\
Multi-Arch: same\n\
Filename: pool/main/b/base-files/base-files_12.4_all.deb\n\
Size: 70000\n\
SHA256: {}\n\
Description: Debian base system miscellaneous files, says Hello\n",
            sha(1),
            sha(2),
            sha(3),
            sha(4)
        )
    }

    #[test]
    fn parses_packages_for_one_architecture() {
        let records = parse_packages(&packages_text(), "amd64", 2, "u").unwrap();
        assert_eq!(records.len(), 3, "the arm64 record is dropped");
        let hello = &records[0];
        assert_eq!(hello.name, "hello");
        assert_eq!(hello.version.to_string(), "2.10-3");
        assert_eq!(hello.architecture, "amd64");
        assert_eq!(hello.multi_arch, MultiArch::Foreign);
        assert!(!hello.essential);
        assert_eq!(hello.priority.as_deref(), Some("optional"));
        assert_eq!(hello.section.as_deref(), Some("devel"));
        assert_eq!(hello.source.as_deref(), Some("hello"));
        assert_eq!(hello.pre_depends.len(), 1);
        assert_eq!(
            hello.depends.len(),
            2,
            "continuation line is part of Depends"
        );
        assert_eq!(hello.depends[1].to_string(), "libfoo | libbar");
        let provides: Vec<String> = hello.provides.iter().map(|r| r.to_string()).collect();
        assert_eq!(provides, ["hello-world (= 2.10)", "greeter"]);
        assert_eq!(hello.conflicts[0].to_string(), "hello-traditional");
        assert_eq!(hello.breaks[0].to_string(), "old-hello (<< 2)");
        assert_eq!(hello.filename, "pool/main/h/hello/hello_2.10-3_amd64.deb");
        assert_eq!(
            (hello.size, hello.sha256.as_str()),
            (53000, sha(1).as_str())
        );
        assert_eq!(hello.installed_size, Some(280));
        assert_eq!(hello.summary, "example package based on GNU hello");
        assert_eq!(hello.origin, 2);
        let base = &records[2];
        assert!(base.essential);
        assert_eq!(
            (base.architecture.as_str(), base.multi_arch),
            ("all", MultiArch::Same)
        );
        assert!(base.depends.is_empty() && base.installed_size.is_none());
    }

    #[test]
    fn malformed_records_name_file_package_and_field() {
        let text = format!(
            "Package: bad\nVersion: 1\nArchitecture: amd64\nFilename: f\nSize: x\nSHA256: {}\n",
            sha(1)
        );
        let err = parse_packages(&text, "amd64", 0, "http://m/Packages").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("http://m/Packages") && msg.contains("'bad'") && msg.contains("Size"),
            "{msg}"
        );
        let err = parse_packages("Package: nov\nArchitecture: all\n", "amd64", 0, "u").unwrap_err();
        assert!(err.to_string().contains("Version"), "{err}");
        let text = "Package: s\nVersion: 1\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: 12\n";
        assert!(
            parse_packages(text, "amd64", 0, "u")
                .unwrap_err()
                .to_string()
                .contains("SHA256")
        );
        let text = format!(
            "Package: d\nVersion: 1\nArchitecture: all\nDepends: a (>>\nFilename: f\nSize: 1\nSHA256: {}\n",
            sha(1)
        );
        assert!(
            parse_packages(&text, "amd64", 0, "u")
                .unwrap_err()
                .to_string()
                .contains("Depends")
        );
    }

    fn index() -> PackageIndex {
        let mut records = parse_packages(&packages_text(), "amd64", 0, "u").unwrap();
        // The same hello again from a second source, plus an unrelated package.
        records.extend(
            parse_packages(&packages_text(), "amd64", 1, "u")
                .unwrap()
                .into_iter()
                .take(1),
        );
        let other = format!(
            "Package: shellcheck\nVersion: 0.9.0-1\nArchitecture: amd64\nFilename: f\nSize: 1\nSHA256: {}\nDescription: lint shell scripts\n",
            sha(9)
        );
        records.extend(parse_packages(&other, "amd64", 0, "u").unwrap());
        PackageIndex::new(records)
    }

    #[test]
    fn versions_are_highest_first_then_source_order() {
        let index = index();
        let found: Vec<(String, usize)> = index
            .versions("hello")
            .iter()
            .map(|r| (r.version.to_string(), r.origin))
            .collect();
        assert_eq!(
            found,
            [
                ("2.10-3".into(), 0),
                ("2.10-3".into(), 1),
                ("2.10-2".into(), 0)
            ]
        );
        assert!(index.versions("nope").is_empty());
        assert_eq!(index.providers("greeter").count(), 2);
    }

    #[test]
    fn search_ranks_name_matches_first_and_keeps_best_version() {
        let index = index();
        let names: Vec<&str> = index
            .search("HELLO")
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["hello", "base-files"], "summary match comes last");
        assert_eq!(index.search("hello")[0].version.to_string(), "2.10-3");
        let names: Vec<&str> = index.search("s").iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["base-files", "shellcheck", "hello"]);
        assert!(index.search("zzz").is_empty());
    }
}
