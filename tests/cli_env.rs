//! End-to-end tests of the environment commands (`init`, `install`, `list`,
//! `search`, `show`, `uninstall`, `upgrade`) through the real `cairn` binary,
//! against a signed local archive on 127.0.0.1.
//!
//! What a user sees is what is checked: exit status, the files in
//! `.cairn/env/`, stdout/stderr, and what was fetched from the archive.

use cairn_store::sha256_file;
use cairn_tests::context::{expect_failure, expect_success};
use cairn_tests::server::unreachable_url;
use cairn_tests::{
    DebSpec, HttpServer, LocalArchive, TestContext, require_tool, stderr_of, stdout_of,
};
use std::path::Path;

/// hello (two versions) needs libgreet1; cowsay-lite stands alone.
fn base_specs() -> Vec<DebSpec> {
    vec![
        DebSpec::with_program("hello", "0.9-1").depends("libgreet1 (>= 1.0)"),
        DebSpec::with_program("hello", "1.0-1").depends("libgreet1 (>= 1.0)"),
        DebSpec::new("libgreet1", "1.0-1")
            .multi_arch("same")
            .description("shared greeting library"),
        DebSpec::with_program("cowsay-lite", "3.0-1")
            .arch("all")
            .description("talking cow for terminals"),
    ]
}

/// A context with an initialised environment whose `[sources]` point at a
/// served archive of `specs`; `None` when the archive tools are missing locally.
fn env_with_archive(specs: &[DebSpec]) -> Option<(TestContext, LocalArchive, HttpServer)> {
    let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip"];
    if !tools.iter().all(|t| require_tool(t)) {
        return None;
    }
    let ctx = TestContext::new();
    let (archive, server) = ctx.serve_archive(specs);
    ctx.run_ok(&["init"]);
    ctx.write_manifest_sources(&server, &archive);
    Some((ctx, archive, server))
}

/// One `cairn list --json` row: name, version, architecture, requested.
type Row = (String, String, String, bool);

/// The rows of `cairn list --json`, sorted by name.
fn listed(ctx: &TestContext) -> Vec<Row> {
    let mut rows: Vec<Row> = ctx
        .list_json()
        .iter()
        .map(|row| {
            let field = |k: &str| {
                let value = row[k].as_str().unwrap_or_else(|| panic!("{k} in {row}"));
                value.to_owned()
            };
            let requested = row["requested"].as_bool().expect("requested is a bool");
            (
                field("name"),
                field("version"),
                field("architecture"),
                requested,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The expected row of a package built by [`base_specs`] (only cowsay-lite is `all`).
fn row(name: &str, version: &str, requested: bool) -> Row {
    let arch = if name == "cowsay-lite" {
        "all"
    } else {
        "amd64"
    };
    (
        name.to_owned(),
        version.to_owned(),
        arch.to_owned(),
        requested,
    )
}

fn remove_dir_contents(dir: &Path) {
    for entry in fs_err::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            fs_err::remove_dir_all(&path).expect("remove dir");
        } else {
            fs_err::remove_file(&path).expect("remove file");
        }
    }
}

#[test]
fn init_creates_a_manifest_and_refuses_to_overwrite_it() {
    let ctx = TestContext::new();
    ctx.run_ok(&["init", "--name", "demo"]);
    let manifest = ctx.read_manifest();
    assert!(manifest.contains("version = 1"), "{manifest}");
    assert!(manifest.contains("demo"), "{manifest}");

    let again = ctx.run_err(&["init"]);
    assert!(
        stderr_of(&again).contains("already exists"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(
        ctx.read_manifest(),
        manifest,
        "a refused init changed the manifest"
    );

    let other = ctx.root.path().join("other");
    fs_err::create_dir_all(&other).unwrap();
    ctx.run_ok(&["init", "-d", other.to_str().unwrap()]);
    assert!(
        TestContext::env_dir_of(&other)
            .join("manifest.toml")
            .is_file()
    );
}

#[test]
fn install_locks_every_package_with_its_sha256() {
    let Some((ctx, archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);
    assert!(
        ctx.read_manifest().contains("hello"),
        "{}",
        ctx.read_manifest()
    );
    assert_eq!(
        listed(&ctx),
        [
            row("hello", "1.0-1", true),
            row("libgreet1", "1.0-1", false)
        ]
    );

    let lock = ctx.read_lock();
    let packages = lock["packages"]
        .as_array_of_tables()
        .expect("[[packages]] in the lock");
    assert_eq!(packages.len(), 2);
    for package in packages {
        let filename = package["filename"].as_str().expect("filename");
        let sha256 = package["sha256"].as_str().expect("sha256");
        let actual = sha256_file(archive.root().join(filename)).unwrap();
        assert_eq!(sha256, actual, "lock pins the wrong digest for {filename}");
    }
}

#[test]
fn install_with_a_version_constraint_pins_that_version() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello=0.9-1"]);
    assert_eq!(
        listed(&ctx),
        [
            row("hello", "0.9-1", true),
            row("libgreet1", "1.0-1", false)
        ]
    );
}

#[test]
fn general_options_go_before_the_subcommand() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    let quiet = ctx.run_ok(&["-q", "install", "cowsay-lite"]);
    assert!(
        stdout_of(&quiet).is_empty(),
        "-q printed: {}",
        stdout_of(&quiet)
    );
    assert!(
        !stderr_of(&quiet).contains("installed"),
        "{}",
        stderr_of(&quiet)
    );
    let verbose = ctx.run_ok(&["-v", "list"]);
    assert!(stdout_of(&verbose).contains("cowsay-lite"));
}

/// Runs a failing `install ARGS` and checks that manifest and lock are untouched
/// and that stderr mentions every string in `expect`.
fn assert_install_fails_atomically(ctx: &TestContext, args: &[&str], expect: &[&str]) {
    let before = ctx.snapshot();
    let out = ctx.run_err(&[&["install"], args].concat());
    let stderr = stderr_of(&out);
    for needle in expect {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    assert_eq!(
        ctx.snapshot(),
        before,
        "a failed install changed manifest or lock"
    );
}

#[test]
fn unknown_package_fails_atomically_and_suggests() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "cowsay-lite"]);
    assert_install_fails_atomically(
        &ctx,
        &["helo"],
        &["helo", "not found", "did you mean", "hello"],
    );
}

#[test]
fn bad_constraints_fail_atomically() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "cowsay-lite"]);
    assert_install_fails_atomically(&ctx, &["hello=9.9-9"], &["hello", "9.9-9", "1.0-1"]);
    assert_install_fails_atomically(&ctx, &["hello=>> not a version!"], &["not a version"]);
}

#[test]
fn tampered_archives_fail_atomically_naming_the_file() {
    type Tamper = fn(&LocalArchive);
    let cases: [(&str, Tamper, &[&str]); 4] = [
        ("Packages", |a| a.tamper_packages(), &["Packages", "sha256"]),
        ("InRelease", |a| a.tamper_inrelease(), &["InRelease"]),
        ("other key", |a| a.sign_with_other_key(), &["InRelease"]),
        (
            ".deb",
            |a| a.tamper_deb("hello"),
            &["hello_1.0-1_amd64.deb", "sha256"],
        ),
    ];
    for (what, tamper, expect) in cases {
        let Some((ctx, archive, _server)) = env_with_archive(&base_specs()) else {
            return;
        };
        ctx.run_ok(&["install", "cowsay-lite"]);
        // A verified index in the cache is still valid for the unchanged
        // InRelease, so start cold to make cairn download the tampered files.
        remove_dir_contents(&ctx.cache);
        tamper(&archive);
        eprintln!("case: tampered {what}");
        assert_install_fails_atomically(&ctx, &["hello"], expect);
    }
}

#[test]
fn unreachable_archive_fails_atomically_naming_the_url() {
    let Some((ctx, archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    let url = unreachable_url();
    ctx.set_sources(&cairn_tests::context::local_sources_toml(&url, &archive));
    assert_install_fails_atomically(&ctx, &["hello"], &[url.trim_start_matches("http://")]);
}

#[test]
fn broken_manifest_error_names_the_file_and_line() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    fs_err::write(
        ctx.manifest_path(),
        "version = 1\n[install]\nhello.pkg = \"hello\nworld = 1\n",
    )
    .unwrap();
    let out = ctx.run_err(&["list"]);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("manifest.toml"), "{stderr}");
    assert!(
        stderr.contains("manifest.toml:3:") || stderr.contains("line 3"),
        "no line number in:\n{stderr}"
    );
}

#[test]
fn search_and_show_read_the_archive() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    let by_name = ctx.run_ok(&["search", "greet"]);
    assert!(
        stdout_of(&by_name).contains("libgreet1"),
        "{}",
        stdout_of(&by_name)
    );
    let by_summary = ctx.run_ok(&["search", "talking", "--json"]);
    let hits: serde_json::Value = serde_json::from_slice(&by_summary.stdout).expect("JSON");
    let names: Vec<&str> = hits
        .as_array()
        .expect("search --json prints an array")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(names, ["cowsay-lite"]);

    let show = stdout_of(&ctx.run_ok(&["show", "hello"]));
    assert!(show.contains("1.0-1") && show.contains("0.9-1"), "{show}");
    assert!(
        show.find("1.0-1") < show.find("0.9-1"),
        "highest version first:\n{show}"
    );
}

#[test]
fn uninstall_removes_the_package_and_its_orphans() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello", "cowsay-lite"]);
    assert_eq!(listed(&ctx).len(), 3);
    ctx.run_ok(&["uninstall", "hello"]);
    assert!(
        !ctx.read_manifest().contains("hello.pkg"),
        "{}",
        ctx.read_manifest()
    );
    assert_eq!(listed(&ctx), [row("cowsay-lite", "3.0-1", true)]);
    let missing = ctx.run_err(&["uninstall", "hello"]);
    assert!(
        stderr_of(&missing).contains("hello"),
        "{}",
        stderr_of(&missing)
    );
}

#[test]
fn upgrade_reports_a_newer_version() {
    let Some((ctx, mut archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);
    let unchanged = ctx.run_ok(&["upgrade"]);
    assert!(
        !stdout_of(&unchanged).contains("->"),
        "{}",
        stdout_of(&unchanged)
    );

    archive.publish(&[DebSpec::with_program("hello", "1.1-1").depends("libgreet1 (>= 1.0)")]);
    let out = ctx.run_ok(&["upgrade"]);
    let shown = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        shown.contains("hello") && shown.contains("1.0-1") && shown.contains("1.1-1"),
        "{shown}"
    );
    assert_eq!(
        listed(&ctx),
        [
            row("hello", "1.1-1", true),
            row("libgreet1", "1.0-1", false)
        ]
    );
}

#[test]
fn warm_install_fetches_no_deb_and_no_index() {
    let Some((ctx, archive, server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);
    assert_eq!(server.deb_requests(), 2, "{:?}", server.hits());

    // A second environment sharing the cache needs nothing but InRelease.
    let other = ctx.root.path().join("other");
    fs_err::create_dir_all(&other).unwrap();
    expect_success(ctx.cairn_in(&other).arg("init"));
    cairn_tests::context::set_manifest_sources(
        &TestContext::env_dir_of(&other).join("manifest.toml"),
        &cairn_tests::context::local_sources_toml(&server.url, &archive),
    );
    server.reset_counts();
    expect_success(ctx.cairn_in(&other).args(["install", "hello"]));
    assert_eq!(server.deb_requests(), 0, "{:?}", server.hits());
    assert_eq!(
        server.requests_where(|p| p.contains("/Packages")),
        0,
        "{:?}",
        server.hits()
    );
    assert_eq!(
        fs_err::read(TestContext::env_dir_of(&other).join("manifest.lock")).unwrap(),
        fs_err::read(ctx.lock_path()).unwrap(),
        "same manifest and archive must give the same lock"
    );
}

#[test]
fn commands_outside_an_environment_explain_how_to_create_one() {
    let ctx = TestContext::new();
    let out = expect_failure(ctx.cairn().arg("list"));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("cairn init"), "{stderr}");
}

/// `cairn completions fish | true`: a reader that goes away ends cairn
/// quietly (exit 141, like `cat`), never with a panic.
#[test]
fn a_closed_stdout_ends_cairn_quietly() {
    let ctx = TestContext::new();
    let mut child = ctx
        .cairn()
        .args(["completions", "fish"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cairn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for cairn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(141)),
        "{:?}: {stderr}",
        out.status
    );
}

/// flox's guides append tables with `cat >> manifest.toml`; after `init`
/// that must work for every table, and the next command re-locks by itself.
#[test]
fn init_manifest_takes_appended_tables_and_relocks_by_itself() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);
    let path = ctx.manifest_path();
    let mut text = fs_err::read_to_string(&path).unwrap();
    text.push_str(
        "\n[vars]\nGREETING = \"hi\"\n\n[containerize.config]\nexposed-ports = [\"5000/tcp\"]\n",
    );
    text = text.replacen(
        "[install]\n",
        "[install]\ncowsay-lite.pkg = \"cowsay-lite\"\n",
        1,
    );
    fs_err::write(&path, text).unwrap();
    let hello_before = ctx.read_lock().to_string();
    let listed = ctx.run_ok(&["list"]);
    assert!(
        stdout_of(&listed).contains("cowsay-lite"),
        "{}",
        stdout_of(&listed)
    );
    assert!(
        stderr_of(&listed).contains("re-locked"),
        "{}",
        stderr_of(&listed)
    );
    let version_of = |lock: &str, name: &str| {
        let at = lock
            .find(&format!("name = \"{name}\""))
            .expect("package in lock");
        lock[at..].lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(
        version_of(&hello_before, "hello"),
        version_of(&ctx.read_lock().to_string(), "hello")
    );
}

/// The environment's write lock file, as cairn takes it.
fn env_write_lock(ctx: &TestContext) -> std::fs::File {
    let path = ctx.work.join(".cairn").join("lock");
    std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

#[test]
fn concurrent_installs_lose_no_package() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    // Both start from the same manifest; without the environment lock the
    // second rename drops the first install although both report success.
    let spawn = |pkg: &str| {
        ctx.cairn()
            .args(["install", pkg])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cairn")
    };
    let (a, b) = (spawn("hello"), spawn("cowsay-lite"));
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait for cairn");
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let manifest = ctx.read_manifest();
    assert!(
        manifest.contains("hello.pkg") && manifest.contains("cowsay-lite.pkg"),
        "{manifest}"
    );
    let names: Vec<String> = listed(&ctx).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["cowsay-lite", "hello", "libgreet1"]);
}

#[test]
fn a_second_writer_waits_with_a_message_or_fails_under_no_wait() {
    use std::io::BufRead;
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    let held = env_write_lock(&ctx);
    held.lock().unwrap();

    let refused = expect_failure(ctx.cairn().args(["--no-wait", "install", "hello"]));
    assert!(
        stderr_of(&refused).contains("another cairn command is changing the environment"),
        "{}",
        stderr_of(&refused)
    );
    assert!(!ctx.read_manifest().contains("hello.pkg"));

    let mut waiting = ctx
        .cairn()
        .args(["install", "hello"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn cairn");
    let mut stderr = std::io::BufReader::new(waiting.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(
        first.contains("waiting for another cairn command"),
        "{first}"
    );
    // It waits for us: nothing is written until the lock is released.
    assert!(!ctx.read_manifest().contains("hello.pkg"));
    held.unlock().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(waiting.wait().unwrap().success(), "{rest}");
    assert!(ctx.read_manifest().contains("hello.pkg"));
}

#[test]
fn cache_verify_evicts_a_substituted_deb_and_gc_sweeps_orphans() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello", "cowsay-lite"]);
    let debs = ctx.cache.join("debs-v1");
    let lock = ctx.read_lock();
    let cached = |name: &str| {
        let sha = lock["packages"]
            .as_array_of_tables()
            .expect("[[packages]]")
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["sha256"].as_str())
            .unwrap_or_else(|| panic!("{name} in the lock"))
            .to_owned();
        debs.join(format!("{sha}.deb"))
    };
    let hello = cached("hello");
    let cow = cached("cowsay-lite");
    // Another valid .deb copied over the cached one.
    std::fs::copy(&cow, &hello).unwrap();

    let out = expect_failure(ctx.cairn().args(["cache", "verify", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let corrupt = report["corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{report}");
    assert_eq!(corrupt[0]["path"].as_str(), Some(hello.to_str().unwrap()));
    assert!(!hello.exists(), "evicted");
    assert!(cow.exists());
    ctx.run_ok(&["cache", "verify"]);

    // A temp file a killed process left an hour ago is swept; a fresh one stays.
    let orphan = debs.join(".x.deb.abc.tmp");
    let live = debs.join(".y.deb.def.tmp");
    std::fs::write(&orphan, b"half").unwrap();
    std::fs::write(&live, b"half").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = ctx.run_ok(&["cache", "gc", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["temps_removed"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert!(!orphan.exists() && live.exists());
    let out = ctx.run_ok(&["cache", "gc", "--max-size", "0"]);
    assert!(stderr_of(&out).contains("freed"), "{}", stderr_of(&out));
    assert!(!cow.exists(), "evicted to meet a zero budget");
}

/// `cache verify` checks the parsed-index cache by its CRC (evicting a
/// damaged entry, which the next resolve rebuilds), and `cache gc` counts
/// indices and package facts in its budget.
#[test]
fn cache_verify_checks_parsed_indices_and_gc_evicts_them() {
    let Some((ctx, _archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);
    let indices = ctx.cache.join("indices-v1");
    let parsed: Vec<_> = fs_err::read_dir(&indices)
        .expect("indices-v1")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains(".records-v"))
        .collect();
    assert_eq!(parsed.len(), 1, "{parsed:?}");
    let mut bytes = fs_err::read(&parsed[0]).expect("read parsed index");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&parsed[0], bytes).expect("damage parsed index");

    let out = expect_failure(ctx.cairn().args(["cache", "verify", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify --json");
    let damaged = report["damaged"].as_array().expect("damaged");
    assert_eq!(damaged.len(), 1, "{report}");
    assert_eq!(damaged[0]["path"].as_str(), parsed[0].to_str());
    assert!(!parsed[0].exists(), "evicted");
    ctx.run_ok(&["install", "cowsay-lite"]);
    assert!(parsed[0].exists(), "rebuilt by the next resolve");
    ctx.run_ok(&["cache", "verify"]);

    let out = ctx.run_ok(&["cache", "gc", "--max-size", "0", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gc --json");
    assert!(
        report["evicted"]
            .as_array()
            .expect("evicted")
            .iter()
            .any(|p| p.as_str() == parsed[0].to_str()),
        "{report}"
    );
    assert!(!parsed[0].exists());
    assert_eq!(report["remaining"].as_u64(), Some(0), "{report}");
}

/// `cache gc` while a containerize has fetched some `.deb`s and is still
/// fetching another (read from a FIFO the test holds shut): gc keeps the
/// build's `.deb`s, reporting them in use, and the build then layers them.
/// Without the build's hold, gc evicts them and the layer build fails.
#[test]
fn gc_during_a_build_keeps_the_debs_it_fetched() {
    let Some((ctx, archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    if !require_tool("mkfifo") {
        return;
    }
    // Read straight from the archive directory, so cairn itself opens the FIFO.
    let url = format!("file://{}", archive.root().display());
    ctx.set_sources(&cairn_tests::context::local_sources_toml(&url, &archive));
    ctx.run_ok(&["install", "hello", "cowsay-lite"]);
    let lock = ctx.read_lock();
    let locked = |name: &str| {
        lock["packages"]
            .as_array_of_tables()
            .expect("[[packages]]")
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["sha256"].as_str())
            .unwrap_or_else(|| panic!("{name} in the lock"))
            .to_owned()
    };
    let cached = |name: &str| {
        ctx.cache
            .join("debs-v1")
            .join(format!("{}.deb", locked(name)))
    };
    // A cold start for the build: the install cached every `.deb`.
    ctx.run_ok(&["cache", "gc", "--max-size", "0"]);
    assert!(!cached("hello").exists());

    let cow = archive.deb_path(
        base_specs()
            .iter()
            .find(|s| s.name == "cowsay-lite")
            .expect("cowsay-lite spec"),
    );
    let cow_bytes = fs_err::read(&cow).expect("read cowsay-lite.deb");
    fs_err::remove_file(&cow).expect("remove cowsay-lite.deb");
    expect_success(std::process::Command::new("mkfifo").arg(&cow));

    let image = ctx.root.path().join("image.tar");
    let mut build = ctx.cairn();
    build.arg("containerize").arg("-f").arg(&image);
    let build = std::thread::spawn(move || cairn_tests::context::run_with_timeout(&mut build));
    // The other `.deb`s arrive while cowsay-lite's waits for the FIFO's writer.
    let arrived = || cached("hello").exists() && cached("libgreet1").exists();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !arrived() {
        assert!(
            std::time::Instant::now() < deadline && !build.is_finished(),
            "the build never fetched hello and libgreet1"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let out = ctx.run_ok(&["cache", "gc", "--max-size", "0", "--json"]);
    let kept = ["hello", "libgreet1"].map(|name| cached(name).exists());
    // Let cowsay-lite's download finish (before asserting, so a failure
    // never leaves the build blocked on the FIFO).
    let mut fifo = fs_err::OpenOptions::new()
        .write(true)
        .open(&cow)
        .expect("open the FIFO for writing");
    std::io::Write::write_all(&mut fifo, &cow_bytes).expect("write cowsay-lite.deb");
    drop(fifo);
    let built = build.join().expect("build thread");

    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gc --json");
    let listed = |field: &str| -> Vec<String> {
        report[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} in {report}"))
            .iter()
            .map(|p| p.as_str().expect("a path").to_owned())
            .collect()
    };
    for (name, kept) in ["hello", "libgreet1"].into_iter().zip(kept) {
        let path = cached(name).to_string_lossy().into_owned();
        assert!(listed("in_use").contains(&path), "{name}: {report}");
        assert!(!listed("evicted").contains(&path), "{name}: {report}");
        assert!(kept, "{name} kept");
    }
    assert!(
        built.status.success(),
        "the build failed after gc:\n{}",
        stderr_of(&built)
    );
    assert!(image.is_file());
    ctx.run_ok(&["cache", "verify"]);
    // The build is over, so its `.deb`s are evictable again.
    let out = ctx.run_ok(&["cache", "gc", "--max-size", "0", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gc --json");
    assert_eq!(
        report["in_use"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert!(!cached("hello").exists());
}

/// `cairn manpages DIR` under a 1 KiB file-size limit: every page it cannot
/// write in full is left as it was (no truncated page, no temp file).
#[test]
fn manpages_that_fail_to_write_leave_the_old_pages() {
    if !require_tool("bash") {
        return;
    }
    let ctx = TestContext::new();
    let dir = ctx.root.path().join("man");
    ctx.run_ok(&["manpages", dir.to_str().expect("UTF-8 temp path")]);
    let pages = cairn_tests::images::dir_entries(&dir);
    assert!(pages.contains(&"cairn.1".to_owned()), "{pages:?}");
    let complete: Vec<Vec<u8>> = pages
        .iter()
        .map(|p| fs_err::read(dir.join(p)).expect("read page"))
        .collect();
    assert!(
        complete.iter().any(|page| page.len() > 1024),
        "some page must outgrow the limit"
    );
    for page in &pages {
        fs_err::write(dir.join(page), b"old\n").expect("write old page");
    }
    // SIGXFSZ ignored, so the write past 1 KiB fails with EFBIG instead.
    let template = ctx.cairn();
    let line = format!(
        "trap '' XFSZ; ulimit -f 1; exec {} manpages {}",
        cairn_tests::images::shell_quote(&template.get_program().to_string_lossy()),
        cairn_tests::images::shell_quote(&dir.to_string_lossy())
    );
    let mut cmd = cairn_tests::images::command_like(&template, "bash");
    cmd.args(["-c", &line]);
    let out = expect_failure(&mut cmd);
    assert_eq!(
        cairn_tests::images::dir_entries(&dir),
        pages,
        "{}",
        stderr_of(&out)
    );
    for (page, whole) in pages.iter().zip(&complete) {
        let now = fs_err::read(dir.join(page)).expect("read page");
        assert!(
            now == b"old\n" || now == *whole,
            "{page} is neither the old page nor a whole new one ({} bytes)",
            now.len()
        );
    }
}

/// Copies a directory tree (a snapshot of an archive's `dists/`).
fn copy_tree(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("create snapshot dir");
    for entry in fs_err::read_dir(from).expect("read dists") {
        let entry = entry.expect("read dists entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).expect("copy dists file");
        }
    }
}

#[test]
fn upgrade_refuses_a_replayed_older_inrelease_unless_allowed() {
    let Some((ctx, mut archive, _server)) = env_with_archive(&base_specs()) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);
    let old_dists = ctx.root.path().join("old-dists");
    copy_tree(&archive.dists(), &old_dists);

    // InRelease dates have one-second resolution: make the new one later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    archive.publish(&[DebSpec::with_program("hello", "1.1-1").depends("libgreet1 (>= 1.0)")]);
    let moved = ctx.run_ok(&["upgrade"]);
    assert!(
        stderr_of(&moved).contains("archive '") && stderr_of(&moved).contains("(was "),
        "upgrade reports the archive date it moved to: {}",
        stderr_of(&moved)
    );
    let upgraded = ctx.snapshot();

    // A mirror replays the older, still validly signed InRelease.
    copy_tree(&old_dists, &archive.dists());
    let refused = ctx.run_err(&["upgrade"]);
    assert!(
        stderr_of(&refused).contains("is older than the locked one"),
        "{}",
        stderr_of(&refused)
    );
    assert!(ctx.snapshot() == upgraded, "nothing written");
    assert_eq!(
        listed(&ctx),
        [
            row("hello", "1.1-1", true),
            row("libgreet1", "1.0-1", false)
        ]
    );

    ctx.run_ok(&["upgrade", "--allow-older-archive"]);
    assert_eq!(
        listed(&ctx),
        [
            row("hello", "1.0-1", true),
            row("libgreet1", "1.0-1", false)
        ]
    );
}

/// A postinst of the kinds cairn applies (an alternative) and does not
/// (`locale-gen`, `ssh-keygen`), as debhelper writes them.
const GREETER_POSTINST: &str = "#!/bin/sh\nset -e\n\
if [ \"$1\" = configure ]; then\n\
  update-alternatives --install /usr/bin/greeter greeter /usr/bin/hello 50\n\
  locale-gen\n\
  ssh-keygen -A\n\
fi\n";

/// hello as Debian would describe it: long description, homepage,
/// Suggests, and maintainer scripts; published the way Debian publishes
/// (summaries in `Packages`, texts in `Translation-en`).
fn described_specs() -> Vec<DebSpec> {
    let hello = |version: &str| {
        DebSpec::with_program("hello", version)
            .depends("libgreet1 (>= 1.0)")
            .suggests("cowsay-lite")
            .homepage("https://example.invalid/hello")
            .description("greets the world")
            .long_description(
                "The hello program prints a friendly greeting.\n\nIt is a test package.",
            )
            .script("postinst", GREETER_POSTINST)
    };
    let mut specs = vec![hello("0.9-1"), hello("1.0-1")];
    specs.extend(base_specs().into_iter().skip(2));
    // Every environment gets the Essential set, scripts and all.
    specs.push(
        DebSpec::new("base-stones", "1.0")
            .essential()
            .script("postinst", "#!/bin/sh\nmkdir -p /var/lib/stones\n"),
    );
    specs
}

fn env_with_split_archive() -> Option<(TestContext, LocalArchive, HttpServer)> {
    let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip"];
    if !tools.iter().all(|t| require_tool(t)) {
        return None;
    }
    let ctx = TestContext::new();
    let archive = LocalArchive::build_split_descriptions(
        &ctx.root.path().join("archive"),
        &described_specs(),
    );
    let server = HttpServer::serve(archive.root());
    ctx.run_ok(&["init"]);
    ctx.write_manifest_sources(&server, &archive);
    Some((ctx, archive, server))
}

#[test]
fn show_gives_what_apt_show_gives_with_the_translated_long_description() {
    let Some((ctx, archive, server)) = env_with_split_archive() else {
        return;
    };
    let packages = fs_err::read_to_string(archive.binary_dir().join("Packages")).unwrap();
    assert!(
        packages.contains("Description-md5: ") && !packages.contains("friendly greeting"),
        "the fixture publishes as Debian does:\n{packages}"
    );
    let out = ctx.run_ok(&["show", "hello"]);
    let show = stdout_of(&out);
    for line in [
        "Package: hello\n",
        "Version: 1.0-1\n",
        "Priority: optional\n",
        "Section: misc\n",
        "Maintainer: cairn tests <test@example.invalid>\n",
        "Depends: libgreet1 (>= 1.0)\n",
        "Suggests: cowsay-lite\n",
        "Homepage: https://example.invalid/hello\n",
        &format!("APT-Sources: {} stable/main amd64 Packages\n", server.url),
        "Description: greets the world\n The hello program prints a friendly greeting.\n .\n It is a test package.\n",
        "  applied: alternative greeter: /usr/bin/greeter -> /usr/bin/hello (priority 50)\n",
        "  not applied: postinst runs locale-gen (locales are not generated",
        "  not applied: postinst runs ssh-keygen (host keys are not generated",
    ] {
        assert!(show.contains(line), "missing {line:?} in:\n{show}");
    }
    // dpkg-deb writes no Installed-Size for a hand-made control file.
    assert!(show.contains("Download-Size: "), "{show}");
    let versions = &show[show.find("Versions:").expect("a Versions section")..];
    assert!(
        versions.find("1.0-1") < versions.find("0.9-1"),
        "highest version first:\n{show}"
    );
    assert_eq!(
        server.requests("/dists/stable/main/i18n/Translation-en.xz"),
        1
    );

    // --json carries the same, as data; a chosen version is shown.
    let json: serde_json::Value =
        serde_json::from_slice(&ctx.run_ok(&["show", "hello=0.9-1", "--json"]).stdout)
            .expect("show --json prints JSON");
    assert_eq!(json["version"], "0.9-1");
    assert_eq!(json["maintainer"], "cairn tests <test@example.invalid>");
    assert_eq!(json["homepage"], "https://example.invalid/hello");
    assert_eq!(json["depends"], serde_json::json!(["libgreet1 (>= 1.0)"]));
    assert_eq!(json["suggests"], serde_json::json!(["cowsay-lite"]));
    assert!(
        json["description"]
            .as_str()
            .unwrap()
            .contains("friendly greeting"),
        "{json}"
    );
    assert_eq!(json["configuration"]["available"], true);
    let not_applied = json["configuration"]["not_applied"].as_array().unwrap();
    assert_eq!(not_applied.len(), 2, "{json}");
    assert_eq!(json["versions"].as_array().unwrap().len(), 2);
    assert!(json["download_size"].as_u64().unwrap() > 0);

    // The translation is cached by its signed digest: gone from the mirror,
    // it is still shown, and not asked for again.
    for file in ["Translation-en", "Translation-en.xz"] {
        fs_err::remove_file(archive.translation_path().with_file_name(file)).unwrap();
    }
    let again = stdout_of(&ctx.run_ok(&["show", "hello"]));
    assert!(again.contains(" It is a test package.\n"), "{again}");
    assert_eq!(
        server.requests("/dists/stable/main/i18n/Translation-en.xz"),
        1
    );

    // With no cached copy and none to fetch, the summary is shown, the
    // reason is said, and show still succeeds.
    let out = expect_success(
        ctx.cairn()
            .args(["show", "hello"])
            .env("CAIRN_CACHE_DIR", ctx.root.path().join("fresh-cache")),
    );
    let (show, err) = (stdout_of(&out), stderr_of(&out));
    assert!(show.contains("Description: greets the world\n"), "{show}");
    assert!(!show.contains("friendly greeting"), "{show}");
    assert!(err.contains("note: the long description"), "{err}");

    let unknown = ctx.run_err(&["show", "hello=7"]);
    assert!(
        stderr_of(&unknown).contains("no version '7'") && stderr_of(&unknown).contains("1.0-1"),
        "{}",
        stderr_of(&unknown)
    );
}

#[test]
fn install_warns_once_per_new_package_about_what_it_does_not_apply() {
    let Some((ctx, _archive, _server)) = env_with_split_archive() else {
        return;
    };
    let out = ctx.run_ok(&["install", "hello"]);
    let err = stderr_of(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings.len(),
        2,
        "one line per note, only for hello (libgreet1 has no scripts):\n{err}"
    );
    assert!(
        warnings[0].starts_with("warning: hello: cairn does not apply: postinst runs locale-gen")
            && warnings[0].contains("C.UTF-8")
            && warnings[0].contains("locales-all"),
        "the locale note says how to get a locale:\n{err}"
    );
    assert!(warnings[1].contains("ssh-keygen"), "{err}");
    assert!(
        err.contains(
            "note: 1 package of the Essential set (with what it depends on) has maintainer-script steps cairn does not apply (base-stones)"
        ),
        "the Essential set is summed up in one line, not warned about:\n{err}"
    );

    // hello is in the lock now: adding another package, or re-locking after
    // a hand edit, does not warn about it again.
    let out = ctx.run_ok(&["install", "cowsay-lite"]);
    assert!(!stderr_of(&out).contains("warning:"), "{}", stderr_of(&out));
    ctx.run_ok(&["uninstall", "hello"]);
    let manifest = ctx.read_manifest();
    fs_err::write(
        ctx.manifest_path(),
        manifest.replace("[install]\n", "[install]\nhello.pkg = \"hello\"\n"),
    )
    .unwrap();
    let relock = ctx.run_ok(&["list"]);
    let err = stderr_of(&relock);
    assert!(err.contains("re-locked"), "{err}");
    assert_eq!(
        err.matches("warning: hello: cairn does not apply:").count(),
        2,
        "hello is new to the lock again, so the re-lock warns:\n{err}"
    );
    assert!(!stderr_of(&ctx.run_ok(&["list"])).contains("warning:"));

    // -q silences the warning; --json gives the notes as data.
    ctx.run_ok(&["uninstall", "hello"]);
    let quiet = ctx.run_ok(&["-q", "install", "hello"]);
    assert!(
        !stderr_of(&quiet).contains("warning:"),
        "{}",
        stderr_of(&quiet)
    );
    ctx.run_ok(&["uninstall", "hello"]);
    let out = ctx.run_ok(&["install", "hello", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("install --json");
    assert_eq!(json["installed"], serde_json::json!(["hello"]));
    let notes = json["not_applied"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{json}");
    assert_eq!(notes[0]["package"], "hello");
    assert!(notes[0]["message"].as_str().unwrap().contains("locale-gen"));
    assert!(
        !stderr_of(&out).contains("warning:"),
        "notes are in the JSON"
    );
}

/// `cairn provides` and the hint a missing command gets in a host
/// activation (both modes), from the archive's signed `Contents` index; and
/// offline with nothing cached, the plain `command not found`, promptly.
#[test]
fn a_missing_command_names_the_package_that_ships_it() {
    let mut specs = base_specs();
    specs.push(DebSpec::with_program("fortunes", "1.0-1").file(
        "/usr/games/fortune-teller",
        b"#!/bin/sh\necho soon\n",
        0o755,
    ));
    let Some((ctx, _archive, server)) = env_with_archive(&specs) else {
        return;
    };
    ctx.run_ok(&["install", "hello"]);

    let out = ctx.run_ok(&["provides", "hello"]);
    assert_eq!(stdout_of(&out), "hello  (in the environment)\n");
    let out = ctx.run_ok(&["provides", "--json", "fortune-teller"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({"command": "fortune-teller",
            "packages": [{"package": "fortunes", "installed": false}]})
    );
    let out = ctx.run_err(&["provides", "nothing-ships-this"]);
    assert!(
        stderr_of(&out).contains("no package ships a command named 'nothing-ships-this'"),
        "{}",
        stderr_of(&out)
    );
    let out = ctx.run_err(&["provides", "/usr/bin/hello"]);
    assert!(
        stderr_of(&out).contains("is not a command name"),
        "{}",
        stderr_of(&out)
    );

    for mode in ["dev", "run"] {
        let out =
            expect_failure(
                ctx.cairn()
                    .args(["activate", "--mode", mode, "--", "fortune-teller"]),
            );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(127), "{mode}: {err}");
        assert!(
            err.contains("cairn: command not found: fortune-teller\n")
                && err.contains(
                    "cairn: fortune-teller is in package fortunes: cairn install fortunes"
                ),
            "{mode}: {err}"
        );
    }

    // Offline, with no table cached: the plain message, without waiting on
    // the network (bounded by the run's timeout).
    drop(server);
    let indices = ctx.cache.join("indices-v1");
    for entry in fs_err::read_dir(&indices).expect("indices") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().contains("commands-v") {
            fs_err::remove_file(path).expect("remove entry");
        }
    }
    let out = expect_failure(ctx.cairn().args(["activate", "--", "fortune-teller"]));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("command not found: fortune-teller"), "{err}");
    assert!(!err.contains("is in package"), "{err}");
}
