//! Reading the manifest file and resolving the host paths it names, with the
//! limits a hostile or broken file needs.
//!
//! The manifest is read only if it is a regular file of at most
//! [`MAX_MANIFEST_BYTES`] (a 150 MB manifest used to take 44 s and 466 MB
//! before it was refused; `/dev/zero` or a FIFO would never end), and must be
//! UTF-8, reported at the first bad byte. `copy-to-root` sources must resolve,
//! symlinks included, inside the project directory: the image would otherwise
//! carry the host's `/etc/shadow`. Parsing and validation are elsewhere.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostics::{ManifestError, Problem};
use crate::validate::check_copy_source;

/// The largest manifest cairn reads: real ones are a few kilobytes.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// Reads the manifest at `path` as text, refusing special files, files over
/// [`MAX_MANIFEST_BYTES`] and text that is not UTF-8.
pub fn read_manifest_text(path: &Path) -> Result<String, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(path));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // And after, in case the path was swapped in between.
    if !file.metadata().map_err(io)?.is_file() {
        return Err(not_a_file(path));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        let problem = Problem::new(
            0..0,
            format!(
                "{} is larger than {} KiB, the most a manifest may be",
                path.display(),
                MAX_MANIFEST_BYTES / 1024
            ),
        )
        .help("a manifest lists packages and settings; keep data in files it points to");
        return Err(ManifestError::Invalid(problem.locate(path, "")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let problem = Problem::new(at..at + 1, format!("{} is not UTF-8 text", path.display()))
            .label("not UTF-8")
            .help("TOML files are UTF-8: re-save the manifest as UTF-8 (e.g. `iconv -t UTF-8`)");
        ManifestError::Invalid(problem.locate(path, &text))
    })
}

fn not_a_file(path: &Path) -> ManifestError {
    let problem = Problem::new(0..0, format!("{} is not a regular file", path.display()))
        .help("the manifest must be a plain file (not a device, FIFO or directory)");
    ManifestError::Invalid(problem.locate(path, ""))
}

/// A `copy-to-root` source that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CopySourceError {
    /// The source is, or resolves (through `..` or symlinks) to, a path
    /// outside the project directory.
    #[error(
        "copy-to-root source '{source_path}' resolves to {resolved}, outside the project directory {project}"
    )]
    Outside {
        /// The source as written in the manifest.
        source_path: String,
        /// Where it resolves to.
        resolved: PathBuf,
        /// The project directory.
        project: PathBuf,
    },
    /// The source or the project directory cannot be resolved.
    #[error("cannot resolve copy-to-root source {}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves the `copy-to-root` path `source` (as written, not `build:NAME`)
/// against `project_dir`, following symlinks, and returns the resolved path
/// only if it is inside the project directory.
pub fn copy_source_within(project_dir: &Path, source: &str) -> Result<PathBuf, CopySourceError> {
    let canonical = |path: &Path| {
        fs_err::canonicalize(path).map_err(|e| CopySourceError::Io {
            path: path.to_path_buf(),
            source: e,
        })
    };
    let project = canonical(project_dir)?;
    let outside = |resolved: PathBuf| CopySourceError::Outside {
        source_path: source.to_string(),
        resolved,
        project: project.clone(),
    };
    // The lexical rule first, so `/etc` is refused even where it exists.
    if check_copy_source(source).is_err() || source.starts_with("build:") {
        return Err(outside(project_dir.join(source)));
    }
    let resolved = canonical(&project_dir.join(source))?;
    if !resolved.starts_with(&project) {
        return Err(outside(resolved));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_large_and_non_utf8_manifests_are_refused_clearly() {
        let tmp = tempfile::tempdir().unwrap();
        let err = read_manifest_text(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let fifo = tmp.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_manifest_text(&fifo).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let big = tmp.path().join("big.toml");
        let line = "# padding padding padding padding padding padding padding\n";
        fs_err::write(&big, line.repeat(20_000)).unwrap();
        let err = read_manifest_text(&big).unwrap_err();
        assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");

        let latin1 = tmp.path().join("latin1.toml");
        fs_err::write(&latin1, b"version = 1\nname = \"caf\xe9\"\n").unwrap();
        let err = read_manifest_text(&latin1).unwrap_err();
        assert!(err.to_string().contains("is not UTF-8"), "{err}");
        let located = err.located().unwrap();
        assert_eq!(located.line_col(), (2, 12));
        assert!(
            located
                .help
                .as_deref()
                .is_some_and(|h| !h.contains("cairn init"))
        );
    }

    #[test]
    fn copy_sources_resolve_inside_the_project_only() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("project");
        fs_err::create_dir_all(project.join("app")).unwrap();
        fs_err::create_dir_all(tmp.path().join("secret")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), project.join("link")).unwrap();
        std::os::unix::fs::symlink("../app", project.join("app/self")).unwrap();
        let ok = copy_source_within(&project, "./app").unwrap();
        assert_eq!(ok, fs_err::canonicalize(project.join("app")).unwrap());
        assert!(copy_source_within(&project, "app/self").is_ok());
        for escape in ["/etc", "../secret", "link", "app/../../secret"] {
            let err = copy_source_within(&project, escape).unwrap_err();
            assert!(
                matches!(err, CopySourceError::Outside { .. }),
                "{escape}: {err}"
            );
        }
        assert!(matches!(
            copy_source_within(&project, "missing"),
            Err(CopySourceError::Io { .. })
        ));
    }

    /// (manifest, message piece, text under the caret, line and column).
    #[test]
    fn hostile_values_get_located_errors_at_validation() {
        let cases = [
            (
                "version = 1\n[vars]\nTOKEN = \"a\\u0000b\"\n",
                "vars.TOKEN: the value contains a NUL byte",
                "\"a\\u0000b\"",
                (3, 9),
            ),
            (
                "version = 1\nname = \"../../x\"\n",
                "\"../../x\" is not a usable environment name",
                "\"../../x\"",
                (2, 8),
            ),
            (
                "version = 1\n[containers.api]\ndefault-copy-args = \"--dest-creds u:s3cret\"\n",
                "--dest-creds puts registry credentials in the manifest",
                "\"--dest-creds u:s3cret\"",
                (3, 21),
            ),
            (
                "version = 1\n[containers.api]\ncopy-to-root = [\"./app\", \"/etc\"]\n",
                "'/etc' is outside the project directory",
                "\"/etc\"",
                (3, 26),
            ),
            (
                "version = 1\n[containers.api]\ncopy-to-root = \"../../../../etc\"\n",
                "'../../../../etc' leaves the project directory",
                "\"../../../../etc\"",
                (3, 16),
            ),
        ];
        for (text, message, snippet, line_col) in cases {
            let err = crate::Manifest::parse(Path::new("manifest.toml"), text).unwrap_err();
            let located = err.located().unwrap_or_else(|| panic!("{err:?}"));
            assert!(located.message.contains(message), "{}", located.message);
            assert_eq!(located.snippet(), snippet, "{message}");
            assert_eq!(located.line_col(), line_col, "{message}");
            assert!(!located.message.contains("s3cret"));
        }
    }
}
