//! `copy-to-root`: host paths and build artifacts copied into the image root,
//! in a layer of their own. A directory's contents land at `/` (devenv's
//! copyToRoot); a file lands at `/<name>`. `.gitignore`d files are skipped, and
//! paths get the same merged-`/usr` rewrite as packages, so `bin/x` cannot
//! shadow the `bin -> usr/bin` symlink.

use crate::environment::Environment;
use cairn_manifest::CopySource;
use cairn_oci::{CustomEntry, FileContent};
use miette::{IntoDiagnostic, Result, miette};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The entries for all `sources`.
pub fn entries(env: &Environment, sources: &[CopySource]) -> Result<Vec<CustomEntry>> {
    let mut out = Vec::new();
    for source in sources {
        let (root, respect_ignore) = match source {
            CopySource::Path(p) => (env.root.join(p), true),
            CopySource::Build(name) => (super::super::build::artifact_dir(env, name)?, false),
        };
        if !root.exists() {
            return Err(miette!(
                help = "copy-to-root paths are relative to the environment's directory",
                "copy-to-root: {} does not exist",
                root.display()
            ));
        }
        out.extend(walk(&root, respect_ignore)?);
    }
    Ok(out)
}

fn walk(root: &Path, respect_ignore: bool) -> Result<Vec<CustomEntry>> {
    let base: PathBuf = if root.is_dir() {
        root.to_path_buf()
    } else {
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(respect_ignore)
        .git_exclude(respect_ignore)
        .ignore(respect_ignore)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git" && e.file_name() != ".cairn")
        .build();
    let mut entries = Vec::new();
    for item in walker {
        let item = item.into_diagnostic()?;
        let rel = item.path().strip_prefix(&base).unwrap_or(item.path());
        let Some(path) = image_path(rel)? else {
            continue;
        };
        let meta = fs_err::symlink_metadata(item.path()).into_diagnostic()?;
        let mode = meta.permissions().mode() & 0o7777;
        let entry = if meta.file_type().is_symlink() {
            let target = fs_err::read_link(item.path()).into_diagnostic()?;
            CustomEntry::symlink(path, target.to_string_lossy().into_owned())
        } else if meta.is_dir() {
            CustomEntry::dir(path, mode)
        } else {
            CustomEntry::file(path, mode, FileContent::Path(item.path().to_path_buf()))
        };
        entries.push(entry);
    }
    Ok(entries)
}

fn image_path(rel: &Path) -> Result<Option<String>> {
    let text = rel.to_string_lossy();
    if text.is_empty() {
        return Ok(None);
    }
    cairn_debian::deb::normalize_path(&text).map_err(|why| miette!("copy-to-root: {text}: {why}"))
}
