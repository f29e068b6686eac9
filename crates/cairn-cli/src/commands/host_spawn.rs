//! `cairn _host-spawn` (hidden): inside a dev-mode activation, runs a command
//! the environment lacks on the host (bash's `command_not_found_handle` calls
//! it); with `--serve`, the server that `cairn activate` starts outside the
//! namespace. The protocol is cairn-runtime's `host_spawn`.

use crate::cli::HostSpawnArgs;
use crate::diagnostic::Diagnose;
use cairn_runtime::host_spawn;
use miette::Result;
use std::process::ExitCode;

pub fn run(args: HostSpawnArgs) -> Result<ExitCode> {
    if args.serve {
        host_spawn::serve().diagnose()?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.command.first().cloned().unwrap_or_default();
    let Some(socket) = std::env::var_os(host_spawn::SOCKET_VAR).filter(|s| !s.is_empty()) else {
        eprintln!("cairn: command not found: {name}");
        return Ok(ExitCode::from(host_spawn::NOT_FOUND as u8));
    };
    let env = cairn_runtime::activate::current_env();
    let code =
        host_spawn::run_on_host(std::path::Path::new(&socket), &args.command, &env).diagnose()?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
