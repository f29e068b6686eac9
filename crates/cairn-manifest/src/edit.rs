//! Edits to `manifest.toml` that keep the user's comments and formatting
//! (`cairn install`, `cairn uninstall`), on a `toml_edit::DocumentMut`.
//!
//! This module changes text only; the caller re-parses the result with
//! [`Manifest::parse`] and writes the file atomically.

use crate::{Manifest, ManifestError};
use std::fmt;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table, TableLike, value};

/// A manifest opened for editing.
#[derive(Debug, Clone)]
pub struct ManifestDoc {
    path: PathBuf,
    doc: DocumentMut,
}

/// What [`ManifestDoc::add_package`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new `[install]` entry was written.
    Added,
    /// The entry existed, and its package or version changed.
    Updated,
    /// The entry existed exactly as asked.
    Unchanged,
}

impl ManifestDoc {
    /// Reads the manifest at `path`; it must be valid, so edits start from a
    /// manifest whose `[install]` is known to be a table.
    pub fn open(path: &Path) -> Result<ManifestDoc, ManifestError> {
        let text = crate::files::read_manifest_text(path)?;
        ManifestDoc::parse(path, &text)
    }

    /// Reads the manifest at `path` checking only its TOML syntax, for an edit
    /// that may be what makes it valid (`cairn install coreutils` when a
    /// container already `exclude`s it). The caller must validate the result.
    pub fn open_unvalidated(path: &Path) -> Result<ManifestDoc, ManifestError> {
        let text = crate::files::read_manifest_text(path)?;
        let doc = ManifestDoc::parse_syntax(path, &text)?;
        let install_is_table = doc
            .doc
            .get("install")
            .is_none_or(|i| i.as_table_like().is_some());
        if !install_is_table {
            // Editing would replace the user's value; report it, located, instead.
            Manifest::parse(path, &text)?;
        }
        Ok(doc)
    }

    /// Opens manifest `text` for editing; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ManifestDoc, ManifestError> {
        Manifest::parse(path, text)?;
        ManifestDoc::parse_syntax(path, text)
    }

    fn parse_syntax(path: &Path, text: &str) -> Result<ManifestDoc, ManifestError> {
        let doc = text.parse::<DocumentMut>().map_err(|err| {
            // Unreachable in practice: the text just parsed as a manifest.
            let span = err.span().unwrap_or(0..0);
            let problem = crate::diagnostics::Problem::new(span, err.message().to_string());
            ManifestError::Syntax(problem.locate(path, text))
        })?;
        Ok(ManifestDoc {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file this document was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest as it stands after the edits so far.
    pub fn manifest(&self) -> Result<Manifest, ManifestError> {
        Manifest::parse(&self.path, &self.doc.to_string())
    }

    /// Sets `release = "CODENAME"` (the Debian release of the default
    /// sources), keeping the comments around an existing one.
    pub fn set_release(&mut self, release: &str) {
        match self.doc.get_mut("release").and_then(Item::as_value_mut) {
            Some(existing) => {
                let decor = existing.decor().clone();
                *existing = toml_edit::Value::from(release);
                *existing.decor_mut() = decor;
            }
            None => {
                self.doc.insert("release", value(release));
            }
        }
    }

    /// Adds (or updates) `[install]` entry `id` for Debian package `pkg`,
    /// written flox-style as `id.pkg = "pkg"`. An existing entry keeps its
    /// version constraint unless `version` is given.
    pub fn add_package(&mut self, id: &str, pkg: &str, version: Option<&str>) -> AddOutcome {
        let install = self.install_table();
        if let Some(entry) = install.get_mut(id).and_then(Item::as_table_like_mut) {
            return update_entry(entry, pkg, version);
        }
        let standard_tables = has_standard_tables(install);
        let mut entry = Table::new();
        // Follow the file's style: `[install.id]` headers if it uses them,
        // dotted keys otherwise.
        entry.set_dotted(!standard_tables);
        entry.insert("pkg", value(pkg));
        if let Some(version) = version {
            entry.insert("version", value(version));
        }
        install.insert(id, Item::Table(entry));
        AddOutcome::Added
    }

    /// Removes the `[install]` entry with id `id_or_pkg`, or else every entry
    /// whose package is `id_or_pkg`. Returns whether anything was removed.
    pub fn remove_package(&mut self, id_or_pkg: &str) -> bool {
        let Some(install) = self
            .doc
            .get_mut("install")
            .and_then(Item::as_table_like_mut)
        else {
            return false;
        };
        if install.remove(id_or_pkg).is_some() {
            return true;
        }
        let ids: Vec<String> = install
            .iter()
            .filter(|(_, item)| item.get("pkg").and_then(Item::as_str) == Some(id_or_pkg))
            .map(|(id, _)| id.to_string())
            .collect();
        for id in &ids {
            install.remove(id);
        }
        !ids.is_empty()
    }

    /// `[install]`, created at the end of the file when missing.
    fn install_table(&mut self) -> &mut dyn TableLike {
        let install = self
            .doc
            .entry("install")
            .or_insert_with(|| Item::Table(Table::new()));
        if let Some(table) = install.as_table_mut()
            && !has_standard_tables(table)
        {
            // An implicit `[install]` (say, emptied by `remove_package`) would
            // hide its header; dotted entries need it written.
            table.set_implicit(false);
        }
        if install.as_table_like().is_none() {
            // `open` validated the manifest, so this only happens to a
            // document edited since; replacing the bad value is the edit asked for.
            *install = Item::Table(Table::new());
        }
        install
            .as_table_like_mut()
            .expect("[install] was just made a table")
    }
}

/// Whether entries are written as `[install.id]` headers.
fn has_standard_tables(install: &dyn TableLike) -> bool {
    install
        .iter()
        .any(|(_, item)| item.as_table().is_some_and(|t| !t.is_dotted()))
}

/// Sets `pkg` (and `version`, when given) of an existing entry.
fn update_entry(entry: &mut dyn TableLike, pkg: &str, version: Option<&str>) -> AddOutcome {
    let same_pkg = entry.get("pkg").and_then(Item::as_str) == Some(pkg);
    let same_version =
        version.is_none_or(|v| entry.get("version").and_then(Item::as_str) == Some(v));
    if same_pkg && same_version {
        return AddOutcome::Unchanged;
    }
    if !same_pkg {
        set_keeping_decor(entry, "pkg", pkg);
    }
    if let Some(version) = version {
        set_keeping_decor(entry, "version", version);
    }
    AddOutcome::Updated
}

/// Replaces a string value, keeping the whitespace and comments around it.
fn set_keeping_decor(table: &mut dyn TableLike, key: &str, text: &str) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(existing) => {
            let decor = existing.decor().clone();
            *existing = text.into();
            *existing.decor_mut() = decor;
        }
        None => {
            table.insert(key, value(text));
        }
    }
}

/// The edited manifest text.
impl fmt::Display for ManifestDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.doc.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init_template;

    fn open(text: &str) -> ManifestDoc {
        ManifestDoc::parse(Path::new("manifest.toml"), text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn reparsed(doc: &ManifestDoc) -> Manifest {
        doc.manifest().unwrap_or_else(|e| panic!("{e:?}\n{doc}"))
    }

    const COMMENTED: &str = r#"version = 1 # format

# my packages
[install]
# the interpreter
python3.pkg = "python3"   # keep
python3.version = ">= 3.11"

[vars]
# greeting
GREETING = "hi"
"#;

    #[test]
    fn add_uses_dotted_keys_and_keeps_comments() {
        let mut doc = open(COMMENTED);
        assert_eq!(doc.add_package("hello", "hello", None), AddOutcome::Added);
        assert_eq!(
            doc.add_package("gcc", "gcc", Some(">= 4:12")),
            AddOutcome::Added
        );
        let text = doc.to_string();
        assert_eq!(
            text,
            COMMENTED.replace(
                "python3.version = \">= 3.11\"\n",
                "python3.version = \">= 3.11\"\nhello.pkg = \"hello\"\ngcc.pkg = \"gcc\"\ngcc.version = \">= 4:12\"\n"
            )
        );
        let manifest = reparsed(&doc);
        assert_eq!(manifest.install["gcc"].pkg, "gcc");
    }

    #[test]
    fn add_existing_updates_in_place() {
        let mut doc = open(COMMENTED);
        assert_eq!(
            doc.add_package("python3", "python3", None),
            AddOutcome::Unchanged
        );
        assert_eq!(
            doc.add_package("python3", "python3", Some(">= 3.11")),
            AddOutcome::Unchanged
        );
        assert_eq!(
            doc.add_package("python3", "python3", Some("<< 4")),
            AddOutcome::Updated
        );
        let text = doc.to_string();
        assert_eq!(text, COMMENTED.replace(">= 3.11", "<< 4"));
    }

    #[test]
    fn add_creates_install_and_follows_header_style() {
        let mut doc = open("version = 1\n");
        doc.add_package("hello", "hello", None);
        assert_eq!(
            doc.to_string(),
            "version = 1\n\n[install]\nhello.pkg = \"hello\"\n"
        );

        let headers = "version = 1\n\n[install.hello]\npkg = \"hello\"\n";
        let mut doc = open(headers);
        doc.add_package("jq", "jq", Some("1.6-2.1"));
        assert_eq!(
            doc.to_string(),
            format!("{headers}\n[install.jq]\npkg = \"jq\"\nversion = \"1.6-2.1\"\n")
        );
        reparsed(&doc);

        let inline = "version = 1\ninstall = { hello = { pkg = \"hello\" } }\n";
        let mut doc = open(inline);
        doc.add_package("jq", "jq", None);
        assert_eq!(reparsed(&doc).install["jq"].pkg, "jq");
    }

    #[test]
    fn add_to_the_template_keeps_its_examples() {
        let template = init_template("demo", "trixie");
        let mut doc = open(&template);
        doc.add_package("hello", "hello", None);
        let text = doc.to_string();
        assert_eq!(
            text,
            template.replace("[install]\n", "[install]\nhello.pkg = \"hello\"\n")
        );
        assert_eq!(reparsed(&doc).install.len(), 1);
    }

    #[test]
    fn remove_by_id_or_package() {
        let mut doc = open(COMMENTED);
        doc.add_package("web", "python3-flask", None);
        assert!(doc.remove_package("python3"));
        assert!(!doc.remove_package("python3"));
        assert!(doc.remove_package("python3-flask"));
        assert!(!doc.remove_package("nothing"));
        let text = doc.to_string();
        assert!(!text.contains("python3"), "{text}");
        assert!(text.contains("# my packages\n[install]\n"), "{text}");
        assert!(text.contains("# greeting\nGREETING = \"hi\""), "{text}");
        assert!(reparsed(&doc).install.is_empty());
        // And adding again after emptying still writes a valid [install].
        doc.add_package("hello", "hello", None);
        assert_eq!(reparsed(&doc).install["hello"].pkg, "hello");
    }

    #[test]
    fn remove_from_header_tables() {
        let mut doc =
            open("version = 1\n\n[install.hello]\npkg = \"hello\"\n\n[install.jq]\npkg = \"jq\"\n");
        assert!(doc.remove_package("hello"));
        assert_eq!(
            doc.to_string(),
            "version = 1\n\n[install.jq]\npkg = \"jq\"\n"
        );
    }

    #[test]
    fn open_rejects_invalid_manifests_with_location() {
        let err = ManifestDoc::parse(Path::new("m.toml"), "version = 1\n[install]\nx.pkg = 1\n")
            .err()
            .and_then(|e| e.located().map(|l| l.line_col()));
        assert_eq!(err, Some((3, 9)));
    }
}
