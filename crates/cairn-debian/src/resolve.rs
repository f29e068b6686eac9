//! Dependency resolution: from requested names to a closed, conflict-free set
//! of packages, following apt's preferences (first satisfiable alternative,
//! highest version), optionally with Debian's Essential set as extra roots and
//! with Recommends followed (see [`ResolveOptions`]).
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
//!
//! **Essential.** Debian policy (3.8) lets every package assume the
//! `Essential: yes` set without declaring it, so [`ResolveOptions::essential`]
//! adds each such name as a root, after the user's requests (whose explicit
//! choices therefore win), and the search closes it over Pre-Depends/Depends.
//! This is mmdebstrap's `essential` variant. `Priority: required` (debootstrap's
//! and mmdebstrap's `minbase`/`required` variants) is deliberately not used: it
//! adds packages such as `apt`, `gpgv`, `mawk` and `e2fsprogs` that policy does
//! not promise and that a container does not need; a user who wants them asks
//! for them. Like debootstrap, the base also holds `usr-is-merged` when the
//! index has it (see `ESSENTIAL_COMPANIONS`). Essential roots never follow Recommends, as debootstrap and
//! mmdebstrap build the base without them; a package they share with a
//! subtree that follows Recommends gets its Recommends followed all the same.
//!
//! **Recommends.** With [`ResolveOptions::recommends`] (apt's default,
//! `APT::Install-Recommends "true"`), each chosen package's Recommends become
//! soft obligations: tried like Depends (first alternative, highest version),
//! but only once every Depends queued so far is settled, a level at a time
//! (so an or-group in a Recommends sees what Depends chose, as in apt), and
//! one that cannot be met, because no such package exists, no version
//! matches, or every candidate conflicts or leads to a dead end, is skipped,
//! never an error, as apt does. Whether Recommends are followed is decided per
//! root ([`ResolveOptions::recommends_for`]) and inherited down the subtree, so
//! `gcc.recommends = false` behaves like `apt-get install --no-install-recommends
//! gcc` for gcc's subtree only. A package reached both from a root that follows
//! Recommends and one that does not has its Recommends followed, whatever the
//! order the search met them in: the set does not depend on request order.

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

/// What the resolver adds beyond the requests' Pre-Depends and Depends.
///
/// The default is the historical behaviour (no Essential set, no
/// Recommends); [`ResolveOptions::debian`] is what apt on a Debian system does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOptions {
    /// Add every `Essential: yes` package of the index as a root.
    pub essential: bool,
    /// Follow Recommends for roots not named in `recommends_for`.
    pub recommends: bool,
    /// Per-request override of `recommends`, keyed by the request's name
    /// (`gcc` for `gcc.recommends = false`); applies to that root's subtree.
    pub recommends_for: BTreeMap<String, bool>,
}

impl ResolveOptions {
    /// Essential set and Recommends, as a Debian system with apt has them.
    pub fn debian() -> ResolveOptions {
        ResolveOptions {
            essential: true,
            recommends: true,
            recommends_for: BTreeMap::new(),
        }
    }

    /// Whether the subtree of the request named `name` follows Recommends.
    fn follows_recommends(&self, name: &str) -> bool {
        self.recommends_for
            .get(name)
            .copied()
            .unwrap_or(self.recommends)
    }
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
    /// Names of the chosen packages that satisfy its Recommends (sorted);
    /// empty unless Recommends were followed for it.
    pub recommends: Vec<String>,
    /// Whether the Essential set's closure holds it (only with
    /// [`ResolveOptions::essential`]); such a package is in every container.
    pub essential_closure: bool,
    /// Whether only a Recommends brought it in: no chain of Pre-Depends and
    /// Depends from a request or an Essential root reaches it.
    pub recommended_only: bool,
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

/// Resolves `requests` against `index` for `arch` (the native architecture),
/// following Pre-Depends and Depends only.
pub fn resolve(
    index: &PackageIndex,
    requests: &[Request],
    arch: &str,
) -> Result<Resolution, ResolveError> {
    resolve_with(index, requests, arch, &ResolveOptions::default())
}

/// Resolves `requests` with the Essential set and Recommends as `options` say.
pub fn resolve_with(
    index: &PackageIndex,
    requests: &[Request],
    arch: &str,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    resolve_with_budget(index, requests, arch, options, STEP_BUDGET)
}

fn resolve_with_budget(
    index: &PackageIndex,
    requests: &[Request],
    arch: &str,
    options: &ResolveOptions,
    budget: usize,
) -> Result<Resolution, ResolveError> {
    let mut agenda = Vec::with_capacity(requests.len());
    for request in requests {
        let mut obligation = request_obligation(index, request, arch)?;
        obligation.follow_recommends = options.follows_recommends(&request.relation.name);
        agenda.push(obligation);
    }
    let user_requests = agenda.len();
    if options.essential {
        agenda.extend(essential_obligations(index, arch));
    }
    let mut search = Search::new(index, arch, agenda, user_requests, budget);
    search.run()?;
    Ok(search.into_resolution())
}

/// Packages debootstrap and mmdebstrap install with the Essential set.
/// `usr-is-merged` (bookworm and later) is an empty package that declares a
/// merged-/usr system: without it, `init-system-helpers`' `usrmerge |
/// usr-is-merged` picks usrmerge, whose postinst (never run here) converts a
/// system and which pulls in perl and 9 more packages (55 MB).
const ESSENTIAL_COMPANIONS: &[&str] = &["usr-is-merged"];

/// The names of the Essential set (and [`ESSENTIAL_COMPANIONS`] the index
/// has), as request obligations: companions first, so that alternatives in
/// the Essential set's Depends see them, then Essential names in name order
/// (the index's order would make the set depend on how sources are listed).
fn essential_obligations<'a>(index: &'a PackageIndex, arch: &str) -> Vec<Obligation<'a>> {
    // The flag is read in place: only Essential records get decoded.
    let records = &index.records;
    let essential: BTreeSet<&str> = (0..records.len())
        .filter(|&i| records.is_essential(i))
        .map(|i| records[i].name.as_str())
        .collect();
    let companions = ESSENTIAL_COMPANIONS.iter().copied();
    companions
        .map(|name| (name, false))
        .chain(essential.into_iter().map(|name| (name, true)))
        .filter_map(|(name, essential_only)| {
            let relation = Relation::named(name);
            let candidates: Vec<usize> = real_candidates(index, &relation, arch)
                .into_iter()
                .filter(|&i| !essential_only || index.records[i].essential)
                .collect();
            let candidates = dedup_packages(&index.records, candidates);
            (!candidates.is_empty()).then(|| Obligation::request(&relation, candidates))
        })
        .collect()
}

/// Up to three package names that look like `name`, most similar first.
pub fn suggest(index: &PackageIndex, name: &str) -> Vec<String> {
    // Jaro-Winkler rewards a shared prefix, which suits typos in package
    // names (`pyhton3`) better than plain edit distance.
    const THRESHOLD: f64 = 0.85;
    // Language ecosystems' names live under a Debian prefix: `flask` is
    // `python3-flask`, `express` is `node-express`, `rails` is `ruby-rails`.
    const PREFIXES: &[&str] = &[
        "python3-", "node-", "ruby-", "lib", "golang-", "php-", "r-cran-",
    ];
    let mut found: Vec<String> = PREFIXES
        .iter()
        .map(|prefix| format!("{prefix}{name}"))
        .filter(|candidate| index.by_name(candidate).next().is_some())
        .collect();
    let mut scored: Vec<(f64, &str)> = index
        .names()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, candidate)| *score >= THRESHOLD && *candidate != name)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    for (_, candidate) in scored {
        if found.len() >= 3 {
            break;
        }
        if !found.iter().any(|f| f == candidate) {
            found.push(candidate.to_string());
        }
    }
    found.truncate(3);
    found
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
    /// A Recommends entry of the parent: skipped when it cannot be met.
    Recommends(&'a Dependency),
}

#[derive(Debug)]
struct Obligation<'a> {
    need: Need<'a>,
    /// The chosen record whose field created this; `None` for a request.
    parent: Option<usize>,
    /// The record that satisfied it when it was last processed.
    satisfied_by: Option<usize>,
    /// Whether the record satisfying it has its Recommends followed.
    follow_recommends: bool,
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
            follow_recommends: false,
        }
    }

    /// An obligation from a field of the chosen `parent`.
    fn from_field(need: Need<'a>, parent: usize, follow_recommends: bool) -> Obligation<'a> {
        Obligation {
            need,
            parent: Some(parent),
            satisfied_by: None,
            follow_recommends,
        }
    }

    fn is_soft(&self) -> bool {
        matches!(self.need, Need::Recommends(_))
    }

    /// The text shown at the end of an error chain.
    fn describe(&self) -> String {
        match &self.need {
            Need::Request { relation, .. } => relation.to_string(),
            Need::Depends(dep) | Need::Recommends(dep) => dep.to_string(),
        }
    }
}

/// A chosen record and the agenda position of the choice point that chose it.
#[derive(Debug, Clone, Copy)]
struct Chosen {
    record: usize,
    position: usize,
    /// Whether its Recommends (and its dependencies' Recommends) are followed.
    follow_recommends: bool,
}

/// One undoable change to the chosen set, in the order it was made.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// The package of that name was chosen.
    Chose(&'a str),
    /// An already chosen package started following its Recommends.
    Followed(&'a str),
}

/// One decided obligation and what is left to try for it.
#[derive(Debug)]
struct ChoicePoint {
    /// Agenda position of the obligation.
    position: usize,
    /// Agenda, trail and deferral state before the choice, to undo it.
    agenda_len: usize,
    trail_len: usize,
    deferred_len: usize,
    drained: usize,
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
    /// How many leading agenda entries are user requests.
    requests: usize,
    /// How many leading agenda entries are roots (user requests, then the
    /// Essential set).
    roots: usize,
    chosen: HashMap<&'a str, Chosen>,
    /// Changes to `chosen` in order, for undo.
    trail: Vec<Step<'a>>,
    stack: Vec<ChoicePoint>,
    steps: usize,
    budget: usize,
    /// The first dead end met; the most useful thing to tell a user.
    first_dead_end: Option<ResolveError>,
    /// Recommends waiting for every pending Depends to be settled, with the
    /// record they come from; `deferred[..drained]` are on the agenda.
    deferred: Vec<(usize, &'a Dependency)>,
    drained: usize,
}

impl<'a> Search<'a> {
    fn new(
        index: &'a PackageIndex,
        arch: &'a str,
        agenda: Vec<Obligation<'a>>,
        requests: usize,
        budget: usize,
    ) -> Search<'a> {
        Search {
            index,
            arch,
            requests,
            roots: agenda.len(),
            agenda,
            chosen: HashMap::new(),
            trail: Vec::new(),
            stack: Vec::new(),
            steps: 0,
            budget,
            first_dead_end: None,
            deferred: Vec::new(),
            drained: 0,
        }
    }

    fn record(&self, i: usize) -> &'a PackageRecord {
        &self.index.records[i]
    }

    /// Processes the agenda until every obligation is satisfied.
    fn run(&mut self) -> Result<(), ResolveError> {
        let mut cursor = 0;
        loop {
            if cursor == self.agenda.len() {
                if self.drained == self.deferred.len() {
                    break;
                }
                self.drain_recommends();
            }
            if let Some(record) = self.satisfier(&self.agenda[cursor]) {
                self.agenda[cursor].satisfied_by = Some(record);
                if self.agenda[cursor].follow_recommends {
                    self.start_following(record);
                }
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
            Need::Depends(dep) | Need::Recommends(dep) => dep
                .alternatives
                .iter()
                .find_map(|alt| self.chosen_satisfier(alt)),
        }
    }

    /// Makes the already chosen `record` follow Recommends, because a subtree
    /// that follows them reached it: its Recommends join the agenda, and its
    /// dependencies are queued again so that they follow theirs too. Without
    /// this the first subtree to reach a package would decide for all.
    fn start_following(&mut self, record: usize) {
        let r = self.record(record);
        let Some(chosen) = self.chosen.get_mut(r.name.as_str()) else {
            return;
        };
        if chosen.follow_recommends || chosen.record != record {
            return;
        }
        chosen.follow_recommends = true;
        self.trail.push(Step::Followed(&r.name));
        self.push_fields(record, true);
    }

    /// Queues the Pre-Depends and Depends of the chosen `record`, and defers
    /// its Recommends (when followed).
    fn push_fields(&mut self, record: usize, follow_recommends: bool) {
        let r = self.record(record);
        for dep in r.pre_depends.iter().chain(&r.depends) {
            let need = Need::Depends(dep);
            self.agenda
                .push(Obligation::from_field(need, record, follow_recommends));
        }
        if follow_recommends {
            self.deferred
                .extend(r.recommends.iter().map(|dep| (record, dep)));
        }
    }

    /// Moves the deferred Recommends onto the agenda, once every Depends
    /// queued so far is settled. Recommends are thus decided a level at a
    /// time after the Depends that reach them, as apt does: an or-group such
    /// as sysstat's `systemd | cron` sees the cron that logrotate's Depends
    /// chose instead of pulling in systemd.
    fn drain_recommends(&mut self) {
        for &(record, dep) in &self.deferred[self.drained..] {
            let need = Need::Recommends(dep);
            self.agenda.push(Obligation::from_field(need, record, true));
        }
        self.drained = self.deferred.len();
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
            Need::Depends(dep) | Need::Recommends(dep) => {
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
            deferred_len: self.deferred.len(),
            drained: self.drained,
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
            self.deferred.truncate(self.stack[top].deferred_len);
            self.drained = self.stack[top].drained;
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
            let position = self.stack[top].position;
            if self.agenda[position].is_soft() {
                // A Recommends that cannot be met is left out, as apt does.
                // Its exhausted choice point stays on the stack: nothing was
                // chosen there, so no later failure can blame it.
                self.agenda[position].satisfied_by = None;
                return Ok(position + 1);
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
            match self.trail.pop() {
                Some(Step::Chose(name)) => {
                    self.chosen.remove(name);
                }
                Some(Step::Followed(name)) => {
                    if let Some(chosen) = self.chosen.get_mut(name) {
                        chosen.follow_recommends = false;
                    }
                }
                None => {}
            }
        }
        self.agenda.truncate(agenda_len);
    }

    fn choose(&mut self, record: usize, position: usize) {
        self.agenda[position].satisfied_by = Some(record);
        let follow_recommends = self.agenda[position].follow_recommends;
        let r = self.record(record);
        let chosen = Chosen {
            record,
            position,
            follow_recommends,
        };
        self.chosen.insert(&r.name, chosen);
        self.trail.push(Step::Chose(&r.name));
        self.push_fields(record, follow_recommends);
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
        self.trail.iter().find_map(|step| {
            let Step::Chose(name) = step else {
                return None;
            };
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
        let (Need::Depends(dep) | Need::Recommends(dep)) = need else {
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
        type Edges<'e> = BTreeMap<&'e str, BTreeSet<&'e str>>;
        let (mut depends, mut recommends): (Edges<'_>, Edges<'_>) = Default::default();
        for obligation in &self.agenda {
            let (Some(parent), Some(dep)) = (obligation.parent, obligation.satisfied_by) else {
                continue;
            };
            let (from, to) = (&self.record(parent).name, &self.record(dep).name);
            if from == to {
                continue;
            }
            let edges = match obligation.need {
                Need::Recommends(_) => &mut recommends,
                _ => &mut depends,
            };
            edges.entry(from).or_default().insert(to);
        }
        let mut all_edges = depends.clone();
        for (from, to) in &recommends {
            all_edges.entry(from).or_default().extend(to);
        }
        let satisfied_names = |range: std::ops::Range<usize>| -> BTreeSet<&str> {
            self.agenda[range]
                .iter()
                .filter_map(|o| o.satisfied_by.map(|r| self.record(r).name.as_str()))
                .collect()
        };
        let requested = satisfied_names(0..self.requests);
        let essential_roots = satisfied_names(self.requests..self.roots);
        let required_by = required_by(&requested, &all_edges);
        let essential_closure = reachable(&essential_roots, &all_edges);
        let all_roots: BTreeSet<&str> = requested.union(&essential_roots).copied().collect();
        let by_depends = reachable(&all_roots, &depends);
        let names = |edges: &Edges<'_>, name: &str| -> Vec<String> {
            edges
                .get(name)
                .map(|s| s.iter().map(|n| n.to_string()).collect())
                .unwrap_or_default()
        };
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
                    depends: names(&depends, name),
                    recommends: names(&recommends, name),
                    essential_closure: essential_closure.contains(name),
                    recommended_only: !by_depends.contains(name),
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

/// The names reachable from `roots` through `edges`, roots included.
fn reachable<'a>(
    roots: &BTreeSet<&'a str>,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> BTreeSet<&'a str> {
    let mut seen = roots.clone();
    let mut queue: Vec<&str> = roots.iter().copied().collect();
    while let Some(name) = queue.pop() {
        for &next in edges.get(name).into_iter().flatten() {
            if seen.insert(next) {
                queue.push(next);
            }
        }
    }
    seen
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
            recommends: Vec::new(),
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
        fn recommends(mut self, text: &str) -> Pkg {
            self.0.recommends = field(text);
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

    fn solve_with(
        index: &PackageIndex,
        texts: &[&str],
        options: &ResolveOptions,
    ) -> Result<Resolution, ResolveError> {
        resolve_with(index, &requests(texts), "amd64", options)
    }

    fn chosen_with(index: &PackageIndex, texts: &[&str], options: &ResolveOptions) -> Vec<String> {
        match solve_with(index, texts, options) {
            Ok(res) => shown(index, &res),
            Err(e) => panic!("{e}"),
        }
    }

    fn with_recommends() -> ResolveOptions {
        ResolveOptions {
            recommends: true,
            ..ResolveOptions::default()
        }
    }

    fn with_essential() -> ResolveOptions {
        ResolveOptions {
            essential: true,
            ..ResolveOptions::default()
        }
    }

    fn overrides(global: bool, per_root: &[(&str, bool)]) -> ResolveOptions {
        ResolveOptions {
            recommends: global,
            recommends_for: per_root.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
            ..ResolveOptions::default()
        }
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
        let options = ResolveOptions::default();
        let err = resolve_with_budget(&idx, &requests(&["w", "app"]), "amd64", &options, 100);
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
        let options = ResolveOptions::default();
        let err = resolve_with_budget(&idx, &requests(&["app"]), "amd64", &options, 2);
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
        // A language package under its Debian prefix comes first.
        let idx = index(vec![pkg("python3-flask", "2.2"), pkg("flash", "1")]);
        assert_eq!(suggest(&idx, "flask")[0], "python3-flask");
        assert_eq!(suggest(&idx, "venv"), Vec::<String>::new());
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

    // -----------------------------------------------------------------------
    // Recommends

    /// gcc's shape in bookworm: the headers are only a Recommends.
    fn gcc_index() -> PackageIndex {
        index(vec![
            pkg("gcc", "12")
                .depends("cpp, libc6")
                .recommends("libc6-dev | libc-dev"),
            pkg("cpp", "12").depends("libc6"),
            pkg("libc6", "2.36"),
            pkg("libc6-dev", "2.36")
                .depends("libc6 (= 2.36), linux-libc-dev")
                .recommends("manpages-dev"),
            pkg("linux-libc-dev", "6.1"),
            pkg("manpages-dev", "6.03"),
            pkg("musl-dev", "1.2").provides("libc-dev"),
        ])
    }

    #[test]
    fn recommends_are_ignored_by_default() {
        let idx = gcc_index();
        assert_eq!(chosen(&idx, &["gcc"]), ["cpp=12", "gcc=12", "libc6=2.36"]);
        let res = solve(&idx, &["gcc"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(res.packages["gcc"].recommends.is_empty());
        assert!(res.packages.values().all(|p| !p.recommended_only));
        assert_eq!(
            solve_with(&idx, &["gcc"], &ResolveOptions::default()),
            solve(&idx, &["gcc"])
        );
    }

    #[test]
    fn recommends_are_followed_transitively_when_asked() {
        let idx = gcc_index();
        assert_eq!(
            chosen_with(&idx, &["gcc"], &with_recommends()),
            [
                "cpp=12",
                "gcc=12",
                "libc6=2.36",
                "libc6-dev=2.36",
                "linux-libc-dev=6.1",
                "manpages-dev=6.03"
            ]
        );
        let res = solve_with(&idx, &["gcc"], &with_recommends()).unwrap_or_else(|e| panic!("{e}"));
        let p = &res.packages;
        assert_eq!(p["gcc"].recommends, ["libc6-dev"]);
        assert_eq!(p["gcc"].depends, ["cpp", "libc6"]);
        assert_eq!(p["libc6-dev"].recommends, ["manpages-dev"]);
        assert!(p["libc6-dev"].recommended_only);
        assert!(p["linux-libc-dev"].recommended_only);
        assert!(p["manpages-dev"].recommended_only);
        assert!(!p["cpp"].recommended_only && !p["libc6"].recommended_only);
        // Recommended packages count for the root that pulled them in, so a
        // named container that excludes gcc excludes its headers too.
        assert_eq!(p["manpages-dev"].required_by, ["gcc"]);
        assert!(!p["libc6-dev"].requested);
    }

    #[test]
    fn a_recommends_prefers_its_first_alternative_then_providers() {
        let idx = index(vec![
            pkg("app", "1").recommends("nope | libc-dev"),
            pkg("musl-dev", "1").provides("libc-dev"),
        ]);
        assert_eq!(
            chosen_with(&idx, &["app"], &with_recommends()),
            ["app=1", "musl-dev=1"]
        );
    }

    #[test]
    fn an_unsatisfiable_recommends_is_skipped() {
        let idx = index(vec![
            pkg("missing", "1").recommends("no-such-package"),
            pkg("too-new", "1").recommends("lib (>= 9)"),
            pkg("lib", "1"),
            pkg("clashing", "1").recommends("rival").conflicts("rival"),
            pkg("rival", "1"),
            pkg("dead-end", "1").recommends("half"),
            pkg("half", "1").depends("gone"),
        ]);
        let options = with_recommends();
        assert_eq!(chosen_with(&idx, &["missing"], &options), ["missing=1"]);
        assert_eq!(chosen_with(&idx, &["too-new"], &options), ["too-new=1"]);
        assert_eq!(chosen_with(&idx, &["clashing"], &options), ["clashing=1"]);
        assert_eq!(chosen_with(&idx, &["dead-end"], &options), ["dead-end=1"]);
    }

    #[test]
    fn a_recommends_never_displaces_a_request_or_a_depends() {
        // The recommended package conflicts with something a request needs.
        let idx = index(vec![
            pkg("app", "1").depends("lib").recommends("extra"),
            pkg("lib", "1").depends("libdep"),
            pkg("libdep", "1"),
            pkg("extra", "1").conflicts("libdep"),
            pkg("other", "1").conflicts("extra"),
        ]);
        let options = with_recommends();
        assert_eq!(
            chosen_with(&idx, &["app"], &options),
            ["app=1", "lib=1", "libdep=1"]
        );
        assert_eq!(
            chosen_with(&idx, &["other", "app"], &options),
            ["app=1", "lib=1", "libdep=1", "other=1"]
        );
    }

    #[test]
    fn a_recommends_backtracks_to_an_older_version_before_giving_up() {
        let idx = index(vec![
            pkg("app", "1").recommends("r"),
            pkg("r", "2").depends("z"),
            pkg("r", "1"),
            pkg("z", "1"),
            pkg("guard", "1").conflicts("z"),
        ]);
        let options = with_recommends();
        assert_eq!(
            chosen_with(&idx, &["app"], &options),
            ["app=1", "r=2", "z=1"]
        );
        assert_eq!(
            chosen_with(&idx, &["app", "guard"], &options),
            ["app=1", "guard=1", "r=1"]
        );
    }

    #[test]
    fn a_failing_request_still_fails_with_recommends_on() {
        let idx = index(vec![
            pkg("app", "1").depends("gone").recommends("extra"),
            pkg("extra", "1"),
        ]);
        assert_eq!(
            solve_with(&idx, &["app"], &with_recommends()).map_err(|e| e.to_string()),
            Err("cannot satisfy app -> gone: no package of that name".to_string())
        );
    }

    #[test]
    fn recommends_wait_for_the_depends_of_their_level() {
        // postgresql's shape in bookworm: sysstat (recommended first) would
        // take systemd, but logrotate's Depends chose cron, which apt then
        // sees as satisfying `systemd | cron`.
        let idx = index(vec![
            pkg("postgresql-15", "15")
                .depends("postgresql-common")
                .recommends("sysstat"),
            pkg("postgresql-common", "248").recommends("logrotate"),
            pkg("sysstat", "12").recommends("systemd | cron"),
            pkg("logrotate", "3").depends("cron | anacron | systemd-sysv"),
            pkg("systemd", "252"),
            pkg("cron", "3"),
            pkg("anacron", "2"),
        ]);
        assert_eq!(
            chosen_with(&idx, &["postgresql-15"], &with_recommends()),
            [
                "cron=3",
                "logrotate=3",
                "postgresql-15=15",
                "postgresql-common=248",
                "sysstat=12"
            ]
        );
    }

    #[test]
    fn recommends_can_be_turned_off_per_root() {
        let idx = index(vec![
            pkg("gcc", "12").recommends("libc6-dev"),
            pkg("libc6-dev", "2.36"),
            pkg("vim", "9").recommends("vim-runtime"),
            pkg("vim-runtime", "9"),
        ]);
        let options = overrides(true, &[("gcc", false)]);
        assert_eq!(
            chosen_with(&idx, &["gcc", "vim"], &options),
            ["gcc=12", "vim=9", "vim-runtime=9"]
        );
        // ...or on for one root when they are off globally.
        let options = overrides(false, &[("gcc", true)]);
        assert_eq!(
            chosen_with(&idx, &["gcc", "vim"], &options),
            ["gcc=12", "libc6-dev=2.36", "vim=9"]
        );
    }

    #[test]
    fn turning_recommends_off_covers_the_whole_subtree() {
        let idx = index(vec![
            pkg("gcc", "12").depends("cpp"),
            pkg("cpp", "12").recommends("cpp-doc"),
            pkg("cpp-doc", "12"),
        ]);
        let options = overrides(true, &[("gcc", false)]);
        assert_eq!(chosen_with(&idx, &["gcc"], &options), ["cpp=12", "gcc=12"]);
        assert_eq!(
            chosen_with(&idx, &["gcc"], &with_recommends()),
            ["cpp=12", "cpp-doc=12", "gcc=12"]
        );
    }

    #[test]
    fn a_shared_package_follows_recommends_whatever_the_request_order() {
        // lib is reached first from `quiet` (no Recommends), then from `loud`;
        // its Recommends, and those of its own dependency, must be followed.
        let idx = index(vec![
            pkg("quiet", "1").depends("lib"),
            pkg("loud", "1").depends("lib"),
            pkg("lib", "1").depends("base").recommends("lib-extra"),
            pkg("base", "1").recommends("base-extra"),
            pkg("lib-extra", "1"),
            pkg("base-extra", "1"),
        ]);
        let options = overrides(true, &[("quiet", false)]);
        let expected = [
            "base=1",
            "base-extra=1",
            "lib=1",
            "lib-extra=1",
            "loud=1",
            "quiet=1",
        ];
        assert_eq!(chosen_with(&idx, &["quiet", "loud"], &options), expected);
        assert_eq!(chosen_with(&idx, &["loud", "quiet"], &options), expected);
        let res = solve_with(&idx, &["quiet", "loud"], &options).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.packages["lib-extra"].required_by, ["loud", "quiet"]);
        // With only the quiet root, nothing is recommended.
        assert_eq!(
            chosen_with(&idx, &["quiet"], &options),
            ["base=1", "lib=1", "quiet=1"]
        );
    }

    #[test]
    fn following_recommends_is_undone_with_the_choice_that_caused_it() {
        // `loud` is first tried at version 2, which reaches the shared lib and
        // makes it follow Recommends, then fails; version 1 does not reach lib,
        // so lib (from `quiet`) must not keep following.
        let idx = index(vec![
            pkg("quiet", "1").depends("lib"),
            pkg("lib", "1").recommends("lib-extra"),
            pkg("lib-extra", "1"),
            pkg("loud", "2").depends("lib, gone"),
            pkg("loud", "1"),
        ]);
        let options = overrides(true, &[("quiet", false)]);
        assert_eq!(
            chosen_with(&idx, &["quiet", "loud"], &options),
            ["lib=1", "loud=1", "quiet=1"]
        );
    }

    // -----------------------------------------------------------------------
    // The Essential set

    fn essential_index() -> PackageIndex {
        index(vec![
            pkg("base-files", "12").essential().priority("required"),
            pkg("coreutils", "9.1")
                .essential()
                .pre_depends("libc6")
                .recommends("coreutils-doc"),
            pkg("coreutils-doc", "9.1"),
            pkg("dash", "0.5").essential().depends("debianutils"),
            pkg("debianutils", "5.7").priority("required"),
            pkg("libc6", "2.36").priority("required"),
            pkg("libc6", "2.35").priority("required"),
            pkg("mawk", "1.3").priority("required"),
            pkg("app", "1").depends("libc6").recommends("coreutils-doc"),
            pkg("hello", "2").depends("app"),
        ])
    }

    #[test]
    fn essential_adds_every_essential_package_and_its_depends() {
        let idx = essential_index();
        let base = [
            "base-files=12",
            "coreutils=9.1",
            "dash=0.5",
            "debianutils=5.7",
            "libc6=2.36",
        ];
        assert_eq!(chosen_with(&idx, &[], &with_essential()), base);
        // Priority: required alone (mawk) is not part of it.
        let res = solve_with(&idx, &["hello"], &with_essential()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!res.packages.contains_key("mawk"));
        let p = &res.packages;
        for name in ["base-files", "coreutils", "dash", "debianutils", "libc6"] {
            assert!(p[name].essential_closure, "{name}");
            assert!(!p[name].requested, "{name}");
            assert!(!p[name].recommended_only, "{name}");
        }
        assert!(!p["hello"].essential_closure && !p["app"].essential_closure);
        // Only user requests count as roots for named containers.
        assert!(p["dash"].required_by.is_empty());
        assert_eq!(p["libc6"].required_by, ["hello"]);
        assert!(p["hello"].requested);
    }

    #[test]
    fn essential_roots_do_not_follow_recommends_but_user_subtrees_do() {
        let idx = essential_index();
        let debian = ResolveOptions::debian();
        assert!(!chosen_with(&idx, &[], &debian).contains(&"coreutils-doc=9.1".to_string()));
        let res = solve_with(&idx, &["app"], &debian).unwrap_or_else(|e| panic!("{e}"));
        assert!(res.packages["coreutils-doc"].recommended_only);
        assert_eq!(res.packages["coreutils-doc"].required_by, ["app"]);
    }

    #[test]
    fn a_request_for_an_essential_package_keeps_its_version() {
        let idx = essential_index();
        let res = solve_with(&idx, &["libc6 (<< 2.36)"], &with_essential())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.packages["libc6"].record, 6);
        assert!(res.packages["libc6"].requested);
        assert!(res.packages["libc6"].essential_closure);
    }

    #[test]
    fn essential_uses_only_essential_records_and_is_order_independent() {
        let make = |reverse: bool| {
            let mut pkgs = vec![
                pkg("sed", "4.9").essential(),
                pkg("sed", "5.0"), // a newer record that dropped Essential
                pkg("grep", "3.8").essential().depends("libpcre | libpcre2"),
                pkg("libpcre2", "10"),
                pkg("libpcre", "8"),
            ];
            if reverse {
                pkgs.reverse();
            }
            index(pkgs)
        };
        let expected = ["grep=3.8", "libpcre=8", "sed=4.9"];
        assert_eq!(chosen_with(&make(false), &[], &with_essential()), expected);
        assert_eq!(chosen_with(&make(true), &[], &with_essential()), expected);
    }

    #[test]
    fn essential_prefers_usr_is_merged_over_usrmerge() {
        let idx = index(vec![
            pkg("init-system-helpers", "1.65")
                .essential()
                .depends("usrmerge | usr-is-merged"),
            pkg("usrmerge", "37").depends("perl"),
            pkg("perl", "5.36"),
            pkg("usr-is-merged", "37"),
        ]);
        assert_eq!(
            chosen_with(&idx, &[], &with_essential()),
            ["init-system-helpers=1.65", "usr-is-merged=37"]
        );
        // Without the companion in the index, apt's first alternative.
        let idx = index(vec![
            pkg("init-system-helpers", "1.65")
                .essential()
                .depends("usrmerge | usr-is-merged"),
            pkg("usrmerge", "37"),
        ]);
        assert_eq!(
            chosen_with(&idx, &[], &with_essential()),
            ["init-system-helpers=1.65", "usrmerge=37"]
        );
    }

    #[test]
    fn essential_off_by_default() {
        let idx = essential_index();
        assert_eq!(chosen(&idx, &[]), Vec::<String>::new());
        assert!(
            solve(&idx, &["app"])
                .unwrap_or_else(|e| panic!("{e}"))
                .packages
                .values()
                .all(|p| !p.essential_closure)
        );
    }

    #[test]
    fn a_request_conflicting_with_the_essential_set_is_an_error() {
        let idx = index(vec![
            pkg("dash", "0.5").essential(),
            pkg("busybox-sh", "1").conflicts("dash"),
        ]);
        assert_eq!(
            solve_with(&idx, &["busybox-sh"], &with_essential()).map_err(|e| e.to_string()),
            Err("cannot satisfy dash: busybox-sh 1 conflicts with dash 0.5".to_string())
        );
    }
}

/// Figures on Debian's real index: the size the Essential set and Recommends
/// add. With `CAIRN_DUMP_DIR`, the package sets are written out for a diff
/// against `apt-get -s -o Dir::State::status=EMPTY_FILE install ROOT` (and
/// `--no-install-recommends`); on bookworm (2 Dec 2026) all nine roots here
/// match apt exactly, both ways. Needs uncompressed `Packages` files, e.g. from this machine's apt
/// lists: `CAIRN_PACKAGES_FILES=/tmp/bookworm-Packages:/tmp/security-Packages
/// cargo test -p cairn-debian --lib resolve::real_index -- --ignored --nocapture`.
#[cfg(test)]
mod real_index {
    use super::*;

    fn load() -> Option<PackageIndex> {
        let files = std::env::var("CAIRN_PACKAGES_FILES").ok()?;
        let mut records = Vec::new();
        for (origin, path) in files.split(':').enumerate() {
            let text = fs_err::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
            records.extend(
                crate::index::parse_packages(&text, "amd64", origin, path)
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        Some(PackageIndex::new(records))
    }

    fn summary(index: &PackageIndex, res: &Resolution) -> (usize, u64) {
        let kib: u64 = res
            .packages
            .values()
            .filter_map(|p| index.records[p.record].installed_size)
            .sum();
        (res.packages.len(), kib)
    }

    fn requests(names: &[&str]) -> Vec<Request> {
        names
            .iter()
            .map(|n| Request {
                relation: Relation::named(n),
            })
            .collect()
    }

    #[test]
    #[ignore = "needs CAIRN_PACKAGES_FILES (Debian Packages indexes)"]
    fn essential_and_recommends_on_bookworm() {
        let Some(index) = load() else {
            panic!("set CAIRN_PACKAGES_FILES to uncompressed Packages files");
        };
        let solve = |names: &[&str], options: &ResolveOptions| {
            resolve_with(&index, &requests(names), "amd64", options)
                .unwrap_or_else(|e| panic!("{names:?}: {e}"))
        };
        let essential = ResolveOptions {
            essential: true,
            ..ResolveOptions::default()
        };
        let base = solve(&[], &essential);
        for name in [
            "bash",
            "coreutils",
            "dash",
            "grep",
            "sed",
            "tar",
            "base-files",
            "libc6",
        ] {
            assert!(
                base.packages.contains_key(name),
                "{name} missing from the Essential set"
            );
        }
        let mut names: Vec<&String> = base.packages.keys().collect();
        names.sort();
        eprintln!(
            "essential closure: {:?} packages, {:?} KiB installed",
            summary(&index, &base).0,
            summary(&index, &base).1
        );
        eprintln!("  {names:?}");
        for (root, expect) in [
            ("gcc", "libc6-dev"),
            ("python3-numpy", ""),
            ("git", ""),
            ("curl", ""),
            ("openjdk-17-jre-headless", ""),
            ("postgresql", ""),
            ("nginx", ""),
            ("python3-pip", ""),
            ("imagemagick", ""),
        ] {
            let plain = solve(&[root], &ResolveOptions::default());
            let debian = solve(&[root], &ResolveOptions::debian());
            let no_rec = solve(
                &[root],
                &ResolveOptions {
                    recommends_for: BTreeMap::from([(root.to_string(), false)]),
                    ..ResolveOptions::debian()
                },
            );
            eprintln!(
                "{root}: depends only {:?}; essential+recommends {:?}; essential, {root}.recommends=false {:?} (packages, KiB)",
                summary(&index, &plain),
                summary(&index, &debian),
                summary(&index, &no_rec)
            );
            if let Ok(dir) = std::env::var("CAIRN_DUMP_DIR") {
                let with_recommends = ResolveOptions {
                    recommends: true,
                    ..ResolveOptions::default()
                };
                for (label, res) in [
                    ("depends", &plain),
                    ("recommends", &solve(&[root], &with_recommends)),
                ] {
                    let names: Vec<&str> = res.packages.keys().map(String::as_str).collect();
                    let path = format!("{dir}/{root}-{label}.txt");
                    fs_err::write(path, names.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
                }
            }
            if !expect.is_empty() {
                assert!(debian.packages.contains_key(expect));
                assert!(!plain.packages.contains_key(expect));
                assert!(!no_rec.packages.contains_key(expect));
            }
        }
    }
}
