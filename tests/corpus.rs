//! The Debian-fidelity corpus, compared with real dpkg: one cairn environment
//! (bookworm, Debian's own archive) holding every corpus package, and an
//! oracle rootfs built by `mmdebstrap --variant=apt` for the same packages,
//! where real dpkg ran the real maintainer scripts.
//!
//! Per corpus package, its main command runs in `cairn activate --` and in
//! `chroot ORACLE` (exit code and first line must match). Across the
//! environment: the `/etc/alternatives` links, the CA bundle bytes, the user
//! and group names (names only: cairn derives system ids from the name, dpkg
//! takes the next free one, so ids differ by design), `/var/lib/dpkg/status`
//! names and versions, and the installed set (cairn's lock vs the oracle's
//! dpkg database). At least 97% of the corpus packages must be identical
//! (command and version), and every other difference must be one of
//! `KNOWN_DIFFERENCES`, each printed with its reason, so a regression in the
//! configuration (a lost alternative, account or status entry) fails.
//!
//! The host's own CA certificates (`/usr/local/share/ca-certificates`), which
//! host activation adds to the environment's bundle, are added to the oracle
//! as a Debian administrator adds them (`update-ca-certificates`).
//!
//! Needs root (mmdebstrap's root mode, chroot), mmdebstrap and Debian's
//! archive: skipped locally without them, a failure under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use cairn_tests::corpus::{
    self, ALTERNATIVES_SCRIPT, CORPUS, CommandResult, CorpusEntry, Difference, LEFT_OUT,
};
use cairn_tests::images::{Engine, shared_cache_dir, shell_quote};
use cairn_tests::tools::in_ci;
use cairn_tests::{TestContext, require_tool, stdout_of};

const RELEASE: &str = "bookworm";

/// Lists the Java trust store ca-certificates-java keeps.
const KEYTOOL_LIST: &[&str] = &[
    "keytool",
    "-list",
    "-keystore",
    "/etc/ssl/certs/java/cacerts",
    "-storepass",
    "changeit",
];

/// The share of corpus packages that must agree with dpkg.
const REQUIRED_PASS_RATE: f64 = 0.97;

#[test]
fn corpus_matches_real_dpkg() {
    if !require_tool("mmdebstrap") || !is_root() {
        return;
    }
    if cairn_tests::reachable_real_archive().is_none() {
        return;
    }
    let started = Instant::now();
    let packages = corpus::corpus_packages();
    let oracle_dir = shared_cache_dir("corpus-oracle");
    let oracle = oracle_dir.join("rootfs");
    // The oracle and cairn's environment are independent and mostly wait on
    // the network and the disk: build them side by side.
    let debs = oracle_dir.join("debs");
    let (env, oracle_built) = std::thread::scope(|scope| {
        let oracle_build = scope.spawn(|| build_oracle_once(&packages, &oracle, &debs));
        let env = CairnEnv::locked(&packages, &shared_cache_dir("corpus"));
        eprintln!("cairn environment locked after {:.0?}", started.elapsed());
        match oracle_build.join() {
            Ok(built) => (env, built),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    // A cached oracle predates the archive's latest updates when the fresh
    // lock names newer versions of packages it has: build it again, so both
    // sides are the archive of today (a fresh oracle and lock, as in CI,
    // can only differ if an update lands between the two).
    if !oracle_built && older_than_lock(&oracle, &env.locked_versions()) {
        eprintln!("the cached oracle predates an archive update: building it again");
        remove_oracle(&oracle);
        build_oracle_once(&packages, &oracle, &debs);
    }
    // dpkg's chroot has no /proc; without it `ps` refuses to run and the
    // loader cannot resolve `$ORIGIN` (java's libjli.so). `cairn activate`
    // binds /proc, so the oracle gets one too.
    let _proc = ProcMount::new(&oracle.join("proc"));
    corpus::add_host_local_certificates(&oracle);
    eprintln!("oracle ready after {:.0?}", started.elapsed());
    let oracle_status = installed_in(&oracle);

    let locked = env.locked_versions();
    let in_image = env.run_in_image(CORPUS);
    eprintln!(
        "image built, loaded and run after {:.0?}",
        started.elapsed()
    );
    let mut commands = Category::new("corpus packages (command and version)");
    for (entry, image) in CORPUS.iter().zip(&in_image) {
        let ours = CommandResult::of(&env.run(entry.command));
        let theirs = CommandResult::of(&chroot_run(&oracle, entry.command));
        let mut reasons = Vec::new();
        for (place, result) in [("", &ours), (" in the image", image)] {
            if *result != theirs {
                reasons.push(format!(
                    "`{}`{place}: cairn exit {:?} '{}', dpkg exit {:?} '{}'",
                    entry.command.join(" "),
                    result.code,
                    result.first_line,
                    theirs.code,
                    theirs.first_line
                ));
            }
        }
        let versions = (locked.get(entry.package), oracle_status.get(entry.package));
        if versions.0 != versions.1 || versions.0.is_none() {
            reasons.push(format!(
                "version: cairn {:?}, dpkg {:?}",
                versions.0, versions.1
            ));
        }
        commands.check(entry.package, reasons.join("; "));
    }
    eprintln!("commands compared after {:.0?}", started.elapsed());

    let ours = env.facts();
    let theirs = Facts::read(|script| chroot_run(&oracle, &["sh", "-c", script]));
    let mut ca = Category::new("CA bundle");
    ca.check(
        "/etc/ssl/certs/ca-certificates.crt",
        if ours.ca_bundle_sha256 == theirs.ca_bundle_sha256 {
            String::new()
        } else {
            format!(
                "sha256 cairn {}, dpkg {}",
                ours.ca_bundle_sha256, theirs.ca_bundle_sha256
            )
        },
    );
    // ca-certificates-java's trust store: the real hook ran java, cairn wrote
    // it; each side's own keytool lists it (entry dates differ by design:
    // cairn's are 0, for reproducible bytes).
    let keystore = |out: Output| {
        assert!(out.status.success(), "keytool -list failed: {out:?}");
        corpus::keystore_entries(&stdout_of(&out))
    };
    let ours_keystore = keystore(env.run(KEYTOOL_LIST));
    let theirs_keystore = keystore(chroot_run(&oracle, KEYTOOL_LIST));
    let libraries = loader_check(&oracle, &env.rootfs());
    let categories = [
        commands,
        Category::of_maps(
            "Java trust store (alias: certificate)",
            &ours_keystore,
            &theirs_keystore,
        ),
        Category::of_maps("alternatives", &ours.alternatives, &theirs.alternatives),
        ca,
        libraries,
        Category::of_sets("user names", &ours.users, &theirs.users),
        Category::of_sets("group names", &ours.groups, &theirs.groups),
        Category::of_maps("/var/lib/dpkg/status", &ours.status, &theirs.status),
        Category::of_maps("installed set (lock vs dpkg)", &locked, &theirs.status),
    ];

    eprintln!(
        "corpus: {} packages, {} installed by dpkg, {:.0?}",
        CORPUS.len(),
        theirs.status.len(),
        started.elapsed()
    );
    for (package, reason) in LEFT_OUT {
        eprintln!("  left out: {package}: {reason}");
    }
    for category in &categories {
        category.print();
    }
    let (passed, total) = categories
        .iter()
        .fold((0, 0), |(p, t), c| (p + c.passed(), t + c.total));
    let overall = passed as f64 / total as f64;
    let packages_rate = categories[0].rate();
    eprintln!(
        "overall: {passed}/{total} checks identical to dpkg ({:.1}%); corpus packages {:.1}%",
        overall * 100.0,
        packages_rate * 100.0
    );
    let unknown: Vec<&Difference> = categories
        .iter()
        .flat_map(|c| &c.differences)
        .filter(|d| corpus::known_reason(d).is_none())
        .collect();
    assert!(
        packages_rate >= REQUIRED_PASS_RATE,
        "only {:.1}% of the corpus packages match real dpkg (need {:.0}%)",
        packages_rate * 100.0,
        REQUIRED_PASS_RATE * 100.0
    );
    assert!(
        unknown.is_empty(),
        "{} differences from dpkg that are not in KNOWN_DIFFERENCES: {unknown:#?}",
        unknown.len()
    );
}

/// The proof that environments need no `/etc/ld.so.cache` (cairn builds
/// none): every library the oracle's cache lists (ldconfig ran there, from
/// libc-bin's trigger) is found by ld.so's search without a cache, in a
/// directory of its system search path as the oracle's own `ld.so --help`
/// gives it, and exists at that path in cairn's rootfs (which the image's
/// layers hold too).
fn loader_check(oracle: &Path, rootfs: &Path) -> Category {
    let listing = chroot_run(oracle, &["ldconfig", "-p"]);
    assert!(
        listing.status.success(),
        "ldconfig -p in the oracle: {listing:?}"
    );
    let entries = corpus::ld_cache_entries(&stdout_of(&listing));
    assert!(
        entries.len() > 100,
        "the oracle's ld.so.cache lists {} libraries",
        entries.len()
    );
    let help = chroot_run(oracle, &["/lib64/ld-linux-x86-64.so.2", "--help"]);
    let system = corpus::system_search_path(&stdout_of(&help));
    assert!(
        !system.is_empty(),
        "no system search path in `ld.so --help`: {help:?}"
    );
    let paths: Vec<&str> = entries.iter().map(|(_, p)| p.as_str()).collect();
    let missing = chroot_run(rootfs, &["sh", "-c", &corpus::missing_paths_script(&paths)]);
    let missing: BTreeSet<String> = stdout_of(&missing).lines().map(str::to_owned).collect();
    let mut category = Category::new("libraries in dpkg's ld.so.cache, found without one");
    for (name, path) in &entries {
        let mut reasons = Vec::new();
        if !corpus::found_without_cache(path, &system) {
            reasons.push(format!("{path} is outside ld.so's system search path"));
        }
        if missing.contains(path) {
            reasons.push(format!("{path} is missing from cairn's rootfs"));
        }
        category.check(name, reasons.join("; "));
    }
    category
}

/// Marks the sections of the image's combined output.
const MARK: &str = "@@cairn-corpus@@";

/// The per-command results in `text`, the output of the script that
/// [`CairnEnv::run_in_image`] runs: for command `i`, a `MARK i out` line, its
/// stdout, a `MARK i err` line, its stderr, then `MARK i code N`. A command
/// whose code line is missing ends the list.
fn parse_marked(text: &str, count: usize) -> Vec<CommandResult> {
    use std::os::unix::process::ExitStatusExt;
    let mut results = Vec::with_capacity(count);
    let mut streams = [String::new(), String::new()];
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(MARK) else {
            if let Some(stream) = current {
                streams[stream].push_str(line);
                streams[stream].push('\n');
            }
            continue;
        };
        let mut words = rest.split_whitespace().skip(1);
        match (words.next(), words.next()) {
            (Some("out"), _) => current = Some(0),
            (Some("err"), _) => current = Some(1),
            (Some("code"), Some(code)) => {
                let code: i32 = code.parse().unwrap_or(-1);
                let [stdout, stderr] = std::mem::take(&mut streams);
                results.push(CommandResult::of(&Output {
                    status: std::process::ExitStatus::from_raw((code & 0xff) << 8),
                    stdout: stdout.into_bytes(),
                    stderr: stderr.into_bytes(),
                }));
                current = None;
            }
            _ => panic!("a corpus marker line that is not ours: {line}"),
        }
    }
    results
}

/// `/proc` mounted on a directory until dropped.
struct ProcMount(PathBuf);

impl ProcMount {
    fn new(target: &Path) -> ProcMount {
        fs_err::create_dir_all(target).expect("create the oracle's /proc");
        cairn_tests::tools::run_checked(
            Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(target),
        );
        ProcMount(target.to_owned())
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// One kind of check: how many items it covers and which of them differ.
struct Category {
    name: &'static str,
    total: usize,
    differences: Vec<Difference>,
}

impl Category {
    fn new(name: &'static str) -> Category {
        Category {
            name,
            total: 0,
            differences: Vec::new(),
        }
    }

    /// Counts `item`; an empty `reason` means it is identical.
    fn check(&mut self, item: &str, reason: String) {
        self.total += 1;
        if !reason.is_empty() {
            self.differences.push(Difference {
                item: item.to_owned(),
                reason,
            });
        }
    }

    /// One item per key of either map.
    fn of_maps(
        name: &'static str,
        ours: &BTreeMap<String, String>,
        theirs: &BTreeMap<String, String>,
    ) -> Category {
        let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        Category {
            name,
            total: keys.len(),
            differences: corpus::map_differences(name, ours, theirs),
        }
    }

    /// One item per name of either set.
    fn of_sets(name: &'static str, ours: &BTreeSet<String>, theirs: &BTreeSet<String>) -> Category {
        let as_map = |set: &BTreeSet<String>| {
            set.iter()
                .map(|n| (n.clone(), "present".to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        Category::of_maps(name, &as_map(ours), &as_map(theirs))
    }

    fn passed(&self) -> usize {
        self.total - self.differences.len()
    }

    fn rate(&self) -> f64 {
        self.passed() as f64 / self.total.max(1) as f64
    }

    fn print(&self) {
        eprintln!(
            "{}: {}/{} identical ({:.1}%)",
            self.name,
            self.passed(),
            self.total,
            self.rate() * 100.0
        );
        for difference in &self.differences {
            let known = corpus::known_reason(difference)
                .map_or_else(|| "NOT KNOWN".to_owned(), |r| format!("known: {r}"));
            eprintln!(
                "  differs: {}: {} [{known}]",
                difference.item, difference.reason
            );
        }
    }
}

fn is_root() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        if in_ci() {
            panic!("the corpus test builds its oracle with mmdebstrap and chroot: run it as root");
        }
        eprintln!("skipping: the corpus test needs root (mmdebstrap, chroot)");
    }
    root
}

/// Builds the oracle unless a complete one (its marker written last) for the
/// same package list is already there: the oracle depends only on the list
/// and the archive, and mmdebstrap takes minutes. True if it built one.
fn build_oracle_once(packages: &[&str], oracle: &Path, debs: &Path) -> bool {
    let marker = oracle.with_extension("packages");
    let wanted = packages.join("\n");
    if oracle.is_dir() && fs_err::read_to_string(&marker).is_ok_and(|text| text == wanted) {
        return false;
    }
    let _ = fs_err::remove_file(&marker);
    if oracle.exists() {
        remove_oracle(oracle);
    }
    corpus::build_oracle(RELEASE, packages, oracle, debs);
    fs_err::write(&marker, wanted).expect("write the oracle marker");
    true
}

/// Removes an oracle rootfs, first unmounting any `/proc` a killed run left
/// on it: removing through a mounted /proc would walk the host's processes.
fn remove_oracle(oracle: &Path) {
    let proc = oracle.join("proc");
    // Mounts stack: one per run that was killed before its guard unmounted.
    while Command::new("umount")
        .arg("-l")
        .arg(&proc)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {}
    fs_err::remove_dir_all(oracle).expect("remove the oracle");
}

/// Whether a package in the oracle has another version than the lock gives
/// it (an archive update since the oracle was built).
fn older_than_lock(oracle: &Path, locked: &BTreeMap<String, String>) -> bool {
    installed_in(oracle)
        .iter()
        .any(|(name, version)| locked.get(name).is_some_and(|v| v != version))
}

/// `Package` → `Version` of what real dpkg installed in the oracle.
fn installed_in(oracle: &Path) -> BTreeMap<String, String> {
    let status = fs_err::read_to_string(oracle.join("var/lib/dpkg/status"))
        .expect("the oracle's dpkg status");
    corpus::installed_from_status(&status)
}

/// `chroot ORACLE ARGV...` with a clean, Debian-like environment.
fn chroot_run(oracle: &Path, argv: &[&str]) -> Output {
    let mut cmd = Command::new("chroot");
    cmd.arg(oracle).args(argv);
    run_plain(&mut cmd)
}

/// Runs `cmd` with no stdin and a minimal environment (so both sides see the
/// same variables) and returns what it did.
fn run_plain(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C.UTF-8")
        .env_remove("TZ")
        .env_remove("LANG");
    cairn_tests::context::run_with_timeout(cmd)
}

/// The cairn environment of the corpus: a test context whose cache is kept
/// between runs (the `.deb`s and the assembled rootfs are the slow part).
struct CairnEnv {
    ctx: TestContext,
    cache: PathBuf,
}

impl CairnEnv {
    /// A manifest for `release` installing `packages`, locked with `cairn
    /// upgrade`. The manifest is written rather than `cairn install`ed
    /// because `cairn install g++` writes the id `"g++"`, which the manifest
    /// then rejects (install ids allow only letters, digits and `. _ -`);
    /// ids are quoted so `lua5.4` is one key, not a dotted one.
    fn locked(packages: &[&str], cache: &Path) -> CairnEnv {
        fs_err::create_dir_all(cache).expect("create the corpus cache");
        let env = CairnEnv {
            ctx: TestContext::new(),
            cache: cache.to_owned(),
        };
        let installs: String = packages
            .iter()
            .map(|p| format!("\"{}\".pkg = \"{p}\"\n", p.replace('+', "p")))
            .collect();
        let manifest = env.ctx.manifest_path();
        fs_err::create_dir_all(manifest.parent().expect("manifest dir")).expect("create env dir");
        fs_err::write(
            &manifest,
            format!("version = 1\nrelease = \"{RELEASE}\"\n\n[install]\n{installs}"),
        )
        .expect("write manifest.toml");
        env.cairn_ok(&["upgrade"]);
        env
    }

    fn cairn(&self) -> Command {
        let mut cmd = self.ctx.cairn();
        cmd.env("CAIRN_CACHE_DIR", &self.cache);
        cmd
    }

    fn cairn_ok(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_success(self.cairn().args(args))
    }

    /// `cairn activate -- ARGV...`, whatever its exit code.
    fn run(&self, argv: &[&str]) -> Output {
        let mut cmd = self.cairn();
        // Run mode: the environment alone is what is compared with the oracle.
        cmd.args(["activate", "--mode", "run", "--"]).args(argv);
        run_plain(&mut cmd)
    }

    /// Each entry's command run in the environment's image under Docker, as
    /// `docker run IMAGE CMD` runs it (through the image's entrypoint: the
    /// activation). One container runs them all in turn, each with no stdin
    /// and its stdout and stderr kept apart: a container start per command
    /// would cost minutes on this corpus.
    fn run_in_image(&self, entries: &[CorpusEntry]) -> Vec<CommandResult> {
        if !Engine::Docker.ready() {
            panic!("the corpus runs its commands in the image too: Docker must answer");
        }
        let archive = self.ctx.work.join("corpus-image.tar");
        let archive_text = archive.to_string_lossy();
        self.cairn_ok(&["containerize", "-f", &archive_text, "--tag", "corpus"]);
        let image = Engine::Docker.load_file(&archive);
        let _ = fs_err::remove_file(&archive);
        let mut script = String::from("d=$(mktemp -d) || exit 90\n");
        for (i, entry) in entries.iter().enumerate() {
            let command: Vec<String> = entry.command.iter().map(|w| shell_quote(w)).collect();
            script.push_str(&format!(
                "{} </dev/null >\"$d/o\" 2>\"$d/e\"; c=$?\n\
                 printf '\\n{MARK} {i} out\\n'; cat \"$d/o\"\n\
                 printf '\\n{MARK} {i} err\\n'; cat \"$d/e\"\n\
                 printf '\\n{MARK} {i} code %s\\n' \"$c\"\n",
                command.join(" ")
            ));
        }
        let reference = image.reference.clone();
        let out = run_plain(&mut Engine::Docker.command(&[
            "run",
            "--rm",
            "-e",
            "LC_ALL=C.UTF-8",
            &reference,
            "sh",
            "-c",
            &script,
        ]));
        let results = parse_marked(&stdout_of(&out), entries.len());
        assert_eq!(
            results.len(),
            entries.len(),
            "the image ran {} of {} corpus commands: {out:?}",
            results.len(),
            entries.len()
        );
        results
    }

    /// What the environment's assembled rootfs holds. Read from the rootfs
    /// itself (chroot) rather than through `cairn activate`, which binds the
    /// host's `/etc/passwd` and `/etc/group` over the configured ones so the
    /// invoking user resolves as on the host.
    fn facts(&self) -> Facts {
        let rootfs = self.rootfs();
        Facts::read(|script| chroot_run(&rootfs, &["sh", "-c", script]))
    }

    /// The rootfs `cairn activate` runs in: the entry of the cache's rootfs
    /// bucket whose inode is that of `/` inside the activation (a bind mount
    /// keeps the inode), so an older rootfs in the shared cache is never
    /// mistaken for it.
    fn rootfs(&self) -> PathBuf {
        let out = self.run(&["stat", "-c", "%i", "/"]);
        let inode: u64 = stdout_of(&out)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("`stat /` in the activation: {e}: {out:?}"));
        let bucket = self.cache.join("rootfs-v1");
        fs_err::read_dir(&bucket)
            .expect("read the rootfs bucket")
            .filter_map(Result::ok)
            .find(|e| e.metadata().is_ok_and(|m| m.ino() == inode))
            .map(|e| e.path())
            .unwrap_or_else(|| panic!("no rootfs with inode {inode} in {}", bucket.display()))
    }

    /// `name` → `version` of every locked package.
    fn locked_versions(&self) -> BTreeMap<String, String> {
        let out = self.cairn_ok(&["list", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("`cairn list --json`: {e}\n{}", stdout_of(&out)));
        rows.iter()
            .filter_map(|row| {
                Some((
                    row["name"].as_str()?.to_owned(),
                    row["version"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }
}

/// The environment-wide configuration both sides are compared on.
struct Facts {
    alternatives: BTreeMap<String, String>,
    ca_bundle_sha256: String,
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
    status: BTreeMap<String, String>,
}

impl Facts {
    /// Reads the facts by running shell scripts through `run` (inside the
    /// environment or the oracle, so paths are the ones a user sees).
    fn read(run: impl Fn(&str) -> Output) -> Facts {
        let text = |script: &str| {
            let output = run(script);
            assert!(
                output.status.success(),
                "`sh -c {script}` failed: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            stdout_of(&output)
        };
        Facts {
            alternatives: corpus::alternatives_from_listing(&text(ALTERNATIVES_SCRIPT)),
            ca_bundle_sha256: text("sha256sum /etc/ssl/certs/ca-certificates.crt")
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            users: corpus::account_names(&text("cat /etc/passwd")),
            groups: corpus::account_names(&text("cat /etc/group")),
            status: corpus::installed_from_status(&text("cat /var/lib/dpkg/status")),
        }
    }
}
