//! Shared fixtures for the end-to-end tests: a signed local Debian archive
//! ([`archive`]), a static HTTP server on 127.0.0.1 ([`server`]), a test
//! context that runs the real `cairn` binary in throwaway directories
//! ([`context`]), tool checks ([`tools`]) and the machine's real Debian mirror
//! ([`real`]).
//!
//! It owns no product logic: everything here builds inputs for cairn with the
//! same tools Debian uses (dpkg-deb, apt-ftparchive, gpg) and observes what
//! cairn does with them. Helpers panic with a message naming the file or
//! command, because a broken fixture is a test failure, not a value to return.

pub mod archive;
pub mod context;
pub mod corpus;
pub mod cri;
pub mod images;
pub mod real;
pub mod registry;
pub mod runtime_env;
pub mod server;
pub mod tools;

pub use archive::{DebSpec, LocalArchive};
pub use context::{TestContext, stderr_of, stdout_of};
pub use real::{RealArchive, reachable_real_archive, real_archive, real_archive_reachable};
pub use server::HttpServer;
pub use tools::require_tool;
