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
//! Needs root (mmdebstrap's root mode, chroot), mmdebstrap and Debian's
//! archive: skipped locally without them, a failure under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use cairn_tests::corpus::{self, ALTERNATIVES_SCRIPT, CORPUS, CommandResult, Difference, LEFT_OUT};
use cairn_tests::images::shared_cache_dir;
use cairn_tests::tools::in_ci;
use cairn_tests::{TestContext, require_tool, stdout_of};

const RELEASE: &str = "bookworm";

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
    let env = std::thread::scope(|scope| {
        let oracle_build =
            scope.spawn(|| build_oracle_once(&packages, &oracle, &oracle_dir.join("debs")));
        let env = CairnEnv::locked(&packages, &shared_cache_dir("corpus"));
        eprintln!("cairn environment locked after {:.0?}", started.elapsed());
        if let Err(panic) = oracle_build.join() {
            std::panic::resume_unwind(panic);
        }
        env
    });
    // dpkg's chroot has no /proc; without it `ps` refuses to run and the
    // loader cannot resolve `$ORIGIN` (java's libjli.so). `cairn activate`
    // binds /proc, so the oracle gets one too.
    let _proc = ProcMount::new(&oracle.join("proc"));
    eprintln!("oracle ready after {:.0?}", started.elapsed());
    let oracle_status = corpus::installed_from_status(
        &fs_err::read_to_string(oracle.join("var/lib/dpkg/status")).expect("oracle dpkg status"),
    );

    let locked = env.locked_versions();
    let mut commands = Category::new("corpus packages (command and version)");
    for entry in CORPUS {
        let ours = CommandResult::of(&env.run(entry.command));
        let theirs = CommandResult::of(&chroot_run(&oracle, entry.command));
        let mut reasons = Vec::new();
        if ours != theirs {
            reasons.push(format!(
                "`{}`: cairn exit {:?} '{}', dpkg exit {:?} '{}'",
                entry.command.join(" "),
                ours.code,
                ours.first_line,
                theirs.code,
                theirs.first_line
            ));
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
    let categories = [
        commands,
        Category::of_maps("alternatives", &ours.alternatives, &theirs.alternatives),
        ca,
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
/// and the archive, and mmdebstrap takes minutes.
fn build_oracle_once(packages: &[&str], oracle: &Path, debs: &Path) {
    let marker = oracle.with_extension("packages");
    let wanted = packages.join("\n");
    if oracle.is_dir() && fs_err::read_to_string(&marker).is_ok_and(|text| text == wanted) {
        return;
    }
    let _ = fs_err::remove_file(&marker);
    if oracle.exists() {
        fs_err::remove_dir_all(oracle).expect("remove the stale oracle");
    }
    corpus::build_oracle(RELEASE, packages, oracle, debs);
    fs_err::write(&marker, wanted).expect("write the oracle marker");
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
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cairn_tests::tools::describe(cmd)))
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
