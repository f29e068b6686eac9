//! Host commands from inside a dev-mode activation (distrobox's host-spawn
//! idea): a small server that stays in the host's mount namespace runs, on
//! request, a command the environment lacks, with the caller's arguments,
//! working directory, environment and stdio.
//!
//! Why a server rather than host binaries in the rootfs: a host program
//! needs the host's own libraries, interpreters and data files (`/usr/lib`,
//! `/usr/share`, `/etc`), which inside the activation are the environment's,
//! possibly of another Debian release. Run where it was installed, `docker`,
//! `jq` or `tmux` behave exactly as in the user's own shell.
//!
//! The activation (see `host.rs`) binds a listening socket in a private
//! `0700` directory under `/tmp` (bound into every activation), then starts
//! `cairn _host-spawn --serve` with that listener as its stdin before it
//! enters the namespace. Bash's `command_not_found_handle` (exported into
//! the activation) and a direct `cairn activate -- CMD` that the environment
//! lacks call [`run_on_host`], which sends the caller's stdin, stdout and
//! stderr (`SCM_RIGHTS`) and a JSON request; the server answers `pid N`, then
//! `exit CODE` (`notfound` when the host lacks the command too). The server
//! exits, removing its directory, when the activation it served is gone.
//!
//! On a terminal the host command is put in the terminal's foreground (its
//! own process group, as a shell does for a job), so Ctrl-C and full-screen
//! programs reach it; the previous foreground group is restored afterwards.
//! Not handled: stopping a host command with Ctrl-Z.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::unistd::{Pid, getpgrp, getppid, isatty, setpgid, tcgetpgrp, tcsetpgrp};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::activate::Env;

/// The variable that names the server's socket inside an activation.
pub const SOCKET_VAR: &str = "CAIRN_HOST_SPAWN";
/// The in-activation command bash's `command_not_found_handle` runs.
pub const CLIENT_COMMAND: &str = "/opt/cairn/bin/cairn _host-spawn";
/// Exit code of a command found nowhere, as bash uses it.
pub const NOT_FOUND: i32 = 127;

/// What the client asks the server to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SpawnRequest {
    argv: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

/// A listening socket in a fresh private directory, before the server runs.
#[derive(Debug)]
pub struct HostSocket {
    pub path: PathBuf,
    pub listener: UnixListener,
}

/// Creates `/tmp/cairn-host.XXXXXX/socket` (the directory is `0700`, so only
/// this user can connect) and listens on it.
pub fn bind_socket() -> Result<HostSocket> {
    let dir = tempfile::Builder::new()
        .prefix("cairn-host.")
        .tempdir_in("/tmp")?
        .keep();
    // Before the socket exists: only this user may connect to it.
    fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join("socket");
    let listener = UnixListener::bind(&path)?;
    Ok(HostSocket { path, listener })
}

/// Starts `program ARGS…` (the server command) with the listener as its
/// stdin and no output. It stays in this process's namespaces and session.
pub fn start_server(program: &Path, args: &[OsString], socket: HostSocket) -> Result<()> {
    let listener: OwnedFd = socket.listener.into();
    Command::new(program)
        .args(args)
        .stdin(Stdio::from(listener))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(())
}

/// The server loop: the listener is stdin. Serves each connection on a
/// thread until its parent (the activation) exits, then removes the socket's
/// directory.
pub fn serve() -> Result<()> {
    let listener = UnixListener::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let socket = listener.local_addr()?.as_pathname().map(Path::to_path_buf);
    let parent = getppid();
    // Handing the terminal's foreground back and forth must not stop us.
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe { signal(Signal::SIGTTOU, SigHandler::SigIgn) }.map_err(std::io::Error::from)?;
    // accept() honours SO_RCVTIMEO on Linux: it waits for a request without
    // polling, and wakes once a second to see whether the activation is gone.
    let timeout = nix::sys::time::TimeVal::new(1, 0);
    nix::sys::socket::setsockopt(
        &listener,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &timeout,
    )
    .map_err(std::io::Error::from)?;
    let host_path = std::env::var("PATH").unwrap_or_else(|_| crate::ENV_PATH.to_string());
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let host_path = host_path.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve_one(stream, &host_path) {
                        tracing::debug!("host-spawn request failed: {e}");
                    }
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if getppid() != parent {
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(dir) = socket.as_deref().and_then(Path::parent) {
        let _ = fs_err::remove_dir_all(dir);
    }
    Ok(())
}

/// One request: receive stdio and the request, run it, report pid and exit.
fn serve_one(stream: UnixStream, host_path: &str) -> Result<()> {
    // An accepted socket inherits the listener's one-second timeout.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(None)?;
    let fds = receive_fds(&stream)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let request: SpawnRequest =
        serde_json::from_str(&line).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut answer = stream;
    let [stdin, stdout, stderr] = fds;
    let terminal = isatty(stdin.as_fd()).unwrap_or(false);
    // Kept to hand the terminal back after the command (its own copy of
    // stdin goes with the child's Stdio).
    let tty = match terminal {
        true => Some(stdin.try_clone()?),
        false => None,
    };
    let foreground = tty.as_ref().and_then(|t| tcgetpgrp(t.as_fd()).ok());
    let Some((program, args)) = request.argv.split_first() else {
        writeln!(answer, "notfound")?;
        return Ok(());
    };
    let cwd = if request.cwd.is_dir() {
        request.cwd.clone()
    } else {
        PathBuf::from("/")
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(request.env.iter().filter(|(k, _)| k != "PATH").cloned())
        .env("PATH", host_path)
        .current_dir(cwd)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    // SAFETY: fd 0 is the child's stdin (the request's) by the time the hook
    // below runs; the borrow is only used there.
    let child_stdin = unsafe { BorrowedFd::borrow_raw(0) };
    // SAFETY: setpgid, tcsetpgrp and signal are async-signal-safe syscalls
    // on the child's own state; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            if terminal {
                // SIGTTOU is ignored (inherited from the server), so this
                // background process may take the terminal's foreground.
                let _ = tcsetpgrp(child_stdin, getpgrp());
            }
            signal(Signal::SIGTTOU, SigHandler::SigDfl)?;
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            writeln!(answer, "notfound")?;
            return Ok(());
        }
        Err(e) => {
            writeln!(answer, "error {e}")?;
            return Ok(());
        }
    };
    writeln!(answer, "pid {}", child.id())?;
    let status = child.wait()?;
    if let (Some(tty), Some(group)) = (&tty, foreground) {
        let _ = tcsetpgrp(tty.as_fd(), group);
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    writeln!(answer, "exit {code}")?;
    Ok(())
}

/// The three descriptors sent with the request's first byte.
fn receive_fds(stream: &UnixStream) -> Result<[OwnedFd; 3]> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let [a, b, c] = fds[..]
        {
            // SAFETY: the kernel just installed these descriptors in this
            // process for us; nothing else owns them.
            return Ok(unsafe {
                [
                    OwnedFd::from_raw_fd(a),
                    OwnedFd::from_raw_fd(b),
                    OwnedFd::from_raw_fd(c),
                ]
            });
        }
    }
    Err(std::io::Error::other("a host-spawn request came without its stdio").into())
}

/// Runs `argv` on the host through the server at `socket`, with this
/// process's stdio and working directory and `env`, and returns its exit
/// code ([`NOT_FOUND`] when the host lacks it too, after saying so).
pub fn run_on_host(socket: &Path, argv: &[String], env: &Env) -> Result<i32> {
    let name = argv.first().cloned().unwrap_or_default();
    let stream = UnixStream::connect(socket)?;
    let fds = [0, 1, 2];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(b"r")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    let request = SpawnRequest {
        argv: argv.to_vec(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        env: env
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
    };
    let mut writer = stream.try_clone()?;
    let json = serde_json::to_string(&request).map_err(|e| std::io::Error::other(e.to_string()))?;
    writeln!(writer, "{json}")?;
    // Like system(3): a Ctrl-C meant for the host command must not kill us
    // first and leave it running without anyone reporting its exit.
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe {
        let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGQUIT, SigHandler::SigIgn);
    }
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if let Some(code) = line.strip_prefix("exit ") {
            return Ok(code.trim().parse().unwrap_or(1));
        }
        if line == "notfound" {
            eprintln!("cairn: command not found: {name} (not in the environment, nor on the host)");
            return Ok(NOT_FOUND);
        }
        if let Some(error) = line.strip_prefix("error ") {
            eprintln!("cairn: cannot run {name} on the host: {error}");
            return Ok(126);
        }
    }
    Err(std::io::Error::other(format!(
        "the host-spawn server stopped while running {name}"
    ))
    .into())
}

/// The `command_not_found_handle` bash imports from the environment
/// (`BASH_FUNC_command_not_found_handle%%`) in dev mode.
pub fn bash_handler() -> String {
    format!("() {{ {CLIENT_COMMAND} \"$@\"\n}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_command_runs_with_our_stdio_cwd_and_exit_code() {
        let socket = bind_socket().unwrap();
        let path = socket.path.clone();
        let listener = socket.listener;
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve_one(stream, "/usr/bin:/bin").unwrap();
            let (stream, _) = listener.accept().unwrap();
            serve_one(stream, "/usr/bin:/bin").unwrap();
        });
        let env = crate::activate::current_env();
        let code = run_on_host(&path, &["sh".into(), "-c".into(), "exit 7".into()], &env).unwrap();
        assert_eq!(code, 7);
        let code = run_on_host(&path, &["cairn-no-such-host-command".into()], &env).unwrap();
        assert_eq!(code, NOT_FOUND);
        server.join().unwrap();
        fs_err::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_socket_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let socket = bind_socket().unwrap();
        let dir = socket.path.parent().unwrap().to_path_buf();
        let mode = fs_err::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        fs_err::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_handler_is_a_bash_function_bash_imports() {
        let out = Command::new("bash")
            .args(["-c", "declare -f command_not_found_handle"])
            .env("BASH_FUNC_command_not_found_handle%%", bash_handler())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("/opt/cairn/bin/cairn _host-spawn"), "{text}");
    }
}
