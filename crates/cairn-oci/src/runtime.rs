//! Handing an image archive to a local container engine: `docker load` or
//! `podman load`, fed through a pipe so the archive never touches the disk.
//!
//! Which engine to use is found by asking each one on `PATH` for its version.
//! Building archives is `archive.rs`; this module only spawns and reports.

use std::io::{self, BufWriter, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{OciError, Result};

/// A container engine cairn can load images into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRuntime {
    /// `docker` (any version; zstd layers need 23.0 or later).
    Docker,
    /// `podman`.
    Podman,
}

impl ContainerRuntime {
    /// The command name.
    pub fn program(self) -> &'static str {
        match self {
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Podman => "podman",
        }
    }
}

impl std::str::FromStr for ContainerRuntime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "docker" => Ok(ContainerRuntime::Docker),
            "podman" => Ok(ContainerRuntime::Podman),
            other => Err(format!(
                "unknown container engine '{other}' (expected docker or podman)"
            )),
        }
    }
}

/// How long an engine may take to answer `version` before it counts as absent
/// (a docker CLI whose daemon is down hangs for a while before failing).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first of docker, podman that is on `PATH` and answers `version`.
pub fn detect_runtime() -> Result<ContainerRuntime> {
    [ContainerRuntime::Docker, ContainerRuntime::Podman]
        .into_iter()
        .find(|rt| on_path(rt.program()) && answers_version(rt.program()))
        .ok_or(OciError::NoRuntime)
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn answers_version(program: &str) -> bool {
    let child = Command::new(program)
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => wait_with_timeout(child, PROBE_TIMEOUT).is_some_and(|s| s.success()),
        Err(_) => false,
    }
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < timeout => thread::sleep(Duration::from_millis(50)),
            _ => {
                // Killing the child we spawned ourselves, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Runs `<runtime> load`, streams the archive `write` produces into its stdin,
/// and returns the reference it reports (`Loaded image: …`). A failure carries
/// the engine's own error output.
pub fn load_into(
    runtime: ContainerRuntime,
    write: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>,
) -> Result<String> {
    let mut command = Command::new(runtime.program());
    command.arg("load");
    load_with(command, write)
}

fn load_with(
    mut command: Command,
    write: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>,
) -> Result<String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let spawn_error = |source| OciError::Spawn {
        program: program.clone(),
        source,
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    // Both outputs are drained on threads: an engine blocked writing to a full
    // stderr pipe would otherwise stop reading our stdin, and we would deadlock.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let written = match child.stdin.take() {
        Some(stdin) => feed(stdin, write),
        None => Err(io::Error::other("stdin was not piped").into()),
    };
    let status = child.wait().map_err(spawn_error)?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let output = if stderr.trim().is_empty() {
            &stdout
        } else {
            &stderr
        };
        return Err(OciError::LoadFailed {
            program,
            status: status.to_string(),
            stderr: output.trim().to_owned(),
        });
    }
    written?;
    loaded_reference(&stdout).ok_or_else(|| OciError::LoadedRefMissing {
        program,
        stdout: stdout.trim().to_owned(),
    })
}

/// Writes the archive, then closes stdin so the engine sees the end.
fn feed(
    stdin: impl Write + Send,
    write: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>,
) -> Result<()> {
    // Archives come in large chunks (write_archive); small writes are few.
    let mut stdin = BufWriter::with_capacity(64 * 1024, stdin);
    write(&mut stdin)?;
    stdin.flush()?;
    Ok(())
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// The last reference an engine reports: docker prints `Loaded image: x:t`
/// (or `Loaded image ID: sha256:…` for an untagged image), podman
/// `Loaded image: localhost/x:t` (older: `Loaded image(s): …`).
fn loaded_reference(stdout: &str) -> Option<String> {
    stdout.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once("Loaded image")?;
        let (_, reference) = rest.split_once(": ")?;
        let reference = reference.split(',').next()?.trim();
        (!reference.is_empty()).then(|| reference.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loaded_lines_of_both_engines() {
        assert_eq!(
            loaded_reference("Loaded image: demo:v1\n").as_deref(),
            Some("demo:v1")
        );
        let podman =
            "Getting image source signatures\nCopying blob abc\nLoaded image: localhost/demo:v1\n";
        assert_eq!(
            loaded_reference(podman).as_deref(),
            Some("localhost/demo:v1")
        );
        let old = "Loaded image(s): docker.io/library/demo:v1\n";
        assert_eq!(
            loaded_reference(old).as_deref(),
            Some("docker.io/library/demo:v1")
        );
        assert_eq!(
            loaded_reference("Loaded image ID: sha256:abcd\n").as_deref(),
            Some("sha256:abcd")
        );
        assert_eq!(loaded_reference("nothing here"), None);
    }

    #[test]
    fn parses_runtime_names() {
        assert_eq!("podman".parse(), Ok(ContainerRuntime::Podman));
        assert!("rkt".parse::<ContainerRuntime>().is_err());
    }

    #[test]
    fn load_failure_carries_the_engines_stderr() {
        // A fake engine: a shell script standing in for `docker load`.
        let fake = |script: &str| {
            let mut command = Command::new("sh");
            command.arg("-c").arg(script);
            command
        };
        let failing = fake("cat >/dev/null; echo 'invalid tar header' >&2; exit 1");
        let err = load_with(failing, |w| Ok(w.write_all(b"not a tar")?)).unwrap_err();
        assert!(err.to_string().contains("invalid tar header"), "{err}");
        let working = fake("cat >/dev/null; echo 'Loaded image: demo:v1'");
        assert_eq!(
            load_with(working, |w| Ok(w.write_all(b"x")?)).unwrap(),
            "demo:v1"
        );
        let silent = fake("cat >/dev/null");
        let err = load_with(silent, |_| Ok(())).unwrap_err();
        assert!(matches!(err, OciError::LoadedRefMissing { .. }), "{err}");
    }
}
