//! Library errors as miette diagnostics, at the edge only.
//!
//! Library crates return typed errors (`ImageError`, `OciError`,
//! `RegistryError`, …) that keep their variants up to here. [`Diagnose`]
//! wraps one in a [`Diagnosed`] report that keeps it as the source, adds a
//! stable code (`cairn::image::max_layers`) and the hint the library offers,
//! so the CLI never re-words an error into a string.

use std::fmt;

/// What the CLI needs from a library error to report it.
pub trait Hinted: std::error::Error + Send + Sync + 'static {
    /// A stable diagnostic code.
    fn code(&self) -> &'static str;
    /// What the user can do next, if there is something to say.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// A library error with its code and hint, as a miette diagnostic.
#[derive(Debug)]
pub struct Diagnosed<E: Hinted> {
    error: E,
    help: Option<String>,
}

impl<E: Hinted> fmt::Display for Diagnosed<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<E: Hinted> std::error::Error for Diagnosed<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl<E: Hinted> miette::Diagnostic for Diagnosed<E> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.error.code()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

impl<E: Hinted> From<E> for Diagnosed<E> {
    fn from(error: E) -> Self {
        let help = error.hint();
        Diagnosed { error, help }
    }
}

/// `result.diagnose()?` turns a library error into a report with its code and hint.
pub trait Diagnose<T> {
    fn diagnose(self) -> miette::Result<T>;
}

impl<T, E: Hinted> Diagnose<T> for Result<T, E> {
    fn diagnose(self) -> miette::Result<T> {
        self.map_err(|e| miette::Report::new(Diagnosed::from(e)))
    }
}

impl Hinted for cairn_image::ImageError {
    fn code(&self) -> &'static str {
        cairn_image::ImageError::code(self)
    }
    fn hint(&self) -> Option<String> {
        cairn_image::ImageError::hint(self)
    }
}

impl Hinted for cairn_oci::OciError {
    fn code(&self) -> &'static str {
        use cairn_oci::OciError as E;
        match self {
            E::NoRuntime => "cairn::oci::no_runtime",
            E::LoadFailed { .. } | E::LoadedRefMissing { .. } | E::Spawn { .. } => {
                "cairn::oci::load"
            }
            E::Deb(_) => "cairn::deb",
            E::CorruptCache { .. } | E::BlobSizeMismatch { .. } => "cairn::oci::cache",
            _ => "cairn::oci",
        }
    }
    fn hint(&self) -> Option<String> {
        use cairn_oci::OciError as E;
        match self {
            E::LoadFailed { program, .. } => Some(format!("check that `{program} info` works")),
            E::CorruptCache { .. } | E::BlobSizeMismatch { .. } => {
                Some("`cairn cache verify` finds and evicts broken cache entries".into())
            }
            _ => None,
        }
    }
}

impl Hinted for cairn_debian::DebError {
    fn code(&self) -> &'static str {
        "cairn::deb"
    }
}

impl Hinted for cairn_store::StoreError {
    fn code(&self) -> &'static str {
        "cairn::store"
    }
    fn hint(&self) -> Option<String> {
        matches!(self, cairn_store::StoreError::NoCacheDir)
            .then(|| "set CAIRN_CACHE_DIR to a writable directory".into())
    }
}

impl Hinted for cairn_registry::RegistryError {
    fn code(&self) -> &'static str {
        "cairn::registry"
    }
}

impl Hinted for cairn_runtime::RuntimeError {
    fn code(&self) -> &'static str {
        "cairn::runtime"
    }
}

impl Hinted for cairn_debian::ArchiveError {
    fn code(&self) -> &'static str {
        "cairn::archive"
    }
}

impl Hinted for cairn_manifest::LockError {
    fn code(&self) -> &'static str {
        "cairn::lock"
    }
}

impl Hinted for cairn_debian::ResolveError {
    fn code(&self) -> &'static str {
        "cairn::resolve"
    }
    fn hint(&self) -> Option<String> {
        use cairn_debian::ResolveError as E;
        Some(match self {
            E::NotFound { .. } => "check the spelling with `cairn search NAME`".to_string(),
            E::NoMatchingVersion { name, .. } => {
                format!("see the available versions with `cairn show {name}`")
            }
            E::Unsatisfiable { .. } => {
                "relax a version constraint or remove a conflicting package".to_string()
            }
        })
    }
}
