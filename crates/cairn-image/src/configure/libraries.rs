//! The dynamic linker's view: whether libraries the environment holds are
//! found without an `/etc/ld.so.cache`.
//!
//! Decision: no cache is built. Debian's ld.so searches the multiarch
//! directories (`/lib/<triplet>`, `/usr/lib/<triplet>`) and `/lib`,
//! `/usr/lib` without a cache (its "system search path", see `ld.so
//! --help`), and that is where Debian's shared libraries live, including
//! those provided through alternatives (`libblas.so.3` is a link in
//! `/usr/lib/x86_64-linux-gnu` to `/etc/alternatives`, which
//! [`super::alternatives`] creates). The cache only matters for directories
//! listed in `/etc/ld.so.conf.d` outside that path (fakeroot's
//! `/usr/lib/<triplet>/libfakeroot`, for example); this module names every
//! such directory that holds a shared library as a [`Note`], so a user sees
//! it instead of a `cannot open shared object file` at run time.
//!
//! The fidelity corpus (`tests/corpus.rs`, `loader_check`) checks the
//! decision against real dpkg: every library in the oracle's `ld.so.cache`
//! lies on ld.so's system search path and exists in cairn's rootfs.

use super::{Note, PackageInput};
use std::collections::BTreeSet;

/// Whether ld.so finds libraries in `dir` without a cache.
fn on_system_path(dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    if matches!(dir, "/lib" | "/usr/lib" | "/lib64" | "/usr/lib64") {
        return true;
    }
    ["/lib/", "/usr/lib/"].iter().any(|prefix| {
        dir.strip_prefix(prefix)
            .is_some_and(|triplet| !triplet.contains('/') && triplet.contains("-linux-"))
    })
}

/// Directories listed in `ld.so.conf.d` files (`include` lines are not followed).
fn listed_dirs(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| l.starts_with('/'))
        .collect()
}

/// Notes for library directories only a cache would make visible.
pub(crate) fn configure(packages: &[PackageInput]) -> super::Configuration {
    let libraries: BTreeSet<&str> = packages
        .iter()
        .flat_map(|p| &p.files)
        .filter(|f| f.path.contains(".so"))
        .filter_map(|f| f.path.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    let mut notes = Vec::new();
    for package in packages {
        for file in &package.files {
            if !file.path.starts_with("/etc/ld.so.conf.d/") {
                continue;
            }
            let Some(contents) = &file.contents else {
                continue;
            };
            for dir in listed_dirs(&String::from_utf8_lossy(contents)) {
                if !on_system_path(dir) && libraries.contains(dir.trim_end_matches('/')) {
                    notes.push(Note {
                        package: package.name.clone(),
                        message: format!(
                            "{} lists {dir}, whose libraries ld.so finds only through ld.so.cache, which is not built; programs that need them must set LD_LIBRARY_PATH={dir}",
                            file.path
                        ),
                    });
                }
            }
        }
    }
    super::Configuration {
        entries: Vec::new(),
        notes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DataFile, DataKind, testing::package};
    use super::*;

    #[test]
    fn multiarch_directories_need_no_cache() {
        assert!(on_system_path("/usr/lib/x86_64-linux-gnu"));
        assert!(on_system_path("/lib/aarch64-linux-gnu/"));
        assert!(on_system_path("/usr/lib"));
        assert!(!on_system_path("/usr/lib/x86_64-linux-gnu/libfakeroot"));
        assert!(!on_system_path("/usr/local/lib"));
    }

    #[test]
    fn names_directories_that_only_a_cache_would_find() {
        let mut fakeroot = package(
            "libfakeroot",
            "",
            &["/usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-sysv.so"],
        );
        fakeroot.files.push(DataFile {
            path: "/etc/ld.so.conf.d/fakeroot-x86_64-linux-gnu.conf".into(),
            kind: DataKind::File,
            contents: Some(b"/usr/lib/x86_64-linux-gnu/libfakeroot\n".to_vec()),
        });
        let mut libc = package("libc6", "", &["/usr/lib/x86_64-linux-gnu/libc.so.6"]);
        libc.files.push(DataFile {
            path: "/etc/ld.so.conf.d/x86_64-linux-gnu.conf".into(),
            kind: DataKind::File,
            contents: Some(b"# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n".to_vec()),
        });
        let config = configure(&[libc, fakeroot]);
        assert!(config.entries.is_empty());
        assert_eq!(config.notes.len(), 1);
        assert_eq!(config.notes[0].package, "libfakeroot");
    }
}
