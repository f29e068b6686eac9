//! The binary's own front door: version, help, completions and man pages come
//! from the clap definitions. Living in this package also makes `cargo nextest
//! run --workspace` build `cairn` before the end-to-end suite needs it.

use std::process::Command;

fn cairn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .expect("run cairn")
}

#[test]
fn version_and_help_name_every_command() {
    let version = cairn(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cairn "));
    let help = String::from_utf8_lossy(&cairn(&["--help"]).stdout).into_owned();
    for command in [
        "init",
        "install",
        "uninstall",
        "list",
        "search",
        "show",
        "upgrade",
        "edit",
        "containerize",
        "activate",
        "services",
        "build",
        "container",
    ] {
        assert!(
            help.contains(command),
            "`cairn --help` lacks {command}:\n{help}"
        );
    }
    let sub = cairn(&["help", "containerize"]);
    assert!(String::from_utf8_lossy(&sub.stdout).contains("--runtime"));
}

#[test]
fn completions_and_man_pages_are_generated() {
    let bash = cairn(&["completions", "bash"]);
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("containerize"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cairn(&["manpages", &dir.path().to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("cairn.1").is_file());
    assert!(dir.path().join("cairn-containerize.1").is_file());
}

#[test]
fn unknown_environment_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["list", "-d"])
        .arg(dir.path())
        .env_remove("CAIRN_ENV")
        .output()
        .expect("run cairn");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no cairn environment"), "{stderr}");
    assert!(stderr.contains("cairn init"), "{stderr}");
}
