//! Alternatives: the links `update-alternatives --install` calls in
//! maintainer scripts would create, and `update-alternatives`' own state, so
//! that `update-alternatives --display NAME` and `--config NAME` work in the
//! environment as on Debian.
//!
//! Owns reading `--install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]...`
//! calls and choosing, per alternative NAME, the auto-mode choice. It does
//! not apply `--set`/`--remove` (noted by the caller): an environment is
//! always in auto mode.
//!
//! **Choice rule.** As in update-alternatives' auto mode the highest priority
//! wins. update-alternatives keeps the first installed choice on a tie, which
//! depends on dpkg's order; here a tie goes to the package earlier in the lock,
//! then to the lexically smaller path, so the result is a function of the lock.
//! A choice whose PATH is not in the environment is dropped, as
//! update-alternatives refuses to register it; a slave whose path is missing
//! is registered in the state but gets no link, as update-alternatives does.
//! A master or slave LINK that a package ships as a real file is not replaced.

use super::{Entry, Note, PackageInput, ParsedScripts, Tree};
use std::collections::BTreeMap;

/// Where the `/etc/alternatives/NAME` links live.
pub const ALT_DIR: &str = "/etc/alternatives";
/// Where update-alternatives keeps one state file per NAME.
pub const ADMIN_DIR: &str = "/var/lib/dpkg/alternatives";

/// One `update-alternatives --install` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Position of the package in the lock (the tie-breaker).
    pub order: usize,
    pub package: String,
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    pub slaves: Vec<Slave>,
}

/// A `--slave LINK NAME PATH` of a registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Slave {
    pub link: String,
    pub name: String,
    pub path: String,
}

/// Options update-alternatives accepts before the command, with their arity.
const OPTIONS_WITH_VALUE: &[&str] = &["--altdir", "--admindir", "--instdir", "--root", "--log"];

/// The arguments of one `update-alternatives --install` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Install {
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    pub slaves: Vec<Slave>,
}

/// Parses the words of one `update-alternatives` command; `None` when it is
/// not an `--install`, `Err` with a reason when it is one we cannot read.
pub fn parse_install(words: &[String]) -> Option<Result<Install, String>> {
    let install = words.iter().position(|w| w == "--install")?;
    let rest = &words[install + 1..];
    let [link, name, path, priority, tail @ ..] = rest else {
        return Some(Err(format!(
            "--install needs LINK NAME PATH PRIORITY, got {}",
            rest.join(" ")
        )));
    };
    let Ok(priority) = priority.parse::<i64>() else {
        return Some(Err(format!("priority '{priority}' is not a number")));
    };
    let mut slaves = Vec::new();
    let mut i = 0;
    while i < tail.len() {
        match tail[i].as_str() {
            "--slave" => {
                let Some([link, name, path]) = tail.get(i + 1..i + 4) else {
                    return Some(Err("--slave needs LINK NAME PATH".to_string()));
                };
                slaves.push(Slave {
                    link: link.clone(),
                    name: name.clone(),
                    path: path.clone(),
                });
                i += 4;
            }
            option if OPTIONS_WITH_VALUE.contains(&option) => i += 2,
            option if option.starts_with("--") => i += 1,
            other => return Some(Err(format!("unexpected '{other}' after the master"))),
        }
    }
    Some(Ok(Install {
        link: link.clone(),
        name: name.clone(),
        path: path.clone(),
        priority,
        slaves,
    }))
}

/// Every `--install` call of every package's scripts, in lock order, with
/// notes for the ones that cannot be read.
pub(crate) fn registrations(
    packages: &[PackageInput],
    parsed: &[ParsedScripts],
) -> (Vec<Registration>, Vec<Note>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for (order, (package, scripts)) in packages.iter().zip(parsed).enumerate() {
        for (script, command) in scripts.all() {
            let Some(words) = &command.words else {
                continue;
            };
            if words.first().map(|p| p.rsplit('/').next().unwrap_or(p))
                != Some("update-alternatives")
            {
                continue;
            }
            match parse_install(words) {
                None => {}
                Some(Ok(install)) => found.push(Registration {
                    order,
                    package: package.name.clone(),
                    link: install.link,
                    name: install.name,
                    path: install.path,
                    priority: install.priority,
                    slaves: install.slaves,
                }),
                Some(Err(reason)) => notes.push(Note {
                    package: package.name.clone(),
                    message: format!(
                        "{script} line {}: update-alternatives call not applied: {reason}",
                        command.line
                    ),
                }),
            }
        }
    }
    (found, notes)
}

/// The result for one alternative name.
struct Group<'a> {
    name: &'a str,
    link: &'a str,
    /// Slave name → slave link, over all choices (first registration wins).
    slaves: BTreeMap<&'a str, &'a str>,
    /// Choices sorted by path, as update-alternatives writes them.
    choices: Vec<&'a Registration>,
    best: &'a Registration,
}

/// Entries and notes for every alternative of `packages`.
pub(crate) fn configure(
    packages: &[PackageInput],
    parsed: &[ParsedScripts],
    tree: &Tree<'_>,
) -> super::Configuration {
    let (found, mut notes) = registrations(packages, parsed);
    let mut by_name: BTreeMap<&str, Vec<&Registration>> = BTreeMap::new();
    for registration in &found {
        by_name
            .entry(&registration.name)
            .or_default()
            .push(registration);
    }
    let mut entries = Vec::new();
    for (name, registrations) in by_name {
        let Some(group) = group(name, registrations, tree, &mut notes) else {
            continue;
        };
        entries.extend(links(&group, tree, &mut notes));
        entries.push(Entry::file(
            &format!("{ADMIN_DIR}/{name}"),
            0o644,
            state_file(&group).into_bytes(),
        ));
    }
    if !entries.is_empty() {
        entries.push(Entry::dir(ALT_DIR, 0o755, 0, 0));
        entries.push(Entry::dir(ADMIN_DIR, 0o755, 0, 0));
    }
    super::Configuration {
        entries,
        notes,
        ..Default::default()
    }
}

fn group<'a>(
    name: &'a str,
    registrations: Vec<&'a Registration>,
    tree: &Tree<'_>,
    notes: &mut Vec<Note>,
) -> Option<Group<'a>> {
    let link = registrations.first()?.link.as_str();
    let mut choices: BTreeMap<&str, &Registration> = BTreeMap::new();
    for r in registrations {
        if r.link != link {
            notes.push(note(
                r,
                format!(
                    "alternative {name} uses link {link}, not {}; not registered",
                    r.link
                ),
            ));
        } else if !tree.exists(&r.path) {
            notes.push(note(
                r,
                format!(
                    "alternative {name}: {} is not in the environment; not registered",
                    r.path
                ),
            ));
        } else {
            // A second registration of the same path replaces the first, as
            // update-alternatives does.
            choices.insert(&r.path, r);
        }
    }
    let choices: Vec<&Registration> = choices.into_values().collect();
    let best = *choices.iter().max_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| b.order.cmp(&a.order))
            .then_with(|| b.path.cmp(&a.path))
    })?;
    let mut slaves = BTreeMap::new();
    for choice in &choices {
        for slave in &choice.slaves {
            slaves
                .entry(slave.name.as_str())
                .or_insert(slave.link.as_str());
        }
    }
    Some(Group {
        name,
        link,
        slaves,
        choices,
        best,
    })
}

fn note(r: &Registration, message: String) -> Note {
    Note {
        package: r.package.clone(),
        message,
    }
}

/// The master and slave links of the best choice.
fn links(group: &Group<'_>, tree: &Tree<'_>, notes: &mut Vec<Note>) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut add = |link: &str, name: &str, path: &str, notes: &mut Vec<Note>| {
        if tree.is_shipped_non_link(link) {
            notes.push(note(
                group.best,
                format!("alternative {name}: {link} is a file a package ships; not replaced"),
            ));
            return;
        }
        let alt = format!("{ALT_DIR}/{name}");
        entries.push(Entry::symlink(&alt, path));
        entries.push(Entry::symlink(link, &alt));
    };
    add(group.link, group.name, &group.best.path, notes);
    for slave in &group.best.slaves {
        if group.slaves.get(slave.name.as_str()) != Some(&slave.link.as_str()) {
            continue;
        }
        if tree.exists(&slave.path) {
            add(&slave.link, &slave.name, &slave.path, notes);
        }
    }
    entries
}

/// `/var/lib/dpkg/alternatives/NAME` in update-alternatives' format: mode,
/// master link, slave name/link pairs (by name), a blank line; then per
/// choice (by path) its path, priority and one line per slave (empty when it
/// has none), and a final blank line.
fn state_file(group: &Group<'_>) -> String {
    let mut out = format!("auto\n{}\n", group.link);
    for (name, link) in &group.slaves {
        out.push_str(&format!("{name}\n{link}\n"));
    }
    out.push('\n');
    for choice in &group.choices {
        out.push_str(&format!("{}\n{}\n", choice.path, choice.priority));
        for name in group.slaves.keys() {
            let path = choice
                .slaves
                .iter()
                .find(|s| s.name == *name)
                .map_or("", |s| s.path.as_str());
            out.push_str(path);
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::package;
    use super::super::{EntryKind, configure as configure_all};
    use super::*;

    /// The start of mawk's real bookworm postinst (1.3.4.20200120-3.1).
    const MAWK_POSTINST: &str = r#"#!/bin/sh
set -e

# Automatically added by dh_installalternatives/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \
            --slave /usr/bin/nawk nawk /usr/bin/mawk \
            --slave /usr/share/man/man1/nawk.1.gz nawk.1.gz /usr/share/man/man1/mawk.1.gz
fi
# End automatically added section
"#;

    /// gawk's (5.2.1-2) registration of the same name, at a higher priority.
    const GAWK_POSTINST: &str = r#"#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10 \
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/gawk.1.gz \
            --slave /usr/bin/nawk nawk /usr/bin/gawk \
            --slave /usr/share/man/man1/nawk.1.gz nawk.1.gz /usr/share/man/man1/gawk.1.gz
fi
"#;

    /// libblas3 3.11.0-2: a library provided through an alternative.
    const LIBBLAS3_POSTINST: &str = "#!/bin/sh\nset -e\nupdate-alternatives --install /usr/lib/x86_64-linux-gnu/libblas.so.3 \\\n                    libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 10\n\nexit 0\n";

    /// The loop of openjdk-17-jre-headless 17.0.21.1+2-1~deb12u1's postinst, abridged.
    const OPENJDK_POSTINST: &str = r#"#!/bin/sh
set -e
multiarch=x86_64-linux-gnu
priority=1711
basedir=/usr/lib/jvm/java-17-openjdk-amd64
mandir=$basedir/man
srcext=1.gz
dstext=1.gz
jre_tools='java jpackage keytool rmiregistry'

case "$1" in
configure)
    if [ -z "$2" ]; then
	update_alternatives=y
    fi
    if [ "$update_alternatives" = y ]; then
    if [ -n "$multiarch" ] && [ "$DPKG_MAINTSCRIPT_ARCH" != $(dpkg --print-architecture) ]; then
	priority=$(expr $priority - 1)
    fi
    for i in $jre_tools; do
	unset slave1 slave2 || true
        if [ -e $mandir/man1/$i.$srcext ]; then
	    slave1="--slave \
		/usr/share/man/man1/$i.$dstext \
                $i.$dstext \
                $mandir/man1/$i.$srcext"
	fi
        if false && [ -e $mandir/ja/man1/$i.$srcext ]; then
	    slave2="--slave \
		/usr/share/man/ja/man1/$i.$dstext \
                ${i}_ja.$dstext \
                $mandir/ja/man1/$i.$srcext"
	fi
        update-alternatives \
            --install \
            /usr/bin/$i \
            $i \
            $basedir/bin/$i \
            $priority \
	    $slave1 $slave2
    done
    fi
esac
"#;

    fn links_of(config: &super::super::Configuration) -> Vec<String> {
        config
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Symlink(t) => Some(format!("{} -> {t}", e.path)),
                _ => None,
            })
            .collect()
    }

    fn state(config: &super::super::Configuration, name: &str) -> String {
        let path = format!("{ADMIN_DIR}/{name}");
        config
            .entries
            .iter()
            .find(|e| e.path == path)
            .and_then(|e| match &e.kind {
                EntryKind::File(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no state for {name}"))
    }

    fn mawk() -> PackageInput {
        package(
            "mawk",
            MAWK_POSTINST,
            &["/usr/bin/mawk", "/usr/share/man/man1/mawk.1.gz"],
        )
    }

    fn gawk() -> PackageInput {
        package("gawk", GAWK_POSTINST, &["/usr/bin/gawk"])
    }

    #[test]
    fn mawk_provides_awk() {
        let config = configure_all(&[mawk()], &[]);
        assert_eq!(
            links_of(&config),
            [
                "/etc/alternatives/awk -> /usr/bin/mawk",
                "/etc/alternatives/awk.1.gz -> /usr/share/man/man1/mawk.1.gz",
                "/etc/alternatives/nawk -> /usr/bin/mawk",
                "/etc/alternatives/nawk.1.gz -> /usr/share/man/man1/mawk.1.gz",
                "/usr/bin/awk -> /etc/alternatives/awk",
                "/usr/bin/nawk -> /etc/alternatives/nawk",
                "/usr/share/man/man1/awk.1.gz -> /etc/alternatives/awk.1.gz",
                "/usr/share/man/man1/nawk.1.gz -> /etc/alternatives/nawk.1.gz",
            ]
        );
        assert_eq!(
            state(&config, "awk"),
            "auto\n/usr/bin/awk\nawk.1.gz\n/usr/share/man/man1/awk.1.gz\nnawk\n/usr/bin/nawk\nnawk.1.gz\n/usr/share/man/man1/nawk.1.gz\n\n/usr/bin/mawk\n5\n/usr/share/man/man1/mawk.1.gz\n/usr/bin/mawk\n/usr/share/man/man1/mawk.1.gz\n\n"
        );
        assert!(config.notes.is_empty(), "{:?}", config.notes);
    }

    #[test]
    fn highest_priority_wins_whatever_the_order_and_missing_slaves_get_no_link() {
        for packages in [vec![mawk(), gawk()], vec![gawk(), mawk()]] {
            let config = configure_all(&packages, &[]);
            let links = links_of(&config);
            assert!(links.contains(&"/etc/alternatives/awk -> /usr/bin/gawk".to_string()));
            assert!(links.contains(&"/etc/alternatives/nawk -> /usr/bin/gawk".to_string()));
            // gawk's man page is not in the environment.
            assert!(
                !links.iter().any(|l| l.contains("awk.1.gz ->")),
                "{links:?}"
            );
            let s = state(&config, "awk");
            assert!(
                s.contains("\n/usr/bin/gawk\n10\n/usr/share/man/man1/gawk.1.gz\n/usr/bin/gawk\n"),
                "{s}"
            );
        }
    }

    #[test]
    fn ties_go_to_the_package_earlier_in_the_lock() {
        let other = package(
            "other",
            &MAWK_POSTINST.replace("mawk", "bawk"),
            &["/usr/bin/bawk"],
        );
        let config = configure_all(&[mawk(), other.clone()], &[]);
        assert!(links_of(&config).contains(&"/etc/alternatives/awk -> /usr/bin/mawk".to_string()));
        let config = configure_all(&[other, mawk()], &[]);
        assert!(links_of(&config).contains(&"/etc/alternatives/awk -> /usr/bin/bawk".to_string()));
    }

    #[test]
    fn a_choice_whose_path_is_missing_is_not_registered() {
        let broken = package("mawk", MAWK_POSTINST, &[]);
        let config = configure_all(&[broken], &[]);
        assert!(config.entries.is_empty());
        assert_eq!(
            config.notes[0].message,
            "alternative awk: /usr/bin/mawk is not in the environment; not registered"
        );
    }

    #[test]
    fn a_shipped_file_is_not_replaced_by_a_link() {
        let mut m = mawk();
        m.files.push(super::super::testing::file("/usr/bin/awk"));
        let config = configure_all(&[m], &[]);
        assert!(
            !links_of(&config)
                .iter()
                .any(|l| l.starts_with("/usr/bin/awk "))
        );
        assert!(
            config
                .notes
                .iter()
                .any(|n| n.message.contains("/usr/bin/awk is a file"))
        );
    }

    #[test]
    fn libblas_is_found_through_its_alternative() {
        let p = package(
            "libblas3",
            LIBBLAS3_POSTINST,
            &["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"],
        );
        let config = configure_all(&[p], &[]);
        assert_eq!(
            links_of(&config),
            [
                "/etc/alternatives/libblas.so.3-x86_64-linux-gnu -> /usr/lib/x86_64-linux-gnu/blas/libblas.so.3",
                "/usr/lib/x86_64-linux-gnu/libblas.so.3 -> /etc/alternatives/libblas.so.3-x86_64-linux-gnu",
            ]
        );
    }

    #[test]
    fn openjdk_registers_each_tool_in_its_loop() {
        let base = "/usr/lib/jvm/java-17-openjdk-amd64";
        let files: Vec<String> = ["java", "keytool", "rmiregistry", "jpackage"]
            .iter()
            .map(|t| format!("{base}/bin/{t}"))
            .chain([format!("{base}/man/man1/java.1.gz")])
            .collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let p = package("openjdk-17-jre-headless", OPENJDK_POSTINST, &files);
        let config = configure_all(&[p], &[]);
        let links = links_of(&config);
        assert!(links.contains(&format!("/etc/alternatives/java -> {base}/bin/java")));
        assert!(links.contains(&"/usr/bin/java -> /etc/alternatives/java".to_string()));
        assert!(links.contains(&"/usr/bin/keytool -> /etc/alternatives/keytool".to_string()));
        assert!(links.contains(&format!(
            "/etc/alternatives/java.1.gz -> {base}/man/man1/java.1.gz"
        )));
        assert_eq!(
            state(&config, "java"),
            format!(
                "auto\n/usr/bin/java\njava.1.gz\n/usr/share/man/man1/java.1.gz\n\n{base}/bin/java\n1711\n{base}/man/man1/java.1.gz\n\n"
            )
        );
        assert!(config.notes.is_empty(), "{:?}", config.notes);
    }

    #[test]
    fn unreadable_calls_are_named() {
        let p = package(
            "odd",
            "update-alternatives --install /usr/bin/x x $(pick) 10\nupdate-alternatives --install /usr/bin/y y /usr/bin/z high\n",
            &["/usr/bin/z"],
        );
        let config = configure_all(&[p], &[]);
        let messages: Vec<&str> = config.notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "postinst line 2: update-alternatives call not applied: priority 'high' is not a number",
                "postinst runs update-alternatives (a call whose arguments depend on something not evaluated is not applied)",
            ]
        );
    }

    /// The state file and links match what the real update-alternatives
    /// writes for the same calls (skips, naming the tool, where it is absent).
    #[test]
    fn matches_real_update_alternatives() {
        let tool = "/usr/bin/update-alternatives";
        if !std::path::Path::new(tool).exists() {
            // .ci/setup installs dpkg's tools: never skipped there.
            crate::configure::testing::skip_or_fail_in_ci(&format!("{tool} not installed (dpkg)"));
            return;
        }
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let packages = [mawk(), gawk()];
        for path in packages.iter().flat_map(|p| &p.files).map(|f| &f.path) {
            let on_disk = root.path().join(path.trim_start_matches('/'));
            fs_err::create_dir_all(on_disk.parent().unwrap_or(root.path()))
                .unwrap_or_else(|e| panic!("{e}"));
            fs_err::write(&on_disk, b"").unwrap_or_else(|e| panic!("{e}"));
        }
        for dir in ["etc/alternatives", "var/lib/dpkg/alternatives", "var/log"] {
            fs_err::create_dir_all(root.path().join(dir)).unwrap_or_else(|e| panic!("{e}"));
        }
        for postinst in [MAWK_POSTINST, GAWK_POSTINST] {
            for command in super::super::script::commands(postinst) {
                let Some(words) = command.words.filter(|w| w[0] == "update-alternatives") else {
                    continue;
                };
                let status = std::process::Command::new(tool)
                    .arg("--root")
                    .arg(root.path())
                    .args(&words[1..])
                    .stdout(std::process::Stdio::null())
                    .status()
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(status.success());
            }
        }
        let config = configure_all(&packages, &[]);
        let real = fs_err::read_to_string(root.path().join("var/lib/dpkg/alternatives/awk"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state(&config, "awk"), real);
        for entry in &config.entries {
            if let EntryKind::Symlink(target) = &entry.kind {
                let on_disk =
                    fs_err::read_link(root.path().join(entry.path.trim_start_matches('/')))
                        .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(on_disk.to_string_lossy(), target.as_str(), "{}", entry.path);
            }
        }
    }
}
