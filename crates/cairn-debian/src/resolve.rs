//! Dependency resolution: from requested names to a closed, conflict-free set
//! of packages, following apt's preferences (first satisfiable alternative,
//! highest version, Recommends ignored).

use crate::index::PackageIndex;
use crate::relation::Relation;
use std::collections::BTreeMap;

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
    todo!("{index:?} {requests:?} {arch}")
}
