//! The layer report of a built image (`cairn containerize --report`): every
//! layer with its digest, compressed and uncompressed size, the packages in
//! it, whether it came from the cache, and which other locally built images
//! share it; then the totals. It shows `max-layers` grouping at build time,
//! as `dive` shows layers after the fact.
//!
//! This module only assembles the data; which other images exist is the
//! caller's to say (the CLI reads the store's image records), and printing
//! is the CLI's.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{BuildPlan, Result, build::layer_groups};

/// The report of one image (one platform).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// `name:tag`.
    pub image: String,
    /// `x86_64-linux`, ...
    pub system: String,
    /// `sha256:<hex>` of the image manifest.
    pub manifest_digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// Sums over the layers.
    pub total: ReportTotal,
}

/// One layer of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// Compressed size in bytes (what a registry stores and a pull moves).
    pub size: u64,
    /// Uncompressed tar size in bytes.
    pub uncompressed_size: u64,
    /// Packages in the layer, `name version`; empty for cairn's own layers.
    pub packages: Vec<String>,
    /// What the layer holds: the packages, or which of cairn's own layers.
    pub content: String,
    /// Taken from the layer cache, not rebuilt.
    pub reused: bool,
    /// Other locally built images (`name:tag`) that have the same layer.
    pub shared_with: Vec<String>,
}

/// Sums over an image's layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportTotal {
    /// Number of layers.
    pub layers: usize,
    /// Number of packages.
    pub packages: usize,
    /// Compressed bytes.
    pub size: u64,
    /// Uncompressed bytes.
    pub uncompressed_size: u64,
    /// Layers taken from the cache.
    pub reused: usize,
    /// Layers that some other local image also has.
    pub shared: usize,
}

/// Builds the report of `image`, built from `plan`. `other_images` maps a
/// layer digest to the other images (`name:tag`) known to have it.
pub fn image_report(
    plan: &BuildPlan,
    image: &cairn_oci::Image,
    other_images: &BTreeMap<String, BTreeSet<String>>,
) -> Result<ImageReport> {
    // The package layers come first, in the order layer_groups plans them
    // (build_image builds exactly those groups); cairn's own follow.
    let groups = layer_groups(plan)?;
    let layers: Vec<LayerReport> = image
        .layers
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            let packages: Vec<String> = groups
                .get(index)
                .map(|group| {
                    group
                        .iter()
                        .map(|&i| {
                            let p = &plan.packages[i];
                            format!("{} {}", p.name, p.version)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let content = if packages.is_empty() {
                layer
                    .created_by
                    .strip_prefix("cairn: ")
                    .unwrap_or(&layer.created_by)
                    .to_string()
            } else {
                packages.join(", ")
            };
            LayerReport {
                digest: layer.digest.clone(),
                size: layer.size,
                uncompressed_size: layer.uncompressed_size,
                packages,
                content,
                reused: layer.from_cache,
                shared_with: other_images
                    .get(&layer.digest)
                    .map(|names| names.iter().cloned().collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let total = ReportTotal {
        layers: layers.len(),
        packages: layers.iter().map(|l| l.packages.len()).sum(),
        size: layers.iter().map(|l| l.size).sum(),
        uncompressed_size: layers.iter().map(|l| l.uncompressed_size).sum(),
        reused: layers.iter().filter(|l| l.reused).count(),
        shared: layers.iter().filter(|l| !l.shared_with.is_empty()).count(),
    };
    Ok(ImageReport {
        image: format!("{}:{}", plan.name, plan.tag),
        system: plan.system.clone(),
        manifest_digest: image.manifest_digest.clone(),
        layers,
        total,
    })
}
