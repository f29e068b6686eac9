//! The entrypoint of an image for another architecture than cairn's own.
//!
//! Building such an image needs no emulation (no package code runs at build
//! time), but cairn's own static binary only runs on its own architecture.
//! So the image gets, in order of preference:
//! - a cairn built for that architecture, named by `CAIRN_ENTRYPOINT_BIN_<CPU>`
//!   (`CAIRN_ENTRYPOINT_BIN_AARCH64`), as a release pipeline provides;
//! - else, when the image has bash, a bash script doing what `cairn
//!   entrypoint` does short of supervising services: the hook (output to
//!   stderr), then the command, or an interactive shell with the profile;
//! - else no entrypoint: with no hook, profile or services there is nothing
//!   to activate beyond the image's `Env`, which already has `[vars]` and PATH.

use std::path::{Path, PathBuf};

use cairn_oci::{CustomEntry, FileContent};

use crate::{BuildPlan, ImageError, Result};

/// What starts containers of a foreign-architecture image.
pub enum ForeignEntrypoint {
    /// A cairn binary for that architecture.
    Binary(PathBuf),
    /// The bash activation script.
    Script,
    /// Nothing: the command runs directly.
    None,
}

/// Picks the entrypoint for `plan`'s (foreign) system.
pub fn entrypoint_for(plan: &BuildPlan) -> Result<ForeignEntrypoint> {
    let cpu = plan.cpu();
    if let Some(path) = plan.entrypoints.foreign.get(cpu) {
        check_elf_machine(path, cpu)?;
        return Ok(ForeignEntrypoint::Binary(path.clone()));
    }
    if plan.packages.iter().any(|p| p.name == "bash") {
        Ok(ForeignEntrypoint::Script)
    } else {
        Ok(ForeignEntrypoint::None)
    }
}

/// Refuses a binary built for another CPU than the image's.
fn check_elf_machine(path: &Path, cpu: &str) -> Result<()> {
    let expected: u16 = match cpu {
        "x86_64" => 62,
        "aarch64" => 183,
        other => return Err(ImageError::UnknownCpu { cpu: other.into() }),
    };
    if crate::elf::machine(path)? == Some(expected) {
        Ok(())
    } else {
        Err(ImageError::ForeignEntrypointMachine {
            var: foreign_entrypoint_var(cpu),
            path: path.to_path_buf(),
            cpu: cpu.to_string(),
        })
    }
}

/// The variable naming a foreign entrypoint: `CAIRN_ENTRYPOINT_BIN_AARCH64`.
pub fn foreign_entrypoint_var(cpu: &str) -> String {
    format!("CAIRN_ENTRYPOINT_BIN_{}", cpu.to_uppercase())
}

/// The activation script, at cairn's path in the image.
pub fn script(plan: &BuildPlan) -> Vec<u8> {
    let cpu = plan.cpu();
    format!(
        r#"#!/bin/bash
# cairn's activation for {system} images, where cairn's own binary cannot run:
# the on-activate hook, then the command (no subshell) or an interactive shell.
[ "${{1-}}" = entrypoint ] && shift
[ "${{1-}}" = -- ] && shift
if [ -r /opt/cairn/env/hook.sh ]; then
  . /opt/cairn/env/hook.sh >&2 || {{ echo "cairn: the on-activate hook failed" >&2; exit 1; }}
fi
if [ $# -gt 0 ]; then exec "$@"; fi
if [ -t 0 ]; then exec bash --rcfile /opt/cairn/env/profile.sh -i; fi
echo "cairn: no command given; supervising services needs cairn's own binary for {cpu} (set CAIRN_ENTRYPOINT_BIN_{upper} when building)" >&2
exit 64
"#,
        system = plan.system,
        upper = cpu.to_uppercase(),
    )
    .into_bytes()
}

/// `hook.sh` and `profile.sh` for the script, under /opt/cairn/env.
pub fn script_files(plan: &BuildPlan) -> Vec<CustomEntry> {
    let m = &plan.manifest;
    let hook = m.hook.on_activate.clone().unwrap_or_default();
    let mut profile = String::new();
    for part in [&m.profile.common, &m.profile.bash].into_iter().flatten() {
        profile.push_str(part);
        profile.push('\n');
    }
    profile.push_str(&format!(
        "PS1='[{}] \\w \\$ '\n",
        plan.name.replace('\'', "")
    ));
    let file = |path: &str, text: String| {
        CustomEntry::file(path, 0o644, FileContent::Bytes(text.into_bytes()))
    };
    vec![
        file("opt/cairn/env/hook.sh", hook),
        file("opt/cairn/env/profile.sh", profile),
    ]
}
