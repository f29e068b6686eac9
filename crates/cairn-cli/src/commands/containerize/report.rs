//! `containerize --report [--json]`: prints cairn-image's layer report.
//!
//! Where it goes: the human table always to stderr, beside the other status
//! lines; the JSON to stdout, unless stdout carries the archive (`-f -`),
//! where it goes to stderr, so the archive stays byte-clean. With `--json`,
//! the reference `--runtime` loads is a status line (stderr), so stdout is
//! one JSON document.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use cairn_image::{BuildPlan, BuiltImage, ImageReport};
use cairn_store::Store;
use miette::{IntoDiagnostic, Result};

use crate::commands::cache::human_size;
use crate::diagnostic::Diagnose;

/// Builds the report of every platform's image; `own_key` is the store key
/// of this build's record, whose previous version is not "another image".
pub fn reports(
    store: &Store,
    own_key: &str,
    plans: &[BuildPlan],
    image: &BuiltImage,
) -> Result<Vec<ImageReport>> {
    let others = other_images(store, own_key)?;
    let images: Vec<&cairn_oci::Image> = match image {
        BuiltImage::Single(image) => vec![image],
        BuiltImage::Multi(multi) => multi.images.iter().collect(),
    };
    plans
        .iter()
        .zip(images)
        .map(|(plan, built)| cairn_image::image_report(plan, built, &others).diagnose())
        .collect()
}

/// Layer digest → `name:tag` of the other images the store has records of.
fn other_images(store: &Store, own_key: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut by_digest: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, record) in cairn_registry::recorded_images(store).diagnose()? {
        if key == own_key {
            continue;
        }
        for digest in record.layer_digests() {
            by_digest
                .entry(digest.to_string())
                .or_default()
                .insert(record.name_and_tag());
        }
    }
    Ok(by_digest)
}

/// Prints the reports as JSON (one object for one image, a list for several).
pub fn print_json(reports: &[ImageReport], to_stderr: bool) -> Result<()> {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    }
    .into_diagnostic()?;
    if to_stderr {
        writeln!(std::io::stderr(), "{text}").into_diagnostic()
    } else {
        writeln!(std::io::stdout(), "{text}").into_diagnostic()
    }
}

/// Prints the reports as aligned tables on stderr.
pub fn print_table(reports: &[ImageReport]) {
    let mut err = std::io::stderr().lock();
    for report in reports {
        let _ = err.write_all(table(report).as_bytes());
    }
}

/// One image's table: a row per layer, bottom first, then the totals.
fn table(report: &ImageReport) -> String {
    let mut rows = vec![[
        "#".to_string(),
        "digest".into(),
        "compressed".into(),
        "unpacked".into(),
        "cache".into(),
        "content".into(),
        "shared with".into(),
    ]];
    for (index, layer) in report.layers.iter().enumerate() {
        let hex = layer
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&layer.digest);
        rows.push([
            (index + 1).to_string(),
            hex.get(..12).unwrap_or(hex).to_string(),
            human_size(layer.size),
            human_size(layer.uncompressed_size),
            if layer.reused { "reused" } else { "built" }.to_string(),
            shortened(&layer.content, 60),
            layer.shared_with.join(", "),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "layers of {} ({}, {})\n",
        report.image, report.system, report.manifest_digest
    );
    for row in &rows {
        let mut line = String::from(" ");
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            // Sizes read best right-aligned; the last column is not padded.
            let cell = match column {
                0 | 2 | 3 => format!("{cell:>width$}"),
                6 => cell.clone(),
                _ => format!("{cell:<width$}"),
            };
            line.push(' ');
            line.push_str(&cell);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let total = &report.total;
    out.push_str(&format!(
        "total: {} layers, {} packages, {} compressed, {} unpacked; {} reused from the cache, {} shared with other images\n",
        total.layers,
        total.packages,
        human_size(total.size),
        human_size(total.uncompressed_size),
        total.reused,
        total.shared,
    ));
    out
}

/// `text` cut to `max` characters with an ellipsis and the count left out
/// (a grouped layer can hold dozens of packages).
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let Some((cut, _)) = cut.rsplit_once(", ") else {
        // One long name (an environment's): cut it.
        return format!("{cut}…");
    };
    let shown = cut.matches(", ").count() + 1;
    let all = text.matches(", ").count() + 1;
    format!("{cut}, … (+{} more)", all - shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_package_lists_are_cut_at_a_package() {
        assert_eq!(shortened("a 1, b 2", 60), "a 1, b 2");
        let many: Vec<String> = (0..30).map(|i| format!("pkg{i} 1.0")).collect();
        let text = many.join(", ");
        let short = shortened(&text, 40);
        assert!(short.starts_with("pkg0 1.0, pkg1 1.0"), "{short}");
        let shown = short.matches(" 1.0").count();
        assert!(
            short.ends_with(&format!("(+{} more)", 30 - shown)),
            "{short}"
        );
    }
}
