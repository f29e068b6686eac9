//! Dependency resolution: from requested names to a closed, conflict-free set
//! of packages, following apt's preferences (first satisfiable alternative,
//! highest version, Recommends ignored).
//!
//! Owns the choice of one record per package name and the reasons recorded
//! with it (`requested`, `required_by`, `depends`). It does not parse fields
//! ([`crate::relation`]) or fetch anything.
//!
//! The resolver is hand-written rather than built on resolvo or pubgrub: apt's
//! semantics (the first satisfiable alternative of an or-group wins, virtual
//! names through Provides, Conflicts/Breaks against provided names, a relation
//! already satisfied by a chosen package is not re-decided) map poorly onto a
//! per-name SAT or version-range model, and the answers must match what a
//! Debian user expects from apt.
//!
//! The search is a depth-first walk over an agenda of obligations (requests,
//! then Pre-Depends and Depends of each chosen package, in order). Each
//! unsatisfied obligation becomes a choice point whose candidates are tried in
//! preference order. On a dead end it jumps back to the most recent choice
//! that contributed to the failure (conflict-directed backjumping), so an
//! unrelated earlier choice is not re-tried; a step budget guarantees it ends.

use crate::index::{PackageIndex, Records};
use crate::package::PackageRecord;
use crate::relation::{Dependency, Relation, VersionOp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Candidate attempts before the search gives up; real resolutions take a
/// few hundred, so hitting this means a pathological index.
const STEP_BUDGET: usize = 100_000;

/// How [`ResolveError::NotFound`] names where it looked.
const SOURCES: &str = "the configured sources";

/// One requested package: a relation such as `python3` or `python3 (>= 3.11)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub relation: Relation,
}

/// A resolved package set.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// Chosen packages by name; each entry indexes into the [`PackageIndex`].
    pub packages: BTreeMap<String, ResolvedPackage>,
}

/// One chosen package and why it is there.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPackage {
    /// Position of the record in [`PackageIndex::records`].
    pub record: usize,
    /// Whether the user asked for it by name (as opposed to a dependency).
    pub requested: bool,
    /// The requested packages whose closure pulled this one in (sorted).
    pub required_by: Vec<String>,
    /// Names of the chosen packages this one depends on (sorted).
    pub depends: Vec<String>,
}

/// Why a request cannot be satisfied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("package '{name}' not found in {sources}{}", did_you_mean(.suggestions))]
    NotFound {
        name: String,
        sources: String,
        suggestions: Vec<String>,
    },
    #[error("no version of '{name}' satisfies {constraint} (available: {})", .available.join(", "))]
    NoMatchingVersion {
        name: String,
        constraint: String,
        available: Vec<String>,
    },
    #[error("cannot satisfy {}: {reason}", .chain.join(" -> "))]
    Unsatisfiable {
        /// The dependency chain from a requested package to the failing relation.
        chain: Vec<String>,
        reason: String,
    },
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(" (did you mean '{one}'?)"),
        many => format!(" (did you mean one of: {}?)", many.join(", ")),
    }
}

/// Resolves `requests` against `index` for `arch` (the native architecture).
pub fn resolve(
    index: &PackageIndex,
    requests: &[Request],
    arch: &str,
) -> Result<Resolution, ResolveError> {
    resolve_with_budget(index, requests, arch, STEP_BUDGET)
}

fn resolve_with_budget(
    index: &PackageIndex,
    requests: &[Request],
    arch: &str,
    budget: usize,
) -> Result<Resolution, ResolveError> {
    let mut agenda = Vec::with_capacity(requests.len());
    for request in requests {
        agenda.push(request_obligation(index, request, arch)?);
    }
    let mut search = Search::new(index, arch, agenda, budget);
    search.run()?;
    Ok(search.into_resolution())
}

/// Up to three package names that look like `name`, most similar first.
pub fn suggest(index: &PackageIndex, name: &str) -> Vec<String> {
    // Jaro-Winkler rewards a shared prefix, which suits typos in package
    // names (`pyhton3`) better than plain edit distance.
    const THRESHOLD: f64 = 0.85;
    let mut scored: Vec<(f64, &str)> = index
        .names()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, candidate)| *score >= THRESHOLD && *candidate != name)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Matching records against relations

/// Whether `record`'s architecture is acceptable for `relation`'s `:arch`
/// qualifier. The index only holds native and `all` records, so `:any` and
/// `:native` accept everything (leniently, for `:any` without Multi-Arch:
/// allowed), and a foreign qualifier accepts nothing.
fn arch_accepts(relation: &Relation, record: &PackageRecord, arch: &str) -> bool {
    match relation.arch.as_deref() {
        None | Some("any") | Some("native") => true,
        Some(qualifier) => qualifier == arch || qualifier == record.architecture,
    }
}

/// Whether `record` is a real package matching `relation` (name, arch, version).
fn real_match(relation: &Relation, record: &PackageRecord, arch: &str) -> bool {
    record.name == relation.name
        && arch_accepts(relation, record, arch)
        && relation.accepts(&record.version)
}

/// Whether `record` provides `relation`'s name in a way that satisfies it:
/// any provide for an unversioned relation, only `(= version)` provides for a
/// versioned one (Debian policy 7.5).
fn provide_match(relation: &Relation, record: &PackageRecord) -> bool {
    record.provides.iter().any(|p| {
        p.name == relation.name
            && match (&relation.constraint, &p.constraint) {
                (None, _) => true,
                (Some(_), Some((VersionOp::Eq, v))) => relation.accepts(v),
                (Some(_), _) => false,
            }
    })
}

/// Whether `record` satisfies `relation`, as a real package or a provider.
fn satisfies(relation: &Relation, record: &PackageRecord, arch: &str) -> bool {
    real_match(relation, record, arch) || provide_match(relation, record)
}

/// apt's ordering of `Priority:` values; higher is preferred.
fn priority_rank(record: &PackageRecord) -> u8 {
    match record.priority.as_deref() {
        Some("required") => 5,
        Some("important") => 4,
        Some("standard") => 3,
        Some("optional") => 2,
        Some("extra") => 1,
        _ => 0,
    }
}

/// Real records for `relation`, highest version first (ties: index order).
fn real_candidates(index: &PackageIndex, relation: &Relation, arch: &str) -> Vec<usize> {
    let mut found: Vec<usize> = index
        .by_name(&relation.name)
        .filter(|(_, r)| real_match(relation, r, arch))
        .map(|(i, _)| i)
        .collect();
    let records = &index.records;
    found.sort_by(|&a, &b| {
        records[b]
            .version
            .cmp(&records[a].version)
            .then_with(|| a.cmp(&b))
    });
    found
}

/// Providers of `relation`'s name, by priority, then name, then highest version.
fn provider_candidates(index: &PackageIndex, relation: &Relation) -> Vec<usize> {
    let mut found: Vec<usize> = index
        .providers(&relation.name)
        .filter(|(_, r)| r.name != relation.name && provide_match(relation, r))
        .map(|(i, _)| i)
        .collect();
    found.sort_by(|&a, &b| compare_providers(&index.records, a, b));
    found.dedup();
    found
}

fn compare_providers(records: &Records, a: usize, b: usize) -> std::cmp::Ordering {
    let (ra, rb) = (&records[a], &records[b]);
    priority_rank(rb)
        .cmp(&priority_rank(ra))
        .then_with(|| ra.name.cmp(&rb.name))
        .then_with(|| rb.version.cmp(&ra.version))
        .then_with(|| a.cmp(&b))
}

/// Drops records that repeat an earlier (name, version): the same package
/// published in several suites is one candidate, not two.
fn dedup_packages(records: &Records, candidates: Vec<usize>) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let seen = out.iter().any(|&o| {
            records[o].name == records[c].name && records[o].version == records[c].version
        });
        if !seen {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Requests

/// Turns a request into an obligation with a fixed candidate list, or reports
/// a missing name or version before any search starts.
fn request_obligation<'a>(
    index: &'a PackageIndex,
    request: &Request,
    arch: &str,
) -> Result<Obligation<'a>, ResolveError> {
    let relation = &request.relation;
    if index.by_name(&relation.name).next().is_some() {
        let candidates = dedup_packages(&index.records, real_candidates(index, relation, arch));
        if candidates.is_empty() {
            let versions = index.by_name(&relation.name).map(|(i, _)| i);
            return Err(no_matching_version(index, relation, versions));
        }
        return Ok(Obligation::request(relation, candidates));
    }
    let mut provider_names: Vec<&str> = index
        .providers(&relation.name)
        .map(|(_, r)| r.name.as_str())
        .collect();
    provider_names.sort_unstable();
    provider_names.dedup();
    match provider_names.as_slice() {
        [] => Err(ResolveError::NotFound {
            name: relation.name.clone(),
            sources: SOURCES.to_string(),
            suggestions: suggest(index, &relation.name),
        }),
        [_] => {
            let candidates = dedup_packages(&index.records, provider_candidates(index, relation));
            if candidates.is_empty() {
                let versions = index.providers(&relation.name).map(|(i, _)| i);
                return Err(no_matching_version(index, relation, versions));
            }
            Ok(Obligation::request(relation, candidates))
        }
        many => Err(ResolveError::NotFound {
            name: relation.name.clone(),
            sources: SOURCES.to_string(),
            suggestions: many.iter().map(|n| n.to_string()).collect(),
        }),
    }
}

fn no_matching_version(
    index: &PackageIndex,
    relation: &Relation,
    records: impl Iterator<Item = usize>,
) -> ResolveError {
    let mut versions: Vec<&PackageRecord> = records.map(|i| &index.records[i]).collect();
    versions.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.name.cmp(&b.name)));
    let mut available: Vec<String> = versions
        .iter()
        .map(|r| describe_available(relation, r))
        .collect();
    available.dedup();
    let constraint = match (&relation.constraint, &relation.arch) {
        (Some(_), _) => relation_constraint_text(relation),
        (None, Some(arch)) => format!("architecture '{arch}'"),
        (None, None) => relation.to_string(),
    };
    ResolveError::NoMatchingVersion {
        name: relation.name.clone(),
        constraint,
        available,
    }
}

/// `>= 2.0` for `foo (>= 2.0)`.
fn relation_constraint_text(relation: &Relation) -> String {
    let shown = Relation {
        name: String::new(),
        arch: None,
        constraint: relation.constraint.clone(),
    }
    .to_string();
    shown
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string()
}

/// A version for an "available" list; a provider is named with what it provides.
fn describe_available(relation: &Relation, record: &PackageRecord) -> String {
    if record.name == relation.name {
        return record.version.to_string();
    }
    let provided = record
        .provides
        .iter()
        .find(|p| p.name == relation.name)
        .and_then(|p| p.constraint.as_ref())
        .map(|(_, v)| format!(" {v}"))
        .unwrap_or_default();
    format!(
        "{} {} (provides {}{provided})",
        record.name, record.version, relation.name
    )
}

// ---------------------------------------------------------------------------
// The search

/// Something the final set must satisfy.
#[derive(Debug)]
enum Need<'a> {
    /// A user request, with its candidates already computed.
    Request {
        relation: Relation,
        candidates: Vec<usize>,
    },
    /// A Pre-Depends or Depends entry of the parent.
    Depends(&'a Dependency),
}

#[derive(Debug)]
struct Obligation<'a> {
    need: Need<'a>,
    /// The chosen record whose field created this; `None` for a request.
    parent: Option<usize>,
    /// The record that satisfied it when it was last processed.
    satisfied_by: Option<usize>,
}

impl<'a> Obligation<'a> {
    fn request(relation: &Relation, candidates: Vec<usize>) -> Obligation<'a> {
        Obligation {
            need: Need::Request {
                relation: relation.clone(),
                candidates,
            },
            parent: None,
            satisfied_by: None,
        }
    }

    /// The text shown at the end of an error chain.
    fn describe(&self) -> String {
        match &self.need {
            Need::Request { relation, .. } => relation.to_string(),
            Need::Depends(dep) => dep.to_string(),
        }
    }
}

/// A chosen record and the agenda position of the choice point that chose it.
#[derive(Debug, Clone, Copy)]
struct Chosen {
    record: usize,
    position: usize,
}

/// One decided obligation and what is left to try for it.
#[derive(Debug)]
struct ChoicePoint {
    /// Agenda position of the obligation.
    position: usize,
    /// Agenda and trail lengths before the choice, to undo it.
    agenda_len: usize,
    trail_len: usize,
    candidates: Vec<usize>,
    next: usize,
    /// Positions of earlier choice points that contributed to failures here.
    culprits: BTreeSet<usize>,
    /// Why candidates were rejected outright, for the error message.
    rejections: Vec<String>,
}

/// Why a candidate cannot be chosen next to the current set.
struct Block {
    /// Position of the choice point that chose the blocking package.
    culprit: usize,
    reason: String,
}

struct Search<'a> {
    index: &'a PackageIndex,
    arch: &'a str,
    agenda: Vec<Obligation<'a>>,
    requests: usize,
    chosen: HashMap<&'a str, Chosen>,
    /// Chosen names in choice order, for undo.
    trail: Vec<&'a str>,
    stack: Vec<ChoicePoint>,
    steps: usize,
    budget: usize,
    /// The first dead end met; the most useful thing to tell a user.
    first_dead_end: Option<ResolveError>,
}

impl<'a> Search<'a> {
    fn new(
        index: &'a PackageIndex,
        arch: &'a str,
        agenda: Vec<Obligation<'a>>,
        budget: usize,
    ) -> Search<'a> {
        Search {
            index,
            arch,
            requests: agenda.len(),
            agenda,
            chosen: HashMap::new(),
            trail: Vec::new(),
            stack: Vec::new(),
            steps: 0,
            budget,
            first_dead_end: None,
        }
    }

    fn record(&self, i: usize) -> &'a PackageRecord {
        &self.index.records[i]
    }

    /// Processes the agenda until every obligation is satisfied.
    fn run(&mut self) -> Result<(), ResolveError> {
        let mut cursor = 0;
        while cursor < self.agenda.len() {
            if let Some(record) = self.satisfier(&self.agenda[cursor]) {
                self.agenda[cursor].satisfied_by = Some(record);
                cursor += 1;
                continue;
            }
            self.push_choice_point(cursor);
            cursor = self.choose_next()?;
        }
        Ok(())
    }

    /// A chosen record that already satisfies `obligation`, trying its
    /// alternatives in order.
    fn satisfier(&self, obligation: &Obligation<'a>) -> Option<usize> {
        match &obligation.need {
            Need::Request { candidates, .. } => candidates.iter().find_map(|&c| {
                let chosen = self.chosen.get(self.record(c).name.as_str())?;
                (self.record(chosen.record).version == self.record(c).version)
                    .then_some(chosen.record)
            }),
            Need::Depends(dep) => dep
                .alternatives
                .iter()
                .find_map(|alt| self.chosen_satisfier(alt)),
        }
    }

    fn chosen_satisfier(&self, relation: &Relation) -> Option<usize> {
        if let Some(chosen) = self.chosen.get(relation.name.as_str())
            && real_match(relation, self.record(chosen.record), self.arch)
        {
            return Some(chosen.record);
        }
        let mut providers: Vec<usize> = self
            .index
            .providers(&relation.name)
            .filter(|(i, r)| {
                self.chosen.get(r.name.as_str()).map(|c| c.record) == Some(*i)
                    && provide_match(relation, r)
            })
            .map(|(i, _)| i)
            .collect();
        providers.sort_by(|&a, &b| compare_providers(&self.index.records, a, b));
        providers.first().copied()
    }

    /// All records that could satisfy `need`, best first.
    fn candidates(&self, need: &Need<'a>) -> Vec<usize> {
        match need {
            Need::Request { candidates, .. } => candidates.clone(),
            Need::Depends(dep) => {
                let mut all = Vec::new();
                for alt in &dep.alternatives {
                    all.extend(real_candidates(self.index, alt, self.arch));
                    all.extend(provider_candidates(self.index, alt));
                }
                dedup_packages(&self.index.records, all)
            }
        }
    }

    fn push_choice_point(&mut self, position: usize) {
        let candidates = self.candidates(&self.agenda[position].need);
        // The obligation exists because its parent was chosen; undoing that
        // choice is always a way out.
        let culprits = self.agenda[position]
            .parent
            .and_then(|p| self.chosen.get(self.record(p).name.as_str()))
            .map(|c| c.position)
            .into_iter()
            .collect();
        self.stack.push(ChoicePoint {
            position,
            agenda_len: self.agenda.len(),
            trail_len: self.trail.len(),
            candidates,
            next: 0,
            culprits,
            rejections: Vec::new(),
        });
    }

    /// Chooses the next viable candidate of the innermost choice point,
    /// backjumping over exhausted ones. Returns the agenda position to go on from.
    fn choose_next(&mut self) -> Result<usize, ResolveError> {
        loop {
            let top = self.stack.len() - 1;
            let (trail_len, agenda_len) = (self.stack[top].trail_len, self.stack[top].agenda_len);
            self.undo_to(trail_len, agenda_len);
            while let Some(&candidate) = self.stack[top].candidates.get(self.stack[top].next) {
                self.stack[top].next += 1;
                self.count_step(self.stack[top].position)?;
                match self.blocker(candidate) {
                    None => {
                        let position = self.stack[top].position;
                        self.choose(candidate, position);
                        return Ok(position + 1);
                    }
                    Some(block) => {
                        self.stack[top].culprits.insert(block.culprit);
                        self.stack[top].rejections.push(block.reason);
                    }
                }
            }
            self.backjump()?;
        }
    }

    fn count_step(&mut self, position: usize) -> Result<(), ResolveError> {
        self.steps += 1;
        if self.steps <= self.budget {
            return Ok(());
        }
        let note = format!("gave up after {} steps of search", self.budget);
        Err(match self.first_dead_end.take() {
            Some(ResolveError::Unsatisfiable { chain, reason }) => ResolveError::Unsatisfiable {
                chain,
                reason: format!("{reason} ({note})"),
            },
            _ => ResolveError::Unsatisfiable {
                chain: self.chain(position),
                reason: note,
            },
        })
    }

    /// Pops the exhausted innermost choice point and unwinds to the latest
    /// choice that contributed to its failure, handing that one the blame.
    fn backjump(&mut self) -> Result<(), ResolveError> {
        let Some(exhausted) = self.stack.pop() else {
            return Err(self.final_error());
        };
        if self.first_dead_end.is_none() {
            self.first_dead_end = Some(self.dead_end_error(&exhausted));
        }
        let Some(&target) = exhausted.culprits.iter().next_back() else {
            // No earlier choice is to blame: nothing can fix this.
            return Err(self.final_error());
        };
        while self.stack.last().is_some_and(|c| c.position > target) {
            self.stack.pop();
        }
        match self.stack.last_mut() {
            Some(point) if point.position == target => {
                point
                    .culprits
                    .extend(exhausted.culprits.iter().filter(|&&c| c != target));
                Ok(())
            }
            // Unreachable while every chosen package has its choice point on
            // the stack; fail rather than search a corrupted state.
            _ => Err(self.final_error()),
        }
    }

    fn final_error(&mut self) -> ResolveError {
        self.first_dead_end
            .take()
            .unwrap_or_else(|| ResolveError::Unsatisfiable {
                chain: Vec::new(),
                reason: "no consistent set of packages exists".to_string(),
            })
    }

    fn undo_to(&mut self, trail_len: usize, agenda_len: usize) {
        while self.trail.len() > trail_len {
            if let Some(name) = self.trail.pop() {
                self.chosen.remove(name);
            }
        }
        self.agenda.truncate(agenda_len);
    }

    fn choose(&mut self, record: usize, position: usize) {
        self.agenda[position].satisfied_by = Some(record);
        let r = self.record(record);
        self.chosen.insert(&r.name, Chosen { record, position });
        self.trail.push(&r.name);
        for dep in r.pre_depends.iter().chain(&r.depends) {
            self.agenda.push(Obligation {
                need: Need::Depends(dep),
                parent: Some(record),
                satisfied_by: None,
            });
        }
    }

    /// Why `candidate` cannot join the chosen set, if it cannot.
    fn blocker(&self, candidate: usize) -> Option<Block> {
        let c = self.record(candidate);
        if let Some(chosen) = self.chosen.get(c.name.as_str()) {
            let other = self.record(chosen.record);
            return Some(Block {
                culprit: chosen.position,
                reason: format!("{} {} is already chosen", other.name, other.version),
            });
        }
        self.trail.iter().find_map(|name| {
            let chosen = self.chosen.get(name)?;
            let q = self.record(chosen.record);
            let reason = clash(c, q, self.arch)
                .map(|verb| format!("{} {} {verb} {} {}", c.name, c.version, q.name, q.version))
                .or_else(|| {
                    clash(q, c, self.arch).map(|verb| {
                        format!("{} {} {verb} {} {}", q.name, q.version, c.name, c.version)
                    })
                })?;
            Some(Block {
                culprit: chosen.position,
                reason,
            })
        })
    }

    /// The error for an exhausted choice point.
    fn dead_end_error(&self, point: &ChoicePoint) -> ResolveError {
        let reason = if !point.rejections.is_empty() {
            point.rejections.join("; ")
        } else if point.candidates.is_empty() {
            self.explain_no_candidate(&self.agenda[point.position].need)
        } else {
            "every candidate leads to a conflict".to_string()
        };
        ResolveError::Unsatisfiable {
            chain: self.chain(point.position),
            reason,
        }
    }

    fn explain_no_candidate(&self, need: &Need<'a>) -> String {
        let Need::Depends(dep) = need else {
            return "no candidate".to_string();
        };
        let explain = |alt: &Relation| {
            let mut versions: Vec<_> = self
                .index
                .by_name(&alt.name)
                .map(|(_, r)| &r.version)
                .collect();
            versions.sort();
            versions.dedup();
            let shown: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
            if !shown.is_empty() {
                format!("no candidate (available: {})", shown.join(", "))
            } else if self.index.providers(&alt.name).next().is_some() {
                "no candidate (no provider has a matching version)".to_string()
            } else {
                "no package of that name".to_string()
            }
        };
        match dep.alternatives.as_slice() {
            [one] => explain(one),
            many => many
                .iter()
                .map(|alt| format!("{}: {}", alt.name, explain(alt)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// Names from a request down to the obligation at `position`, then the obligation.
    fn chain(&self, position: usize) -> Vec<String> {
        let mut chain = vec![self.agenda[position].describe()];
        let mut parent = self.agenda[position].parent;
        while let Some(record) = parent {
            let name = &self.record(record).name;
            chain.push(name.clone());
            parent = self
                .chosen
                .get(name.as_str())
                .and_then(|c| self.agenda[c.position].parent);
        }
        chain.reverse();
        chain
    }

    fn into_resolution(self) -> Resolution {
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for obligation in &self.agenda {
            let (Some(parent), Some(dep)) = (obligation.parent, obligation.satisfied_by) else {
                continue;
            };
            let (from, to) = (&self.record(parent).name, &self.record(dep).name);
            if from != to {
                edges.entry(from).or_default().insert(to);
            }
        }
        let requested: BTreeSet<&str> = self.agenda[..self.requests]
            .iter()
            .filter_map(|o| o.satisfied_by.map(|r| self.record(r).name.as_str()))
            .collect();
        let required_by = required_by(&requested, &edges);
        let packages = self
            .chosen
            .iter()
            .map(|(&name, chosen)| {
                let package = ResolvedPackage {
                    record: chosen.record,
                    requested: requested.contains(name),
                    required_by: required_by
                        .get(name)
                        .map(|s| s.iter().map(|n| n.to_string()).collect())
                        .unwrap_or_default(),
                    depends: edges
                        .get(name)
                        .map(|s| s.iter().map(|n| n.to_string()).collect())
                        .unwrap_or_default(),
                };
                (name.to_string(), package)
            })
            .collect();
        Resolution { packages }
    }
}

/// `Some("conflicts with")` or `Some("breaks")` when `a` declares a clash with `b`.
/// A package never clashes with itself, even through what it provides.
fn clash(a: &PackageRecord, b: &PackageRecord, arch: &str) -> Option<&'static str> {
    if a.name == b.name {
        return None;
    }
    let hits = |deps: &[Dependency]| {
        deps.iter()
            .flat_map(|d| &d.alternatives)
            .any(|rel| satisfies(rel, b, arch))
    };
    if hits(&a.conflicts) {
        Some("conflicts with")
    } else if hits(&a.breaks) {
        Some("breaks")
    } else {
        None
    }
}

/// For each package, the requested packages whose dependency closure reaches it.
fn required_by<'a>(
    requested: &BTreeSet<&'a str>,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> HashMap<&'a str, BTreeSet<&'a str>> {
    let mut out: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for &root in requested {
        let mut seen = BTreeSet::from([root]);
        let mut queue = vec![root];
        while let Some(name) = queue.pop() {
            out.entry(name).or_default().insert(root);
            for &next in edges.get(name).into_iter().flatten() {
                if seen.insert(next) {
                    queue.push(next);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::MultiArch;

    /// A tiny builder for in-memory records: `pkg("app", "1.0").depends("libc6")`.
    struct Pkg(PackageRecord);

    fn pkg(name: &str, version: &str) -> Pkg {
        Pkg(PackageRecord {
            name: name.to_string(),
            version: version.parse().unwrap_or_else(|e| panic!("{e}")),
            architecture: "amd64".to_string(),
            multi_arch: MultiArch::No,
            essential: false,
            priority: None,
            section: None,
            source: None,
            pre_depends: Vec::new(),
            depends: Vec::new(),
            provides: Vec::new(),
            conflicts: Vec::new(),
            breaks: Vec::new(),
            filename: format!("pool/main/{name}_{version}_amd64.deb"),
            size: 0,
            sha256: String::new(),
            installed_size: None,
            summary: String::new(),
            origin: 0,
        })
    }

    fn field(text: &str) -> Vec<Dependency> {
        Dependency::parse_list(text, "amd64").unwrap_or_else(|e| panic!("{e}"))
    }

    impl Pkg {
        fn depends(mut self, text: &str) -> Pkg {
            self.0.depends = field(text);
            self
        }
        fn pre_depends(mut self, text: &str) -> Pkg {
            self.0.pre_depends = field(text);
            self
        }
        fn provides(mut self, text: &str) -> Pkg {
            self.0.provides = field(text)
                .into_iter()
                .flat_map(|d| d.alternatives)
                .collect();
            self
        }
        fn conflicts(mut self, text: &str) -> Pkg {
            self.0.conflicts = field(text);
            self
        }
        fn breaks(mut self, text: &str) -> Pkg {
            self.0.breaks = field(text);
            self
        }
        fn essential(mut self) -> Pkg {
            self.0.essential = true;
            self
        }
        fn priority(mut self, priority: &str) -> Pkg {
            self.0.priority = Some(priority.to_string());
            self
        }
        fn multi_arch(mut self, multi_arch: MultiArch) -> Pkg {
            self.0.multi_arch = multi_arch;
            self
        }
        fn origin(mut self, origin: usize) -> Pkg {
            self.0.origin = origin;
            self
        }
    }

    fn index(pkgs: Vec<Pkg>) -> PackageIndex {
        PackageIndex::new(pkgs.into_iter().map(|p| p.0).collect())
    }

    fn requests(texts: &[&str]) -> Vec<Request> {
        texts
            .iter()
            .map(|t| Request {
                relation: Relation::parse(t).unwrap_or_else(|e| panic!("{e}")),
            })
            .collect()
    }

    fn solve(index: &PackageIndex, texts: &[&str]) -> Result<Resolution, ResolveError> {
        resolve(index, &requests(texts), "amd64")
    }

    /// The chosen set as `name=version`, sorted by name.
    fn chosen(index: &PackageIndex, texts: &[&str]) -> Vec<String> {
        match solve(index, texts) {
            Ok(res) => shown(index, &res),
            Err(e) => panic!("{e}"),
        }
    }

    fn shown(index: &PackageIndex, res: &Resolution) -> Vec<String> {
        res.packages
            .iter()
            .map(|(name, p)| format!("{name}={}", index.records[p.record].version))
            .collect()
    }

    fn error(index: &PackageIndex, texts: &[&str]) -> String {
        match solve(index, texts) {
            Ok(res) => panic!("resolved to {:?}", shown(index, &res)),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn follows_depends_and_pre_depends() {
        let idx = index(vec![
            pkg("app", "1.0").depends("libfoo").pre_depends("dpkg"),
            pkg("libfoo", "1.0").depends("libc6 (>= 2.36)"),
            pkg("libc6", "2.36-9"),
            pkg("dpkg", "1.21"),
            pkg("unrelated", "1.0"),
        ]);
        assert_eq!(
            chosen(&idx, &["app"]),
            ["app=1.0", "dpkg=1.21", "libc6=2.36-9", "libfoo=1.0"]
        );
    }

    #[test]
    fn prefers_the_first_alternative() {
        let idx = index(vec![
            pkg("app", "1").depends("gawk | mawk"),
            pkg("mawk", "1"),
            pkg("gawk", "1"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "gawk=1"]);
    }

    #[test]
    fn falls_back_to_a_later_alternative() {
        let idx = index(vec![
            pkg("app", "1").depends("missing | old (>= 2) | mawk"),
            pkg("old", "1"),
            pkg("mawk", "1"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "mawk=1"]);
    }

    #[test]
    fn an_already_chosen_alternative_wins() {
        let idx = index(vec![
            pkg("app", "1").depends("gawk | mawk"),
            pkg("gawk", "1"),
            pkg("mawk", "1"),
        ]);
        assert_eq!(chosen(&idx, &["app", "mawk"]), ["app=1", "mawk=1"]);
    }

    #[test]
    fn picks_the_highest_matching_version() {
        let idx = index(vec![
            pkg("lib", "1.0-1"),
            pkg("lib", "2.0-1"),
            pkg("lib", "1.5-1"),
            pkg("app", "1").depends("lib (<< 2.0)"),
        ]);
        assert_eq!(chosen(&idx, &["lib"]), ["lib=2.0-1"]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "lib=1.5-1"]);
        assert_eq!(chosen(&idx, &["lib (<= 1.0-1)"]), ["lib=1.0-1"]);
    }

    #[test]
    fn only_one_version_of_a_name() {
        let idx = index(vec![
            pkg("lib", "1").origin(0),
            pkg("lib", "2").origin(1),
            pkg("a", "1").depends("lib (<< 2)"),
            pkg("b", "1").depends("lib"),
        ]);
        // b is content with the version a needs.
        assert_eq!(chosen(&idx, &["a", "b"]), ["a=1", "b=1", "lib=1"]);
        assert_eq!(
            error(&idx, &["lib (<< 2)", "c"]).split(':').next(),
            Some("package 'c' not found in the configured sources")
        );
    }

    #[test]
    fn conflicting_versions_of_one_name_fail() {
        let idx = index(vec![
            pkg("foo", "1"),
            pkg("foo", "2"),
            pkg("bar", "1").depends("foo (>= 2)"),
        ]);
        assert_eq!(
            error(&idx, &["foo (<< 2)", "bar"]),
            "cannot satisfy bar -> foo (>= 2): foo 1 is already chosen"
        );
    }

    #[test]
    fn same_version_in_two_suites_is_one_candidate() {
        let idx = index(vec![
            pkg("lib", "1").origin(0),
            pkg("lib", "1").origin(1),
            pkg("app", "1").depends("lib"),
        ]);
        let res = solve(&idx, &["app"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.packages["lib"].record, 0);
    }

    #[test]
    fn real_package_beats_providers() {
        let idx = index(vec![
            pkg("app", "1").depends("awk"),
            pkg("mawk", "1").provides("awk").priority("required"),
            pkg("awk", "1"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "awk=1"]);
    }

    #[test]
    fn providers_by_priority_then_name() {
        let idx = index(vec![
            pkg("app", "1").depends("mail-transport-agent"),
            pkg("postfix", "3")
                .provides("mail-transport-agent")
                .priority("optional"),
            pkg("exim4", "4")
                .provides("mail-transport-agent")
                .priority("standard"),
            pkg("dma", "1")
                .provides("mail-transport-agent")
                .priority("standard"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "dma=1"]);
    }

    #[test]
    fn versioned_relations_need_versioned_provides() {
        let idx = index(vec![
            pkg("app", "1").depends("foo (>= 2)"),
            pkg("aaa", "9").provides("foo"),
            pkg("old", "1").provides("foo (= 1.5)"),
            pkg("new", "1").provides("foo (= 2.1)"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "new=1"]);
        let unversioned = index(vec![
            pkg("app", "1").depends("foo (>= 2)"),
            pkg("aaa", "9").provides("foo"),
        ]);
        assert_eq!(
            error(&unversioned, &["app"]),
            "cannot satisfy app -> foo (>= 2): no candidate (no provider has a matching version)"
        );
    }

    #[test]
    fn a_chosen_provider_satisfies_later_relations() {
        let idx = index(vec![
            pkg("app", "1").depends("awk"),
            pkg("gawk", "1").provides("awk").priority("optional"),
            pkg("mawk", "1").provides("awk").priority("required"),
        ]);
        assert_eq!(chosen(&idx, &["gawk", "app"]), ["app=1", "gawk=1"]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "mawk=1"]);
    }

    #[test]
    fn a_virtual_request_uses_its_only_provider() {
        let idx = index(vec![
            pkg("mawk", "1.3").provides("awk"),
            pkg("mawk", "1.4").provides("awk"),
        ]);
        let res = solve(&idx, &["awk"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shown(&idx, &res), ["mawk=1.4"]);
        assert!(res.packages["mawk"].requested);
    }

    #[test]
    fn a_virtual_request_with_several_providers_asks_which() {
        let idx = index(vec![
            pkg("mawk", "1").provides("awk"),
            pkg("gawk", "1").provides("awk"),
        ]);
        match solve(&idx, &["awk"]) {
            Err(ResolveError::NotFound {
                name, suggestions, ..
            }) => {
                assert_eq!(name, "awk");
                assert_eq!(suggestions, ["gawk", "mawk"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            error(&idx, &["awk"]),
            "package 'awk' not found in the configured sources (did you mean one of: gawk, mawk?)"
        );
    }

    #[test]
    fn conflicts_force_the_second_alternative() {
        let idx = index(vec![
            pkg("app", "1").depends("b | c"),
            pkg("b", "1"),
            pkg("c", "1"),
            pkg("x", "1").conflicts("b"),
            pkg("y", "1"),
        ]);
        assert_eq!(chosen(&idx, &["app", "x"]), ["app=1", "c=1", "x=1"]);
        // The same when the conflict is declared by the candidate.
        let idx = index(vec![
            pkg("app", "1").depends("b | c"),
            pkg("b", "1").conflicts("x"),
            pkg("c", "1"),
            pkg("x", "1"),
        ]);
        assert_eq!(chosen(&idx, &["app", "x"]), ["app=1", "c=1", "x=1"]);
    }

    #[test]
    fn breaks_exclude_like_conflicts() {
        let idx = index(vec![
            pkg("app", "1").depends("b (<< 3)"),
            pkg("b", "1.0"),
            pkg("b", "2.5"),
            pkg("x", "1").breaks("b (>= 2)"),
        ]);
        assert_eq!(chosen(&idx, &["x", "app"]), ["app=1", "b=1.0", "x=1"]);
        assert_eq!(
            error(&idx, &["x", "b (>= 2)"]),
            "cannot satisfy b (>= 2): x 1 breaks b 2.5"
        );
    }

    #[test]
    fn versioned_conflicts_compare_the_real_version() {
        let idx = index(vec![
            pkg("a", "1").conflicts("b (<< 2)"),
            pkg("b", "1"),
            pkg("c", "1").provides("b"),
            pkg("d", "1").provides("b (= 1)"),
        ]);
        assert!(solve(&idx, &["a", "b"]).is_err());
        // An unversioned provide does not match a versioned conflict...
        assert_eq!(chosen(&idx, &["a", "c"]), ["a=1", "c=1"]);
        // ...but a versioned one is compared.
        assert!(solve(&idx, &["a", "d"]).is_err());
    }

    #[test]
    fn a_package_never_conflicts_with_itself() {
        let idx = index(vec![
            pkg("postfix", "3")
                .provides("mail-transport-agent")
                .conflicts("mail-transport-agent"),
            pkg("exim4", "4")
                .provides("mail-transport-agent")
                .conflicts("mail-transport-agent"),
            pkg("app", "1").depends("mail-transport-agent"),
        ]);
        assert_eq!(chosen(&idx, &["postfix", "app"]), ["app=1", "postfix=3"]);
        assert_eq!(
            error(&idx, &["postfix", "exim4"]),
            "cannot satisfy exim4: exim4 4 conflicts with postfix 3"
        );
    }

    #[test]
    fn backtracks_out_of_a_dead_end() {
        let idx = index(vec![
            pkg("app", "1").depends("b | c"),
            pkg("b", "1").depends("d"),
            pkg("c", "1"),
            pkg("d", "1").conflicts("app"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "c=1"]);
    }

    #[test]
    fn backtracks_to_an_older_version() {
        let idx = index(vec![
            pkg("app", "1").depends("libfoo"),
            pkg("libfoo", "2.0").depends("libbar (>= 2)"),
            pkg("libfoo", "1.0").depends("libbar"),
            pkg("libbar", "1.0"),
        ]);
        assert_eq!(
            chosen(&idx, &["app"]),
            ["app=1", "libbar=1.0", "libfoo=1.0"]
        );
    }

    #[test]
    fn backjumps_over_unrelated_choices() {
        // Twenty independent two-way choices before one that no choice can
        // fix: chronological backtracking would try 2^20 combinations.
        let mut pkgs = vec![pkg("w", "1"), pkg("z", "1").conflicts("w")];
        let mut deps = vec![];
        for i in 0..20 {
            pkgs.push(pkg(&format!("x{i}"), "1"));
            pkgs.push(pkg(&format!("y{i}"), "1"));
            deps.push(format!("x{i} | y{i}"));
        }
        deps.push("z".to_string());
        pkgs.push(pkg("app", "1").depends(&deps.join(", ")));
        let idx = index(pkgs);
        let err = resolve_with_budget(&idx, &requests(&["w", "app"]), "amd64", 100);
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("cannot satisfy app -> z: z 1 conflicts with w 1".to_string())
        );
    }

    #[test]
    fn gives_up_after_the_step_budget() {
        let idx = index(vec![
            pkg("app", "1").depends("lib"),
            pkg("lib", "1"),
            pkg("lib", "2").depends("nope"),
        ]);
        let err = resolve_with_budget(&idx, &requests(&["app"]), "amd64", 2);
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("cannot satisfy app -> lib -> nope: no package of that name (gave up after 2 steps of search)".to_string())
        );
        assert_eq!(chosen(&idx, &["app"]), ["app=1", "lib=1"]);
    }

    #[test]
    fn cycles_terminate() {
        let idx = index(vec![
            pkg("a", "1").depends("b"),
            pkg("b", "1").depends("a (>= 1)"),
        ]);
        let res = solve(&idx, &["a"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shown(&idx, &res), ["a=1", "b=1"]);
        assert_eq!(res.packages["a"].depends, ["b"]);
        assert_eq!(res.packages["b"].depends, ["a"]);
        assert_eq!(res.packages["b"].required_by, ["a"]);
    }

    #[test]
    fn essential_packages_come_only_when_needed() {
        let idx = index(vec![
            pkg("base-files", "12").essential().priority("required"),
            pkg("app", "1"),
            pkg("tool", "1").depends("base-files"),
        ]);
        assert_eq!(chosen(&idx, &["app"]), ["app=1"]);
        assert_eq!(chosen(&idx, &["tool"]), ["base-files=12", "tool=1"]);
    }

    #[test]
    fn arch_qualifiers() {
        let idx = index(vec![
            pkg("app", "1").depends("python3:any, perl:native, libc6:amd64"),
            pkg("python3", "3.11").multi_arch(MultiArch::Allowed),
            pkg("perl", "5.36"),
            pkg("libc6", "2.36"),
            pkg("cross", "1").depends("libc6:i386"),
            pkg("lenient", "1").depends("perl:any"),
        ]);
        assert_eq!(
            chosen(&idx, &["app"]),
            ["app=1", "libc6=2.36", "perl=5.36", "python3=3.11"]
        );
        assert_eq!(chosen(&idx, &["lenient"]), ["lenient=1", "perl=5.36"]);
        assert_eq!(
            error(&idx, &["cross"]),
            "cannot satisfy cross -> libc6:i386: no candidate (available: 2.36)"
        );
    }

    #[test]
    fn unsatisfiable_names_the_chain() {
        let idx = index(vec![
            pkg("app", "1").depends("libfoo (>= 2.0)"),
            pkg("libfoo", "1.0-1"),
            pkg("top", "1").depends("mid"),
            pkg("mid", "1").depends("a | b"),
        ]);
        assert_eq!(
            error(&idx, &["app"]),
            "cannot satisfy app -> libfoo (>= 2.0): no candidate (available: 1.0-1)"
        );
        assert_eq!(
            error(&idx, &["top"]),
            "cannot satisfy top -> mid -> a | b: a: no package of that name; b: no package of that name"
        );
        match solve(&idx, &["app"]) {
            Err(ResolveError::Unsatisfiable { chain, .. }) => {
                assert_eq!(chain, ["app", "libfoo (>= 2.0)"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_requests_get_suggestions() {
        let idx = index(vec![
            pkg("python3", "3.11"),
            pkg("python3-venv", "3.11"),
            pkg("perl", "5"),
        ]);
        assert_eq!(
            error(&idx, &["pyhton3"]),
            "package 'pyhton3' not found in the configured sources (did you mean one of: python3, python3-venv?)"
        );
        assert_eq!(
            error(&idx, &["zzzzzz"]),
            "package 'zzzzzz' not found in the configured sources"
        );
        assert_eq!(suggest(&idx, "perll"), ["perl"]);
    }

    #[test]
    fn requests_with_no_matching_version() {
        let idx = index(vec![pkg("python3", "3.11.2-1"), pkg("python3", "3.9.2-3")]);
        match solve(&idx, &["python3 (>= 3.13)"]) {
            Err(ResolveError::NoMatchingVersion {
                name,
                constraint,
                available,
            }) => {
                assert_eq!(name, "python3");
                assert_eq!(constraint, ">= 3.13");
                assert_eq!(available, ["3.9.2-3", "3.11.2-1"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            error(&idx, &["python3 (>= 3.13)"]),
            "no version of 'python3' satisfies >= 3.13 (available: 3.9.2-3, 3.11.2-1)"
        );
    }

    #[test]
    fn records_why_each_package_is_there() {
        let idx = index(vec![
            pkg("app1", "1").depends("libc6, libx"),
            pkg("app2", "1").depends("libc6 | musl"),
            pkg("libx", "1").depends("libc6"),
            pkg("libc6", "2.36"),
        ]);
        let res = solve(&idx, &["app1", "app2"]).unwrap_or_else(|e| panic!("{e}"));
        let p = &res.packages;
        assert!(p["app1"].requested && p["app2"].requested);
        assert!(!p["libc6"].requested && !p["libx"].requested);
        assert_eq!(p["app1"].depends, ["libc6", "libx"]);
        assert_eq!(p["app2"].depends, ["libc6"]);
        assert_eq!(p["libx"].depends, ["libc6"]);
        assert!(p["libc6"].depends.is_empty());
        assert_eq!(p["libc6"].required_by, ["app1", "app2"]);
        assert_eq!(p["libx"].required_by, ["app1"]);
        assert_eq!(p["app1"].required_by, ["app1"]);
        assert_eq!(p["app1"].record, 0);
    }

    #[test]
    fn output_is_deterministic() {
        let make = |reverse: bool| {
            let mut pkgs = vec![
                pkg("app", "1").depends("mta, libc6, awk"),
                pkg("postfix", "3").provides("mta").priority("optional"),
                pkg("exim4", "4").provides("mta").priority("optional"),
                pkg("libc6", "2.36"),
                pkg("libc6", "2.37"),
                pkg("mawk", "1").provides("awk"),
                pkg("gawk", "1").provides("awk"),
            ];
            if reverse {
                pkgs.reverse();
            }
            index(pkgs)
        };
        let (a, b) = (make(false), make(true));
        let first = chosen(&a, &["app"]);
        assert_eq!(first, ["app=1", "exim4=4", "gawk=1", "libc6=2.37"]);
        assert_eq!(chosen(&b, &["app"]), first);
        for _ in 0..5 {
            assert_eq!(solve(&a, &["app"]), solve(&a, &["app"]));
        }
    }

    #[test]
    fn empty_request_list_resolves_to_nothing() {
        let idx = index(vec![pkg("a", "1")]);
        assert_eq!(chosen(&idx, &[]), Vec::<String>::new());
    }
}
