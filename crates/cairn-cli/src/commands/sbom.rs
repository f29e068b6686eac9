//! `cairn sbom`: the environment's software bill of materials, SPDX 2.3 or
//! CycloneDX 1.6 JSON, on stdout or in a file; and, for `containerize --sbom
//! --copy`, attaching the image's SBOM in the registry as an OCI referrer.
//!
//! The document is cairn-image's ([`cairn_image::sbom`]); this module picks
//! the environment (`-d`, or `-r` for an image cairn pushed), makes sure the
//! `.deb`s are in the store, and writes the bytes.

use crate::cli::{DirArg, SbomArgs, SbomFormatArg};
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::{locking, output};
use cairn_image::sbom::SbomFormat;
use cairn_image::{BuildPlan, BuiltImage, PlanRequest};
use cairn_registry::{Artifact, Descriptor, Reference, RegistryClient};
use cairn_store::Store;
use miette::{IntoDiagnostic, Result, miette};
use std::io::Write;
use std::process::ExitCode;

use super::containerize::copy::{CopyOptions, client_options};

pub fn run(args: SbomArgs) -> Result<ExitCode> {
    let remote = match &args.remote.remote {
        Some(reference) => Some(super::containerize::remote::fetch(
            reference,
            args.remote.remote_args.as_ref(),
        )?),
        None => None,
    };
    let dir = match &remote {
        Some(remote) => DirArg {
            dir: Some(remote.root.clone()),
        },
        None => args.dir.clone(),
    };
    let env = Environment::find(&dir)?;
    let plan = plan_for(&env, args.system.as_deref())?;
    let store = locking::open_store()?;
    let _debs_in_use = super::containerize::ensure_debs(&store, &plan.packages)?;
    let format = format_of(args.format);
    let sbom = cairn_image::sbom::sbom_for_plan(&store, &plan).diagnose()?;
    let bytes = cairn_image::sbom::render(&sbom, format).diagnose()?;
    match &args.output {
        Some(path) => {
            let mut file = cairn_store::AtomicFile::create(path).into_diagnostic()?;
            file.write_all(&bytes).into_diagnostic()?;
            file.commit().into_diagnostic()?;
            output::status(format!(
                "✓ wrote {} ({} packages of {} for {})",
                path.display(),
                sbom.packages.len(),
                plan.name,
                plan.system
            ));
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes).into_diagnostic()?;
            stdout.flush().into_diagnostic()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The library's format for the flag's.
pub fn format_of(arg: SbomFormatArg) -> SbomFormat {
    match arg {
        SbomFormatArg::SpdxJson => SbomFormat::SpdxJson,
        SbomFormatArg::CyclonedxJson => SbomFormat::CycloneDxJson,
    }
}

/// The plan `containerize` would make for `system` (so the SBOM names the
/// same image, packages and date), without anything only an image needs.
fn plan_for(env: &Environment, system: Option<&str>) -> Result<BuildPlan> {
    let manifest = env.load_manifest()?;
    let lock = locking::current_lock(env, &manifest)?;
    let systems = manifest.systems_or_host();
    let system = match system {
        Some(wanted) if systems.iter().any(|s| s == wanted) => wanted.to_string(),
        Some(wanted) => {
            return Err(miette!(
                help = format!("the environment's systems: {}", systems.join(", ")),
                "--system {wanted} is not one of the environment's systems"
            ));
        }
        None => {
            let host = cairn_manifest::host_system();
            systems
                .iter()
                .find(|s| Some(s.as_str()) == host)
                .or_else(|| systems.first())
                .cloned()
                .ok_or_else(|| miette!("the environment has no system to describe"))?
        }
    };
    let request = PlanRequest {
        project_dir: env.root.clone(),
        default_name: env.default_name(),
        source_date_epoch: super::containerize::source_date_epoch()?,
        ..PlanRequest::default()
    };
    BuildPlan::new(&manifest, &lock, &system, &request).diagnose()
}

/// `containerize --sbom --copy`: attaches each platform image's SBOM (the
/// file it carries) to it in the registry it was pushed to.
pub fn attach_to_pushed(
    store: &Store,
    plans: &[BuildPlan],
    image: &BuiltImage,
    reference: &Reference,
    options: &CopyOptions,
) -> Result<()> {
    let images: Vec<&cairn_oci::Image> = match image {
        BuiltImage::Single(image) => vec![image],
        BuiltImage::Multi(multi) => multi.images.iter().collect(),
    };
    let shown = reference.to_string();
    let client = RegistryClient::connect(
        reference,
        client_options(reference, options).map_err(|e| miette!("{shown}: {e}"))?,
    )
    .map_err(|e| miette!("{shown}: {e}"))?;
    for (plan, built) in plans.iter().zip(images) {
        let Some(format) = plan.sbom else { continue };
        let sbom = cairn_image::sbom::sbom_for_plan(store, plan).diagnose()?;
        let bytes = cairn_image::sbom::render(&sbom, format).diagnose()?;
        let subject = Descriptor {
            media_type: cairn_registry::referrers::MANIFEST_MEDIA_TYPE.into(),
            digest: built.manifest_digest.clone(),
            size: built.manifest.len() as u64,
            artifact_type: None,
            data: None,
            annotations: Default::default(),
        };
        let artifact = Artifact {
            artifact_type: format.media_type(),
            bytes: &bytes,
            title: format.file_name(),
            created: &sbom.created,
        };
        let attached = cairn_registry::attach_referrer(&client, reference, &subject, &artifact)
            .map_err(|e| {
                miette!(
                    help =
                        "the image itself was pushed; `cairn sbom -r REF` writes its SBOM locally",
                    "cannot attach the SBOM to {shown}: {e}"
                )
            })?;
        let how = match &attached.fallback_tag {
            Some(tag) => format!(" (listed in the referrers tag {tag})"),
            None => String::new(),
        };
        output::status(format!(
            "✓ attached {} to {}@{} as {}{how}",
            format.file_name(),
            shown,
            built.manifest_digest,
            attached.digest
        ));
    }
    Ok(())
}
