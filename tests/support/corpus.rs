//! The Debian-fidelity corpus: the packages the differential test installs,
//! the command that shows each one works, the oracle rootfs built by real
//! dpkg (mmdebstrap), and the pure comparisons between what cairn gives and
//! what the oracle gives.
//!
//! It owns the corpus table and the parsing of the facts both sides report
//! (`/var/lib/dpkg/status`, `passwd`/`group`, alternatives listings). It does
//! not run cairn; `tests/corpus.rs` does, and feeds the facts in here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Debian's own mirror, as `cairn init --release` uses it without `[sources]`.
pub const DEBIAN: &str = "http://deb.debian.org/debian";

/// One corpus package and the command that proves it works.
#[derive(Debug, Clone, Copy)]
pub struct CorpusEntry {
    /// The Debian package installed on both sides.
    pub package: &'static str,
    /// Its main command, run in `cairn activate` and in `chroot ORACLE`.
    pub command: &'static [&'static str],
}

const fn entry(package: &'static str, command: &'static [&'static str]) -> CorpusEntry {
    CorpusEntry { package, command }
}

/// The corpus: the list (minus what is left out, see
/// [`LEFT_OUT`]) and more of different kinds. Commands that go through an
/// alternative (`vi`, `cc`, `awk`, `java`, `nc`, `pager`) test it on purpose.
pub const CORPUS: &[CorpusEntry] = &[
    entry("curl", &["curl", "--version"]),
    entry("wget", &["wget", "--version"]),
    entry("git", &["git", "--version"]),
    entry("openssh-client", &["ssh", "-V"]),
    entry("rsync", &["rsync", "--version"]),
    entry("jq", &["jq", "--version"]),
    entry("mawk", &["mawk", "-W", "version"]),
    entry("gawk", &["awk", "--version"]),
    entry("vim-tiny", &["vi", "--version"]),
    entry("nano", &["nano", "--version"]),
    entry("less", &["pager", "--version"]),
    entry("netcat-openbsd", &["nc", "-h"]),
    entry("iproute2", &["ip", "-V"]),
    entry("procps", &["ps", "--version"]),
    entry("lsof", &["lsof", "-v"]),
    entry("strace", &["strace", "-V"]),
    // libfakeroot lives outside ld.so's system search path: the one library
    // of the corpus only an ld.so.cache would find (see KNOWN_DIFFERENCES).
    entry("fakeroot", &["fakeroot", "id", "-u"]),
    entry("gcc", &["cc", "--version"]),
    entry("g++", &["c++", "--version"]),
    entry("make", &["make", "--version"]),
    entry("cmake", &["cmake", "--version"]),
    entry("pkgconf", &["pkg-config", "--version"]),
    entry("python3", &["python3", "--version"]),
    entry("python3-pip", &["pip3", "--version"]),
    entry(
        "python3-venv",
        &["python3", "-c", "import ensurepip, venv; print('venv ok')"],
    ),
    entry(
        "python3-numpy",
        &[
            "python3",
            "-c",
            "import numpy; print(numpy.__version__, numpy.ones(3).sum())",
        ],
    ),
    entry("nodejs", &["node", "--version"]),
    entry("npm", &["npm", "--version"]),
    entry("openjdk-17-jre-headless", &["java", "-version"]),
    entry("ruby", &["ruby", "--version"]),
    entry("perl", &["perl", "-e", "print qq($^V\\n)"]),
    entry("php-cli", &["php", "--version"]),
    entry("lua5.4", &["lua5.4", "-v"]),
    entry("postgresql-client", &["psql", "--version"]),
    entry("redis-server", &["redis-server", "--version"]),
    entry("sqlite3", &["sqlite3", "--version"]),
    entry("nginx", &["nginx", "-v"]),
    entry("openssl", &["openssl", "version"]),
    entry("gnupg", &["gpg", "--version"]),
    entry("graphviz", &["dot", "-V"]),
    entry(
        "tzdata",
        &["env", "TZ=Europe/Paris", "date", "-u", "-d", "@0", "+%Z"],
    ),
    entry(
        "ca-certificates",
        &["sh", "-c", "ls /etc/ssl/certs/*.pem | wc -l"],
    ),
    entry("file", &["file", "--version"]),
    entry("zip", &["zip", "-v"]),
    entry("unzip", &["unzip", "-v"]),
    entry("xz-utils", &["xz", "--version"]),
    entry("bzip2", &["bzip2", "--help"]),
    entry("zstd", &["zstd", "--version"]),
    entry("patch", &["patch", "--version"]),
    entry("bc", &["sh", "-c", "echo '2^64' | bc"]),
    entry("htop", &["htop", "--version"]),
    entry("tmux", &["tmux", "-V"]),
    entry("socat", &["socat", "-V"]),
    entry("bind9-dnsutils", &["dig", "-v"]),
    entry("iputils-ping", &["ping", "-V"]),
    entry("tcpdump", &["tcpdump", "--version"]),
    entry("sudo", &["sudo", "--version"]),
    entry("gdb", &["gdb", "--version"]),
    entry("autoconf", &["autoconf", "--version"]),
    entry("automake", &["automake", "--version"]),
    entry("libtool", &["libtoolize", "--version"]),
    entry("ninja-build", &["ninja", "--version"]),
    entry("meson", &["meson", "--version"]),
    entry("mercurial", &["hg", "--version"]),
    entry("subversion", &["svn", "--version"]),
    entry("busybox", &["busybox", "echo", "busybox ok"]),
    entry("ed", &["ed", "--version"]),
    entry("tree", &["tree", "--version"]),
    entry("cpio", &["cpio", "--version"]),
    entry("pv", &["pv", "--version"]),
    entry("lz4", &["lz4", "-V"]),
    entry("pigz", &["pigz", "--version"]),
    entry("time", &["/usr/bin/time", "--version"]),
    entry("whois", &["whois", "--version"]),
    entry("mariadb-client", &["mariadb", "--version"]),
    entry("apache2-utils", &["ab", "-V"]),
    entry("xmlstarlet", &["xmlstarlet", "--version"]),
    entry("shellcheck", &["shellcheck", "--version"]),
    // What mmdebstrap --variant=apt installs on top of Essential; cairn
    // installs it too so both sides hold the same package set.
    entry("apt", &["apt-get", "--version"]),
];

/// Packages of the list left out of the corpus, with the reason.
pub const LEFT_OUT: &[(&str, &str)] = &[
    ("python3-scipy", "~60 MB more for CI, same kind as numpy"),
    ("maven", "~40 MB of Java jars, same kind as openjdk"),
    (
        "postgresql",
        "server cluster creation (pg_createcluster) is a runtime step, too big for the CI budget",
    ),
    (
        "apache2",
        "same kind as nginx; its postinst enables modules with a2enmod (not applied by cairn)",
    ),
    (
        "imagemagick",
        "~100 MB with Recommends, beyond the CI budget",
    ),
    ("ffmpeg", "~300 MB with Recommends, beyond the CI budget"),
];

/// Differences from dpkg that are understood, each as (a substring of
/// `item: reason`, the reason). The test prints them and fails on any other.
pub const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "`sh -c ls /etc/ssl/certs/*.pem | wc -l` in the image",
        "by design an image never takes the build host's CAs (only \
         copy-to-root puts local ones in); the oracle has the host's \
         /usr/local/share/ca-certificates, as host activation does (identical \
         when the host has none)",
    ),
    (
        "sudo: `sudo --version`: cairn exit Some(1)",
        "host activation runs in a user namespace that maps only the caller's uid; \
         sudo's setresuid(-1, 1, -1) fails with EINVAL (it works in images)",
    ),
    (
        "x-terminal-emulator",
        "resolver: libfile-desktopentry-perl Recommends the virtual \
         x-terminal-emulator; apt picks zutty, cairn alacritty",
    ),
    (
        "alacritty:",
        "resolver: the x-terminal-emulator provider cairn picks",
    ),
    (
        "zutty:",
        "resolver: the x-terminal-emulator provider apt picks",
    ),
    (
        "libegl",
        "resolver: zutty's dependencies (apt's x-terminal-emulator)",
    ),
    ("libgbm1:", "resolver: zutty's dependencies"),
    (
        "libgbm.so.1 (",
        "resolver: zutty's dependencies (a library only the oracle has)",
    ),
    (
        "libGLESv2.so.2 (",
        "resolver: zutty's dependencies (a library only the oracle has)",
    ),
    (
        "libEGL",
        "resolver: zutty's dependencies (a library only the oracle has)",
    ),
    (
        "libfakeroot-0.so (libc6,x86-64): /usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-0.so is outside",
        "fakeroot's own script puts its library directory in LD_LIBRARY_PATH \
         and preloads libfakeroot from there; nothing links it, so no cache is \
         needed (the corpus runs `fakeroot id -u` everywhere; `cairn show \
         libfakeroot` names the directory)",
    ),
    ("libgles2:", "resolver: zutty's dependencies"),
    ("libwayland-", "resolver: zutty's dependencies"),
    (
        "usr-is-merged:",
        "resolver: init-system-helpers Depends `usrmerge | usr-is-merged`; cairn \
         takes usr-is-merged (the layout is merged already), apt the first",
    ),
    (
        "usrmerge:",
        "resolver: apt's first alternative, see usr-is-merged",
    ),
    (
        "libfile-find-rule-perl:",
        "resolver: a Recommends of usrmerge",
    ),
    (
        "libnumber-compare-perl:",
        "resolver: via libfile-find-rule-perl (usrmerge)",
    ),
    (
        "libtext-glob-perl:",
        "resolver: via libfile-find-rule-perl (usrmerge)",
    ),
    (
        "bash-completion:",
        "resolver: bash (Essential) Recommends it; cairn does not follow the \
         Essential set's Recommends, apt does when it installs them",
    ),
    (
        "bsdextrautils:",
        "resolver: bsdutils (Essential) Recommends it, as for bash-completion",
    ),
];

/// The reason a difference is known, if it is.
pub fn known_reason(difference: &Difference) -> Option<&'static str> {
    let text = format!("{}: {}", difference.item, difference.reason);
    KNOWN_DIFFERENCES
        .iter()
        .find(|(pattern, _)| text.contains(pattern))
        .map(|(_, reason)| *reason)
}

/// The corpus package names in table order.
pub fn corpus_packages() -> Vec<&'static str> {
    CORPUS.iter().map(|e| e.package).collect()
}

/// Builds the oracle: `mmdebstrap --variant=apt --include=PACKAGES` for
/// `release` (Recommends on, as apt-get install does), with the release's `-updates` and `-security` suites
/// as cairn resolves them, into `dir`. Downloaded `.deb`s are kept in
/// `deb_cache` across runs (mmdebstrap's documented sync-in/sync-out hooks),
/// so a second run downloads nothing.
pub fn build_oracle(release: &str, packages: &[&str], dir: &Path, deb_cache: &Path) {
    fs_err::create_dir_all(deb_cache).expect("create the oracle's .deb cache");
    let cache = deb_cache.display();
    let mut cmd = Command::new("mmdebstrap");
    // mmdebstrap leaves Recommends out unless told; `apt-get install`, and
    // cairn, follow them.
    cmd.args(["--variant=apt", "--mode=root", "--skip=essential/unlink"])
        .arg("--aptopt=Apt::Install-Recommends \"true\"")
        .arg(format!("--include={}", packages.join(",")))
        .arg("--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/")
        .arg(format!(
            "--setup-hook=sync-in {cache} /var/cache/apt/archives/"
        ))
        .arg(format!(
            "--customize-hook=sync-out /var/cache/apt/archives {cache}"
        ))
        .arg(release)
        .arg(dir)
        .arg(format!("deb {} {release} main", DEBIAN))
        .arg(format!("deb {} {release}-updates main", DEBIAN))
        .arg(format!("deb {}-security {release}-security main", DEBIAN));
    crate::tools::run_checked(&mut cmd);
}

/// Gives the oracle the host's own CA certificates the way an administrator
/// adds them on Debian: copied under `/usr/local/share/ca-certificates`, then
/// `update-ca-certificates` (with its hooks: ca-certificates-java's keystore).
/// cairn's host activation adds the host's, so both CA bundles are built from
/// the same certificates. Idempotent: the directory is replaced on each run,
/// and certificates the host no longer has are dropped from the bundle. Needs
/// the oracle's `/proc` (the Java hook runs java).
pub fn add_host_local_certificates(oracle: &Path) {
    let host = Path::new(HOST_LOCAL_CERTIFICATES);
    let target = oracle.join(HOST_LOCAL_CERTIFICATES.trim_start_matches('/'));
    if target.exists() {
        fs_err::remove_dir_all(&target).expect("clear the oracle's local certificates");
    }
    fs_err::create_dir_all(&target).expect("create the oracle's local certificates");
    if host.is_dir() {
        crate::tools::run_checked(
            Command::new("cp")
                .arg("-a")
                .arg(host.join("."))
                .arg(&target),
        );
    }
    crate::tools::run_checked(
        Command::new("chroot")
            .arg(oracle)
            .arg("update-ca-certificates")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    );
}

/// Where a Debian host keeps the CA certificates its administrator added.
const HOST_LOCAL_CERTIFICATES: &str = "/usr/local/share/ca-certificates";

/// Alias → SHA-256 fingerprint of each entry `keytool -list` prints:
/// `ALIAS, DATE, trustedCertEntry,` then `Certificate fingerprint (SHA-256): …`.
pub fn keystore_entries(listing: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut alias = None;
    for line in listing.lines() {
        if line.trim_end().ends_with(", trustedCertEntry,") {
            alias = line.split(", ").next().map(str::to_owned);
        } else if let Some(fingerprint) = line.strip_prefix("Certificate fingerprint (SHA-256): ")
            && let Some(alias) = alias.take()
        {
            entries.insert(alias, fingerprint.trim().to_owned());
        }
    }
    entries
}

/// What one run of a command showed: its exit code and first non-empty line
/// (stdout first, stderr when stdout is empty: `java -version` and `ssh -V`
/// print there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub code: Option<i32>,
    pub first_line: String,
}

impl CommandResult {
    /// From a finished process.
    pub fn of(output: &std::process::Output) -> CommandResult {
        let first = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        };
        CommandResult {
            code: output.status.code(),
            first_line: first(&output.stdout)
                .or_else(|| first(&output.stderr))
                .unwrap_or_default(),
        }
    }
}

/// `Package` → `Version` of every stanza in a `/var/lib/dpkg/status` text
/// whose `Status` ends in `installed`.
pub fn installed_from_status(text: &str) -> BTreeMap<String, String> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    (key == name).then(|| value.trim().to_owned())
                })
            };
            let status = field("Status")?;
            status
                .ends_with(" installed")
                .then_some((field("Package")?, field("Version")?))
        })
        .collect()
}

/// The names (first field) of a `passwd` or `group` file.
pub fn account_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.split(':').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `NAME TARGET` lines (as `alternatives_script` prints them) into a map.
pub fn alternatives_from_listing(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, target)| (name.to_owned(), target.to_owned()))
        .collect()
}

/// A shell script printing `NAME TARGET` for every `/etc/alternatives` link.
pub const ALTERNATIVES_SCRIPT: &str = "for f in /etc/alternatives/*; do \
     [ -L \"$f\" ] && printf '%s %s\\n' \"${f##*/}\" \"$(readlink \"$f\")\"; done; true";

/// `ldconfig -p`'s entries (after its `N libs found` line) as
/// (`SONAME (FLAGS)`, path).
pub fn ld_cache_entries(listing: &str) -> Vec<(String, String)> {
    listing
        .lines()
        .filter_map(|line| line.split_once(" => "))
        .map(|(name, path)| (name.trim().to_owned(), path.trim().to_owned()))
        .collect()
}

/// The directories `ld.so --help` lists as its "system search path": the
/// ones it searches without `/etc/ld.so.cache`.
pub fn system_search_path(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|line| line.trim().strip_suffix("(system search path)"))
        .map(|dir| dir.trim().trim_end_matches('/').to_owned())
        .collect()
}

/// Whether ld.so finds `path` (from an `ldconfig -p` entry) by searching
/// `system` without a cache: its directory is one of them, or a
/// `glibc-hwcaps` subdirectory of one (searched the same way).
pub fn found_without_cache(path: &str, system: &BTreeSet<String>) -> bool {
    let Some((dir, _)) = path.rsplit_once('/') else {
        return false;
    };
    let dir = match dir.rsplit_once("/glibc-hwcaps/") {
        Some((base, _)) => base,
        None => dir,
    };
    system.contains(dir)
}

/// A shell script that prints each of `paths` that does not exist.
pub fn missing_paths_script(paths: &[&str]) -> String {
    let mut script = String::from("for p in");
    for path in paths {
        script.push(' ');
        script.push_str(&crate::images::shell_quote(path));
    }
    script.push_str("; do [ -e \"$p\" ] || printf '%s\\n' \"$p\"; done; true");
    script
}

/// One difference between cairn and the oracle, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The package or check (`alternative awk`, `users`, …).
    pub item: String,
    pub reason: String,
}

/// The differences between two maps, one per key that differs: missing on
/// either side or with another value. `what` names the kind of item.
pub fn map_differences(
    what: &str,
    cairn: &BTreeMap<String, String>,
    oracle: &BTreeMap<String, String>,
) -> Vec<Difference> {
    let keys: BTreeSet<&String> = cairn.keys().chain(oracle.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let reason = match (cairn.get(key), oracle.get(key)) {
                (Some(a), Some(b)) if a == b => return None,
                (Some(a), Some(b)) => format!("cairn {a}, dpkg {b}"),
                (Some(a), None) => format!("only in cairn ({a})"),
                (None, Some(b)) => format!("only in dpkg ({b})"),
                (None, None) => return None,
            };
            Some(Difference {
                item: format!("{what} {key}"),
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_loaders_own_search_path_decides_what_needs_a_cache() {
        let help = "Shared library search path:\n  (libraries located via /etc/ld.so.cache)\n  /lib/x86_64-linux-gnu (system search path)\n  /usr/lib/x86_64-linux-gnu (system search path)\n  /lib (system search path)\n  /usr/lib (system search path)\n\nSubdirectories of glibc-hwcaps directories, in priority order:\n  x86-64-v4\n";
        let system = super::system_search_path(help);
        assert_eq!(system.len(), 4);
        let listing = "1510 libs found in cache `/etc/ld.so.cache'\n\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n\tlibfakeroot-0.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-0.so\n\tlibx.so.2 (libc6,x86-64, hwcap: x86-64-v3) => /usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libx.so.2\n";
        let entries = super::ld_cache_entries(listing);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].0, "libz.so.1 (libc6,x86-64)");
        let found: Vec<bool> = entries
            .iter()
            .map(|(_, p)| super::found_without_cache(p, &system))
            .collect();
        assert_eq!(found, [true, false, true]);
        let script = super::missing_paths_script(&["/a b", "/c"]);
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/a b\n/c\n");
    }

    use super::*;

    #[test]
    fn status_keeps_installed_packages_only() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1.0\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\n\
                    Package: c\nVersion: 3:1.2-1\nStatus: install ok installed\nDescription: x\n y: z\n";
        let got = installed_from_status(text);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [("a".into(), "1.0".into()), ("c".into(), "3:1.2-1".into())]
        );
    }

    #[test]
    fn keystore_entries_pair_each_alias_with_its_fingerprint() {
        let listing = "Keystore type: JKS\nKeystore provider: SUN\n\n\
                       Your keystore contains 2 entries\n\n\
                       debian:a.pem, Jan 1, 1970, trustedCertEntry, \n\
                       Certificate fingerprint (SHA-256): AA:BB\n\
                       debian:b_=c=.pem, Jun 24, 2025, trustedCertEntry,\n\
                       Certificate fingerprint (SHA-256): CC:DD\n";
        let got = keystore_entries(listing);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [
                ("debian:a.pem".into(), "AA:BB".into()),
                ("debian:b_=c=.pem".into(), "CC:DD".into())
            ]
        );
    }

    #[test]
    fn account_names_are_the_first_field() {
        let names = account_names(
            "root:x:0:0:root:/root:/bin/bash\nredis:x:100:101::/var/lib/redis:/usr/sbin/nologin\n",
        );
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["redis", "root"]);
    }

    #[test]
    fn map_differences_name_each_side() {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let diffs = map_differences(
            "alternative",
            &map(&[
                ("awk", "/usr/bin/gawk"),
                ("vi", "/usr/bin/vim.tiny"),
                ("cc", "x"),
            ]),
            &map(&[
                ("awk", "/usr/bin/gawk"),
                ("vi", "/usr/bin/busybox"),
                ("nc", "y"),
            ]),
        );
        assert_eq!(
            diffs,
            [
                Difference {
                    item: "alternative cc".into(),
                    reason: "only in cairn (x)".into()
                },
                Difference {
                    item: "alternative nc".into(),
                    reason: "only in dpkg (y)".into()
                },
                Difference {
                    item: "alternative vi".into(),
                    reason: "cairn /usr/bin/vim.tiny, dpkg /usr/bin/busybox".into()
                },
            ]
        );
    }

    #[test]
    fn first_line_falls_back_to_stderr() {
        use std::os::unix::process::ExitStatusExt;
        let output = std::process::Output {
            status: std::process::ExitStatus::from_raw(0),
            stdout: b"\n".to_vec(),
            stderr: b"\nopenjdk version \"17\"\nmore\n".to_vec(),
        };
        assert_eq!(
            CommandResult::of(&output),
            CommandResult {
                code: Some(0),
                first_line: "openjdk version \"17\"".into()
            }
        );
    }

    #[test]
    fn corpus_is_large_and_unique() {
        let names = corpus_packages();
        assert!(names.len() >= 60, "{}", names.len());
        let unique: BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
