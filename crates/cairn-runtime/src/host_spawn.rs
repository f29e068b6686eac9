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
//! A command found nowhere gets a hint naming the packages that ship it
//! (Ubuntu's command-not-found, from the archive's `Contents`): the server
//! answers `hint LINE`s before `notfound`. The server computes them because
//! it lives outside the namespace, where the cache and the network are; the
//! CLI supplies them ([`ServeOptions::hints`]). In run mode the server is
//! started too, but only answers hints: it never runs host commands.
//!
//! Only the activation's own user may use the server: the socket's directory
//! is `0700`, and each connection's peer credentials (`SO_PEERCRED`) are
//! checked, so root or a process that was handed the path cannot make the
//! server run commands either; refusals are logged on the activation's stderr.
//!
//! On a terminal the host command is put in the terminal's foreground (its
//! own process group, as a shell does for a job), so Ctrl-C and full-screen
//! programs reach it; the previous foreground group is restored afterwards.
//! Not handled: stopping a host command with Ctrl-Z. The job bash sees is
//! the client, not the host command (a child of the server, outside bash's
//! session's job table), so a stop would have to be relayed both ways
//! (stopped → client stops itself; `fg` → SIGCONT relayed back, terminal
//! handed over again); a Ctrl-Z'd host command stays stopped until
//! `kill -CONT` from another shell.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::unistd::{Pid, getpgrp, getppid, getuid, isatty, setpgid, tcgetpgrp, tcsetpgrp};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::activate::Env;

/// The variable that names the server's socket inside an activation.
pub const SOCKET_VAR: &str = "CAIRN_HOST_SPAWN";
/// The in-activation command bash's `command_not_found_handle` runs.
pub const CLIENT_COMMAND: &str = "/opt/cairn/bin/cairn _host-spawn";
/// Exit code of a command found nowhere, as bash uses it.
pub const NOT_FOUND: i32 = 127;

/// Gives the hint lines for a command found nowhere.
pub type HintFn = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// What a server offers besides hints, and where the hints come from.
#[derive(Clone)]
pub struct ServeOptions {
    /// Dev mode: run commands the environment lacks on the host. Run mode:
    /// answer hints only.
    pub host_commands: bool,
    /// The hint lines for a command found nowhere (empty when there is none).
    /// Called on the server's request threads; it must answer in about a
    /// second, whatever the network does.
    pub hints: HintFn,
    /// The activation's pid, which the server outlives by no more than a
    /// moment (`--parent`); `None` takes the server's parent at start.
    pub parent: Option<Pid>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("host_commands", &self.host_commands)
            .field("parent", &self.parent)
            .finish_non_exhaustive()
    }
}

/// How the client says a command was found nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundStyle {
    /// As bash does, since bash's `command_not_found_handle` called us:
    /// `bash: CMD: command not found`.
    Bash,
    /// As `cairn activate -- CMD` reports errors: `cairn: command not found: CMD`.
    Cairn,
}

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
/// stdin and no output but its warnings (a refused peer) on our stderr. It
/// stays in this process's namespaces and session.
pub fn start_server(program: &Path, args: &[OsString], socket: HostSocket) -> Result<()> {
    let listener: OwnedFd = socket.listener.into();
    Command::new(program)
        .args(args)
        .stdin(Stdio::from(listener))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(())
}

/// The server loop: the listener is stdin. Serves each connection on a
/// thread until the activation (`options.parent`, else our parent) exits,
/// then removes the socket's directory.
pub fn serve(options: ServeOptions) -> Result<()> {
    let listener = UnixListener::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    serve_on(listener, options)
}

/// [`serve`] on `listener`.
///
/// The activation's pid comes from the activation itself: a command as quick
/// as `nano --version` can exit before this process first asks for its
/// parent, and a parent read then (init) would never change, so the server
/// would outlive the activation holding its stderr, and a caller reading
/// the activation's output to EOF would wait forever. The exit is seen at
/// once through a pidfd; a once-a-second `getppid` check covers kernels
/// without pidfds.
fn serve_on(listener: UnixListener, options: ServeOptions) -> Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let socket = listener.local_addr()?.as_pathname().map(Path::to_path_buf);
    let parent = options.parent.unwrap_or_else(getppid);
    let exited = pidfd_open(parent).ok();
    // Handing the terminal's foreground back and forth must not stop us.
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe { signal(Signal::SIGTTOU, SigHandler::SigIgn) }.map_err(std::io::Error::from)?;
    // A peer that connects and goes away before accept() must not block us.
    listener.set_nonblocking(true)?;
    let host_path = std::env::var("PATH").unwrap_or_else(|_| crate::ENV_PATH.to_string());
    // Checked after the pidfd is open, so an exit in between is not missed.
    while getppid() == parent {
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &exited {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        if fds.get(1).is_some_and(ready) {
            break;
        }
        if !ready(&fds[0]) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                // The listener's O_NONBLOCK is not inherited by accept(2).
                let host_path = host_path.clone();
                let options = options.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve_one(stream, &host_path, &options) {
                        tracing::debug!("host-spawn request failed: {e}");
                    }
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(dir) = socket.as_deref().and_then(Path::parent) {
        let _ = fs_err::remove_dir_all(dir);
    }
    Ok(())
}

/// The uid of the process at the other end of `stream`, as the kernel saw
/// it connect (not what it claims).
fn peer_uid(stream: &UnixStream) -> Result<u32> {
    let credentials =
        nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(std::io::Error::from)?;
    Ok(credentials.uid() as u32)
}

/// One request: check the peer, receive stdio and the request, run it (or
/// give the hint), report pid and exit.
fn serve_one(stream: UnixStream, host_path: &str, options: &ServeOptions) -> Result<()> {
    // An accepted socket inherits the listener's one-second timeout.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(None)?;
    let (peer, ours) = (peer_uid(&stream)?, getuid().as_raw());
    if peer != ours {
        tracing::warn!(
            "host-spawn: refused a request from uid {peer}: only uid {ours}, whose activation \
             this is, may run host commands"
        );
        let mut answer = stream;
        writeln!(
            answer,
            "refused uid {peer} is not the activation's user ({ours})"
        )?;
        return Ok(());
    }
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
    if !options.host_commands {
        return answer_not_found(&mut answer, program, options);
    }
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
            return answer_not_found(&mut answer, program, options);
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

/// `hint LINE`s for `program`, then `notfound`. A name with a slash is a
/// path the user typed, not a command a package could provide.
fn answer_not_found(answer: &mut UnixStream, program: &str, options: &ServeOptions) -> Result<()> {
    if !program.contains('/') {
        for line in (options.hints)(program) {
            writeln!(answer, "hint {line}")?;
        }
    }
    writeln!(answer, "notfound")?;
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

/// Prints that `name` was found nowhere, in `style`, then the hint lines.
pub fn report_not_found(name: &str, style: NotFoundStyle, hints: &[String]) {
    match style {
        NotFoundStyle::Bash => eprintln!("bash: {name}: command not found"),
        NotFoundStyle::Cairn => eprintln!("cairn: command not found: {name}"),
    }
    for line in hints {
        eprintln!("{line}");
    }
}

/// Runs `argv` on the host through the server at `socket`, with this
/// process's stdio and working directory and `env`, and returns its exit
/// code ([`NOT_FOUND`] when the host lacks it too, or the server only gives
/// hints, after saying so in `style` with the server's hint).
pub fn run_on_host(socket: &Path, argv: &[String], env: &Env, style: NotFoundStyle) -> Result<i32> {
    let name = argv.first().cloned().unwrap_or_default();
    let stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) => {
            // The server is gone (its activation ended, or it was never
            // started): the command is still not found, which is the news.
            tracing::debug!(
                "cannot reach the host-spawn server at {}: {e}",
                socket.display()
            );
            report_not_found(&name, style, &[]);
            return Ok(NOT_FOUND);
        }
    };
    let fds = [0, 1, 2];
    // A server that refuses us answers and closes without reading, so a
    // failed send is not the end: its answer says why.
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(b"r")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    );
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
    if let Err(e) = sent
        .map_err(std::io::Error::from)
        .and_then(|_| writeln!(writer, "{json}"))
    {
        tracing::debug!("sending the request to the host-spawn server: {e}");
    }
    // Like system(3): a Ctrl-C meant for the host command must not kill us
    // first and leave it running without anyone reporting its exit.
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe {
        let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGQUIT, SigHandler::SigIgn);
    }
    let mut hints = Vec::new();
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if let Some(code) = line.strip_prefix("exit ") {
            return Ok(code.trim().parse().unwrap_or(1));
        }
        if let Some(hint) = line.strip_prefix("hint ") {
            hints.push(hint.to_string());
            continue;
        }
        if line == "notfound" {
            report_not_found(&name, style, &hints);
            return Ok(NOT_FOUND);
        }
        if let Some(reason) = line.strip_prefix("refused ") {
            eprintln!("cairn: the host-spawn server refused to run {name}: {reason}");
            return Ok(126);
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
/// (`BASH_FUNC_command_not_found_handle%%`) in a host activation.
pub fn bash_handler() -> String {
    format!("() {{ {CLIENT_COMMAND} \"$@\"\n}}")
}

/// A pidfd for `pid`: readable once that process has exited. nix has no
/// wrapper for pidfd_open(2) (Linux 5.3), hence the raw syscall.
fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // (or -1), which is owned by nobody else.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options whose hints name `pkg-of-CMD` and record what was asked.
    fn options(host_commands: bool) -> (ServeOptions, Arc<std::sync::Mutex<Vec<String>>>) {
        let asked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let log = asked.clone();
        let hints = Arc::new(move |cmd: &str| {
            log.lock().unwrap().push(cmd.to_string());
            vec![format!("cairn: {cmd} is in package pkg-of-{cmd}")]
        });
        (
            ServeOptions {
                host_commands,
                hints,
                parent: None,
            },
            asked,
        )
    }

    /// Serves `requests` connections on a thread.
    fn serve_n(
        listener: UnixListener,
        requests: usize,
        options: ServeOptions,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for _ in 0..requests {
                let (stream, _) = listener.accept().unwrap();
                serve_one(stream, "/usr/bin:/bin", &options).unwrap();
            }
        })
    }

    /// The race that hung CI: the activation's command (`nano --version`)
    /// exited before the server first looked at its parent. Given the
    /// activation's pid, a server whose activation is gone stops at once
    /// and removes its socket's directory.
    #[test]
    fn a_server_whose_activation_already_exited_stops_at_once() {
        let socket = bind_socket().unwrap();
        let dir = socket.path.parent().unwrap().to_owned();
        let mut quick = Command::new("true").spawn().unwrap();
        let gone = Pid::from_raw(quick.id() as i32);
        quick.wait().unwrap();
        let (mut options, _) = options(false);
        options.parent = Some(gone);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(serve_on(socket.listener, options).is_ok()));
        let stopped = finished.recv_timeout(std::time::Duration::from_secs(30));
        assert_eq!(stopped, Ok(true), "the server outlived its activation");
        assert!(!dir.exists(), "the socket's directory is left behind");
    }

    #[test]
    fn a_pidfd_is_readable_once_its_process_exits() {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let fd = pidfd_open(Pid::from_raw(child.id() as i32)).unwrap();
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        assert_eq!(
            poll(&mut fds, PollTimeout::ZERO).unwrap(),
            0,
            "still running"
        );
        child.wait().unwrap();
        assert_eq!(poll(&mut fds, PollTimeout::from(5000u16)).unwrap(), 1);
    }

    #[test]
    fn a_host_command_runs_with_our_stdio_cwd_and_exit_code() {
        let socket = bind_socket().unwrap();
        let path = socket.path.clone();
        let (options, asked) = options(true);
        let server = serve_n(socket.listener, 2, options);
        let env = crate::activate::current_env();
        let style = NotFoundStyle::Cairn;
        let argv = ["sh".into(), "-c".into(), "exit 7".into()];
        assert_eq!(run_on_host(&path, &argv, &env, style).unwrap(), 7);
        let argv = ["cairn-no-such-host-command".into()];
        assert_eq!(run_on_host(&path, &argv, &env, style).unwrap(), NOT_FOUND);
        server.join().unwrap();
        // Only the command found nowhere was looked up.
        assert_eq!(*asked.lock().unwrap(), ["cairn-no-such-host-command"]);
        fs_err::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_hints_only_server_never_runs_host_commands() {
        let socket = bind_socket().unwrap();
        let path = socket.path.clone();
        let (options, asked) = options(false);
        let server = serve_n(socket.listener, 2, options);
        let marker = path.parent().unwrap().join("ran");
        let script = format!("touch {}", marker.display());
        let env = crate::activate::current_env();
        let argv = ["sh".into(), "-c".into(), script];
        let code = run_on_host(&path, &argv, &env, NotFoundStyle::Bash).unwrap();
        assert_eq!(code, NOT_FOUND);
        assert!(!marker.exists(), "run mode ran a host command");
        // A path is not a command a package could provide: no lookup.
        let argv = ["./script".into()];
        let code = run_on_host(&path, &argv, &env, NotFoundStyle::Bash).unwrap();
        assert_eq!(code, NOT_FOUND);
        server.join().unwrap();
        assert_eq!(*asked.lock().unwrap(), ["sh"]);
        fs_err::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn without_a_server_a_missing_command_is_plainly_not_found() {
        let env = crate::activate::current_env();
        let argv = ["anything".into()];
        let gone = Path::new("/nonexistent/cairn-host/socket");
        assert_eq!(
            run_on_host(gone, &argv, &env, NotFoundStyle::Bash).unwrap(),
            NOT_FOUND
        );
    }

    /// Another user connecting (root, or anyone handed the socket through a
    /// directory they can enter) is refused and runs nothing. The client is a
    /// thread that changed only its own credentials (the raw syscall, not
    /// glibc's process-wide wrapper), which is what `SO_PEERCRED` records.
    #[test]
    fn another_users_request_is_refused() {
        if !getuid().is_root() {
            eprintln!("skipped: needs root to connect as another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("socket");
        let listener = UnixListener::bind(&path).unwrap();
        // Connecting needs write permission on the socket file.
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (options, asked) = options(true);
        let server = serve_n(listener, 1, options);
        let marker = dir.path().join("ran");
        let script = format!("touch {}", marker.display());
        let client_path = path.clone();
        let code = std::thread::spawn(move || {
            let nobody = 65534 as nix::libc::c_long;
            // SAFETY: setresuid on this thread alone; it only changes our
            // credentials, and the thread ends after this request.
            let changed =
                unsafe { nix::libc::syscall(nix::libc::SYS_setresuid, nobody, nobody, nobody) };
            assert_eq!(changed, 0, "setresuid");
            let env = crate::activate::current_env();
            let argv = ["sh".into(), "-c".into(), script];
            run_on_host(&client_path, &argv, &env, NotFoundStyle::Cairn).unwrap()
        })
        .join()
        .unwrap();
        server.join().unwrap();
        assert_eq!(code, 126);
        assert!(!marker.exists(), "a refused request ran");
        assert!(asked.lock().unwrap().is_empty());
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
