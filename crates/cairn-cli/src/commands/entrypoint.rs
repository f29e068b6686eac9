//! `cairn entrypoint`: the image's entrypoint. Activates the environment stored
//! in the image and runs the command, a shell, or the services.

use crate::cli::EntrypointArgs;
use cairn_runtime::{ACTIVATION_FILE, CONTAINER_ENV_DIR};
use miette::{Result, miette};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: EntrypointArgs) -> Result<ExitCode> {
    let activation = image_activation()?;
    outcome(cairn_runtime::run_entrypoint(&activation, args.command))
}

/// `cairn activate [-- CMD]` inside an image (`docker exec` bypasses the
/// entrypoint): the command, or else an interactive shell, activated.
pub fn run_activated(command: Vec<OsString>) -> Result<ExitCode> {
    let activation = image_activation()?;
    outcome(cairn_runtime::run_activated(&activation, &command))
}

fn image_activation() -> Result<cairn_runtime::Activation> {
    let path = Path::new(CONTAINER_ENV_DIR).join(ACTIVATION_FILE);
    cairn_runtime::load_activation(&path).map_err(|e| {
        miette!(
            help = "this runs inside images built by `cairn containerize`",
            "{e}"
        )
    })
}

/// A missing command exits 127, as in a shell; other errors are reported.
fn outcome(result: cairn_runtime::Result<i32>) -> Result<ExitCode> {
    match result {
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
