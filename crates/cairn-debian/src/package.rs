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

/// What `apt show` prints beyond a [`PackageRecord`]: fields no resolver
/// reads, kept apart so that loading an index for `install` stays as small
/// as it was (see [`crate::index_details`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PackageDetails {
    pub maintainer: Option<String>,
    pub homepage: Option<String>,
    /// `Suggests:`, `Replaces:` and `Enhances:` as written (display only, so
    /// an odd value never stops an index from loading).
    pub suggests: Option<String>,
    pub replaces: Option<String>,
    pub enhances: Option<String>,
    /// Lowercase hex md5 of the full description, which names its text in
    /// the archive's `Translation-*` files (Debian's `Packages` carry only the
    /// summary).
    pub description_md5: Option<String>,
    /// The lines after the summary, when the index carries them (archives
    /// made by `apt-ftparchive` with default options do), as written: each
    /// line starts with a space and ` .` is an empty line.
    pub long_description: Option<String>,
}
