//! `cairn services`: a per-environment supervisor that outlives the terminal,
//! with state and logs under `.cairn/run/`.

use super::activate::{Prepared, prepare};
use crate::cli::{ServiceNames, ServicesCommand, ServicesLogsArgs, ServicesStatusArgs};
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::output;
use cairn_runtime::ServiceStatus;
use cairn_runtime::supervisor;
use miette::{IntoDiagnostic, Result, miette};
use std::ffi::OsString;
use std::process::ExitCode;

pub fn run(cmd: ServicesCommand) -> Result<ExitCode> {
    match cmd {
        ServicesCommand::Start(args) => start(args),
        ServicesCommand::Stop(args) => control(args, supervisor::stop, "stopped"),
        ServicesCommand::Restart(args) => control(args, supervisor::restart, "restarted"),
        ServicesCommand::Status(args) => status(args),
        ServicesCommand::Logs(args) => logs(args),
        ServicesCommand::Supervise(args) => supervise(args),
    }
}

fn start(args: ServiceNames) -> Result<ExitCode> {
    let prepared = prepare(&args.dir)?;
    check_names(&prepared, &args.names)?;
    let statuses = start_services(&prepared, &args.names)?;
    print_statuses(&statuses, "started");
    Ok(ExitCode::SUCCESS)
}

/// Starts every service (for `activate --start-services`).
pub fn start_all(prepared: &Prepared) -> Result<()> {
    start_services(prepared, &[]).map(|_| ())
}

fn start_services(prepared: &Prepared, names: &[String]) -> Result<Vec<ServiceStatus>> {
    if prepared.activation.services.is_empty() {
        return Err(miette!(
            help = "declare one in manifest.toml: [services.web] command = \"…\"",
            "the environment has no services"
        ));
    }
    // Two `services start` at once would both spawn a supervisor.
    let _lock = prepared.env.lock_run_state()?;
    let run_dir = prepared.env.run_dir();
    let exe = std::env::current_exe().into_diagnostic()?;
    let args: Vec<OsString> = ["services", "_supervise", "-d"]
        .into_iter()
        .map(OsString::from)
        .chain([prepared.env.root.clone().into_os_string()])
        .collect();
    supervisor::spawn_supervisor(&exe, &args, &run_dir).diagnose()?;
    supervisor::start(&run_dir, names).diagnose()
}

fn check_names(prepared: &Prepared, names: &[String]) -> Result<()> {
    let known: Vec<&str> = prepared
        .activation
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    match names.iter().find(|n| !known.contains(&n.as_str())) {
        Some(unknown) => Err(miette!(
            help = format!("services in this environment: {}", known.join(", ")),
            "unknown service '{unknown}'"
        )),
        None => Ok(()),
    }
}

/// The supervisor loop, started detached by `services start`.
fn supervise(args: ServiceNames) -> Result<ExitCode> {
    let prepared = prepare(&args.dir)?;
    let exe = std::env::current_exe().into_diagnostic()?;
    let wrapper: Vec<OsString> = vec![
        exe.into_os_string(),
        "activate".into(),
        "-d".into(),
        prepared.env.root.clone().into_os_string(),
        "--".into(),
    ];
    let launcher = cairn_runtime::ServiceLauncher {
        wrapper,
        env: cairn_runtime::activate::current_env(),
        use_bash: prepared.rootfs.join("usr/bin/bash").exists(),
    };
    supervisor::supervise(&prepared.env.run_dir(), &prepared.activation, launcher).diagnose()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) type ControlFn =
    fn(&std::path::Path, &[String]) -> cairn_runtime::Result<Vec<ServiceStatus>>;

pub(crate) fn control(args: ServiceNames, op: ControlFn, verb: &str) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let _lock = env.lock_run_state()?;
    let statuses = op(&env.run_dir(), &args.names).diagnose()?;
    print_statuses(&statuses, verb);
    Ok(ExitCode::SUCCESS)
}

fn print_statuses(statuses: &[ServiceStatus], verb: &str) {
    for s in statuses {
        output::status(format!("✓ service '{}' {verb} ({})", s.name, state_name(s)));
    }
}

fn state_name(s: &ServiceStatus) -> String {
    serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", s.state).to_lowercase())
}

pub(crate) fn status(args: ServicesStatusArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let statuses = supervisor::status(&env.run_dir()).diagnose()?;
    if args.json {
        output::print_json(&statuses)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:width$}  {:8}  {:>7}  {:>8}  EXIT",
        "NAME", "STATE", "PID", "UPTIME"
    );
    for s in &statuses {
        let pid = s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let up = s
            .uptime_secs
            .map(|u| format!("{u}s"))
            .unwrap_or_else(|| "-".into());
        let code = s
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:width$}  {:8}  {pid:>7}  {up:>8}  {code}",
            s.name,
            state_name(s)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn logs(args: ServicesLogsArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    supervisor::logs(&env.run_dir(), &args.name, args.follow, &mut out).diagnose()?;
    Ok(ExitCode::SUCCESS)
}
