//! The Debian archive, as cairn sees it.
//!
//! Owns everything between a `[sources]` entry and a verified `.deb` in the
//! store: version ordering ([`version`]), relationship fields ([`relation`]),
//! deb822 paragraphs ([`deb822`]), archive keys ([`keyring`]), signed
//! `InRelease` files ([`release`]),
//! `Packages` indices ([`index`]), `Contents` indices reduced to which package
//! ships which command ([`contents`]), dependency resolution ([`resolve`]),
//! downloading ([`fetch`]), and reading and safely unpacking the `.deb` files
//! themselves ([`deb`], as rattler_package_streaming does for conda packages).
//! It never prints; progress goes through [`Reporter`].

pub mod contents;
pub mod deb;
pub mod deb822;
pub mod error;
pub mod fetch;
pub mod index;
pub mod index_cache;
pub mod index_details;
pub mod keyring;
pub mod package;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod translation;
pub mod version;

#[cfg(test)]
mod testing;

pub use contents::CommandTable;
pub use deb::{
    ControlFiles, DebEntry, DebError, EntryKind, MERGED_USR_DIRS, read_control, read_deb_verified,
    unpack_deb, visit_data,
};
pub use error::ArchiveError;
pub use fetch::{ArchiveClient, DebToFetch, NoReporter, Reporter, Source};
pub use index::{DetailsPart, IndexPart, PackageIndex, Records};
pub use keyring::Keyring;
pub use package::{MultiArch, PackageDetails, PackageRecord};
pub use relation::{Dependency, Relation, VersionOp};
pub use release::{Release, ReleaseInfo};
pub use resolve::{Request, Resolution, ResolveError};
pub use version::Version;
