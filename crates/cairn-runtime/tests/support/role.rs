//! The process the runtime end-to-end tests (`tests/runtime_e2e.rs`) spawn.
//!
//! Each role must run in a fresh, single-threaded process with full control
//! over signals, as `cairn` itself does: the kernel refuses a user namespace
//! to a threaded process, and PID-1 style supervision owns signal handling.
//! libtest runs tests on threads, so the roles live in this small binary
//! rather than in the test binary. It is not installed or used by cairn.
//!
//! Usage: `cairn-runtime-test-role entrypoint ACTIVATION CMD...`,
//! `… supervise RUN_DIR ACTIVATION`, `… rootfs ROOTFS ACTIVATION CMD...`.

use std::ffi::OsString;
use std::path::Path;

use cairn_runtime::{ServiceLauncher, supervisor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.split_first() {
        Some((role, [])) => fail(&format!("role {role} needs arguments")),
        Some((role, rest)) => match role.as_str() {
            "entrypoint" => entrypoint(rest),
            "supervise" => supervise(rest),
            "rootfs" => rootfs(rest),
            other => fail(&format!("unknown role {other}")),
        },
        None => fail("usage: cairn-runtime-test-role ROLE ARGS..."),
    };
    std::process::exit(code);
}

fn fail(message: &str) -> i32 {
    eprintln!("{message}");
    2
}

fn load(path: &str) -> Result<cairn_runtime::Activation, i32> {
    cairn_runtime::load_activation(Path::new(path)).map_err(|e| fail(&format!("activation: {e}")))
}

fn entrypoint(args: &[String]) -> i32 {
    let activation = match load(&args[0]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let cmd: Vec<OsString> = args[1..].iter().map(OsString::from).collect();
    match cairn_runtime::run_entrypoint(&activation, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("entrypoint error: {e}");
            125
        }
    }
}

fn supervise(args: &[String]) -> i32 {
    let (Some(run_dir), Some(act)) = (args.first(), args.get(1)) else {
        return fail("supervise RUN_DIR ACTIVATION");
    };
    let activation = match load(act) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let env = match cairn_runtime::activate(&activation, &std::env::vars_os().collect()) {
        Ok(env) => env,
        Err(e) => return fail(&format!("activate: {e}")),
    };
    match supervisor::supervise(
        Path::new(run_dir),
        &activation,
        ServiceLauncher::direct(env),
    ) {
        Ok(()) => 0,
        Err(e) => fail(&format!("supervise error: {e}")),
    }
}

fn rootfs(args: &[String]) -> i32 {
    let (Some(rootfs), Some(act)) = (args.first(), args.get(1)) else {
        return fail("rootfs ROOTFS ACTIVATION CMD...");
    };
    let activation = match load(act) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let cmd: Vec<OsString> = args[2..].iter().map(OsString::from).collect();
    match cairn_runtime::run_in_rootfs(Path::new(rootfs), &activation, &cmd, &[]) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("rootfs error: {e}");
            125
        }
    }
}
