//! The Debian archive, as cairn sees it.
//!
//! Owns everything between a `[sources]` entry and a verified `.deb` in the
//! store: version ordering ([`version`]), relationship fields ([`relation`]),
//! deb822 paragraphs ([`deb822`]), signed `InRelease` files ([`release`]),
//! `Packages` indices ([`index`]), dependency resolution ([`resolve`]) and
//! downloading ([`fetch`]). It never prints; progress goes through [`Reporter`].

pub mod deb822;
pub mod fetch;
pub mod index;
pub mod package;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod version;

pub use fetch::{ArchiveClient, Reporter, Source};
pub use index::PackageIndex;
pub use package::{MultiArch, PackageRecord};
pub use relation::{Dependency, Relation, VersionOp};
pub use resolve::{Request, Resolution, ResolveError};
pub use version::Version;
