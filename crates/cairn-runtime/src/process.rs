//! The service process table shared by both supervisors: starting services
//! (each in its own process group, output piped to a sink), reaping them,
//! finding the process a daemon leaves behind, and stopping them in order.
//!
//! It is single-threaded by design: the supervisor's main loop owns the table
//! and is the only place that calls `waitpid`, so no exit status is ever
//! stolen. The loops themselves live in `entrypoint.rs` and `supervisor.rs`.
//!
//! Daemons (`is-daemon = true`): the command forks and exits. The process it
//! leaves behind is the newest live process that is either in the launcher's
//! process group or session (a plain `cmd &`), or — when the supervisor is a
//! child subreaper or PID 1 — was re-parented to the supervisor (a daemon that
//! called `setsid`). No pidfile convention is needed.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::activate::{Env, env_set, find_program};
use crate::output::{OutputSink, copy_output};
use crate::{Result, RuntimeError, ServiceSpec};

/// How a service command becomes a process.
#[derive(Debug, Clone, Default)]
pub struct ServiceLauncher {
    /// Prepended to every command, e.g. `cairn activate -d DIR --` on the host
    /// so the service runs inside the environment's namespace; empty in images.
    pub wrapper: Vec<OsString>,
    /// The environment the service (or wrapper) starts with; the service's own
    /// `vars` are added on top.
    pub env: Env,
    /// Run commands with `bash -c` (bash exists in the environment); otherwise
    /// split them with shell-words rules and exec directly.
    pub use_bash: bool,
}

impl ServiceLauncher {
    /// Runs services directly in `env` (containers), using bash when its PATH has it.
    pub fn direct(env: Env) -> ServiceLauncher {
        let use_bash = find_program("bash", &env).is_some();
        ServiceLauncher {
            wrapper: Vec::new(),
            env,
            use_bash,
        }
    }

    /// The argv that runs `command` for service `service`.
    pub fn argv(&self, service: &str, command: &str) -> Result<Vec<OsString>> {
        let mut argv = self.wrapper.clone();
        if self.use_bash {
            argv.extend(["bash".into(), "-c".into(), command.into()]);
        } else {
            let words = shell_words::split(command).map_err(|e| RuntimeError::BadCommand {
                service: service.to_string(),
                message: e.to_string(),
            })?;
            if words.is_empty() {
                return Err(RuntimeError::BadCommand {
                    service: service.to_string(),
                    message: "the command is empty".into(),
                });
            }
            argv.extend(words.into_iter().map(OsString::from));
        }
        Ok(argv)
    }

    fn command(&self, spec: &ServiceSpec, command: &str) -> Result<Command> {
        let argv = self.argv(&spec.name, command)?;
        let mut env = self.env.clone();
        for (k, v) in &spec.vars {
            env_set(&mut env, k, v);
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        Ok(cmd)
    }
}

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// A daemon's launcher is still running.
    Starting,
    Running,
    /// Stopped on request, or exited with code 0.
    Stopped,
    /// Exited by itself with a non-zero code or a signal.
    Failed,
}

/// What `cairn services status` shows for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    /// Exit code, 128+N for a signal N.
    pub exit_code: Option<i32>,
    /// Start time, seconds since the Unix epoch.
    pub started_at: Option<u64>,
}

#[derive(Debug)]
struct Service {
    spec: ServiceSpec,
    state: ServiceState,
    /// The service's main process (a daemon's left-behind process).
    pid: Option<Pid>,
    /// Process group the service was started in (= its launcher's pid).
    pgid: Option<Pid>,
    /// A daemon's launcher, while it runs.
    launcher: Option<Pid>,
    started: Option<SystemTime>,
    exit_code: Option<i32>,
    stopping: bool,
}

impl Service {
    fn is_active(&self) -> bool {
        matches!(self.state, ServiceState::Starting | ServiceState::Running)
    }
}

/// The supervised services, in declaration order.
#[derive(Debug)]
pub(crate) struct ProcessTable {
    services: Vec<Service>,
    launcher: ServiceLauncher,
    sink: OutputSink,
    /// Reap any child (`waitpid(-1)`): we are PID 1 or a subreaper. Off in unit
    /// tests, where other tests' children share the process.
    reap_orphans: bool,
    /// Output copiers, joined on the way out so no last line is lost.
    copiers: Vec<std::thread::JoinHandle<()>>,
}

/// How often stop loops poll for exits.
const POLL: Duration = Duration::from_millis(20);

impl ProcessTable {
    pub(crate) fn new(
        specs: &[ServiceSpec],
        launcher: ServiceLauncher,
        sink: OutputSink,
        reap_orphans: bool,
    ) -> ProcessTable {
        let services = specs
            .iter()
            .map(|spec| Service {
                spec: spec.clone(),
                state: ServiceState::Stopped,
                pid: None,
                pgid: None,
                launcher: None,
                started: None,
                exit_code: None,
                stopping: false,
            })
            .collect();
        ProcessTable {
            services,
            launcher,
            sink,
            reap_orphans,
            copiers: Vec::new(),
        }
    }

    /// Service names in declaration order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.spec.name.clone()).collect()
    }

    /// Indices of `names` (all services when empty), in declaration order.
    pub(crate) fn select(&self, names: &[String]) -> Result<Vec<usize>> {
        if let Some(unknown) = names.iter().find(|n| !self.names().contains(n)) {
            return Err(RuntimeError::UnknownService {
                name: unknown.clone(),
                known: self.names(),
            });
        }
        Ok((0..self.services.len())
            .filter(|&i| names.is_empty() || names.contains(&self.services[i].spec.name))
            .collect())
    }

    /// Starts service `idx` unless it is already active.
    pub(crate) fn start(&mut self, idx: usize) -> Result<()> {
        let service = &self.services[idx];
        if service.is_active() {
            return Ok(());
        }
        let spec = service.spec.clone();
        let spawn_error = |source| RuntimeError::ServiceSpawn {
            service: spec.name.clone(),
            source,
        };
        let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
        let mut cmd = self.launcher.command(&spec, &spec.command)?;
        cmd.stdout(writer.try_clone().map_err(spawn_error)?)
            .stderr(writer);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(spawn_error)?;
        drop(cmd);
        let copier = copy_output(&spec.name, reader, &self.sink).map_err(spawn_error)?;
        self.copiers.retain(|c| !c.is_finished());
        self.copiers.push(copier);
        let pid = Pid::from_raw(child.id() as i32);
        tracing::debug!("started service '{}' as pid {pid}", spec.name);
        let service = &mut self.services[idx];
        service.pgid = Some(pid);
        service.started = Some(SystemTime::now());
        service.exit_code = None;
        service.stopping = false;
        if spec.is_daemon {
            service.state = ServiceState::Starting;
            service.launcher = Some(pid);
            service.pid = None;
        } else {
            service.state = ServiceState::Running;
            service.pid = Some(pid);
        }
        Ok(())
    }

    /// Collects exits without blocking. Returns whether anything changed.
    pub(crate) fn reap(&mut self) -> bool {
        let mut changed = false;
        if self.reap_orphans {
            while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                let Some((pid, code)) = exit_of(status) else {
                    break;
                };
                changed |= self.record_exit(pid, code);
            }
        } else {
            let ours: Vec<Pid> = self
                .services
                .iter()
                .flat_map(|s| [s.pid, s.launcher])
                .flatten()
                .collect();
            for pid in ours {
                if let Ok(status) = waitpid(pid, Some(WaitPidFlag::WNOHANG))
                    && let Some((pid, code)) = exit_of(status)
                {
                    changed |= self.record_exit(pid, code);
                }
            }
        }
        changed | self.check_adopted_daemons()
    }

    /// A daemon that is not our child can't be waited for; notice it is gone.
    fn check_adopted_daemons(&mut self) -> bool {
        let mut changed = false;
        for service in &mut self.services {
            if service.spec.is_daemon
                && service.state == ServiceState::Running
                && let Some(pid) = service.pid
                && kill(pid, None) == Err(Errno::ESRCH)
            {
                service.state = if service.stopping {
                    ServiceState::Stopped
                } else {
                    ServiceState::Failed
                };
                service.pid = None;
                changed = true;
            }
        }
        changed
    }

    fn record_exit(&mut self, pid: Pid, code: i32) -> bool {
        if let Some(idx) = self.services.iter().position(|s| s.launcher == Some(pid)) {
            self.launcher_exited(idx, code);
            return true;
        }
        let Some(service) = self.services.iter_mut().find(|s| s.pid == Some(pid)) else {
            tracing::trace!("reaped orphan {pid} (exit {code})");
            return false;
        };
        service.pid = None;
        service.exit_code = Some(code);
        service.state = if service.stopping || code == 0 {
            ServiceState::Stopped
        } else {
            ServiceState::Failed
        };
        tracing::debug!("service '{}' exited with {code}", service.spec.name);
        true
    }

    /// A daemon's launcher exited: on success, track what it left behind.
    fn launcher_exited(&mut self, idx: usize, code: i32) {
        let known: Vec<Pid> = self.services.iter().filter_map(|s| s.pid).collect();
        let me = Pid::this();
        let adopt = self.reap_orphans;
        let service = &mut self.services[idx];
        let Some(launcher) = service.launcher.take() else {
            return;
        };
        let daemon = (code == 0)
            .then(|| find_daemon(launcher, me, adopt, &known))
            .flatten();
        match daemon {
            Some(pid) => {
                tracing::debug!("daemon '{}' is pid {pid}", service.spec.name);
                service.pid = Some(pid);
                service.state = ServiceState::Running;
            }
            None => {
                service.exit_code = Some(code);
                service.state = if code == 0 || service.stopping {
                    ServiceState::Stopped
                } else {
                    ServiceState::Failed
                };
            }
        }
    }

    /// Sends `signal` to every active service's process group.
    pub(crate) fn signal_all(&self, signal: Signal) {
        for idx in 0..self.services.len() {
            self.signal_service(idx, signal);
        }
    }

    fn signal_service(&self, idx: usize, signal: Signal) {
        let service = &self.services[idx];
        if !service.is_active() {
            return;
        }
        // ESRCH is fine: the group may already be gone.
        if let Some(pgid) = service.pgid {
            let _ = killpg(pgid, signal);
        }
        if let Some(pid) = service.pid.or(service.launcher) {
            let _ = kill(pid, signal);
        }
    }

    /// Stops `order` one after the other: `shutdown.command` where set, else
    /// SIGTERM to the process group; SIGKILL after `grace` or at `deadline`.
    pub(crate) fn stop(&mut self, order: &[usize], grace: Duration, deadline: Instant) {
        for &idx in order {
            if !self.services[idx].is_active() {
                continue;
            }
            self.services[idx].stopping = true;
            match self.services[idx].spec.shutdown_command.clone() {
                Some(command) => self.run_shutdown(idx, &command, deadline),
                None => self.signal_service(idx, Signal::SIGTERM),
            }
            let until = (Instant::now() + grace).min(deadline);
            if !self.wait_stopped(idx, until) {
                tracing::debug!("service '{}' ignored SIGTERM", self.services[idx].spec.name);
                self.signal_service(idx, Signal::SIGKILL);
                self.wait_stopped(idx, Instant::now() + Duration::from_secs(1));
            }
            let service = &mut self.services[idx];
            if service.is_active() {
                // Unkillable or not ours to wait for: stop tracking it.
                service.state = ServiceState::Stopped;
                service.pid = None;
                service.launcher = None;
            }
        }
    }

    /// Reaps until service `idx` is no longer active or `until` passes.
    fn wait_stopped(&mut self, idx: usize, until: Instant) -> bool {
        loop {
            self.reap();
            if !self.services[idx].is_active() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs `shutdown.command` to completion (bounded by `deadline`). Polled with
    /// `try_wait` only: nothing else reaps while this runs.
    fn run_shutdown(&mut self, idx: usize, command: &str, deadline: Instant) {
        let spec = self.services[idx].spec.clone();
        let spawned = self.launcher.command(&spec, command).and_then(|mut cmd| {
            let (reader, writer) = std::io::pipe()?;
            cmd.stdout(writer.try_clone()?).stderr(writer);
            let child = cmd.spawn()?;
            drop(cmd);
            self.copiers
                .push(copy_output(&spec.name, reader, &self.sink)?);
            Ok(child)
        });
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!("shutdown command of '{}' failed: {e}", spec.name);
                self.signal_service(idx, Signal::SIGTERM);
                return;
            }
        };
        while let Ok(None) = child.try_wait() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits (until `until`) for output copiers to reach EOF, so the last lines
    /// of exited services are written. Copiers held open by a daemon's
    /// leftover children are abandoned.
    pub(crate) fn flush_output(&mut self, until: Instant) {
        while self.copiers.iter().any(|c| !c.is_finished()) && Instant::now() < until {
            std::thread::sleep(POLL);
        }
        for copier in std::mem::take(&mut self.copiers) {
            if copier.is_finished() {
                let _ = copier.join();
            }
        }
    }

    /// True when no service is starting or running.
    pub(crate) fn all_exited(&self) -> bool {
        !self.services.iter().any(Service::is_active)
    }

    /// The exit code of the first service, in declaration order, that failed.
    pub(crate) fn first_failure(&self) -> Option<i32> {
        self.services
            .iter()
            .find(|s| s.state == ServiceState::Failed)
            .map(|s| s.exit_code.unwrap_or(1))
    }

    /// A snapshot for `status` and `services.json`.
    pub(crate) fn statuses(&self) -> Vec<ServiceStatus> {
        let now = SystemTime::now();
        self.services
            .iter()
            .map(|s| ServiceStatus {
                name: s.spec.name.clone(),
                state: s.state,
                pid: s.pid.or(s.launcher).map(|p| p.as_raw() as u32),
                uptime_secs: s
                    .started
                    .filter(|_| s.is_active())
                    .and_then(|t| now.duration_since(t).ok())
                    .map(|d| d.as_secs()),
                exit_code: s.exit_code,
                started_at: s
                    .started
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
            })
            .collect()
    }
}

/// (pid, exit code) of a finished child; 128+N for signal N, like shells.
fn exit_of(status: WaitStatus) -> Option<(Pid, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, code)),
        WaitStatus::Signaled(pid, signal, _) => Some((pid, 128 + signal as i32)),
        _ => None,
    }
}

/// The fields of `/proc/<pid>/stat` that daemon tracking needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub start_time: u64,
}

/// Parses `/proc/<pid>/stat`; the command name may contain spaces and parens,
/// so fields are counted from the last ')'.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let pid = text.split_whitespace().next()?.parse().ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); starttime is field 22.
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Chooses the process a daemon's launcher left behind; see the module docs.
pub(crate) fn pick_daemon(
    procs: &[ProcStat],
    launcher: i32,
    me: i32,
    adopted_count: bool,
    known: &[i32],
) -> Option<i32> {
    procs
        .iter()
        .filter(|p| p.state != 'Z' && p.pid != me && p.pid != launcher && !known.contains(&p.pid))
        .filter(|p| p.pgrp == launcher || p.session == launcher || (adopted_count && p.ppid == me))
        .max_by_key(|p| (p.start_time, p.pid))
        .map(|p| p.pid)
}

fn find_daemon(launcher: Pid, me: Pid, adopted: bool, known: &[Pid]) -> Option<Pid> {
    let procs: Vec<ProcStat> = fs_err::read_dir("/proc")
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs_err::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect();
    let known: Vec<i32> = known.iter().map(|p| p.as_raw()).collect();
    pick_daemon(&procs, launcher.as_raw(), me.as_raw(), adopted, &known).map(Pid::from_raw)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    pub(crate) fn spec(name: &str, command: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            command: command.into(),
            ..ServiceSpec::default()
        }
    }

    fn table(specs: &[ServiceSpec]) -> (ProcessTable, Arc<Mutex<Vec<u8>>>) {
        let out: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
        let launcher = ServiceLauncher::direct(crate::activate::current_env());
        let sink = OutputSink::Prefixed {
            out: out.clone(),
            width: 4,
        };
        (ProcessTable::new(specs, launcher, sink, false), out)
    }

    fn wait_until(t: &mut ProcessTable, done: impl Fn(&ProcessTable) -> bool) {
        let start = Instant::now();
        while !done(t) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {:?}",
                t.statuses()
            );
            t.reap();
            std::thread::sleep(POLL);
        }
    }

    fn text(out: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn argv_uses_bash_or_shell_words() {
        let mut l = ServiceLauncher {
            use_bash: true,
            ..ServiceLauncher::default()
        };
        assert_eq!(l.argv("s", "a 'b c'").unwrap(), ["bash", "-c", "a 'b c'"]);
        l.use_bash = false;
        l.wrapper = vec!["cairn".into(), "--".into()];
        assert_eq!(l.argv("s", "a 'b c'").unwrap(), ["cairn", "--", "a", "b c"]);
        assert!(matches!(
            l.argv("s", "a 'b"),
            Err(RuntimeError::BadCommand { .. })
        ));
        assert!(matches!(
            l.argv("s", "  "),
            Err(RuntimeError::BadCommand { .. })
        ));
    }

    #[test]
    fn running_then_failed_with_code_while_others_keep_running() {
        let (mut t, out) = table(&[spec("long", "sleep 30"), spec("bad", "echo hi; exit 3")]);
        t.start(0).unwrap();
        t.start(1).unwrap();
        assert_eq!(t.statuses()[0].state, ServiceState::Running);
        wait_until(&mut t, |t| t.statuses()[1].state == ServiceState::Failed);
        let st = t.statuses();
        assert_eq!((st[1].exit_code, st[1].pid), (Some(3), None));
        assert_eq!(st[0].state, ServiceState::Running);
        assert!(st[0].pid.is_some() && st[0].uptime_secs.is_some());
        assert_eq!(t.first_failure(), Some(3));
        t.stop(
            &[0],
            Duration::from_secs(5),
            Instant::now() + Duration::from_secs(8),
        );
        let st = t.statuses();
        assert_eq!(
            (st[0].state, st[0].exit_code),
            (ServiceState::Stopped, Some(143))
        );
        assert!(t.all_exited());
        assert!(text(&out).contains(" bad  | hi\n"), "{}", text(&out));
    }

    #[test]
    fn clean_exit_is_stopped_and_start_is_idempotent() {
        let (mut t, _) = table(&[spec("once", "true")]);
        t.start(0).unwrap();
        wait_until(&mut t, ProcessTable::all_exited);
        assert_eq!(t.statuses()[0].state, ServiceState::Stopped);
        assert_eq!(t.first_failure(), None);
        let (mut t, _) = table(&[spec("long", "sleep 30")]);
        t.start(0).unwrap();
        let pid = t.statuses()[0].pid;
        t.start(0).unwrap();
        assert_eq!(t.statuses()[0].pid, pid);
        t.stop(
            &[0],
            Duration::from_secs(5),
            Instant::now() + Duration::from_secs(8),
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let (t, _) = table(&[spec("db", "x"), spec("web", "y")]);
        let err = t.select(&["wbe".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown service 'wbe'; known services: db, web"
        );
        assert_eq!(t.select(&[]).unwrap(), [0, 1]);
        assert_eq!(t.select(&["web".into()]).unwrap(), [1]);
    }

    #[test]
    fn reverse_stop_runs_shutdown_commands_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("order");
        let log = log.to_str().unwrap();
        let svc = |name: &str| ServiceSpec {
            shutdown_command: Some(format!("echo {name} >> {log}; kill $(cat {log}.{name})")),
            ..spec(name, &format!("echo $$ > {log}.{name}; exec sleep 30"))
        };
        let (mut t, _) = table(&[svc("a"), svc("b"), spec("c", "sleep 30")]);
        for i in 0..3 {
            t.start(i).unwrap();
        }
        // Wait for complete pid lines, not just created files, so the
        // shutdown commands never `kill` an empty pid.
        let pidfiles = |t: &ProcessTable| {
            let _ = t;
            ["a", "b"].iter().all(|n| {
                std::fs::read_to_string(format!("{log}.{n}")).is_ok_and(|pid| pid.ends_with('\n'))
            })
        };
        wait_until(&mut t, pidfiles);
        let started = Instant::now();
        t.stop(
            &[2, 1, 0],
            Duration::from_secs(5),
            Instant::now() + Duration::from_secs(8),
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(std::fs::read_to_string(log).unwrap(), "b\na\n");
        assert!(t.all_exited());
    }

    #[test]
    fn term_ignoring_service_is_killed_after_grace() {
        let tmp = tempfile::tempdir().unwrap();
        let ready = tmp.path().join("ready");
        let command = format!(
            "trap '' TERM; echo > {}; sleep 30 & wait; sleep 30",
            ready.display()
        );
        let (mut t, _) = table(&[spec("stubborn", &command)]);
        t.start(0).unwrap();
        // Stop only once the trap is in place, whatever the machine's load.
        wait_until(&mut t, |_| ready.exists());
        let started = Instant::now();
        t.stop(
            &[0],
            Duration::from_millis(300),
            Instant::now() + Duration::from_secs(8),
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(t.statuses()[0].exit_code, Some(137));
    }

    #[test]
    fn daemon_is_tracked_through_its_process_group() {
        let daemon = ServiceSpec {
            is_daemon: true,
            ..spec("d", "sleep 30 >/dev/null 2>&1 &")
        };
        let (mut t, _) = table(&[daemon]);
        t.start(0).unwrap();
        wait_until(&mut t, |t| t.statuses()[0].state == ServiceState::Running);
        let pid = t.statuses()[0].pid.unwrap() as i32;
        let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert!(stat.contains("(sleep)"), "{stat}");
        t.stop(
            &[0],
            Duration::from_secs(5),
            Instant::now() + Duration::from_secs(8),
        );
        assert!(t.all_exited());
        std::thread::sleep(Duration::from_millis(100));
        let gone = fs_err::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| parse_stat(&s).is_some_and(|p| p.state == 'Z'));
        assert!(gone);
    }

    #[test]
    fn failing_daemon_launcher_is_failed() {
        let daemon = ServiceSpec {
            is_daemon: true,
            ..spec("d", "exit 4")
        };
        let (mut t, _) = table(&[daemon]);
        t.start(0).unwrap();
        wait_until(&mut t, ProcessTable::all_exited);
        let st = &t.statuses()[0];
        assert_eq!((st.state, st.exit_code), (ServiceState::Failed, Some(4)));
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        let line = "42 (a) b (c)) S 1 42 40 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 777 1000 10";
        let st = parse_stat(line).unwrap();
        assert_eq!(
            (
                st.pid,
                st.state,
                st.ppid,
                st.pgrp,
                st.session,
                st.start_time
            ),
            (42, 'S', 1, 42, 40, 777)
        );
    }

    #[test]
    fn daemon_pick_prefers_newest_in_group_then_adopted() {
        let p = |pid, ppid, pgrp, session, start_time| ProcStat {
            pid,
            state: 'S',
            ppid,
            pgrp,
            session,
            start_time,
        };
        let procs = [
            p(10, 1, 10, 10, 5),
            p(11, 1, 10, 10, 6),
            p(12, 1, 12, 12, 9),
            p(13, 100, 13, 13, 7),
        ];
        assert_eq!(pick_daemon(&procs, 10, 100, false, &[]), Some(11));
        assert_eq!(pick_daemon(&procs, 10, 100, false, &[11]), None);
        assert_eq!(pick_daemon(&procs, 10, 100, true, &[11]), Some(13));
        assert_eq!(pick_daemon(&procs, 99, 100, false, &[]), None);
    }
}
