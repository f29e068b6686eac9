//! A test context that runs the real `cairn` binary the way a user would, in
//! throwaway directories (uv's `TestContext` is the model).
//!
//! Each context owns a temp root holding the environment directory (`work`),
//! the cache (`CAIRN_CACHE_DIR`) and HOME/XDG directories, so tests never touch
//! the developer's files and can run in parallel. It knows where cairn keeps
//! its manifest and lock, but not what is in them beyond `[sources]`.

use crate::archive::{COMPONENT, DebSpec, LocalArchive};
use crate::real::{toml_array, toml_string};
use crate::server::HttpServer;
use crate::tools::describe;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A cairn run that takes longer than this is hung; the child is killed so the
/// failure shows up as a message rather than a stuck CI job.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Temp directories and environment for one test.
#[derive(Debug)]
pub struct TestContext {
    /// Everything below is inside this directory, removed on drop.
    pub root: tempfile::TempDir,
    /// The environment directory (`CAIRN_ENV`, and the current directory).
    pub work: PathBuf,
    /// `CAIRN_CACHE_DIR`.
    pub cache: PathBuf,
    /// `HOME`.
    pub home: PathBuf,
    /// `XDG_RUNTIME_DIR` (mode 0700, as systemd creates it).
    pub runtime: PathBuf,
}

/// The bytes of an environment's manifest and lock at one moment, to prove a
/// failed command left them alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSnapshot {
    pub manifest: Option<Vec<u8>>,
    pub lock: Option<Vec<u8>>,
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    /// Creates the temp root and its directories.
    pub fn new() -> TestContext {
        let root = tempfile::Builder::new()
            .prefix("cairn-test")
            .tempdir()
            .expect("create test root");
        let dir = |name: &str| {
            let path = root.path().join(name);
            fs_err::create_dir_all(&path).expect("create test dir");
            path
        };
        let (work, cache, home, runtime) = (dir("work"), dir("cache"), dir("home"), dir("run"));
        set_mode(&runtime, 0o700);
        TestContext {
            work,
            cache,
            home,
            runtime,
            root,
        }
    }

    /// The `cairn` binary under test: `$CAIRN_BIN`, else the `cairn` of this
    /// workspace, built (once per test process) into the profile directory that
    /// holds this test executable.
    pub fn cairn_bin() -> PathBuf {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(locate_cairn).clone()
    }

    /// `cairn` with this context's environment, aimed at the work environment:
    /// append the subcommand and its arguments.
    ///
    /// The environment is chosen by `CAIRN_ENV` and the current directory rather
    /// than `-d`, because `-d` belongs to each subcommand (flox style) and this
    /// command does not know the subcommand yet; tests of `-d` pass it themselves.
    pub fn cairn(&self) -> Command {
        self.cairn_in(&self.work)
    }

    /// Like [`TestContext::cairn`] for another environment directory, e.g. a
    /// second environment sharing this context's cache.
    pub fn cairn_in(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(Self::cairn_bin());
        cmd.current_dir(dir).stdin(Stdio::null());
        for (var, _) in std::env::vars_os() {
            // The developer's own cairn settings must not leak into a test.
            if var.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(var);
            }
        }
        cmd.env_remove("RUST_LOG");
        let xdg = |name: &str| self.root.path().join("xdg").join(name);
        cmd.env("CAIRN_ENV", dir)
            .env("CAIRN_CACHE_DIR", &self.cache)
            .env("CAIRN_NO_PROGRESS", "true")
            .env("CAIRN_COLOR", "never")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", xdg("config"))
            .env("XDG_DATA_HOME", xdg("data"))
            .env("XDG_STATE_HOME", xdg("state"))
            .env("XDG_CACHE_HOME", xdg("cache"))
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("NO_COLOR", "1")
            .env("TERM", "dumb");
        cmd
    }

    /// Runs `cairn ARGS...` in the work environment and asserts it succeeds.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        expect_success(self.cairn().args(args))
    }

    /// Runs `cairn ARGS...` in the work environment and asserts it fails.
    pub fn run_err(&self, args: &[&str]) -> Output {
        expect_failure(self.cairn().args(args))
    }

    /// `<dir>/.cairn/env`.
    pub fn env_dir_of(dir: &Path) -> PathBuf {
        dir.join(".cairn").join("env")
    }

    /// `<work>/.cairn/env/manifest.toml`.
    pub fn manifest_path(&self) -> PathBuf {
        Self::env_dir_of(&self.work).join("manifest.toml")
    }

    /// `<work>/.cairn/env/manifest.lock`.
    pub fn lock_path(&self) -> PathBuf {
        Self::env_dir_of(&self.work).join("manifest.lock")
    }

    /// The manifest text (panics if there is none).
    pub fn read_manifest(&self) -> String {
        fs_err::read_to_string(self.manifest_path()).expect("read manifest.toml")
    }

    /// The parsed lock (panics if there is none or it is not TOML).
    pub fn read_lock(&self) -> toml_edit::DocumentMut {
        let text = fs_err::read_to_string(self.lock_path()).expect("read manifest.lock");
        text.parse()
            .unwrap_or_else(|e| panic!("manifest.lock is not TOML: {e}\n{text}"))
    }

    /// The manifest and lock bytes as they are now.
    pub fn snapshot(&self) -> EnvSnapshot {
        EnvSnapshot {
            manifest: fs_err::read(self.manifest_path()).ok(),
            lock: fs_err::read(self.lock_path()).ok(),
        }
    }

    /// Builds `specs` into a signed archive under the temp root and serves it.
    pub fn serve_archive(&self, specs: &[DebSpec]) -> (LocalArchive, HttpServer) {
        let archive = LocalArchive::build(&self.root.path().join("archive"), specs);
        let server = HttpServer::serve(archive.root());
        (archive, server)
    }

    /// Points the work environment's `[sources]` at `archive` served by `server`.
    pub fn write_manifest_sources(&self, server: &HttpServer, archive: &LocalArchive) {
        self.set_sources(&local_sources_toml(&server.url, archive));
    }

    /// Replaces the `[sources]` table of the work manifest with `sources_toml`
    /// (text defining `[sources.*]` tables), keeping everything else. Creates a
    /// minimal manifest when there is none yet.
    pub fn set_sources(&self, sources_toml: &str) {
        set_manifest_sources(&self.manifest_path(), sources_toml);
    }

    /// `cairn list --json` in the work environment, parsed.
    pub fn list_json(&self) -> Vec<serde_json::Value> {
        let out = self.run_ok(&["list", "--json"]);
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("`cairn list --json` is not JSON: {e}\n{}", stdout_of(&out))
        });
        match value {
            serde_json::Value::Array(items) => items,
            other => panic!("`cairn list --json` is not an array: {other}"),
        }
    }
}

fn locate_cairn() -> PathBuf {
    if let Some(bin) = std::env::var_os("CAIRN_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in <profile>/deps/");
    let bin = profile_dir.join("cairn");
    // containerize puts the `cairn-entrypoint` beside cairn into images.
    let entrypoint = profile_dir.join("cairn-entrypoint");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root");
    if ![&bin, &entrypoint]
        .iter()
        .all(|b| is_newer_than_sources(b, workspace))
    {
        build_cairn(workspace, profile_dir);
    }
    assert!(
        bin.is_file(),
        "{} not found after building cairn-cli; set CAIRN_BIN to the binary to test",
        bin.display()
    );
    bin
}

/// Whether `bin` is newer than every source file of the workspace's crates
/// (and Cargo.lock). `cargo nextest run --workspace` has just built it then,
/// and calling cargo from each of hundreds of test processes would serialise
/// them on cargo's build lock (and rebuild cairn with `-p`'s feature set).
fn is_newer_than_sources(bin: &Path, workspace: &Path) -> bool {
    let modified = |p: &Path| fs_err::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(bin) else {
        return false;
    };
    let mut pending = vec![workspace.join("crates")];
    let mut newest = modified(&workspace.join("Cargo.lock"));
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                newest = newest.max(modified(&path));
            }
        }
    }
    newest.is_some_and(|source| source < built)
}

/// Runs `cargo build -p cairn-cli --bins` (cairn and cairn-entrypoint) for the profile of the running
/// tests. Cargo only builds a package's binaries for that package's own
/// integration tests (`CARGO_BIN_EXE_*`), so tests in this package would
/// otherwise find no binary, or a stale one. When it is fresh this is a no-op
/// taking a fraction of a second. Hand-written rather than `escargot`: it is
/// one command.
fn build_cairn(workspace: &Path, profile_dir: &Path) {
    let mut cmd = Command::new(env!("CARGO"));
    // No stdin: cargo's rustc probe reads one, and a test's stdin may be a
    // pipe holding some other program's output (which cargo then caches in
    // target/.rustc_info.json, breaking later builds).
    cmd.current_dir(workspace)
        .stdin(std::process::Stdio::null())
        .args(["build", "--quiet", "-p", "cairn-cli", "--bins"]);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        cmd.arg("--release");
    }
    crate::tools::run_checked(&mut cmd);
}

/// A `[sources.local]` table for a served local archive.
pub fn local_sources_toml(url: &str, archive: &LocalArchive) -> String {
    format!(
        "[sources.local]\nurl = {}\nsuites = {}\ncomponents = {}\nkeyring = {}\n",
        toml_string(url),
        toml_array(&[archive.suite().to_owned()]),
        toml_array(&[COMPONENT.to_owned()]),
        toml_string(&archive.keyring().to_string_lossy()),
    )
}

/// Replaces `[sources]` in the manifest at `path` (see [`TestContext::set_sources`]).
pub fn set_manifest_sources(path: &Path, sources_toml: &str) {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(_) => {
            fs_err::create_dir_all(path.parent().expect("manifest has a parent"))
                .expect("create env dir");
            "version = 1\n\n[install]\n".to_owned()
        }
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    let sources: toml_edit::DocumentMut = sources_toml.parse().expect("sources TOML");
    assert!(
        sources.contains_key("sources"),
        "sources TOML defines no [sources.*]"
    );
    // Appended as text rather than inserted: toml_edit would place the new table
    // among the template's commented examples, which reads as if it moved them.
    doc.remove("sources");
    let text = format!("{}\n\n{}", doc.to_string().trim_end(), sources_toml);
    fs_err::write(path, text).expect("write manifest.toml");
}

/// Runs `cmd` (with a timeout) and panics with its output unless it succeeds.
pub fn expect_success(cmd: &mut Command) -> Output {
    let output = run_with_timeout(cmd);
    if !output.status.success() {
        panic!("expected success:\n{}", report(cmd, &output));
    }
    output
}

/// Runs `cmd` (with a timeout) and panics with its output unless it fails.
pub fn expect_failure(cmd: &mut Command) -> Output {
    let output = run_with_timeout(cmd);
    if output.status.success() {
        panic!("expected failure:\n{}", report(cmd, &output));
    }
    output
}

/// Runs `cmd`, capturing stdout and stderr; kills it after `CAIRN_TEST_TIMEOUT`
/// seconds (default 600).
pub fn run_with_timeout(cmd: &mut Command) -> Output {
    let timeout = std::env::var("CAIRN_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let shown = describe(cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_until(&mut child, Instant::now() + timeout)
        .unwrap_or_else(|| panic!("`{shown}` did not finish within {timeout:?}; killed it"));
    // A process it left behind (a server it started) may still hold its
    // output open: say so, rather than wait for EOF until CI's timeout.
    let closed_by = Instant::now() + OUTPUT_GRACE;
    while !(stdout.is_finished() && stderr.is_finished()) {
        assert!(
            Instant::now() < closed_by,
            "`{shown}` exited ({status}), but its stdout/stderr stayed open for \
             {OUTPUT_GRACE:?}: a process it started outlived it holding them"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// How long a command's output may stay open after it exits.
const OUTPUT_GRACE: Duration = Duration::from_secs(30);

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn report(cmd: &Command, output: &Output) -> String {
    format!(
        "`{}` exited with {}\n--- stdout\n{}\n--- stderr\n{}",
        describe(cmd),
        output.status,
        stdout_of(output),
        stderr_of(output),
    )
}

/// Captured stdout as text.
pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Captured stderr as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_sources_replaces_only_the_sources_table() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("manifest.toml");
        fs_err::write(
            &path,
            "version = 1\n# keep me\n[install]\nhello.pkg = \"hello\"\n\n\
             [sources.debian]\nurl = \"http://deb.debian.org/debian\"\n",
        )
        .unwrap();
        set_manifest_sources(&path, "[sources.local]\nurl = \"http://127.0.0.1:1\"\n");
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(text.contains("# keep me"), "{text}");
        assert!(text.contains("hello.pkg = \"hello\""), "{text}");
        assert!(!text.contains("deb.debian.org"), "{text}");
        assert!(
            text.contains("[sources.local]\nurl = \"http://127.0.0.1:1\""),
            "{text}"
        );
    }

    #[test]
    fn run_with_timeout_captures_both_streams() {
        let out = run_with_timeout(Command::new("sh").args(["-c", "echo out; echo err >&2"]));
        assert!(out.status.success());
        assert_eq!(stdout_of(&out), "out\n");
        assert_eq!(stderr_of(&out), "err\n");
    }
}
