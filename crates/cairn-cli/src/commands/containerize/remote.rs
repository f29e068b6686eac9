//! `containerize -r REF`: rebuild an image that cairn built and pushed, from
//! the environment it carries. cairn has no hub; a registry is where
//! environments travel, and every image cairn builds holds its manifest and
//! lock (`/opt/cairn/env`). Only the config and that small layer are
//! downloaded; the packages come from Debian, verified as always. Because the
//! same lock gives the same bytes, the rebuild is also a reproducibility
//! check: cairn says whether it matches the pushed image digest for digest.

use super::BuiltImage;
use super::copy::{client_options, parse_registry_args};
use crate::diagnostic::Diagnose;
use crate::output;
use cairn_registry::{PulledEnvironment, Reference, RegistryClient};
use miette::{IntoDiagnostic, Result, miette};
use std::path::PathBuf;

/// The pulled environment, written where containerize can read it.
pub struct RemoteEnvironment {
    /// Keeps the directory alive for the build.
    _dir: tempfile::TempDir,
    /// The environment's root (holding `.cairn/env/`).
    pub root: PathBuf,
    pub reference: Reference,
    pub pulled: PulledEnvironment,
}

/// Reads the environment of `reference` (for the host's architecture when it
/// is an index) into a temporary environment directory.
pub fn fetch(
    reference: &str,
    remote_args: Option<&crate::cli::CopyArgsText>,
) -> Result<RemoteEnvironment> {
    let reference = Reference::parse(reference).map_err(|e| miette!("-r: {e}"))?;
    let options = parse_registry_args(
        "--remote-args",
        remote_args.map(|a| a.0.as_str()).unwrap_or_default(),
    )?;
    let client =
        RegistryClient::connect(&reference, client_options(&reference, &options).diagnose()?)
            .diagnose()?;
    let system = cairn_manifest::host_system().ok_or_else(|| miette!("unsupported host"))?;
    let arch = cairn_manifest::debian_arch(system).unwrap_or("amd64");
    let pulled = cairn_registry::pull_environment(&client, &reference, arch).map_err(|e| {
        miette!(
            help = "-r takes an image that `cairn containerize` built and `cairn push` sent, e.g. HOST:5000/team/app:1.0",
            "{e}"
        )
    })?;
    output::status(format!(
        "✓ read environment '{}' from {reference} ({})",
        pulled.name, pulled.image_digest
    ));
    let dir = tempfile::Builder::new()
        .prefix("cairn-remote")
        .tempdir()
        .into_diagnostic()?;
    // The directory's name is the environment's default name.
    // The name comes from the image's history: untrusted, so it must be a
    // usable single path component before it names a directory.
    cairn_manifest::check_env_name(&pulled.name).map_err(|b| {
        miette!(
            help = "the image was not built by cairn, or its history was altered",
            "{reference} carries an unusable environment name: {}",
            b.message
        )
    })?;
    let root = dir.path().join(pulled.name.replace('/', "-"));
    let env_dir = root.join(".cairn").join("env");
    fs_err::create_dir_all(&env_dir).into_diagnostic()?;
    fs_err::write(env_dir.join("manifest.toml"), &pulled.manifest_toml).into_diagnostic()?;
    fs_err::write(env_dir.join("manifest.lock"), &pulled.lock).into_diagnostic()?;
    Ok(RemoteEnvironment {
        _dir: dir,
        root,
        reference,
        pulled,
    })
}

/// Says whether the rebuilt image is the pushed one, byte for byte.
pub fn compare(remote: &RemoteEnvironment, image: &BuiltImage) {
    let (built, pushed, what) = match (image, &remote.pulled.index_digest) {
        (BuiltImage::Multi(multi), Some(index)) => (&multi.index_digest, index, "index"),
        _ => (
            &image.primary().manifest_digest,
            &remote.pulled.image_digest,
            "image",
        ),
    };
    if built == pushed {
        output::status(format!(
            "✓ reproduced {}: the rebuilt {what} is {built}, as pushed",
            remote.reference
        ));
    } else {
        tracing::warn!(
            "the rebuilt {what} is {built}, not {pushed} as pushed to {}; a different cairn (its own layer), --compression, --system or --tag gives different bytes from the same lock",
            remote.reference
        );
    }
}
