//! Debian releases: a new environment names today's stable by codename, the
//! examples' packages build and run on bookworm and trixie (one matrix test
//! per release, sharing the cache), and `upgrade --release` moves the flask
//! environment from bookworm to trixie, showing the change before writing it.
//! Against Debian's real archive; in CI an unreachable archive fails.

use cairn_tests::TestContext;
use cairn_tests::context::{expect_success, stderr_of, stdout_of};
use cairn_tests::images::{Engine, shared_cache_dir, unique_name};
use std::process::{Command, Output};

fn cairn(ctx: &TestContext, args: &[&str]) -> Output {
    let mut cmd = ctx.cairn();
    cmd.env("CAIRN_CACHE_DIR", shared_cache_dir("releases"));
    expect_success(cmd.args(args))
}

fn manifest_release(ctx: &TestContext) -> String {
    let text = ctx.read_manifest();
    text.lines()
        .find_map(|l| l.strip_prefix("release = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

/// `docker run --rm IMAGE ARGS…`, its stdout.
fn run_in(image: &str, args: &[&str]) -> String {
    let out = expect_success(
        Command::new("docker")
            .args(["run", "--rm", image])
            .args(args),
    );
    stdout_of(&out)
}

#[test]
fn init_names_todays_stable_by_codename() {
    cairn_tests::reachable_real_archive();
    let ctx = TestContext::new();
    cairn(&ctx, &["init"]);
    let release = manifest_release(&ctx);
    assert_eq!(release, "trixie", "{}", ctx.read_manifest());
    let other = TestContext::new();
    cairn(&other, &["init", "--release", "bookworm"]);
    assert_eq!(manifest_release(&other), "bookworm");
    let moving = other.run_err(&["init", "-d", "elsewhere", "--release", "stable"]);
    assert!(
        stderr_of(&moving).contains("moves"),
        "{}",
        stderr_of(&moving)
    );
}

/// The examples' packages (hello; python3 + flask; postgresql) on `release`:
/// locked, containerized, loaded and run.
fn examples_run_on(release: &str, python: &str, postgres: &str) {
    if cairn_tests::reachable_real_archive().is_none() || !Engine::Docker.ready() {
        return;
    }
    let ctx = TestContext::new();
    cairn(&ctx, &["init", "--release", release]);
    cairn(
        &ctx,
        &["install", "hello", "python3", "python3-flask", "postgresql"],
    );
    let image = unique_name(&format!("cairn-release-{release}"));
    let tag = format!("{image}:t");
    cairn(
        &ctx,
        &["containerize", "--tag", &tag, "--runtime", "docker"],
    );
    assert_eq!(run_in(&tag, &["hello"]), "Hello, world!\n");
    let version = run_in(
        &tag,
        &["python3", "-c", "import flask, sys; print(sys.version[:4])"],
    );
    assert_eq!(version.trim(), python, "{release}");
    let initdb = format!("/usr/lib/postgresql/{postgres}/bin/initdb");
    let out = run_in(&tag, &[&initdb, "--version"]);
    assert!(out.contains(postgres), "{release}: {out}");
    // Essential tools behave as on Debian: awk through alternatives, sh, env.
    assert_eq!(
        run_in(&tag, &["sh", "-c", "echo x | awk '{print $1 \"y\"}'"]),
        "xy\n"
    );
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

#[test]
fn examples_run_on_bookworm() {
    examples_run_on("bookworm", "3.11", "15");
}

#[test]
fn examples_run_on_trixie() {
    examples_run_on("trixie", "3.13", "17");
}

#[test]
fn upgrade_release_moves_flask_from_bookworm_to_trixie() {
    if cairn_tests::reachable_real_archive().is_none() || !Engine::Docker.ready() {
        return;
    }
    let ctx = TestContext::new();
    cairn(&ctx, &["init", "--release", "bookworm"]);
    cairn(&ctx, &["install", "python3", "python3-flask"]);
    let before = (ctx.read_manifest(), ctx.read_lock().to_string());

    let dry = cairn(&ctx, &["upgrade", "--release", "trixie", "--dry-run"]);
    let diff = stdout_of(&dry);
    assert!(diff.contains("python3-flask: 2.2"), "{diff}");
    assert!(diff.contains("-> 3.1"), "{diff}");
    assert!(
        stderr_of(&dry).contains("nothing written"),
        "{}",
        stderr_of(&dry)
    );
    assert_eq!((ctx.read_manifest(), ctx.read_lock().to_string()), before);

    let moved = cairn(&ctx, &["upgrade", "--release", "trixie"]);
    assert!(
        stderr_of(&moved).contains("moved to Debian trixie"),
        "{}",
        stderr_of(&moved)
    );
    assert_eq!(manifest_release(&ctx), "trixie");
    let tag = format!("{}:t", unique_name("cairn-release-upgrade"));
    cairn(
        &ctx,
        &["containerize", "--tag", &tag, "--runtime", "docker"],
    );
    let flask = run_in(
        &tag,
        &["python3", "-c", "import flask; print(flask.__version__)"],
    );
    assert!(flask.starts_with("3."), "{flask}");
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();

    // A package that trixie no longer has is named, and nothing is written.
    let back = TestContext::new();
    cairn(&back, &["init", "--release", "bookworm"]);
    cairn(&back, &["install", "python3-distutils"]);
    let kept = back.read_manifest();
    let refused = back.run_err(&["upgrade", "--release", "trixie"]);
    let stderr = stderr_of(&refused);
    assert!(
        stderr.contains("'python3-distutils'") && stderr.contains("superseded by python3"),
        "{stderr}"
    );
    assert_eq!(back.read_manifest(), kept);
    // A renamed library (the 64-bit time_t transition) resolves through Provides.
    let t64 = TestContext::new();
    cairn(&t64, &["init", "--release", "trixie"]);
    cairn(&t64, &["install", "libssl3"]);
    assert!(t64.read_lock().to_string().contains("libssl3t64"));
}

/// An archive signed by a key that is not among Debian's (bookworm's and
/// trixie's, shipped in data/keyrings/) is refused with `keyring = "debian"`,
/// and nothing is locked.
#[test]
fn an_archive_signed_by_a_foreign_key_is_refused_by_the_debian_keyrings() {
    if !["dpkg-deb", "apt-ftparchive", "gpg"]
        .iter()
        .all(|t| cairn_tests::require_tool(t))
    {
        return;
    }
    let ctx = TestContext::new();
    ctx.run_ok(&["init", "--release", "trixie"]);
    let (archive, server) =
        ctx.serve_archive(&[cairn_tests::DebSpec::with_program("hello", "1.0-1")]);
    ctx.set_sources(&format!(
        "[sources.debian]\nurl = \"{}\"\nsuites = [\"{}\"]\ncomponents = [\"main\"]\nkeyring = \"debian\"\n",
        server.url,
        archive.suite()
    ));
    let out = ctx.run_err(&["install", "hello"]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("InRelease") && stderr.contains("signature"),
        "{stderr}"
    );
    assert!(!ctx.lock_path().exists(), "a refused archive left a lock");
}
