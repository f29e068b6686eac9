//! Environments for the runtime tests: a manifest with real Debian packages,
//! services and hooks, locked against the machine's mirror, then used the way
//! a user uses it: activated on the host, its services supervised, or shipped
//! into Docker. Also the small probes those tests need: a free port, polling
//! until something holds, a terminal session through `script`, and an
//! unprivileged user.
//!
//! It owns no product logic and asserts nothing about cairn's behaviour; the
//! tests in `tests/runtime.rs` do.

use crate::context::{TestContext, expect_failure, expect_success, run_with_timeout};
use crate::context::{stderr_of, stdout_of};
use crate::images::{Engine, LoadedImage, pipe_into, shared_cache_dir, unique_name};
use crate::tools::describe;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A locked environment in its own test context; its cairn runs share one
/// cache with every runtime test, so real `.deb`s are fetched once.
#[derive(Debug)]
pub struct RuntimeEnv {
    pub ctx: TestContext,
    /// The environment's name and its image's name (unique per test run).
    pub name: String,
}

impl RuntimeEnv {
    /// Writes a manifest installing `packages` plus `tables` (TOML tables such
    /// as `[hook]`, `[services.x]`, `[containerize.config]`), resolves it
    /// against the machine's Debian mirror with `cairn upgrade`, and returns
    /// it; `None` (with a message) when the mirror does not answer.
    pub fn real(test: &str, packages: &[&str], tables: &str) -> Option<RuntimeEnv> {
        let archive = crate::reachable_real_archive()?;
        let ctx = TestContext::new();
        let name = unique_name(&format!("cairn-rt-{test}"));
        let installs: String = packages
            .iter()
            .map(|p| format!("{p}.pkg = \"{p}\"\n"))
            .collect();
        let manifest = format!(
            "version = 1\nname = \"{name}\"\n\n[install]\n{installs}\n{tables}\n\
             [containerize]\nname = \"{name}\"\ntag = \"latest\"\n"
        );
        let path = ctx.manifest_path();
        fs_err::create_dir_all(path.parent().expect("manifest dir")).expect("create env dir");
        fs_err::write(&path, manifest).expect("write manifest.toml");
        ctx.set_sources(&archive.sources_toml());
        let env = RuntimeEnv { ctx, name };
        env.cairn_ok(&["upgrade"]);
        Some(env)
    }

    /// The cache every runtime test shares.
    pub fn shared_cache() -> PathBuf {
        shared_cache_dir("runtime")
    }

    /// `cairn` in the environment (cwd and `CAIRN_ENV`), with the shared cache.
    pub fn cairn(&self) -> Command {
        let mut cmd = self.ctx.cairn();
        cmd.env("CAIRN_CACHE_DIR", Self::shared_cache());
        cmd
    }

    /// `cairn ARGS...`, asserting success.
    pub fn cairn_ok(&self, args: &[&str]) -> Output {
        expect_success(self.cairn().args(args))
    }

    /// `cairn ARGS...`, asserting failure.
    pub fn cairn_err(&self, args: &[&str]) -> Output {
        expect_failure(self.cairn().args(args))
    }

    /// `cairn ARGS...` whatever its outcome.
    pub fn cairn_run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.cairn().args(args))
    }

    /// `cairn containerize -f - | docker load`, asserting both succeed; the
    /// guard removes the image.
    pub fn load_into_docker(&self) -> LoadedImage {
        let mut cairn = self.cairn();
        cairn.args(["containerize", "-f", "-"]);
        let mut load = Engine::Docker.command(&["load"]);
        let (built, loaded) = pipe_into(&mut cairn, &mut load);
        assert!(
            built.status.success() && loaded.status.success(),
            "`cairn containerize -f - | docker load` failed\n--- cairn stderr\n{}\n--- load stderr\n{}",
            stderr_of(&built),
            stderr_of(&loaded),
        );
        Engine::Docker.loaded(&loaded)
    }

    /// The environment's directory (holding `.cairn/`).
    pub fn dir(&self) -> &Path {
        &self.ctx.work
    }
}

/// Stops an environment's host services when dropped, so a failed assertion
/// never leaves a supervisor (and its services) running.
#[derive(Debug)]
pub struct ServicesGuard<'a> {
    pub env: &'a RuntimeEnv,
}

impl Drop for ServicesGuard<'_> {
    fn drop(&mut self) {
        let _ = self.env.cairn_run(&["services", "stop"]);
    }
}

/// A docker volume removed when dropped.
#[derive(Debug)]
pub struct Volume {
    pub name: String,
}

impl Volume {
    /// A new, uniquely named volume.
    pub fn create(prefix: &str) -> Volume {
        let name = unique_name(prefix);
        expect_success(&mut Engine::Docker.command(&["volume", "create", &name]));
        Volume { name }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = run_with_timeout(&mut Engine::Docker.command(&["volume", "rm", "-f", &self.name]));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for services that
/// take their port on the command line rather than binding port 0).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Polls `probe` every 250 ms until it returns `Some`, panicking with `what`
/// and the last `describe_failure()` after `deadline`.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut probe: impl FnMut() -> Option<T>,
    describe_failure: impl Fn() -> String,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        if Instant::now() >= end {
            panic!(
                "timed out after {deadline:?} waiting for {what}\n{}",
                describe_failure()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `command_line` on a pseudo-terminal (`script -qec`), types `input`,
/// and returns everything the terminal showed once the command exits (killed
/// after `timeout`). `script` gives the command a real tty, as `docker run
/// -it` from a user's terminal would.
pub fn terminal_session(command_line: &str, input: &str, timeout: Duration) -> String {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", command_line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = describe(&cmd);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_owned();
    // Typed from a thread: the pty may not read it all before the shell starts.
    let typist = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
        // Keep stdin open a moment: script ends the session on EOF.
        std::thread::sleep(Duration::from_secs(2));
    });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let end = Instant::now() + timeout;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            let seen = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
            panic!("`{shown}` did not finish within {timeout:?}; the terminal showed:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = typist.join();
    String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned()
}

/// The uid of local user `name`, creating it (`useradd -m`) when missing and
/// this process is root. `None`, with a message, when it cannot exist here.
pub fn unprivileged_user(name: &str) -> Option<u32> {
    let uid = || {
        let out = run_with_timeout(Command::new("id").args(["-u", name]));
        out.status
            .success()
            .then(|| stdout_of(&out).trim().parse().ok())
            .flatten()
    };
    if let Some(uid) = uid() {
        return Some(uid);
    }
    if !is_root() {
        eprintln!("skipping: user {name} does not exist and only root can create it");
        return None;
    }
    expect_success(Command::new("useradd").args(["-m", "-s", "/bin/bash", name]));
    uid()
}

/// Whether this process runs as root (from `/proc/self/status`, to avoid a
/// libc dependency for one call).
pub fn is_root() -> bool {
    fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
