//! The one error type of image assembly. Each variant carries what a user
//! needs to act (the container, the path, the variable), and [`ImageError::hint`]
//! says what to do next, so the CLI renders it without re-wording it.

use std::path::PathBuf;

/// Errors from planning and assembling an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Oci(#[from] cairn_oci::OciError),
    #[error(transparent)]
    Deb(#[from] cairn_debian::DebError),
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    #[error("max-layers = {max_layers} leaves no layer for packages: cairn needs {own} of its own")]
    MaxLayersTooLow { max_layers: usize, own: usize },
    #[error("the `processes` container starts the environment's services, but it has none")]
    ProcessesWithoutServices,
    #[error("no container named '{name}' in [containers]")]
    UnknownContainer { name: String, known: Vec<String> },
    #[error("startup-command '{script}' is a shell string but the environment has no shell")]
    StartupNeedsShell { script: String },
    #[error("{} is dynamically linked and cannot run inside an image without a libc", path.display())]
    DynamicEntrypoint { path: PathBuf },
    #[error("{var}={} is not an ELF executable for {cpu}", path.display())]
    ForeignEntrypointMachine {
        var: String,
        path: PathBuf,
        cpu: String,
    },
    #[error("no known ELF machine for CPU '{cpu}'")]
    UnknownCpu { cpu: String },
    #[error("cannot read the local file {}: {reason}", path.display())]
    LocalFile { path: PathBuf, reason: String },
    #[error("copy-to-root: {} does not exist", path.display())]
    CopySourceMissing { path: PathBuf },
    #[error("copy-to-root: {path}: {reason}")]
    CopySourcePath { path: String, reason: String },
    #[error("copy-to-root: cannot walk {}: {source}", path.display())]
    CopySourceWalk {
        path: PathBuf,
        #[source]
        source: ignore::Error,
    },
    #[error(transparent)]
    CopySourceOutside(#[from] cairn_manifest::CopySourceError),
    #[error("build '{name}' has no output yet")]
    BuildOutputMissing { name: String },
    #[error("cannot serialise the image's {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl ImageError {
    /// What the user can do about it, where there is something to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ImageError::MaxLayersTooLow { own, .. } => {
                format!("raise max-layers in manifest.toml to at least {}", own + 1)
            }
            ImageError::ProcessesWithoutServices => "declare services in [services.NAME] first".into(),
            ImageError::UnknownContainer { known, .. } => format!("containers: {}", known.join(", ")),
            ImageError::StartupNeedsShell { .. } => {
                "install bash, or write startup-command as a list: [\"prog\", \"arg\"]".into()
            }
            ImageError::DynamicEntrypoint { .. } => "build cairn from the repository (its .cargo/config.toml links statically), or set CAIRN_ENTRYPOINT_BIN to a static cairn-entrypoint".into(),
            ImageError::ForeignEntrypointMachine { var, cpu, .. } => {
                format!("point {var} at a static cairn-entrypoint built for {cpu}-unknown-linux-*")
            }
            ImageError::CopySourceOutside(_) => {
                "copy-to-root takes paths inside the project directory, or build:NAME outputs".into()
            }
            ImageError::CopySourceMissing { .. } => {
                "copy-to-root paths are relative to the environment's directory".into()
            }
            ImageError::BuildOutputMissing { name } => format!("run `cairn build {name}` first"),
            _ => return None,
        })
    }

    /// A stable code for diagnostics (`cairn::image::…`).
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Io(_) => "cairn::image::io",
            ImageError::Oci(_) => "cairn::image::oci",
            ImageError::Deb(_) => "cairn::image::deb",
            ImageError::Store(_) => "cairn::image::store",
            ImageError::MaxLayersTooLow { .. } => "cairn::image::max_layers",
            ImageError::ProcessesWithoutServices => "cairn::image::no_services",
            ImageError::UnknownContainer { .. } => "cairn::image::unknown_container",
            ImageError::StartupNeedsShell { .. } => "cairn::image::no_shell",
            ImageError::DynamicEntrypoint { .. } => "cairn::image::dynamic_entrypoint",
            ImageError::ForeignEntrypointMachine { .. } | ImageError::UnknownCpu { .. } => {
                "cairn::image::foreign_entrypoint"
            }
            ImageError::CopySourceMissing { .. }
            | ImageError::CopySourcePath { .. }
            | ImageError::CopySourceWalk { .. }
            | ImageError::CopySourceOutside(_) => "cairn::image::copy_to_root",
            ImageError::BuildOutputMissing { .. } => "cairn::image::build_output",
            ImageError::LocalFile { .. } => "cairn::image::local_file",
            ImageError::Json { .. } => "cairn::image::json",
        }
    }
}

/// Result with [`ImageError`].
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
