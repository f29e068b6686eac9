//! `/var/lib/dpkg/status`: one `install ok installed` paragraph per package,
//! so that `dpkg -l`, `dpkg -s` and image scanners that read the status file
//! agree with what the environment holds.
//!
//! Owns the paragraph's text: the package's control fields reordered as dpkg
//! writes them (its field table order, then any other field in the control
//! file's order) with `Status:` added. It leaves out `Conffiles:` (it needs
//! each conffile's md5sum, which only matters to dpkg's upgrade logic and
//! `dpkg -V`); the caller decides where the file goes.

use super::PackageInput;

/// dpkg's own field order for the status file (lib/dpkg/parse.c `fieldinfos`).
const DPKG_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Fields of a control paragraph, each with its continuation lines, in order.
fn fields(control: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in control.lines() {
        if line.trim().is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, text)) = out.last_mut() {
                text.push('\n');
                text.push_str(line);
            }
        } else if let Some((name, _)) = line.split_once(':') {
            out.push((name.to_string(), line.to_string()));
        }
    }
    out
}

/// One status paragraph (ending in a blank line) for `package`.
pub fn status_paragraph(package: &PackageInput) -> String {
    let mut fields = fields(&package.control);
    fields.retain(|(name, _)| !name.eq_ignore_ascii_case("Status"));
    fields.push(("Status".into(), "Status: install ok installed".into()));
    let rank = |name: &str| {
        DPKG_ORDER
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
            .unwrap_or(DPKG_ORDER.len())
    };
    // A stable sort keeps other fields in the control file's order.
    fields.sort_by_key(|(name, _)| rank(name));
    let mut out = String::new();
    for (_, text) in fields {
        out.push_str(&text);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The whole status file, paragraphs sorted by package name (then
/// architecture), as dpkg writes it.
pub fn dpkg_status(packages: &[PackageInput]) -> Vec<u8> {
    let mut sorted: Vec<&PackageInput> = packages.iter().collect();
    sorted.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.architecture.cmp(&b.architecture))
    });
    sorted
        .into_iter()
        .map(status_paragraph)
        .collect::<String>()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mawk 1.3.4.20200120-3.1's control file, abridged description.
    const MAWK_CONTROL: &str = "Package: mawk\nVersion: 1.3.4.20200120-3.1\nArchitecture: amd64\nMaintainer: Boyuan Yang <byang@debian.org>\nInstalled-Size: 263\nDepends: libc6 (>= 2.29)\nProvides: awk\nSection: interpreters\nPriority: required\nMulti-Arch: foreign\nHomepage: https://invisible-island.net/mawk/\nDescription: Pattern scanning and text processing language\n Mawk is an interpreter for the AWK Programming Language.\n";

    #[test]
    fn reorders_fields_as_dpkg_does() {
        let mawk = PackageInput {
            name: "mawk".into(),
            architecture: "amd64".into(),
            control: MAWK_CONTROL.into(),
            ..PackageInput::default()
        };
        // The order of this machine's /var/lib/dpkg/status for the same package.
        assert_eq!(
            status_paragraph(&mawk),
            "Package: mawk\nStatus: install ok installed\nPriority: required\nSection: interpreters\nInstalled-Size: 263\nMaintainer: Boyuan Yang <byang@debian.org>\nArchitecture: amd64\nMulti-Arch: foreign\nVersion: 1.3.4.20200120-3.1\nProvides: awk\nDepends: libc6 (>= 2.29)\nDescription: Pattern scanning and text processing language\n Mawk is an interpreter for the AWK Programming Language.\nHomepage: https://invisible-island.net/mawk/\n\n"
        );
    }

    #[test]
    fn essential_comes_before_status_and_packages_are_sorted() {
        let pkg = |name: &str, extra: &str| PackageInput {
            name: name.into(),
            control: format!("Package: {name}\nVersion: 1\n{extra}"),
            ..PackageInput::default()
        };
        let text = String::from_utf8(dpkg_status(&[
            pkg("zsh", ""),
            pkg("bash", "Essential: yes\n"),
        ]))
        .unwrap_or_default();
        assert_eq!(
            text,
            "Package: bash\nEssential: yes\nStatus: install ok installed\nVersion: 1\n\nPackage: zsh\nStatus: install ok installed\nVersion: 1\n\n"
        );
    }
}
