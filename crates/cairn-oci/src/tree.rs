//! The file tree of one layer and its deterministic tar form.
//!
//! Owns ordering and tar headers: entries sorted bytewise by path, missing
//! parent directories synthesised, hardlinks rewritten so each points at an
//! earlier entry, and headers written field by field so nothing of the build
//! host (owner, atime, device numbers of the host) leaks in. The tree holds
//! metadata and says where each file's contents are ([`Data`]); the contents
//! stream into the tar when it is written, so a layer's size does not show in
//! memory. It does not read packages (`deb.rs`) or compress (`layer.rs`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::layer::spool::{Spool, Spooled, exact};
use crate::{OciError, Result};
use cairn_debian::deb::EntryKind;

/// One entry of a layer: its metadata and where its contents are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub kind: EntryKind,
    pub mode: u32,
    pub mtime: u64,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub data: Data,
}

/// Where a regular file's contents come from when the tar is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    /// No contents (directories, links, devices, empty files).
    None,
    /// These bytes (small custom files).
    Bytes(Vec<u8>),
    /// A range of the layer's spool (package files).
    Spooled(Spooled),
    /// A host file, `len` bytes long when the layer was planned.
    HostFile { path: PathBuf, len: u64 },
}

impl Data {
    /// Size of the contents in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Data::None => 0,
            Data::Bytes(bytes) => bytes.len() as u64,
            Data::Spooled(spooled) => spooled.len,
            Data::HostFile { len, .. } => *len,
        }
    }

    /// The contents when they are in memory (custom bytes, and package files
    /// the spool kept in memory), to write without a copy in between.
    fn in_memory<'a>(&'a self, spool: &'a Spool) -> Option<&'a [u8]> {
        match self {
            Data::None => Some(&[]),
            Data::Bytes(bytes) => Some(bytes),
            Data::Spooled(spooled) => spool.in_memory(*spooled),
            Data::HostFile { .. } => None,
        }
    }

    /// The contents, exactly [`Data::len`] bytes (a host file that shrank
    /// since planning is an error, not a short tar entry).
    fn reader<'a>(&'a self, spool: &'a Spool) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Data::None => Box::new(io::empty()),
            Data::Bytes(bytes) => Box::new(bytes.as_slice()),
            Data::Spooled(spooled) => spool.reader(*spooled)?,
            Data::HostFile { path, len } => {
                // fs-err's reads name the file in their errors.
                let file = fs_err::File::open(path)?;
                Box::new(exact(io::BufReader::with_capacity(256 * 1024, file), *len))
            }
        })
    }
}

impl Node {
    /// A root-owned directory.
    pub fn dir(mode: u32, mtime: u64) -> Node {
        Node {
            kind: EntryKind::Dir,
            mode,
            mtime,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            data: Data::None,
        }
    }
}

/// A layer's entries keyed by normalised path. `BTreeMap<String, _>` orders
/// keys bytewise, which is the archive order, and a parent (a prefix) always
/// sorts before its children.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Adds an entry; a later entry with the same path replaces the earlier one,
    /// as it would when extracted.
    pub fn insert(&mut self, path: String, node: Node) {
        self.nodes.insert(path, node);
    }

    /// Adds missing parent directories and makes every hardlink point at an
    /// entry that comes before it. `layer` names the layer in errors.
    pub fn finish(&mut self, layer: &str, dir_mtime: u64) -> Result<()> {
        self.refuse_writes_through_symlinks(layer)?;
        self.add_missing_parents(dir_mtime);
        self.order_hardlinks(layer)
    }

    /// An entry under a symlink of the same layer (`d -> /x`, then `d/pwned`)
    /// would be written wherever the link points when the layer is applied;
    /// Docker and Podman refuse such layers, and so does cairn, at build time.
    fn refuse_writes_through_symlinks(&self, layer: &str) -> Result<()> {
        use crate::safety::{EntryShape, first_entry_through_symlink};
        let shapes = self.nodes.iter().map(|(path, node)| {
            let shape = match &node.kind {
                EntryKind::Symlink { target } => EntryShape::Symlink(target),
                _ => EntryShape::Other,
            };
            (path.as_str(), shape)
        });
        match first_entry_through_symlink(shapes) {
            Some(source) => Err(OciError::ThroughSymlink {
                layer: layer.to_string(),
                source,
            }),
            None => Ok(()),
        }
    }

    fn add_missing_parents(&mut self, dir_mtime: u64) {
        let mut missing = Vec::new();
        for path in self.nodes.keys() {
            let mut end = 0;
            while let Some(slash) = path[end..].find('/') {
                end += slash;
                let parent = &path[..end];
                if !self.nodes.contains_key(parent) {
                    missing.push(parent.to_owned());
                }
                end += 1;
            }
        }
        for parent in missing {
            self.nodes
                .entry(parent)
                .or_insert_with(|| Node::dir(0o755, dir_mtime));
        }
    }

    /// Extractors create a hardlink by linking to a path already extracted, so
    /// the data must sit on the first path in archive order. Sorting can put a
    /// link before its target (`usr/bin/a` -> `usr/bin/z`, or after the
    /// merged-/usr rewrite); then the first path takes the data and the others
    /// link to it. Chains are flattened too.
    fn order_hardlinks(&mut self, layer: &str) -> Result<()> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, node) in &self.nodes {
            if let EntryKind::Hardlink { target } = &node.kind {
                let carrier = self.resolve_carrier(layer, path, target)?;
                groups.entry(carrier).or_default().push(path.clone());
            }
        }
        for (carrier, links) in groups {
            // `links` is sorted: it was collected in map order.
            let first = links[0].clone().min(carrier.clone());
            let Some(data_node) = self.nodes.remove(&carrier) else {
                continue;
            };
            let link = Node {
                kind: EntryKind::Hardlink {
                    target: first.clone(),
                },
                data: Data::None,
                ..data_node.clone()
            };
            for path in links.into_iter().chain([carrier]) {
                if path != first {
                    self.nodes.insert(path, link.clone());
                }
            }
            self.nodes.insert(first, data_node);
        }
        Ok(())
    }

    fn resolve_carrier(&self, layer: &str, path: &str, target: &str) -> Result<String> {
        let broken = || OciError::BrokenHardlink {
            layer: layer.to_owned(),
            path: path.to_owned(),
            target: target.to_owned(),
        };
        let mut current = target;
        // A chain longer than the tree is a cycle.
        for _ in 0..=self.nodes.len() {
            match self.nodes.get(current).map(|n| &n.kind) {
                None => return Err(broken()),
                Some(EntryKind::Hardlink { target }) => current = target,
                Some(_) => return Ok(current.to_owned()),
            }
        }
        Err(broken())
    }

    /// Writes the tree as a tar stream ending with two zero blocks, file
    /// contents streamed from where [`Data`] says (`spool` for package files).
    pub fn write_tar(&self, out: impl Write, spool: &Spool) -> io::Result<()> {
        let mut builder = tar::Builder::new(out);
        for (path, node) in &self.nodes {
            append_node(&mut builder, path, node, spool)?;
        }
        builder.into_inner()?;
        Ok(())
    }
}

fn append_node<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    node: &Node,
    spool: &Spool,
) -> io::Result<()> {
    // GNU headers: long names go into ././@LongLink entries that every reader
    // (Go's archive/tar, containerd, umoci, GNU tar) understands.
    let mut header = tar::Header::new_gnu();
    header.set_mode(node.mode);
    header.set_uid(node.uid);
    header.set_gid(node.gid);
    header.set_mtime(node.mtime);
    // Names over 32 bytes do not fit; ids are what extractors use anyway.
    if header.set_username(&node.uname).is_err() || header.set_groupname(&node.gname).is_err() {
        header.set_username("")?;
        header.set_groupname("")?;
    }
    header.set_size(0);
    use tar::EntryType as T;
    match &node.kind {
        EntryKind::Dir => header.set_entry_type(T::Directory),
        EntryKind::File => {
            header.set_entry_type(T::Regular);
            header.set_size(node.data.len());
        }
        EntryKind::Symlink { target } => {
            header.set_entry_type(T::Symlink);
            return append_link(builder, header, path, target);
        }
        EntryKind::Hardlink { target } => {
            header.set_entry_type(T::Link);
            return append_link(builder, header, path, target);
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            let char_dev = matches!(node.kind, EntryKind::CharDevice { .. });
            header.set_entry_type(if char_dev { T::Char } else { T::Block });
            header.set_device_major(*major)?;
            header.set_device_minor(*minor)?;
        }
        EntryKind::Fifo => header.set_entry_type(T::Fifo),
    }
    if let Some(bytes) = node.data.in_memory(spool) {
        // The header as `append_data` writes it (long names included), then
        // the bytes straight from memory: `io::copy` into a `dyn Write`
        // would first copy them through an 8 KiB stack buffer, once more for
        // every byte of the image (~200 MB for the flask example).
        builder.append_data(&mut header, path, io::empty())?;
        let out = builder.get_mut();
        out.write_all(bytes)?;
        let partial = bytes.len() % 512;
        if partial > 0 {
            out.write_all(&[0; 512][partial..])?;
        }
        return Ok(());
    }
    builder.append_data(&mut header, path, node.data.reader(spool)?)
}

fn append_link<W: Write>(
    builder: &mut tar::Builder<W>,
    mut header: tar::Header,
    path: &str,
    target: &str,
) -> io::Result<()> {
    // Symlink targets are kept byte for byte; `set_link_name` would clean them
    // up (`a/./b` -> `a/b`), so short ones are copied literally, and long ones
    // go through `append_link`, which writes them verbatim as a GNU long link.
    if header.set_link_name_literal(target).is_ok() {
        builder.append_data(&mut header, path, io::empty())
    } else {
        builder.append_link(&mut header, path, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(body: &[u8]) -> Node {
        Node {
            kind: EntryKind::File,
            data: Data::Bytes(body.to_vec()),
            ..Node::dir(0o644, 7)
        }
    }

    fn link(target: &str) -> Node {
        Node {
            kind: EntryKind::Hardlink {
                target: target.into(),
            },
            ..Node::dir(0o644, 7)
        }
    }

    #[test]
    fn an_entry_through_a_symlink_of_the_layer_is_refused() {
        let mut tree = Tree::default();
        tree.insert(
            "d".into(),
            Node {
                kind: EntryKind::Symlink {
                    target: "/etc".into(),
                },
                ..Node::dir(0o777, 7)
            },
        );
        tree.insert("d/pwned".into(), file(b"x"));
        let err = tree.finish("evil 1.0", 0).unwrap_err().to_string();
        assert!(err.contains("evil 1.0") && err.contains("d/pwned"), "{err}");
    }

    fn listing(tree: &Tree) -> Vec<(String, tar::EntryType, String, Vec<u8>)> {
        let mut bytes = Vec::new();
        let spool = Spool::new(std::env::temp_dir(), 0);
        tree.write_tar(&mut bytes, &spool).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let kind = entry.header().entry_type();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
            out.push((path, kind, link, body));
        }
        out
    }

    #[test]
    fn parents_are_synthesised_and_order_is_bytewise() {
        let mut tree = Tree::default();
        tree.insert("usr/bin/x".into(), file(b"x"));
        tree.insert("usr/bin-extra/y".into(), file(b"y"));
        tree.insert("etc/a".into(), file(b"a"));
        tree.finish("t", 0).unwrap();
        let paths: Vec<_> = listing(&tree).into_iter().map(|e| e.0).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/a",
                "usr",
                "usr/bin",
                "usr/bin-extra",
                "usr/bin-extra/y",
                "usr/bin/x"
            ]
        );
    }

    #[test]
    fn hardlink_sorting_before_its_target_takes_the_data() {
        let mut tree = Tree::default();
        tree.insert("d/z".into(), file(b"data"));
        tree.insert("d/a".into(), link("d/z"));
        tree.insert("d/m".into(), link("d/a"));
        tree.finish("t", 0).unwrap();
        let entries = listing(&tree);
        assert_eq!(
            entries[1],
            (
                "d/a".into(),
                tar::EntryType::Regular,
                "".into(),
                b"data".to_vec()
            )
        );
        assert_eq!(
            entries[2],
            ("d/m".into(), tar::EntryType::Link, "d/a".into(), vec![])
        );
        assert_eq!(
            entries[3],
            ("d/z".into(), tar::EntryType::Link, "d/a".into(), vec![])
        );
    }

    #[test]
    fn dangling_or_cyclic_hardlinks_are_errors() {
        let mut tree = Tree::default();
        tree.insert("a".into(), link("missing"));
        assert!(matches!(
            tree.finish("t", 0),
            Err(OciError::BrokenHardlink { .. })
        ));
        let mut tree = Tree::default();
        tree.insert("a".into(), link("b"));
        tree.insert("b".into(), link("a"));
        assert!(tree.finish("t", 0).is_err());
    }

    #[test]
    fn long_paths_and_link_targets_survive_verbatim() {
        let long = format!("usr/share/{}/f", "x".repeat(150));
        let target = format!("../{}/./f", "y".repeat(150));
        let mut tree = Tree::default();
        tree.insert(long.clone(), file(b"1"));
        tree.insert(
            "usr/l".into(),
            Node {
                kind: EntryKind::Symlink {
                    target: target.clone(),
                },
                ..Node::dir(0o777, 0)
            },
        );
        tree.insert(
            "usr/s".into(),
            Node {
                kind: EntryKind::Symlink {
                    target: "a/./b".into(),
                },
                ..Node::dir(0o777, 0)
            },
        );
        tree.finish("t", 0).unwrap();
        let entries = listing(&tree);
        assert!(entries.iter().any(|e| e.0 == long));
        assert!(entries.iter().any(|e| e.0 == "usr/l" && e.2 == target));
        assert!(entries.iter().any(|e| e.0 == "usr/s" && e.2 == "a/./b"));
    }

    #[test]
    fn tar_ends_with_two_zero_blocks_and_headers_have_no_host_data() {
        let mut tree = Tree::default();
        tree.insert("f".into(), file(b"hi"));
        let mut bytes = Vec::new();
        let spool = Spool::new(std::env::temp_dir(), 0);
        tree.write_tar(&mut bytes, &spool).unwrap();
        assert_eq!(bytes.len(), 512 + 512 + 1024);
        assert!(bytes[1024..].iter().all(|b| *b == 0));
        let header = tar::Header::from_byte_slice(&bytes[..512]);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.mtime().unwrap(), 7);
        let gnu = header.as_gnu().unwrap();
        assert!(
            gnu.atime.iter().chain(&gnu.ctime).all(|b| *b == 0),
            "no atime/ctime"
        );
    }
}
