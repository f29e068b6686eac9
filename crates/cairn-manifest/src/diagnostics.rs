//! Errors for the manifest and the lock: I/O errors that name the file, and
//! located errors that carry the file's text and the span of the offending
//! key or value, so the CLI can render them with miette (caret and `help:`).
//!
//! Rendering is not done here: the library has no "fancy" miette feature.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// An error reading, parsing or validating `manifest.toml`.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ManifestError {
    /// The manifest could not be read.
    #[error("cannot read the manifest {}", path.display())]
    #[diagnostic(help("create one with `cairn init`, or pass the environment's directory"))]
    Io {
        /// The manifest's path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(Box<Located>),
    /// The manifest is TOML but breaks a rule of the schema.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<Located>),
}

impl ManifestError {
    /// The located error, for syntax and schema errors.
    pub fn located(&self) -> Option<&Located> {
        match self {
            ManifestError::Io { .. } => None,
            ManifestError::Syntax(located) | ManifestError::Invalid(located) => Some(located),
        }
    }
}

/// An error at a place in a file: message, help, and the span it is about.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Located {
    /// The file the error is in.
    pub path: PathBuf,
    /// What is wrong, naming the key and the value.
    pub message: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
    /// Short text under the caret.
    pub label: String,
    /// The whole file, named after its path.
    #[source_code]
    pub src: NamedSource<String>,
    /// Byte range of the offending key or value.
    #[label("{label}")]
    pub span: SourceSpan,
    /// For a table or key declared twice: where it was declared first.
    #[label("first declared here")]
    pub first: Option<SourceSpan>,
}

impl Located {
    /// 1-based line and column (in characters) where the span starts.
    pub fn line_col(&self) -> (usize, usize) {
        line_col(self.src.inner(), self.span.offset())
    }

    /// The source text the span covers.
    pub fn snippet(&self) -> &str {
        let text = self.src.inner();
        let start = self.span.offset().min(text.len());
        let end = (start + self.span.len()).min(text.len());
        text.get(start..end).unwrap_or("")
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A problem found while reading a file, before the file's text is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    pub label: &'static str,
    /// The text is not TOML at all (as opposed to breaking the schema).
    pub syntax: bool,
    /// Where a key or table declared twice was first declared.
    pub first: Option<Range<usize>>,
}

impl Problem {
    /// A problem at `span`.
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem {
            span,
            message: message.into(),
            help: None,
            label: "here",
            syntax: false,
            first: None,
        }
    }

    /// Adds a `help:` line.
    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// Sets the text under the caret.
    pub fn label(mut self, label: &'static str) -> Problem {
        self.label = label;
        self
    }

    /// Attaches the file, making a reportable error.
    pub fn locate(self, path: &Path, text: &str) -> Box<Located> {
        Box::new(Located {
            path: path.to_path_buf(),
            message: self.message,
            help: self.help,
            label: self.label.to_string(),
            src: NamedSource::new(path.display().to_string(), text.to_string()),
            span: (self.span.start, self.span.len()).into(),
            first: self.first.map(|r| (r.start, r.len()).into()),
        })
    }
}

/// A TOML syntax error from the `toml` crate, as a problem.
pub(crate) fn syntax_problem(err: &toml::de::Error, text: &str) -> Problem {
    let text_len = text.len();
    let span = err.span().unwrap_or(text_len..text_len);
    let message = err.message().trim_end();
    if message.contains("duplicate")
        && let Some(problem) = duplicate_problem(text, span.clone(), message)
    {
        return problem;
    }
    let problem = Problem::new(span, format!("invalid TOML: {message}"))
        .label("TOML syntax error")
        .help("see https://toml.io for the syntax; strings need quotes, e.g. pkg = \"hello\"");
    Problem {
        syntax: true,
        ..problem
    }
}

/// A table or key declared twice (as `cat >> manifest.toml` of a table the
/// file already has does): both places, and what to do.
fn duplicate_problem(text: &str, span: std::ops::Range<usize>, message: &str) -> Option<Problem> {
    let name = text.get(span.clone())?.trim();
    if name.is_empty() {
        return None;
    }
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[span.start..]
        .find('\n')
        .map_or(text.len(), |i| span.start + i);
    let line = text[line_start..line_end].trim();
    // The first earlier line that declares the same thing.
    let mut offset = 0;
    let first = text[..line_start].split_inclusive('\n').find_map(|l| {
        let here = offset;
        offset += l.len();
        let trimmed = l.trim();
        let same = if line.starts_with('[') {
            trimmed == line
        } else {
            trimmed.split('=').next().map(str::trim) == Some(name)
        };
        same.then(|| {
            let start = here + (l.len() - l.trim_start().len());
            start..start + trimmed.len()
        })
    });
    let what = if line.starts_with('[') {
        format!("table {line}")
    } else {
        format!("key '{name}'")
    };
    let mut problem = Problem::new(
        span,
        format!("invalid TOML: {message}: {what} is declared twice"),
    )
    .label("declared again here")
    .help(match &first {
        Some(r) => format!(
            "move these keys into the {what} at line {} (or remove one of the two)",
            line_col(text, r.start).0
        ),
        None => format!("declare the {what} once"),
    });
    problem.syntax = true;
    problem.first = first;
    Some(problem)
}

/// The candidate closest to `unknown`, if one is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Cargo's rule of thumb: a third of the length, at least one edit.
    let limit = (unknown.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(unknown, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        let quote = text.find('"').unwrap_or_default();
        assert_eq!(line_col(text, quote), (2, 6));
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        let keys = ["install", "vars", "options"];
        assert_eq!(did_you_mean("instal", keys), Some("install"));
        assert_eq!(did_you_mean("var", keys), Some("vars"));
        assert_eq!(did_you_mean("optoins", keys), Some("options"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
