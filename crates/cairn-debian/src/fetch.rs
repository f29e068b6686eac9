//! The archive client: fetches InRelease, Packages and `.deb` files over HTTP(S)
//! or `file://`, verifying each byte before it reaches the store.

use std::path::PathBuf;

/// Where the OpenPGP keys that may sign an archive's InRelease come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyring {
    /// The Debian archive keys shipped inside cairn (bookworm and trixie).
    DebianArchive,
    /// A keyring file (binary or ASCII-armored).
    File(PathBuf),
}

/// An archive to read from: one suite of one `[sources]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Short name from the manifest (`debian`, `debian-security`, ...).
    pub name: String,
    /// `http://…`, `https://…` or `file:///…`, without a trailing slash.
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    pub keyrings: Vec<Keyring>,
}

/// Receives progress from downloads; the CLI implements it with indicatif.
pub trait Reporter: Send + Sync {
    fn on_download_start(&self, _name: &str, _size: u64) {}
    fn on_download_progress(&self, _name: &str, _bytes: u64) {}
    fn on_download_done(&self, _name: &str) {}
}

/// Fetches and verifies archive files.
#[derive(Debug)]
pub struct ArchiveClient {}
