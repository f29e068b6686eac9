//! `copy-to-root`: host paths and build artifacts copied into the image root,
//! in a layer of their own. A directory's contents land at `/` (devenv's
//! copyToRoot); a file lands at `/<name>`. `.gitignore`d files are skipped, and
//! paths get the same merged-`/usr` rewrite as packages, so `bin/x` cannot
//! shadow the `bin -> usr/bin` symlink.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cairn_manifest::CopySource;
use cairn_oci::{CustomEntry, FileContent};

use crate::{BuildPlan, ImageError, Result};

/// The entries for all `sources`.
pub fn entries(plan: &BuildPlan, sources: &[CopySource]) -> Result<Vec<CustomEntry>> {
    let mut out = Vec::new();
    for source in sources {
        let (root, respect_ignore) = match source {
            // Resolved through symlinks and refused outside the project, so a
            // manifest cannot copy the host's /etc/shadow into an image.
            CopySource::Path(p) => (
                cairn_manifest::copy_source_within(&plan.project_dir, p)?,
                true,
            ),
            CopySource::Build(name) => match plan.artifacts.get(name) {
                Some(dir) => (dir.clone(), false),
                None => return Err(ImageError::BuildOutputMissing { name: name.clone() }),
            },
        };
        if !root.exists() {
            return Err(ImageError::CopySourceMissing { path: root });
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
        let item = item.map_err(|source| ImageError::CopySourceWalk {
            path: root.to_path_buf(),
            source,
        })?;
        let rel = item.path().strip_prefix(&base).unwrap_or(item.path());
        let Some(path) = image_path(rel)? else {
            continue;
        };
        let meta = fs_err::symlink_metadata(item.path())?;
        let mode = meta.permissions().mode() & 0o7777;
        let entry = if meta.file_type().is_symlink() {
            let target = fs_err::read_link(item.path())?;
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
    cairn_debian::deb::normalize_path(&text).map_err(|why| ImageError::CopySourcePath {
        path: text.to_string(),
        reason: why.to_string(),
    })
}
