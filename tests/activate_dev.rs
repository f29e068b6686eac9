//! `cairn activate` in dev mode (the default on the host), driven as a user
//! drives it: an interactive shell in tmux (`send-keys`, `capture-pane`).
//! The environment is added to the user's world, not swapped in: their
//! `~/.bashrc` runs cleanly, host directories (a project tree outside
//! `$HOME`, `/usr/local`, `/run`'s sockets) stay, commands the environment
//! lacks run on the host (`docker`, a tool in `/usr/local/bin`), and the
//! environment's own packages win on PATH, and a command found nowhere
//! names the package that ships it (bookworm's `Contents`). `--mode run`
//! keeps the isolated rootfs.
//!
//! Needs Debian's archive and tmux (skipped locally with a message, a
//! failure under CI=true); the `/usr/local/bin` tool needs root (CI is).

use cairn_tests::images::unique_name;
use cairn_tests::runtime_env::RuntimeEnv;
use cairn_tests::{require_tool, stderr_of, stdout_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const HOOK: &str = "[hook]\non-activate = '''\n  echo hook-says-hi\n'''\n";

/// A file removed when dropped (the host tool the test installs).
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = fs_err::remove_file(&self.0);
    }
}

/// A tmux server of its own (`-L`), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = cairn_tests::context::expect_success(&mut self.command(args));
        stdout_of(&out)
    }

    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-500", "-t", "main"])
    }

    /// Waits until the pane shows `text`, or fails showing the pane.
    fn wait_for(&self, text: &str, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            let pane = self.pane();
            if pane.contains(text) {
                return pane;
            }
            assert!(
                Instant::now() < end && !pane.contains("activation-ended-"),
                "the pane never showed {text:?}:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn type_line(&self, line: &str) {
        self.run(&["send-keys", "-t", "main", "-l", line]);
        self.run(&["send-keys", "-t", "main", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]).output();
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A host tool in `/usr/local/bin`, or None (said, or a failure on CI) when
/// this user cannot write there.
fn host_tool() -> Option<(String, Removed)> {
    let name = unique_name("cairn-host-tool");
    let path = PathBuf::from("/usr/local/bin").join(&name);
    if fs_err::write(&path, "").is_err() {
        assert!(
            !cairn_tests::tools::in_ci(),
            "CI=true needs root to install a host tool in /usr/local/bin"
        );
        eprintln!("not checking /usr/local/bin: it is not writable by this user");
        return None;
    }
    let guard = Removed(path.clone());
    write_script(&path, "echo host-tool-ran");
    Some((name, guard))
}

#[test]
fn dev_mode_shell_in_tmux_keeps_the_users_world() {
    if !require_tool("tmux") {
        return;
    }
    let Some(env) = RuntimeEnv::real("dev", &["hello"], HOOK) else {
        return;
    };
    let home = &env.ctx.home;
    // The user's real ~/.bashrc (Debian's), plus lines that need xargs and sed.
    let skel = fs_err::read_to_string("/etc/skel/.bashrc").unwrap_or_default();
    fs_err::write(
        home.join(".bashrc"),
        format!(
            "{skel}\nexport FROM_BASHRC=\"$(echo a b | xargs -n1 | sed 's/a/x/' | tr '\\n' ' ')\"\n"
        ),
    )
    .expect("write .bashrc");
    // A `hello` earlier on the user's PATH than /usr/bin: the environment's wins.
    let user_bin = home.join("bin");
    fs_err::create_dir_all(&user_bin).expect("mkdir ~/bin");
    write_script(&user_bin.join("hello"), "echo host-hello");
    let tool = host_tool();
    // Which package ships a command, from bookworm's Contents (built once
    // here, a 45 MB download; the shell's hint then reads the cached table).
    let hint = cairn_tests::tools::find_on_path("cowsay").is_none();
    if hint {
        let out = env.cairn_ok(&["provides", "cowsay"]);
        assert_eq!(stdout_of(&out), "cowsay\n", "{}", stderr_of(&out));
    }
    // A project tree outside $HOME and /tmp: this crate's own directory.
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("activate_dev.rs");

    let tmux = Tmux {
        socket: unique_name("cairn-dev"),
    };
    let mut line = String::from("env -i");
    for (key, value) in env.cairn().get_envs() {
        if let (Some(value), false) = (value, key == "TERM") {
            line.push_str(&format!(
                " {}={}",
                key.to_string_lossy(),
                cairn_tests::images::shell_quote(&value.to_string_lossy())
            ));
        }
    }
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        user_bin.display()
    );
    line.push_str(&format!(
        " PATH={path} TERM=xterm SHELL=/bin/bash {} activate; echo activation-ended-$?; sleep 600",
        cairn_tests::TestContext::cairn_bin().display()
    ));
    let work = env.dir().to_string_lossy().into_owned();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "main",
        "-x",
        "200",
        "-y",
        "60",
        "-c",
        &work,
        &line,
    ]);
    let prompt = format!("[{}]", env.name);
    tmux.wait_for(&prompt, Duration::from_secs(300));

    tmux.type_line("echo \"bashrc=$FROM_BASHRC\"");
    tmux.type_line("hello");
    tmux.type_line(&format!("ls {}", project.display()));
    tmux.type_line("type -P hello; echo \"path=$PATH\"");
    if let Some((name, _)) = &tool {
        tmux.type_line(name);
    }
    let docker = cairn_tests::tools::find_on_path("docker").is_some();
    if docker {
        tmux.type_line("docker version --format 'docker-client={{.Client.Version}}'");
    }
    if hint {
        // Found neither in the environment nor on the host.
        tmux.type_line("cowsay hi; echo \"cowsay-exit=$?\"");
    }
    tmux.type_line("exit 0");
    let pane = tmux.wait_for("activation-ended-0", Duration::from_secs(60));

    assert!(pane.contains("hook-says-hi"), "the hook's output:\n{pane}");
    assert!(pane.contains("bashrc=x b "), "~/.bashrc ran:\n{pane}");
    let not_found = usize::from(hint);
    assert_eq!(
        pane.matches("command not found").count(),
        not_found,
        "only the missing cowsay is not found:\n{pane}"
    );
    if hint {
        assert!(
            pane.contains(
                "bash: cowsay: command not found\n\
                 cairn: cowsay is in package cowsay: cairn install cowsay\n\
                 cowsay-exit=127"
            ),
            "the package hint:\n{pane}"
        );
    }
    assert!(
        pane.contains("Hello, world!") && !pane.contains("host-hello"),
        "{pane}"
    );
    assert!(pane.contains("\n/usr/bin/hello"), "{pane}");
    assert!(
        pane.contains(&format!("\n{}", project.display())),
        "a project outside $HOME is visible:\n{pane}"
    );
    if tool.is_some() {
        assert!(pane.contains("\nhost-tool-ran"), "/usr/local/bin:\n{pane}");
    }
    if docker {
        assert!(
            pane.contains("docker-client="),
            "docker on the host:\n{pane}"
        );
    }
}

/// The same checks without a terminal, plus what run mode hides.
#[test]
fn dev_mode_commands_reach_the_host_and_run_mode_does_not() {
    if !require_tool("tmux") {
        return;
    }
    let Some(env) = RuntimeEnv::real("devcmd", &["hello"], "") else {
        return;
    };
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("activate_dev.rs");
    let script = format!(
        "hello; test -e {} && echo project-visible; \
         test -S /var/run/docker.sock && echo docker-socket; true",
        project.display()
    );
    let socket = Path::new("/var/run/docker.sock").exists();
    let out = env.cairn_ok(&["activate", "--", "bash", "-c", &script]);
    let expected = format!(
        "Hello, world!\nproject-visible\n{}",
        if socket { "docker-socket\n" } else { "" }
    );
    assert_eq!(stdout_of(&out), expected, "{}", stderr_of(&out));
    // A command the environment lacks, run directly and from a bash script.
    let out = env.cairn_ok(&["activate", "--", "tmux", "-V"]);
    assert!(stdout_of(&out).starts_with("tmux "), "{}", stderr_of(&out));
    let out = env.cairn_ok(&["activate", "--", "bash", "-c", "tmux -V | sed s/tmux/TMUX/"]);
    assert!(stdout_of(&out).starts_with("TMUX "), "{}", stderr_of(&out));
    let out = env.cairn_run(&["activate", "--", "cairn-no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("command not found: cairn-no-such-command"),
        "{}",
        stderr_of(&out)
    );

    // Run mode: only the environment.
    let out = env.cairn_run(&["activate", "--mode", "run", "--", "bash", "-c", &script]);
    assert_eq!(stdout_of(&out), "Hello, world!\n", "{}", stderr_of(&out));
    let out = env.cairn_run(&["activate", "--mode", "run", "--", "tmux", "-V"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr_of(&out));
}
