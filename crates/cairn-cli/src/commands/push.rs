//! `cairn push [IMAGE-REF]`: pushes the image `cairn containerize` last built
//! for this environment (or `--container NAME`) to a registry, without
//! rebuilding. The destination and `--copy-args` default to the container's
//! `registry` and `default-copy-args`; the command line replaces them.

use super::containerize::copy;
use crate::cli::PushArgs;
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::{locking, output};
use cairn_registry::{PushImage, Reference};
use miette::{Result, miette};
use std::process::ExitCode;

pub fn run(args: PushArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let manifest = env.load_manifest()?;
    let container = args.container.as_deref();
    let named = match container {
        Some(name) => manifest.containers.get(name),
        None => None,
    };
    let store = locking::open_store()?;
    let image = last_image(&store, &env, container)?;
    let target = args
        .reference
        .clone()
        .or_else(|| named.and_then(|c| c.registry.clone()))
        .ok_or_else(|| {
            miette!(
                help = "e.g. `cairn push 127.0.0.1:5000/team/app:latest`, or set registry in [containers.NAME]",
                "cairn push needs a destination"
            )
        })?;
    let options = copy::parse_copy_args(&copy::copy_args_for(args.copy_args.as_ref(), named))?;
    let reference = destination(&target, &image)?;
    let summary = copy::push(&store, &image, &reference, &options)?;
    if args.json {
        output::print_json(&summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn last_image(
    store: &cairn_store::Store,
    env: &Environment,
    container: Option<&str>,
) -> Result<PushImage> {
    let key = copy::image_key(env, container);
    let loaded = PushImage::load(store, &key).diagnose()?;
    if let Some(gone) = loaded.as_ref().and_then(PushImage::missing_blob) {
        return Err(miette!(
            help = "run `cairn containerize` again, then push",
            "the image last built for {} is no longer in the cache: its layer {} ({}) was evicted",
            env.root.display(),
            gone.digest,
            gone.path.display()
        ));
    }
    loaded.ok_or_else(|| {
        let command = match container {
            Some(name) => format!("cairn containerize --container {name}"),
            None => "cairn containerize".to_owned(),
        };
        miette!(
            help = format!("run `{command}` first"),
            "no image has been built for {} yet",
            env.root.display()
        )
    })
}

/// A full reference, or a prefix (ending in `/`) for the built `NAME:TAG`.
fn destination(target: &str, image: &PushImage) -> Result<Reference> {
    if matches!(target, "docker-daemon:" | "podman:") {
        return Err(miette!(
            help = format!("use `cairn containerize --copy --registry {target}`"),
            "cairn push sends images to registries"
        ));
    }
    let parsed = if target.ends_with('/') {
        Reference::with_prefix(target, &image.name_and_tag())
    } else {
        Reference::parse(target)
    };
    parsed.map_err(|e| copy::registry_report(e, target))
}
