//! The in-image entrypoint: `/opt/cairn/bin/cairn entrypoint -- CMD…`.
//!
//! Decides what a container runs, in this order:
//! 1. a command was given → activate, then exec it (its exit code is the container's);
//! 2. no command, and the image's command is `cmd = []` with services → supervise
//!    them in the foreground as PID 1, terminal or not (`docker run -it img`);
//! 3. no command and stdin is a terminal (`docker run -it img`) → an interactive
//!    bash with the profile (error suggesting a command when there is no bash);
//! 4. no command and the environment has services → supervise them as in 2,
//!    prefixing their output, until SIGTERM/SIGINT;
//! 5. otherwise → exec `bash` reading stdin, like `docker run img` of a Debian
//!    image (exits at once when stdin is empty; `docker run -i img < script`
//!    runs the script); without bash, an error suggesting a command.
//!
//! Signals in supervisor mode: SIGTERM and SIGINT stop every service in reverse
//! declaration order (`shutdown.command` where set, else SIGTERM to its process
//! group, SIGKILL after 5 s; everything done within 8 s, inside docker's 10 s)
//! and exit 0. SIGHUP and SIGQUIT are forwarded to every service's group.
//! When all services exit by themselves, the exit code is the first failure's
//! (in declaration order), or 0.

use std::ffi::OsString;
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::activate::{self, Env, current_env, exec_command, exec_interactive, find_program};
use crate::output::OutputSink;
use crate::process::{ProcessTable, ServiceLauncher};
use crate::supervisor::{self, Event, Request};
use crate::{Activation, Result, RuntimeError};

/// Grace period for one service between SIGTERM (or its shutdown command) and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Budget for stopping everything; docker sends SIGKILL after 10 s.
pub const STOP_BUDGET: Duration = Duration::from_secs(8);

/// Runs the container's main process for `activation` with the image's Cmd
/// (or the user's command) as `args`. Returns only in supervisor mode, or on
/// an error; otherwise the process is replaced by the command.
pub fn run_entrypoint(activation: &Activation, args: Vec<OsString>) -> Result<i32> {
    let env = activate::activate(activation, &current_env())?;
    if !args.is_empty() {
        return exec_command(&env, &args).map(|never| match never {});
    }
    let services = !activation.services.is_empty();
    if activate::stdin_is_tty() && !(services && activation.start_services) {
        return exec_interactive(activation, &env).map(|never| match never {});
    }
    if services {
        let stdout: Arc<Mutex<dyn Write + Send>> = Arc::new(Mutex::new(std::io::stdout()));
        let control = Some(std::path::Path::new(crate::CONTAINER_RUN_DIR));
        return run_services_foreground(activation, env, stdout, control);
    }
    if find_program("bash", &env).is_none() {
        return Err(RuntimeError::NoShell {
            env: activation.env_name.clone(),
        });
    }
    exec_command(&env, &["bash".into()]).map(|never| match never {})
}

/// `cairn activate [-- CMD]` in a running container (`docker exec` bypasses
/// the entrypoint): activates, then execs the command, or else an
/// interactive shell. Returns only on an error.
pub fn run_activated(activation: &Activation, args: &[OsString]) -> Result<i32> {
    let env = activate::activate(activation, &current_env())?;
    if args.is_empty() {
        exec_interactive(activation, &env).map(|never| match never {})
    } else {
        exec_command(&env, args).map(|never| match never {})
    }
}

/// Supervises every service in the foreground until a stop signal, a
/// `services stop` with no names, or until none is left running; output lines
/// go to `out`, prefixed. With `control`, `cairn services …` can reach it
/// through a socket in that directory.
pub fn run_services_foreground(
    activation: &Activation,
    env: Env,
    out: Arc<Mutex<dyn Write + Send>>,
    control: Option<&std::path::Path>,
) -> Result<i32> {
    let (tx, rx) = mpsc::channel();
    crate::signals::route_signals(tx.clone(), Event::Signal)?;
    if let Some(dir) = control {
        supervisor::listen_in_foreground(dir, tx);
    }
    // Outside PID 1 (tests, `docker run --init`) become a subreaper, so that
    // orphans and daemons still come back to us to be reaped and tracked.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!("cannot become a child subreaper: {e}");
    }
    let width = activation
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let sink = OutputSink::Prefixed { out, width };
    let launcher = ServiceLauncher::direct(env);
    let mut table = ProcessTable::new(&activation.services, launcher, sink, true);
    let all: Vec<usize> = (0..activation.services.len()).collect();
    for &idx in &all {
        if let Err(e) = table.start(idx) {
            stop_reverse(&mut table, &all);
            return Err(e);
        }
    }
    let code = supervise_until_done(&mut table, &rx, &all);
    table.flush_output(Instant::now() + Duration::from_millis(500));
    Ok(code)
}

fn supervise_until_done(
    table: &mut ProcessTable,
    rx: &mpsc::Receiver<Event>,
    all: &[usize],
) -> i32 {
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Event::Signal(Signal::SIGTERM | Signal::SIGINT)) => {
                tracing::debug!("stop requested; stopping services in reverse order");
                stop_reverse(table, all);
                return 0;
            }
            Ok(Event::Signal(signal @ (Signal::SIGHUP | Signal::SIGQUIT))) => {
                table.signal_all(signal)
            }
            Ok(Event::Request(request, reply)) => {
                let shutdown = request == Request::Shutdown;
                let _ = reply.send(supervisor::handle_request(table, request));
                if shutdown {
                    return 0;
                }
            }
            Ok(Event::Signal(_)) | Err(RecvTimeoutError::Timeout) => {}
            // The signal thread is gone; keep polling for exits.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(250)),
        }
        table.reap();
        if table.all_exited() {
            return table.first_failure().unwrap_or(0);
        }
    }
}

fn stop_reverse(table: &mut ProcessTable, all: &[usize]) {
    let order: Vec<usize> = all.iter().rev().copied().collect();
    table.stop(&order, STOP_GRACE, Instant::now() + STOP_BUDGET);
}
