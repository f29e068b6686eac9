//! External tools the tests depend on: whether they are installed, and running
//! them with failures that show the command and its output.
//!
//! It does not install anything; `.ci/run` does that on CI.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether `CI=true` (or `CI=1`) is set: missing tools then fail instead of skipping.
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("TRUE") | Ok("True")
    )
}

/// Returns true when `name` is on `PATH`. When it is missing, panics on CI (a
/// test that silently skips there proves nothing) and otherwise prints
/// `skipping: <tool> not installed` and returns false.
pub fn require_tool(name: &str) -> bool {
    if find_on_path(name).is_some() {
        return true;
    }
    if in_ci() {
        panic!("{name} not installed, but CI=true requires it (install it in .ci/run)");
    }
    eprintln!("skipping: {name} not installed");
    false
}

/// The first executable named `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs_err::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `cmd` to completion and panics, showing its stdout and stderr, unless
/// it exits successfully.
pub fn run_checked(cmd: &mut Command) -> Output {
    let shown = describe(cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
    if !output.status.success() {
        panic!(
            "`{shown}` failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    output
}

/// A shell-like rendering of `cmd` for failure messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_a_made_up_tool() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("cairn-no-such-tool-xyz").is_none());
    }

    #[test]
    fn run_checked_returns_output() {
        let out = run_checked(Command::new("sh").args(["-c", "echo hi"]));
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    #[should_panic(expected = "--- stderr\nboom")]
    fn run_checked_shows_stderr_on_failure() {
        run_checked(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]));
    }
}
