//! `cairn entrypoint`: the image's entrypoint. Activates the environment stored
//! in the image and runs the command, a shell, or the services.

use crate::cli::EntrypointArgs;
use cairn_runtime::{ACTIVATION_FILE, CONTAINER_ENV_DIR};
use miette::{Result, miette};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: EntrypointArgs) -> Result<ExitCode> {
    let path = Path::new(CONTAINER_ENV_DIR).join(ACTIVATION_FILE);
    let activation = cairn_runtime::load_activation(&path).map_err(|e| {
        miette!(
            help = "`cairn entrypoint` runs inside images built by `cairn containerize`",
            "{e}"
        )
    })?;
    match cairn_runtime::run_entrypoint(&activation, args.command) {
        Ok(code) => Ok(exit_code(code)),
        Err(e @ cairn_runtime::RuntimeError::CommandNotFound { .. }) => {
            eprintln!("cairn: {e}");
            Ok(ExitCode::from(127))
        }
        Err(e) => Err(miette!("{e}")),
    }
}

/// Exit statuses are 0..=255; a signal death is reported as 128+N upstream.
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}
