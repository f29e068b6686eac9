//! OCI images built from Debian packages, without a daemon or a base image.
//!
//! The pipeline, one module per step:
//! - [`layer`]: deterministic, cached, per-package (or per-group) layers.
//! - [`group`]: which packages share a layer when there are too many.
//! - [`image`]: the image config and manifest.
//! - [`archive`]: the hybrid OCI + `docker load` archive and the OCI directory.
//! - [`runtime`]: piping an archive into `docker load` / `podman load`.
//!
//! It knows nothing about manifests or the Debian archive: callers pass plain
//! data (paths of locked `.deb` files, names, versions), and package contents
//! are read through `cairn_debian::deb`.

pub mod archive;
pub mod group;
pub mod image;
pub mod layer;
mod pgzip;
pub mod runtime;
pub mod safety;
mod tree;

use std::path::PathBuf;

pub use archive::{
    ArchiveFormat, Archived, LayerFeed, write_archive, write_archive_while, write_oci_dir,
};
pub use group::{PackageNode, plan_layers};
pub use image::{
    HealthcheckConfig, Image, ImageRef, ImageSpec, MultiImage, RuntimeConfig, build_image,
    build_multi_image,
};
pub use layer::{
    BlobUse, BuiltLayer, Compression, CustomEntry, CustomKind, FileContent, LayerInput,
    LayerOptions, build_custom_layer, build_group_layer, build_layers, build_layers_with_facts,
    build_package_layer, merged_usr_symlinks,
};
pub use runtime::{ContainerRuntime, detect_runtime, load_into};

/// Errors from reading packages, building layers and images, and loading them.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    #[error(transparent)]
    Deb(#[from] cairn_debian::DebError),
    #[error("layer '{layer}': hardlink '{path}' points to '{target}', which is not in the layer")]
    BrokenHardlink {
        layer: String,
        path: String,
        target: String,
    },
    #[error("layer '{layer}': {source}; refusing a package that writes through its own symlink")]
    ThroughSymlink {
        layer: String,
        #[source]
        source: safety::ThroughSymlink,
    },
    #[error("invalid custom layer entry '{path}': {reason}")]
    InvalidCustomEntry { path: String, reason: String },
    #[error("layer cache entry {path} is unreadable ({source}); delete it and retry")]
    CorruptCache {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "layer blob {path} has {actual} bytes but {expected} were recorded; delete it and retry"
    )]
    BlobSizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("cannot serialise the image {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image reference '{reference}': {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("image spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("cannot run '{program}': {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{program} load' failed ({status}): {stderr}")]
    LoadFailed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("'{program} load' succeeded but did not say which image it loaded: {stdout}")]
    LoadedRefMissing { program: String, stdout: String },
    #[error(
        "no container engine answered: install and start docker or podman, or write the image to a file with --output"
    )]
    NoRuntime,
    #[error(
        "refusing to replace {path}: {reason}; choose an empty or new directory, or remove it first"
    )]
    NotAnOciLayout { path: PathBuf, reason: String },
    /// The build writing into an archive stopped before it finished; its
    /// own error is the one reported.
    #[error("the image build stopped before its archive was complete")]
    ArchiveAbandoned,
    #[error(
        "internal error: the {streamed} layers written ahead are not the image's first layers; please report this"
    )]
    ArchiveOutOfOrder { streamed: usize },
}

/// Result with [`OciError`].
pub type Result<T, E = OciError> = std::result::Result<T, E>;
