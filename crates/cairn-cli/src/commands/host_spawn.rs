//! `cairn _host-spawn` (hidden): inside a host activation, runs a command the
//! environment lacks on the host (bash's `command_not_found_handle` calls it),
//! or says it is found nowhere, with the hint of the package that ships it;
//! with `--serve`, the server that `cairn activate` starts outside the
//! namespace (`--hints-only` in run mode). The protocol is cairn-runtime's
//! `host_spawn`; the hints are [`super::provides::HintSource`]'s.

use crate::cli::HostSpawnArgs;
use crate::diagnostic::Diagnose;
use cairn_runtime::host_spawn::{self, NotFoundStyle, ServeOptions};
use miette::Result;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(args: HostSpawnArgs) -> Result<ExitCode> {
    if args.serve {
        let hints = super::provides::HintSource::new(args.dir);
        host_spawn::serve(ServeOptions {
            host_commands: !args.hints_only,
            hints: Arc::new(move |command: &str| hints.hint(command)),
            parent: args
                .parent
                .map(|pid| nix::unistd::Pid::from_raw(pid as i32)),
        })
        .diagnose()?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.command.first().cloned().unwrap_or_default();
    let Some(socket) = std::env::var_os(host_spawn::SOCKET_VAR).filter(|s| !s.is_empty()) else {
        host_spawn::report_not_found(&name, NotFoundStyle::Bash, &[]);
        return Ok(ExitCode::from(host_spawn::NOT_FOUND as u8));
    };
    let env = cairn_runtime::activate::current_env();
    let code = host_spawn::run_on_host(
        std::path::Path::new(&socket),
        &args.command,
        &env,
        NotFoundStyle::Bash,
    )
    .diagnose()?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
