//! Host services: one detached supervisor process per environment, and the
//! client calls the CLI makes to it.
//!
//! Layout of `<run_dir>` (`<dir>/.cairn/run/`):
//! - `supervisor.sock`: control socket; one JSON request line in, one JSON
//!   response line out (`{"op":"start","names":[…]}`, `stop`, `restart`,
//!   `status`, `shutdown`);
//! - `supervisor.lock`: held by the running supervisor (one per environment);
//! - `services.json`: the last known state, rewritten atomically on every change;
//! - `supervisor.log`: the supervisor's own stderr;
//! - `logs/<name>.log`: each service's output, rotated at 10 MiB, 3 kept.
//!
//! The supervisor is a child subreaper, so daemons (`is-daemon = true`) that
//! fork and `setsid` are re-parented to it; see [`crate::process`] for how
//! their pid is found. It exits on `shutdown` (which `stop` with no names
//! sends) or SIGTERM/SIGINT/SIGHUP, stopping services in reverse order first.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::logs::{LOG_KEEP, LOG_MAX_BYTES, copy_log, follow_log};
use crate::output::OutputSink;
use crate::process::{ProcessTable, ServiceLauncher, ServiceState, ServiceStatus};
use crate::{Activation, Result, RuntimeError};

const SOCKET: &str = "supervisor.sock";
const LOCK: &str = "supervisor.lock";
const STATE: &str = "services.json";
const SUPERVISOR_LOG: &str = "supervisor.log";
const LOG_DIR: &str = "logs";
/// Grace per service on the host; there is no outer deadline like docker's.
const HOST_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a client waits for an answer (a stop may take 5 s per service).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// A control request, one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Request {
    Start { names: Vec<String> },
    Stop { names: Vec<String> },
    Restart { names: Vec<String> },
    Status,
    Shutdown,
}

/// The answer to a [`Request`], one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(crate) enum Response {
    Ok { services: Vec<ServiceStatus> },
    UnknownService { name: String, known: Vec<String> },
    Error { message: String },
}

/// `services.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateFile {
    supervisor_pid: u32,
    services: Vec<ServiceStatus>,
}

pub(crate) enum Event {
    Signal(Signal),
    Request(Request, Sender<Response>),
}

/// Path of the log of service `name`.
pub fn log_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(LOG_DIR).join(format!("{name}.log"))
}

/// The supervisor loop that `cairn services _supervise` runs: serves the
/// socket until shutdown. Starts no service by itself: the CLI sends `start`
/// once [`spawn_supervisor`] returns.
pub fn supervise(run_dir: &Path, activation: &Activation, launcher: ServiceLauncher) -> Result<()> {
    fs_err::create_dir_all(run_dir.join(LOG_DIR))?;
    let lock = fs_err::File::create(run_dir.join(LOCK))?;
    if lock.file().try_lock().is_err() {
        return Err(RuntimeError::SupervisorRunning {
            run_dir: run_dir.to_path_buf(),
        });
    }
    let socket = run_dir.join(SOCKET);
    // We hold the lock, so a socket file left here belongs to a dead supervisor.
    let _ = fs_err::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;
    let (tx, rx) = mpsc::channel();
    crate::signals::route_signals(tx.clone(), Event::Signal)?;
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("cannot become a child subreaper, daemons may be lost: {e}");
    }
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || serve_socket(listener, tx))?;
    let sink = OutputSink::LogDir {
        dir: run_dir.join(LOG_DIR),
        max_bytes: LOG_MAX_BYTES,
        keep: LOG_KEEP,
    };
    let mut table = ProcessTable::new(&activation.services, launcher, sink, true);
    write_state(run_dir, &table)?;
    run_loop(run_dir, &mut table, &rx)?;
    let _ = fs_err::remove_file(&socket);
    table.flush_output(Instant::now() + Duration::from_millis(500));
    write_state(run_dir, &table)?;
    drop(lock);
    Ok(())
}

fn run_loop(run_dir: &Path, table: &mut ProcessTable, rx: &mpsc::Receiver<Event>) -> Result<()> {
    loop {
        let mut changed = false;
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Event::Signal(Signal::SIGCHLD)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Signal(_)) => {
                stop_in_reverse(table, &(0..table.names().len()).collect::<Vec<_>>());
                return Ok(());
            }
            Ok(Event::Request(request, reply)) => {
                let shutdown = request == Request::Shutdown;
                let response = handle_request(table, request);
                write_state(run_dir, table)?;
                let _ = reply.send(response);
                if shutdown {
                    return Ok(());
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        changed |= table.reap();
        if changed {
            write_state(run_dir, table)?;
        }
    }
}

pub(crate) fn handle_request(table: &mut ProcessTable, request: Request) -> Response {
    let result = match request {
        Request::Status => Ok(()),
        Request::Start { names } => table.select(&names).and_then(|ids| start_all(table, &ids)),
        Request::Stop { names } => table.select(&names).map(|ids| stop_in_reverse(table, &ids)),
        Request::Restart { names } => table.select(&names).and_then(|ids| {
            stop_in_reverse(table, &ids);
            start_all(table, &ids)
        }),
        Request::Shutdown => {
            stop_in_reverse(table, &(0..table.names().len()).collect::<Vec<_>>());
            Ok(())
        }
    };
    match result {
        Ok(()) => {
            table.reap();
            Response::Ok {
                services: table.statuses(),
            }
        }
        Err(RuntimeError::UnknownService { name, known }) => {
            Response::UnknownService { name, known }
        }
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

fn start_all(table: &mut ProcessTable, ids: &[usize]) -> Result<()> {
    ids.iter().try_for_each(|&idx| table.start(idx))
}

fn stop_in_reverse(table: &mut ProcessTable, ids: &[usize]) {
    let order: Vec<usize> = ids.iter().rev().copied().collect();
    table.stop(
        &order,
        HOST_STOP_GRACE,
        Instant::now() + Duration::from_secs(60),
    );
}

fn write_state(run_dir: &Path, table: &ProcessTable) -> Result<()> {
    let state = StateFile {
        supervisor_pid: std::process::id(),
        services: table.statuses(),
    };
    let json = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
    cairn_store::write_atomic(run_dir.join(STATE), |f| f.write_all(&json))?;
    Ok(())
}

/// The control socket of a supervisor in the foreground (the in-image PID 1),
/// so that `services status|start|stop|restart` from `docker exec` reach it as
/// they reach the host's. `false` (logged) when `run_dir` is not writable, as
/// on a read-only root filesystem: the services run all the same.
pub(crate) fn listen_in_foreground(run_dir: &Path, tx: Sender<Event>) -> bool {
    let bind = || -> Result<()> {
        fs_err::create_dir_all(run_dir)?;
        let socket = run_dir.join(SOCKET);
        // PID 1 is the only supervisor a container has; a socket here is stale.
        let _ = fs_err::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || serve_socket(listener, tx))?;
        Ok(())
    };
    match bind() {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("no control socket in {}: {e}", run_dir.display());
            false
        }
    }
}

/// Accepts control connections one at a time and relays them to the main loop.
fn serve_socket(listener: UnixListener, tx: Sender<Event>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Err(e) = serve_connection(stream, &tx) {
            tracing::debug!("control connection failed: {e}");
        }
    }
}

fn serve_connection(stream: UnixStream, tx: &Sender<Event>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (reply_tx, reply_rx) = mpsc::channel();
            if tx.send(Event::Request(request, reply_tx)).is_err() {
                return Ok(());
            }
            reply_rx.recv().unwrap_or(Response::Error {
                message: "the supervisor is shutting down".into(),
            })
        }
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    (&stream).write_all(&out)
}

fn request(run_dir: &Path, request: &Request) -> Result<Vec<ServiceStatus>> {
    let not_running = || RuntimeError::SupervisorNotRunning {
        run_dir: run_dir.to_path_buf(),
    };
    let stream = UnixStream::connect(run_dir.join(SOCKET)).map_err(|_| not_running())?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    match serde_json::from_str::<Response>(&answer) {
        Ok(Response::Ok { services }) => Ok(services),
        Ok(Response::UnknownService { name, known }) => {
            Err(RuntimeError::UnknownService { name, known })
        }
        Ok(Response::Error { message }) => Err(RuntimeError::SupervisorProtocol(message)),
        Err(e) => Err(RuntimeError::SupervisorProtocol(format!("{e}: {answer:?}"))),
    }
}

/// Whether a supervisor answers on `run_dir`'s socket.
pub fn is_running(run_dir: &Path) -> bool {
    UnixStream::connect(run_dir.join(SOCKET)).is_ok()
}

/// Starts the detached supervisor unless one is running: runs `cairn_exe
/// args…` (which must end up in [`supervise`] for `run_dir`) in a new session
/// with stdio on `<run_dir>/supervisor.log`, and waits until it answers.
pub fn spawn_supervisor(cairn_exe: &Path, args: &[OsString], run_dir: &Path) -> Result<()> {
    if is_running(run_dir) {
        return Ok(());
    }
    fs_err::create_dir_all(run_dir)?;
    let log_path = run_dir.join(SUPERVISOR_LOG);
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut cmd = Command::new(cairn_exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.file().try_clone()?)
        .stderr(log.into_file());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent;
    // a new session detaches the supervisor from the terminal's signals.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn()?;
    let failed = |message: String| RuntimeError::SupervisorStart {
        message,
        log: log_path.clone(),
    };
    let start = Instant::now();
    loop {
        if is_running(run_dir) {
            // Reap it whenever it exits, should this process outlive it.
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            // Lost a race with another `services start`: fine if that one is up.
            if is_running(run_dir) {
                return Ok(());
            }
            return Err(failed(format!("it exited with {status}")));
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(failed("no answer after 10 s".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `names` (all when empty); returns every service's status.
pub fn start(run_dir: &Path, names: &[String]) -> Result<Vec<ServiceStatus>> {
    request(
        run_dir,
        &Request::Start {
            names: names.to_vec(),
        },
    )
}

/// Stops `names` in reverse declaration order. With no names, stops all and
/// the supervisor exits.
pub fn stop(run_dir: &Path, names: &[String]) -> Result<Vec<ServiceStatus>> {
    if names.is_empty() {
        return request(run_dir, &Request::Shutdown);
    }
    request(
        run_dir,
        &Request::Stop {
            names: names.to_vec(),
        },
    )
}

/// Stops then starts `names` (all when empty).
pub fn restart(run_dir: &Path, names: &[String]) -> Result<Vec<ServiceStatus>> {
    request(
        run_dir,
        &Request::Restart {
            names: names.to_vec(),
        },
    )
}

/// Status of every service. With no supervisor running, the last recorded
/// state, where nothing is running any more.
pub fn status(run_dir: &Path) -> Result<Vec<ServiceStatus>> {
    match request(run_dir, &Request::Status) {
        Err(RuntimeError::SupervisorNotRunning { .. }) => recorded_status(run_dir),
        other => other,
    }
}

fn recorded_status(run_dir: &Path) -> Result<Vec<ServiceStatus>> {
    let path = run_dir.join(STATE);
    let text = match fs_err::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RuntimeError::SupervisorNotRunning {
                run_dir: run_dir.to_path_buf(),
            });
        }
        other => other?,
    };
    let state: StateFile =
        serde_json::from_str(&text).map_err(|e| RuntimeError::BadActivation {
            path: path.clone(),
            message: e.to_string(),
        })?;
    Ok(state.services.into_iter().map(orphaned).collect())
}

/// A recorded status whose supervisor is gone: nothing can still be running.
fn orphaned(mut status: ServiceStatus) -> ServiceStatus {
    if matches!(status.state, ServiceState::Running | ServiceState::Starting) {
        status.state = ServiceState::Stopped;
    }
    status.pid = None;
    status.uptime_secs = None;
    status
}

/// Copies the log of service `name` to `out` (rotations first); with `follow`,
/// keeps copying new output until the supervisor exits.
pub fn logs(run_dir: &Path, name: &str, follow: bool, out: &mut dyn Write) -> Result<()> {
    let known: Vec<String> = recorded_status(run_dir)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    if !known.iter().any(|k| k == name) {
        return Err(RuntimeError::UnknownService {
            name: name.to_string(),
            known,
        });
    }
    let path = log_path(run_dir, name);
    if follow {
        let socket = run_dir.join(SOCKET);
        follow_log(&path, LOG_KEEP, out, &|| socket.exists())?;
    } else {
        copy_log(&path, LOG_KEEP, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines_are_stable() {
        let line = serde_json::to_string(&Request::Start {
            names: vec!["db".into()],
        })
        .unwrap();
        assert_eq!(line, r#"{"op":"start","names":["db"]}"#);
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"op":"status"}"#
        );
        let unknown = Response::UnknownService {
            name: "x".into(),
            known: vec!["db".into()],
        };
        let text = serde_json::to_string(&unknown).unwrap();
        assert_eq!(
            text,
            r#"{"result":"unknown_service","name":"x","known":["db"]}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), unknown);
    }

    #[test]
    fn recorded_state_without_supervisor_shows_nothing_running() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            status(tmp.path()),
            Err(RuntimeError::SupervisorNotRunning { .. })
        ));
        let state = StateFile {
            supervisor_pid: 1,
            services: vec![ServiceStatus {
                name: "db".into(),
                state: ServiceState::Running,
                pid: Some(5),
                uptime_secs: Some(3),
                exit_code: None,
                started_at: Some(100),
            }],
        };
        fs_err::write(tmp.path().join(STATE), serde_json::to_vec(&state).unwrap()).unwrap();
        let st = status(tmp.path()).unwrap();
        assert_eq!(
            (st[0].state, st[0].pid, st[0].started_at),
            (ServiceState::Stopped, None, Some(100))
        );
        let err = logs(tmp.path(), "web", false, &mut Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "unknown service 'web'; known services: db");
        let mut out = Vec::new();
        logs(tmp.path(), "db", false, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn client_without_supervisor_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let err = start(tmp.path(), &[]).unwrap_err();
        assert!(
            matches!(err, RuntimeError::SupervisorNotRunning { .. }),
            "{err}"
        );
        assert!(!is_running(tmp.path()));
    }
}
