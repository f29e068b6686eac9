//! The error type of this crate's archive side (keyrings, releases, indices,
//! downloads). Version, relation and resolver errors live beside their code.

use crate::deb822::Deb822Error;

/// Shorthand for results carrying an [`ArchiveError`].
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Everything that can go wrong between an archive URL and a verified file.
/// Each variant names the URL or file, and digests where they disagree.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot reach {url}: {reason} (check the URL and the network connection)")]
    Unreachable { url: String, reason: String },

    #[error("{url} not found (check the URL, suite and component)")]
    NotFound { url: String },

    #[error("download of {url} failed: {source}")]
    Transfer {
        url: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{url}: HTTP status {status}{}", status_hint(*.status))]
    HttpStatus { url: String, status: u16 },

    #[error("unsupported URL '{url}': use http://, https:// or file://")]
    UnsupportedUrl { url: String },

    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),

    #[error("cannot load keyring {path}: {reason}")]
    Keyring { path: String, reason: String },

    #[error(
        "{url}: no valid OpenPGP signature from a trusted key ({reason}); \
         check the source's keyring"
    )]
    BadSignature { url: String, reason: String },

    #[error(
        "{url} expired at {valid_until} (Valid-Until); the mirror is stale or the clock is wrong"
    )]
    Expired { url: String, valid_until: String },

    #[error(
        "{url} is for suite '{suite}' (codename '{codename}'), not the requested '{requested}'"
    )]
    SuiteMismatch {
        url: String,
        requested: String,
        suite: String,
        codename: String,
    },

    #[error("{url}: invalid {field}: {reason}")]
    InvalidRelease {
        url: String,
        field: String,
        reason: String,
    },

    #[error("{url}: {source}")]
    Syntax {
        url: String,
        #[source]
        source: Deb822Error,
    },

    #[error(
        "{url} lists no Packages index for {component}/binary-{arch} \
         (is the component or architecture available in this suite?)"
    )]
    IndexNotListed {
        url: String,
        component: String,
        arch: String,
    },

    #[error(
        "{url} lists no Contents index for {arch} (the archive does not say which package ships \
         which file, so cairn cannot name the package of a command)"
    )]
    ContentsNotListed { url: String, arch: String },

    #[error(
        "{name}: digest mismatch for {url}: expected sha256 {expected_sha256} ({expected_size} bytes), \
         got {actual_sha256} ({actual_size} bytes); the mirror may be syncing or tampered with"
    )]
    DigestMismatch {
        name: String,
        url: String,
        expected_sha256: String,
        actual_sha256: String,
        expected_size: u64,
        actual_size: u64,
    },

    #[error("cannot decompress {url}: {source}")]
    Decompress {
        url: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{url}: package '{package}' has an invalid {field}: {reason}")]
    InvalidRecord {
        url: String,
        package: String,
        field: String,
        reason: String,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (access denied)",
        500..=599 => " (server error; try again later)",
        _ => "",
    }
}

impl ArchiveError {
    /// Whether retrying the same request may succeed (connection trouble, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ArchiveError::Unreachable { .. } | ArchiveError::Transfer { .. } => true,
            ArchiveError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
