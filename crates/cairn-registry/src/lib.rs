//! Pushing a built image straight to an OCI distribution registry, without a
//! daemon or skopeo.
//!
//! One module per concern:
//! - [`reference`]: `[docker://]HOST[:PORT]/PATH/NAME[:TAG]` and destination prefixes.
//! - [`credentials`]: who we are (`--dest-creds`, auth.json, docker's config and helpers).
//! - [`auth`]: `WWW-Authenticate` challenges, Basic and Bearer tokens.
//! - [`client`]: HTTP to one registry: scheme, auth, retries, `Location` handling.
//! - [`environment`]: published environments (`cairn publish`, generations,
//!   `REF@N`): a small OCI artifact per generation and a record under the tag.
//! - [`pull`]: reading a manifest and blobs back (for `containerize -r`).
//! - [`push`]: the distribution-spec push (HEAD, mount, monolithic or chunked upload, manifest).
//! - [`referrers`]: attaching an artifact (an SBOM) to a pushed image as an OCI 1.1 referrer.
//! - [`record`]: what a push needs from a built image, kept in the store for
//!   `cairn push`, and which repositories already hold which blobs.
//!
//! It never prints: progress goes to a [`PushReporter`], and no error or log
//! line carries a password or token.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod environment;
pub mod pull;
pub mod push;
pub mod record;
pub mod reference;
pub mod referrers;

pub use auth::Challenge;
pub use client::{ClientOptions, RegistryClient};
pub use credentials::{Credentials, find_credentials};
pub use environment::{
    EnvironmentRef, FetchedEnvironment, Generations, Published, fetch_environment,
    publish_environment, read_generations, read_published, set_live,
};
pub use pull::{PulledEnvironment, pull_environment};
pub use push::{BlobOutcome, PushOptions, PushReporter, PushSummary, push_image};
pub use record::{KnownBlobs, PushBlob, PushImage, drop_dangling_records, recorded_images};
pub use reference::Reference;
pub use referrers::{Artifact, Attached, Descriptor, attach_referrer, list_referrers};

/// Errors from talking to a registry. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference '{reference}': {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("TLS with registry {registry} failed: {reason}")]
    Tls { registry: String, reason: String },
    #[error("{registry} does not look like an OCI registry: GET /v2/ answered {status}")]
    NotARegistry { registry: String, status: u16 },
    #[error("registry {registry} rejected the credentials{user} for {repository}: {detail}")]
    Unauthorized {
        registry: String,
        repository: String,
        /// ` of user 'NAME'`, or empty when anonymous.
        user: String,
        detail: String,
    },
    #[error("registry {registry} denied access to {repository}: {detail}")]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("repository {repository} is unknown to registry {registry}: {detail}")]
    RepositoryNotFound {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{method} {url} failed with HTTP {status}: {detail}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{method} {url}: {reason}")]
    Protocol {
        method: &'static str,
        url: String,
        reason: String,
    },
    #[error(
        "registry {registry} speaks HTTPS but sent cairn to plain-HTTP {url}; refusing to send \
         credentials or data unencrypted"
    )]
    Downgrade { registry: String, url: String },
    #[error("token server {realm} failed: {reason}")]
    Token { realm: String, reason: String },
    #[error("cannot read credentials from {source_name}: {reason}")]
    Credentials { source_name: String, reason: String },
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaCertificates {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(
        "blob {digest} at {path} has {actual} bytes but the image says {expected}; rebuild with `cairn containerize`"
    )]
    BlobSizeMismatch {
        digest: String,
        path: std::path::PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("image record {path} is unreadable ({reason}); run `cairn containerize` again")]
    CorruptRecord {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("image {reference} is not in the registry: {detail}")]
    ImageNotFound { reference: String, detail: String },
    #[error("{reference}: the registry sent bytes with digest {actual} for {expected}")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{reference}: no cairn environment is published there ({detail}); publish one with `cairn publish {reference}`"
    )]
    EnvironmentNotFound { reference: String, detail: String },
    #[error("{reference} is not a cairn environment: it holds {found}")]
    NotAnEnvironment { reference: String, found: String },
    #[error(
        "{reference} has no generation {generation} (the latest is {latest}); see `cairn generations list -r {reference}`"
    )]
    GenerationNotFound {
        reference: String,
        generation: u64,
        latest: u64,
    },
    #[error("{reference} already has generation {generation}; generations are immutable")]
    GenerationExists { reference: String, generation: u64 },
    #[error(
        "{reference} changed while cairn was updating it (another publish, switch or rollback); run `cairn generations list -r {reference}` and try again"
    )]
    ConcurrentUpdate { reference: String },
    #[error("{reference} is a broken cairn environment: {reason}")]
    BadEnvironment { reference: String, reason: String },
    #[error("the image is malformed: {0}")]
    BadImage(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
}

impl RegistryError {
    /// Whether trying again may help: connection trouble and 5xx/429 answers.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            RegistryError::Protocol { .. } => true,
            // Local files (blobs, records) do not get better by waiting.
            _ => false,
        }
    }
}

/// Result with [`RegistryError`].
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
