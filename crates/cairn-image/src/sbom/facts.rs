//! What an SBOM needs from each `.deb` beyond the lock: its source package
//! and version (the control file's `Source:`), its maintainer and homepage,
//! and its license (the `/usr/share/doc/PKG/copyright` in its data tar).
//!
//! Finding the copyright file means decompressing the whole data tar (it sits
//! near the end), so the facts are cached per `.deb` sha256 in the layer
//! bucket: a `.deb`'s facts never change, and a warm `cairn sbom` reads no
//! package. A miss verifies the `.deb` against the lock's sha256 first, like
//! every other reader of the cache.

use std::io::Read;
use std::path::Path;

use cairn_store::{Bucket, Store, write_atomic};
use serde::{Deserialize, Serialize};

use super::license::{License, parse_copyright};
use crate::{ImageError, Result};

/// Bumped whenever the facts read from the same `.deb` would change.
const FACTS_FORMAT: &str = "sbom-facts-v2";
/// A copyright file larger than this is not read (Debian's largest are a few hundred KiB).
const MAX_COPYRIGHT: u64 = 4 << 20;

/// The facts of one `.deb`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebFacts {
    /// The source package (`glibc` for `libc6`); the binary's name when `Source:` is absent.
    pub source: String,
    /// The source version (`Source: glibc (2.36-9)`); the binary's version otherwise.
    pub source_version: String,
    /// `Maintainer:`.
    pub maintainer: String,
    /// `Homepage:`, if any.
    pub homepage: Option<String>,
    /// From the package's own copyright file.
    pub license: License,
    /// The package whose doc directory `/usr/share/doc/PKG` links to
    /// (`libgcc-s1` → `gcc-12-base`): its copyright file is that package's.
    pub doc_link: Option<String>,
}

/// The facts of the `.deb` at `deb` (sha256 `sha256`, hex) of package `name`,
/// from the cache or, on a miss, from the verified `.deb`.
pub fn deb_facts(store: &Store, deb: &Path, sha256: &str, name: &str) -> Result<DebFacts> {
    let record = store
        .bucket(Bucket::Layers)?
        .join(format!("{FACTS_FORMAT}-{sha256}.json"));
    if let Ok(text) = fs_err::read_to_string(&record)
        && let Ok(facts) = serde_json::from_str::<DebFacts>(&text)
    {
        return Ok(facts);
    }
    cairn_store::verify_file(deb, sha256)?;
    let facts = read_facts(deb, name)?;
    let json = serde_json::to_vec(&facts).map_err(|source| ImageError::Json {
        what: "SBOM package facts",
        source,
    })?;
    write_atomic(&record, |f| std::io::Write::write_all(f, &json))?;
    Ok(facts)
}

/// Reads the facts of package `name` from its `.deb`.
pub fn read_facts(deb: &Path, name: &str) -> Result<DebFacts> {
    let control = cairn_debian::read_control(deb)?;
    let mut facts = control_facts(&control.control, name);
    let doc_dir = format!("usr/share/doc/{name}");
    let copyright_path = format!("{doc_dir}/copyright");
    let mut copyright = None;
    cairn_debian::visit_data(deb, |entry, reader| {
        use cairn_debian::deb::EntryKind;
        match &entry.kind {
            EntryKind::File if entry.path == copyright_path => {
                let mut bytes = Vec::new();
                reader
                    .take(MAX_COPYRIGHT)
                    .read_to_end(&mut bytes)
                    .map_err(|e| cairn_debian::deb::read_error(deb, e))?;
                copyright = Some(String::from_utf8_lossy(&bytes).into_owned());
            }
            EntryKind::Symlink { target } if entry.path == doc_dir => {
                // `usr/share/doc/libgcc-s1 -> gcc-12-base`: a sibling directory.
                let other = target.trim_end_matches('/').rsplit('/').next();
                facts.doc_link = other.filter(|o| !o.is_empty()).map(str::to_string);
            }
            _ => {}
        }
        Ok::<(), cairn_debian::DebError>(())
    })?;
    if let Some(text) = copyright {
        facts.license = parse_copyright(name, &text);
    }
    Ok(facts)
}

/// Source, maintainer and homepage from a control paragraph.
fn control_facts(control: &str, name: &str) -> DebFacts {
    let paragraph = cairn_debian::deb822::parse(control)
        .ok()
        .and_then(|p| p.into_iter().next());
    let field = |key: &str| {
        paragraph
            .as_ref()
            .and_then(|p| p.first_line(key))
            .map(str::to_string)
    };
    let version = field("Version").unwrap_or_default();
    // `Source: glibc (2.36-9+deb12u4)` when the versions differ, `Source: glibc` otherwise.
    let (source, source_version) = match field("Source") {
        Some(text) => match text.split_once('(') {
            Some((source, rest)) => (
                source.trim().to_string(),
                rest.trim_end_matches(')').trim().to_string(),
            ),
            None => (text.trim().to_string(), version.clone()),
        },
        None => (name.to_string(), version.clone()),
    };
    DebFacts {
        source,
        source_version,
        maintainer: field("Maintainer").unwrap_or_default(),
        homepage: field("Homepage"),
        license: License::default(),
        doc_link: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_and_its_version_come_from_the_control_file() {
        let facts = control_facts(
            "Package: libc6\nSource: glibc (2.36-9+deb12u4)\nVersion: 2.36-9+deb12u4\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nHomepage: https://www.gnu.org/software/libc/libc.html\n",
            "libc6",
        );
        assert_eq!(
            (facts.source.as_str(), facts.source_version.as_str()),
            ("glibc", "2.36-9+deb12u4")
        );
        assert_eq!(
            facts.homepage.as_deref(),
            Some("https://www.gnu.org/software/libc/libc.html")
        );
        let same = control_facts(
            "Package: libgcc-s1\nSource: gcc-12\nVersion: 12.2.0-14\n",
            "libgcc-s1",
        );
        assert_eq!(
            (same.source.as_str(), same.source_version.as_str()),
            ("gcc-12", "12.2.0-14")
        );
        let none = control_facts("Package: hello\nVersion: 2.10-3\n", "hello");
        assert_eq!(
            (none.source.as_str(), none.source_version.as_str()),
            ("hello", "2.10-3")
        );
    }

    #[test]
    fn the_copyright_file_and_doc_links_are_read_from_the_data_tar() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("pkg");
        let doc = root.join("usr/share/doc/sample");
        fs_err::create_dir_all(root.join("DEBIAN")).expect("mkdir");
        fs_err::create_dir_all(&doc).expect("mkdir");
        fs_err::write(
            root.join("DEBIAN/control"),
            "Package: sample\nSource: sample-src (2.0-1)\nVersion: 2.0-1+b1\nArchitecture: all\nMaintainer: t <t@e>\nDescription: x\n",
        )
        .expect("control");
        fs_err::write(
            doc.join("copyright"),
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2024 t\nLicense: Expat\n",
        )
        .expect("copyright");
        fs_err::create_dir_all(root.join("usr/share/doc")).expect("mkdir");
        std::os::unix::fs::symlink("sample", root.join("usr/share/doc/sample-data"))
            .expect("symlink");
        let deb = tmp.path().join("sample.deb");
        let status = std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("dpkg-deb is needed for these tests");
        assert!(status.success());
        let facts = read_facts(&deb, "sample").expect("facts");
        assert_eq!(facts.license.expression.as_deref(), Some("MIT"));
        assert_eq!(facts.source, "sample-src");
        assert_eq!(facts.doc_link, None);
        let linked = read_facts(&deb, "sample-data").expect("facts");
        assert_eq!(linked.doc_link.as_deref(), Some("sample"));
        assert_eq!(linked.license.expression, None);

        let store = Store::open(tmp.path().join("cache")).expect("store");
        let sha = cairn_store::sha256_file(&deb).expect("hash");
        let first = deb_facts(&store, &deb, &sha, "sample").expect("miss");
        // A hit reads the record, not the .deb.
        fs_err::remove_file(&deb).expect("rm");
        assert_eq!(deb_facts(&store, &deb, &sha, "sample").expect("hit"), first);
    }
}
