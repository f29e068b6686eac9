//! One binary package as described by a `Packages` index paragraph.

use crate::relation::{Dependency, Relation};
use crate::version::Version;

/// How a package may be co-installed across architectures (`Multi-Arch:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// A binary package from a verified `Packages` index.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRecord {
    pub name: String,
    pub version: Version,
    /// `amd64`, `arm64`, ... or `all`.
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<String>,
    pub section: Option<String>,
    pub source: Option<String>,
    pub pre_depends: Vec<Dependency>,
    pub depends: Vec<Dependency>,
    /// `Recommends:`, followed only when the resolver is asked to (apt's default).
    pub recommends: Vec<Dependency>,
    /// Each provided name, with an `=` constraint when the provide is versioned.
    pub provides: Vec<Relation>,
    pub conflicts: Vec<Dependency>,
    pub breaks: Vec<Dependency>,
    /// Path of the `.deb` relative to the archive root (`pool/main/h/hello/...`).
    pub filename: String,
    pub size: u64,
    /// Lowercase hex sha256 of the `.deb`.
    pub sha256: String,
    pub installed_size: Option<u64>,
    /// First line of `Description:`.
    pub summary: String,
    /// Index of the source (in the caller's source list) this record came from.
    pub origin: usize,
}
