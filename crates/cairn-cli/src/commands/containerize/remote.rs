//! `containerize -r REF`: rebuild an image that cairn built and pushed, from
//! the environment it carries. cairn has no hub; a registry is where
//! environments travel, and every image cairn builds holds its manifest and
//! lock (`/opt/cairn/env`). Only the config and that small layer are
//! downloaded; the packages come from Debian, verified as always. Because the
//! same lock gives the same bytes, the rebuild is also a reproducibility
//! check: cairn says whether it matches the pushed image digest for digest.
//!
//! `-r` also takes a published environment (`cairn publish`), `REF` or
//! `REF@N`: the tag's manifest says which it is (an index whose
//! `artifactType` is cairn's generations record, or an image).

use super::BuiltImage;
use super::copy::{client_options, parse_registry_args};
use crate::diagnostic::Diagnose;
use crate::output;
use cairn_registry::environment::{self, EnvironmentRef, FetchedEnvironment, Published};
use cairn_registry::{PulledEnvironment, Reference, RegistryClient, RegistryError};
use miette::{IntoDiagnostic, Result, miette};
use std::io::Write;
use std::path::PathBuf;

/// The pulled environment, written where containerize can read it.
pub struct RemoteEnvironment {
    /// Keeps the directory alive for the build.
    _dir: tempfile::TempDir,
    /// The environment's root (holding `.cairn/env/`).
    pub root: PathBuf,
    pub reference: Reference,
    pub source: RemoteSource,
}

/// What `-r` named.
pub enum RemoteSource {
    /// An image cairn built and pushed.
    Image(PulledEnvironment),
    /// A generation of a published environment.
    Environment(FetchedEnvironment),
}

/// Reads the environment of `reference` (for the host's architecture when it
/// is an index) into a temporary environment directory.
pub fn fetch(
    reference: &str,
    remote_args: Option<&crate::cli::CopyArgsText>,
) -> Result<RemoteEnvironment> {
    let text = reference;
    let env_ref = EnvironmentRef::parse(text).map_err(|e| miette!("-r: {e}"))?;
    let reference = env_ref.reference.clone();
    let options = parse_registry_args(
        "--remote-args",
        remote_args.map(|a| a.0.as_str()).unwrap_or_default(),
    )?;
    let client =
        RegistryClient::connect(&reference, client_options(&reference, &options).diagnose()?)
            .diagnose()?;
    let published = match env_ref.generation {
        // `@N` only means something for a published environment.
        Some(_) => environment::read_generations(&client, &reference).map(Published::Environment),
        None => environment::read_published(&client, &reference),
    };
    let (name, source) = match published {
        Ok(Published::Environment(record)) => {
            let fetched = environment::fetch_generation(&client, &env_ref, &record)
                .map_err(|e| super::super::generations::report(e, &env_ref.to_string()))?;
            output::status(format!(
                "✓ read environment '{}' generation {} from {reference} ({})",
                fetched.name, fetched.generation, fetched.digest
            ));
            (fetched.name.clone(), RemoteSource::Environment(fetched))
        }
        Ok(Published::Other { .. }) => {
            let pulled = pull_image_environment(&client, &reference)?;
            output::status(format!(
                "✓ read environment '{}' from {reference} ({})",
                pulled.name, pulled.image_digest
            ));
            (pulled.name.clone(), RemoteSource::Image(pulled))
        }
        Err(RegistryError::EnvironmentNotFound { detail, .. }) => {
            return Err(miette!(
                help = "-r takes an image that `cairn push` sent or an environment that `cairn publish` published, e.g. HOST:5000/team/app:1.0 or HOST:5000/team/web@2",
                "-r {text}: {reference} is not in the registry, neither as an image nor as a published environment ({detail})"
            ));
        }
        Err(e) => return Err(super::super::generations::report(e, text)),
    };
    let dir = tempfile::Builder::new()
        .prefix("cairn-remote")
        .tempdir()
        .into_diagnostic()?;
    // The directory's name is the environment's default name.
    // The name comes from the image's history: untrusted, so it must be a
    // usable single path component before it names a directory.
    cairn_manifest::check_env_name(&name).map_err(|b| {
        miette!(
            help = "the image was not built by cairn, or its history was altered",
            "{reference} carries an unusable environment name: {}",
            b.message
        )
    })?;
    let root = dir.path().join(name.replace('/', "-"));
    let (manifest_toml, lock) = match &source {
        RemoteSource::Image(pulled) => (&pulled.manifest_toml, &pulled.lock),
        RemoteSource::Environment(fetched) => (&fetched.manifest_toml, &fetched.lock),
    };
    let env_dir = root.join(".cairn").join("env");
    fs_err::create_dir_all(&env_dir).into_diagnostic()?;
    for (name, bytes) in [("manifest.toml", manifest_toml), ("manifest.lock", lock)] {
        cairn_store::write_atomic(env_dir.join(name), |f| f.write_all(bytes)).into_diagnostic()?;
    }
    Ok(RemoteEnvironment {
        _dir: dir,
        root,
        reference,
        source,
    })
}

/// The environment an image cairn pushed carries (for the host's architecture).
fn pull_image_environment(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<PulledEnvironment> {
    let system = cairn_manifest::host_system().ok_or_else(|| miette!("unsupported host"))?;
    let arch = cairn_manifest::debian_arch(system).unwrap_or("amd64");
    cairn_registry::pull_environment(client, reference, arch).map_err(|e| {
        miette!(
            help = "-r takes an image that `cairn containerize` built and `cairn push` sent, e.g. HOST:5000/team/app:1.0",
            "{e}"
        )
    })
}

/// Says whether the rebuilt image is the pushed one, byte for byte.
pub fn compare(remote: &RemoteEnvironment, image: &BuiltImage) {
    // A published environment has no image to compare with.
    let RemoteSource::Image(pulled) = &remote.source else {
        return;
    };
    let (built, pushed, what) = match (image, &pulled.index_digest) {
        (BuiltImage::Multi(multi), Some(index)) => (&multi.index_digest, index, "index"),
        _ => (
            &image.primary().manifest_digest,
            &pulled.image_digest,
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
