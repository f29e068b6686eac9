//! Refusing layer entries that would be written through a symlink.
//!
//! A package may ship `d -> /x` and then `d/pwned`. Extracting that layer
//! writes `d/pwned` through the link, i.e. to `/x/pwned`: Docker and Podman
//! refuse to load such a layer, and cairn's own unpacker (`checked_path` in
//! `cairn_debian::deb::unpack`) refuses the package. The layer builder must
//! refuse it too, at build time, naming the package and the path, instead of
//! producing an image that fails later or, with a lax extractor, writes
//! outside the directory the link was meant to stand for.
//!
//! This module is pure: it sees entry paths and kinds, never the filesystem.
//! It owns only the decision; building layers and reporting the package stay
//! with the layer builder.

use std::collections::BTreeMap;

/// What a layer entry is, as far as this check cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryShape<'a> {
    /// A symbolic link and its target.
    Symlink(&'a str),
    /// Anything else: directory, regular file, hardlink, device.
    Other,
}

/// An entry whose parent (at any depth) is a symlink of the same layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{path}' would be written through the symlink '{symlink}' -> '{target}'")]
pub struct ThroughSymlink {
    /// The offending entry, normalised (no leading `./` or `/`).
    pub path: String,
    /// The ancestor of `path` that is a symlink.
    pub symlink: String,
    /// That symlink's target, as shipped.
    pub target: String,
}

/// Symlinks seen so far; feed entries in layer order with [`Self::check`].
/// Keep one across layers to also refuse a symlink shipped by a lower layer.
#[derive(Debug, Default, Clone)]
pub struct SymlinkParents {
    symlinks: BTreeMap<String, String>,
}

impl SymlinkParents {
    /// An empty set: no symlinks seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `path` and fails when one of its ancestors is a symlink seen
    /// before. A later entry that replaces a symlink with a directory or a
    /// file (as dpkg does on upgrade) clears it.
    pub fn check(&mut self, path: &str, shape: EntryShape<'_>) -> Result<(), ThroughSymlink> {
        let path = normalise(path);
        if let Some((symlink, target)) = self.symlink_ancestor(path) {
            return Err(ThroughSymlink {
                path: path.to_owned(),
                symlink: symlink.to_owned(),
                target: target.to_owned(),
            });
        }
        match shape {
            EntryShape::Symlink(target) => {
                self.symlinks.insert(path.to_owned(), target.to_owned());
            }
            EntryShape::Other => {
                self.symlinks.remove(path);
            }
        }
        Ok(())
    }

    fn symlink_ancestor(&self, path: &str) -> Option<(&str, &str)> {
        // Every proper prefix ending before a `/` is an ancestor.
        path.match_indices('/').find_map(|(end, _)| {
            self.symlinks
                .get_key_value(&path[..end])
                .map(|(k, v)| (k.as_str(), v.as_str()))
        })
    }
}

/// The first entry of `entries` (in order) written through a symlink that an
/// earlier entry of the same list created, or `None` when there is none.
pub fn first_entry_through_symlink<'a>(
    entries: impl IntoIterator<Item = (&'a str, EntryShape<'a>)>,
) -> Option<ThroughSymlink> {
    let mut seen = SymlinkParents::new();
    entries
        .into_iter()
        .find_map(|(path, shape)| seen.check(path, shape).err())
}

/// `./a/b/` and `/a/b` are `a/b`, as tar tools treat them.
fn normalise(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    let path = path.strip_prefix("./").unwrap_or(path);
    path.trim_start_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntryShape::{Other, Symlink};

    #[test]
    fn an_entry_under_a_symlinked_parent_is_refused() {
        let entries = [
            ("d", Symlink("/x")),
            ("d-sibling", Other),
            ("d/pwned", Other),
        ];
        assert_eq!(
            first_entry_through_symlink(entries),
            Some(ThroughSymlink {
                path: "d/pwned".into(),
                symlink: "d".into(),
                target: "/x".into(),
            })
        );
    }

    #[test]
    fn deep_ancestors_and_tar_spellings_count() {
        let entries = [
            ("./usr/", Other),
            ("./usr/lib", Symlink("../../etc")),
            ("./usr/lib/a/b/c", Other),
        ];
        let err = first_entry_through_symlink(entries).unwrap();
        assert_eq!(
            (err.path.as_str(), err.symlink.as_str()),
            ("usr/lib/a/b/c", "usr/lib")
        );
        assert_eq!(
            err.to_string(),
            "'usr/lib/a/b/c' would be written through the symlink 'usr/lib' -> '../../etc'"
        );
    }

    #[test]
    fn ordinary_layers_pass() {
        let entries = [
            ("usr", Other),
            ("usr/bin", Other),
            ("usr/bin/python3", Symlink("python3.11")),
            ("usr/bin/python3.11", Other),
            ("usr/lib/libx.so", Symlink("libx.so.1")),
            ("usr/lib/libx.so.1", Other),
            // A sibling whose name starts like the link is not under it.
            ("usr/lib/libx.so.d/file", Other),
        ];
        assert_eq!(first_entry_through_symlink(entries), None);
    }

    #[test]
    fn a_symlink_replaced_by_a_directory_no_longer_counts() {
        let entries = [("d", Symlink("/x")), ("d", Other), ("d/file", Other)];
        assert_eq!(first_entry_through_symlink(entries), None);
    }

    #[test]
    fn a_symlink_from_a_lower_layer_counts_when_the_set_is_kept() {
        let mut seen = SymlinkParents::new();
        seen.check("opt/app", Symlink("/")).unwrap();
        let err = seen.check("opt/app/etc/shadow", Other).unwrap_err();
        assert_eq!(err.symlink, "opt/app");
    }
}
