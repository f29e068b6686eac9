//! Assembling a plan into an image: one layer per package (or group, within
//! `max-layers`), cairn's own layers beside them, and the image config, all
//! through cairn-oci's cached, deterministic layer writer.

use cairn_oci::{ArchiveFormat, BuiltLayer, CustomEntry, LayerFeed, LayerInput, LayerOptions};
use cairn_store::Store;

use crate::{BuildPlan, ImageError, Result, root_copy, top_layer};

/// Reports progress of a build; libraries never print.
pub trait BuildReporter: Sync {
    /// One layer is in the store (built or reused).
    fn on_layer_done(&self, _layer: &BuiltLayer) {}
    /// Every image is built; an archive being written alongside may still
    /// be finishing.
    fn on_built(&self, _image: &BuiltImage) {}
}

/// A reporter that ignores everything.
pub struct NoReporter;
impl BuildReporter for NoReporter {}

/// The image(s) built: one platform, or several joined by an index.
pub enum BuiltImage {
    Single(cairn_oci::Image),
    Multi(cairn_oci::MultiImage),
}

impl BuiltImage {
    /// What archives carry.
    pub fn archived(&self) -> cairn_oci::Archived<'_> {
        match self {
            BuiltImage::Single(image) => image.into(),
            BuiltImage::Multi(multi) => multi.into(),
        }
    }

    /// The image a local engine loads and runs: the host's platform (first).
    pub fn primary(&self) -> &cairn_oci::Image {
        match self {
            BuiltImage::Single(image) => image,
            BuiltImage::Multi(multi) => &multi.images[0],
        }
    }
}

/// Builds every plan's image; several are joined by an image index. The
/// `.deb` of every planned package must already be in the store.
pub fn build_all(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &dyn BuildReporter,
) -> Result<BuiltImage> {
    build_all_feeding(store, plans, reporter, None)
}

/// Which images an archive written during the build holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveScope {
    /// Every platform (under an index when there are several).
    All,
    /// The first plan's image alone: what a local engine loads.
    Primary,
}

/// [`build_all`], writing the archive of the result to `out` as the build
/// goes: each of the first image's layers is written as soon as it and the
/// layers below it are built (`cairn_oci::write_archive_while`), so a cold
/// build ends with little left to copy. The bytes are those
/// `cairn_oci::write_archive` writes for the finished image. On an error,
/// `out` holds a truncated archive, which its caller discards.
pub fn build_all_into_archive(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &dyn BuildReporter,
    format: ArchiveFormat,
    scope: ArchiveScope,
    out: impl std::io::Write + Send,
) -> Result<BuiltImage> {
    let archived: for<'a> fn(&'a BuiltImage) -> cairn_oci::Archived<'a> = match scope {
        ArchiveScope::All => BuiltImage::archived,
        ArchiveScope::Primary => |image| image.primary().into(),
    };
    cairn_oci::write_archive_while(
        format,
        out,
        |feed| build_all_feeding(store, plans, reporter, Some(feed)),
        archived,
    )
}

fn build_all_feeding(
    store: &Store,
    plans: &[BuildPlan],
    reporter: &dyn BuildReporter,
    feed: Option<&LayerFeed>,
) -> Result<BuiltImage> {
    let mut images = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| build_image(store, plan, reporter, feed.filter(|_| i == 0)))
        .collect::<Result<Vec<_>>>()?;
    let built = if images.len() == 1 {
        BuiltImage::Single(images.remove(0))
    } else {
        BuiltImage::Multi(cairn_oci::build_multi_image(images)?)
    };
    reporter.on_built(&built);
    Ok(built)
}

/// Builds one plan's image, handing each layer to `feed` (if any) as it is
/// ready, with its position in the image.
fn build_image(
    store: &Store,
    plan: &BuildPlan,
    reporter: &dyn BuildReporter,
    feed: Option<&LayerFeed>,
) -> Result<cairn_oci::Image> {
    let ready = |position: usize, layer: &BuiltLayer| {
        if let Some(feed) = feed {
            feed.ready(position, layer);
        }
    };
    let inputs = layer_inputs(store, plan)?;
    let opts = LayerOptions {
        compression: plan.compression,
        mtime_clamp: plan.mtime_clamp,
    };
    let grouped: Vec<Vec<LayerInput>> = layer_groups(plan)?
        .iter()
        .map(|g| g.iter().map(|&i| inputs[i].clone()).collect())
        .collect();
    // cairn's binary (to compress on a cold cache) and copy-to-root build
    // beside the package layers. Configuration waits for the package
    // layers: their pass stores what it needs from each `.deb`, so no
    // package is read twice.
    let facts = crate::configured::FACTS;
    let (layers, binary) = std::thread::scope(|scope| {
        // On a pool of its own thread: on the shared pool, its compression
        // waited for the package layers' workers to be idle, so it finished
        // last and held up configuration (50 ms on the flask example). The
        // OS shares the cores among the three threads instead.
        let binary = scope.spawn(
            || match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                Ok(pool) => pool.install(|| binary_layers(store, plan)),
                Err(_) => binary_layers(store, plan),
            },
        );
        let layers =
            cairn_oci::build_layers_with_facts(store, &grouped, &opts, Some(&facts), |i, layer| {
                tracing::debug!("layer {} {}", layer.digest, layer.created_by);
                ready(i, layer);
                reporter.on_layer_done(layer);
            });
        let binary = binary
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (layers, binary)
    });
    let mut layers = layers?;
    let (binary, copied) = binary?;
    let local = crate::local_files::copied_certificates(&copied)?;
    let configured = crate::configured::build_configured_layer(store, plan, &inputs, &local)?;
    layers.push(configured.layer);
    layers.extend(binary);
    layers.push(top_layer::build(store, plan, &inputs, configured.account)?);
    // The package layers went out as they were built; cairn's own follow.
    for (position, layer) in layers.iter().enumerate().skip(grouped.len()) {
        ready(position, layer);
    }
    let spec = top_layer::image_spec(plan)?;
    Ok(cairn_oci::build_image(&spec, &layers)?)
}

/// The image user's numeric ids, as the configuration layer resolves them
/// (a package's system user keeps the package's ids); `None` without a
/// `user`. Builds the configuration layer when the cache does not have it.
pub fn image_account(
    store: &Store,
    plan: &BuildPlan,
) -> Result<Option<crate::configured::AccountIds>> {
    let inputs = layer_inputs(store, plan)?;
    let copied = root_copy::entries(plan, &plan.overrides.copy_to_root)?;
    let local = crate::local_files::copied_certificates(&copied)?;
    Ok(crate::configured::build_configured_layer(store, plan, &inputs, &local)?.account)
}

/// The layer inputs of the plan's packages, from the store's `.deb`s.
fn layer_inputs(store: &Store, plan: &BuildPlan) -> Result<Vec<LayerInput>> {
    plan.packages
        .iter()
        .map(|p| {
            Ok(LayerInput {
                name: p.name.clone(),
                version: p.version.clone(),
                deb_path: store.deb_path(&p.sha256)?,
                deb_sha256: p.sha256.clone(),
            })
        })
        .collect()
}

/// cairn's entrypoint layer and copy-to-root (if any): the layers between
/// package configuration and the environment's top layer; and the
/// copy-to-root entries, whose CA certificates configuration adds.
fn binary_layers(store: &Store, plan: &BuildPlan) -> Result<(Vec<BuiltLayer>, Vec<CustomEntry>)> {
    let mut layers = vec![top_layer::build_binary_layer(store, plan)?];
    let mut copied = Vec::new();
    if !plan.overrides.copy_to_root.is_empty() {
        copied = root_copy::entries(plan, &plan.overrides.copy_to_root)?;
        let mut layer =
            cairn_oci::build_custom_layer(store, copied.clone(), &top_layer::options(plan))?;
        layer.created_by = "cairn: copy-to-root".to_string();
        layers.push(layer);
    }
    Ok((layers, copied))
}

/// Groups packages into the layers `max-layers` leaves once cairn's own are
/// counted (configuration, its entrypoint, the environment, and copy-to-root
/// if any), most
/// depended-upon first.
pub fn layer_groups(plan: &BuildPlan) -> Result<Vec<Vec<usize>>> {
    let own = 3 + usize::from(!plan.overrides.copy_to_root.is_empty());
    let budget = plan.max_layers.saturating_sub(own);
    if budget == 0 {
        return Err(ImageError::MaxLayersTooLow {
            max_layers: plan.max_layers,
            own,
        });
    }
    let nodes: Vec<cairn_oci::PackageNode> = plan
        .packages
        .iter()
        .map(|p| cairn_oci::PackageNode {
            name: p.name.clone(),
            depends: p.depends.clone(),
        })
        .collect();
    // plan_layers counts one layer on top of the package layers it plans.
    Ok(cairn_oci::plan_layers(&nodes, budget + 1))
}
