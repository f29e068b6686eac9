//! The environment's manifest (`manifest.toml`) and lock (`manifest.lock`):
//! the schema as typed structs, parsing with located diagnostics, edits that
//! keep the user's comments, the starter template, and the lock format.
//!
//! This crate does no network or archive work: resolving the manifest into a
//! lock is `cairn-debian`'s job, and writing files atomically is the CLI's.

pub mod activation;
mod diagnostics;
mod edit;
mod files;
mod lock;
mod parse;
mod read;
pub mod release;
mod schema;
mod template;
mod validate;

pub use diagnostics::{Located, ManifestError, line_col};
pub use edit::{AddOutcome, ManifestDoc};
pub use files::{CopySourceError, MAX_MANIFEST_BYTES, copy_source_within, read_manifest_text};
pub use lock::{LOCK_VERSION, Lock, LockError, LockedArchive, LockedPackage};
pub use schema::{
    ActivateMode, BuildSpec, Compression, ContainerConfig, Containerize, CopySource,
    DEFAULT_MAX_LAYERS, Healthcheck, Hook, InstallEntry, MANIFEST_VERSION, Manifest,
    NamedContainer, Options, Profile, SYSTEMS, Service, Shutdown, SourceEntry, StartupCommand,
    debian_arch, default_sources, host_system,
};
pub use template::init_template;
pub use validate::{
    Broken, HealthDuration, IdOrName, PortSpec, Proto, StopSignal, UserSpec, VersionConstraint,
    VersionOp, check_env_name, parse_health_duration, parse_port, parse_stop_signal, parse_user,
    parse_version_constraint,
};

use std::path::Path;

impl Manifest {
    /// Parses and validates manifest `text`; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        parse::manifest_from_str(text).map_err(|problem| {
            let syntax = problem.syntax;
            let located = problem.locate(path, text);
            if syntax {
                ManifestError::Syntax(located)
            } else {
                ManifestError::Invalid(located)
            }
        })
    }

    /// Reads (bounded, see [`read_manifest_text`]) and parses the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = read_manifest_text(path)?;
        Manifest::parse(path, &text)
    }
}
