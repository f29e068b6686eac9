//! Activation: the environment a command sees, the `on-activate` hook, and the
//! final exec (a command, or an interactive shell with the profile sourced).
//!
//! One implementation serves containers and the host: on the host it runs
//! inside the namespace built by [`crate::host`], where the filesystem looks
//! like the image's, so the same PATH applies. It doesn't decide *what* to run;
//! [`crate::entrypoint`] and the CLI do.

use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Activation, Mode, Result, RuntimeError};

/// The environment's own PATH, identical in images and host namespaces.
pub const ENV_PATH: &str =
    "/opt/cairn/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment's own directories in a dev-mode host activation, ahead of
/// the caller's PATH. `/usr/local` is the host's there, so it comes after.
pub const HOST_DEV_PATH: &str = "/opt/cairn/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An ordered environment: what a process will see, in the order it sees it.
pub type Env = Vec<(OsString, OsString)>;

/// Variables that bash changes on its own; the hook's values for them are
/// noise (SHLVL would otherwise climb with every activation).
const BASH_NOISE: &[&str] = &["SHLVL", "_", "PWD", "OLDPWD"];

/// The current process environment, in order.
pub fn current_env() -> Env {
    std::env::vars_os().collect()
}

/// Looks up `key` in `env`.
pub fn env_get<'a>(env: &'a Env, key: &str) -> Option<&'a OsStr> {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_os_str())
}

/// Sets `key` in place (keeping its position) or appends it.
pub fn env_set(env: &mut Env, key: &str, value: impl Into<OsString>) {
    let value = value.into();
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.into(), value)),
    }
}

/// True when `env` already belongs to this activation, so the hook must not
/// run again (nested `cairn activate`, or a service started from a shell).
pub fn is_active(activation: &Activation, env: &Env) -> bool {
    env_get(env, "CAIRN_ACTIVATE") == Some(OsStr::new("1"))
        && env_get(env, "CAIRN_ENV_NAME") == Some(OsStr::new(&activation.env_name))
}

/// Computes the activated environment from `base`, without running the hook.
/// Pure: the order of `base` is kept and new variables follow in `[vars]` order.
pub fn activation_env(activation: &Activation, base: &Env) -> Env {
    let mut env = base.clone();
    if is_active(activation, base) {
        return env;
    }
    let path = match (activation.mode, &activation.host_spawn) {
        (Mode::Run, _) => OsString::from(ENV_PATH),
        (Mode::Dev, None) => prepend_path(ENV_PATH, env_get(base, "PATH")),
        (Mode::Dev, Some(_)) => prepend_path(HOST_DEV_PATH, env_get(base, "PATH")),
    };
    let path = match activation.build_bins.is_empty() {
        true => path,
        false => {
            let mut joined = std::env::join_paths(&activation.build_bins).unwrap_or_default();
            joined.push(":");
            joined.push(path);
            joined
        }
    };
    env_set(&mut env, "PATH", path);
    if let Some(socket) = &activation.host_spawn {
        env_set(&mut env, crate::host_spawn::SOCKET_VAR, socket);
        env_set(
            &mut env,
            "BASH_FUNC_command_not_found_handle%%",
            crate::host_spawn::bash_handler(),
        );
    }
    env_set(&mut env, "CAIRN_ENV_NAME", &activation.env_name);
    if let Some(dir) = &activation.env_dir {
        env_set(&mut env, "CAIRN_ENV", dir);
    }
    env_set(&mut env, "CAIRN_ACTIVATE", "1");
    if let Some(container) = &activation.container {
        env_set(&mut env, "CAIRN_CONTAINER", container);
    }
    for (key, value) in &activation.vars {
        env_set(&mut env, key, value);
    }
    env
}

/// `dirs` followed by the inherited PATH entries not already in `dirs`.
fn prepend_path(dirs: &str, inherited: Option<&OsStr>) -> OsString {
    let mut out = OsString::from(dirs);
    let ours: Vec<&[u8]> = dirs.as_bytes().split(|b| *b == b':').collect();
    let inherited = inherited.map(OsStr::as_bytes).unwrap_or_default();
    for dir in inherited.split(|b| *b == b':') {
        if !dir.is_empty() && !ours.contains(&dir) {
            out.push(":");
            out.push(OsStr::from_bytes(dir));
        }
    }
    out
}

/// Full activation: [`activation_env`], then the hook (only where bash exists).
/// Returns `base` untouched when it is already this activation.
pub fn activate(activation: &Activation, base: &Env) -> Result<Env> {
    if is_active(activation, base) {
        return Ok(base.clone());
    }
    apply_hook(activation, activation_env(activation, base))
}

/// Runs the hook, if any, over an already computed `env`, finding bash on its PATH.
fn apply_hook(activation: &Activation, env: Env) -> Result<Env> {
    let Some(hook) = activation.hook.as_deref().filter(|h| !h.trim().is_empty()) else {
        return Ok(env);
    };
    let bash = find_program("bash", &env).ok_or_else(|| RuntimeError::HookNeedsBash {
        env: activation.env_name.clone(),
    })?;
    run_hook(&activation.env_name, hook, &bash, &env)
}

/// Where `name` resolves on the PATH of `env`.
pub fn find_program(name: &str, env: &Env) -> Option<PathBuf> {
    let path = env_get(env, "PATH")?;
    path.as_bytes()
        .split(|b| *b == b':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(OsStr::from_bytes(dir)).join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs_err::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The script around the hook. The hook's stdout goes to stderr so that
/// `cairn run img cmd` keeps stdout for `cmd`; the exported environment is
/// dumped NUL-separated on the original stdout (fd 3) by an EXIT trap, so an
/// early `exit 0` in the hook still counts. Only builtins are used: the
/// environment may have bash but not coreutils.
fn hook_script(hook: &str) -> String {
    format!(
        "exec 3>&1 1>&2\n\
         __cairn_dump_env() {{ local __cairn_n; for __cairn_n in $(compgen -e); do \
         printf '%s=%s\\0' \"$__cairn_n\" \"${{!__cairn_n}}\"; done >&3; }}\n\
         trap __cairn_dump_env EXIT\n\
         {hook}\n"
    )
}

/// Runs the hook in `bash --noprofile --norc` and returns the environment it
/// leaves exported. Variables the hook unsets disappear.
pub fn run_hook(env_name: &str, hook: &str, bash: &Path, env: &Env) -> Result<Env> {
    let output = Command::new(bash)
        .args(["--noprofile", "--norc", "-c", &hook_script(hook)])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| RuntimeError::HookSpawn {
            bash: bash.to_path_buf(),
            source,
        })?;
    check_hook_status(env_name, output.status)?;
    Ok(merge_hook_env(env, &output.stdout))
}

fn check_hook_status(env_name: &str, status: std::process::ExitStatus) -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        return Err(RuntimeError::HookKilled {
            env: env_name.to_string(),
            signal,
        });
    }
    match status.code() {
        Some(0) => Ok(()),
        code => Err(RuntimeError::HookFailed {
            env: env_name.to_string(),
            code: code.unwrap_or(-1),
        }),
    }
}

/// The hook's exported variables, keeping `before`'s order for the ones that
/// survive and appending new ones in the order bash listed them.
fn merge_hook_env(before: &Env, dump: &[u8]) -> Env {
    let after: Env = dump
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|b| *b == b'=')?;
            let key = OsString::from_vec(entry[..eq].to_vec());
            let value = OsString::from_vec(entry[eq + 1..].to_vec());
            Some((key, value))
        })
        .filter(|(k, _)| !BASH_NOISE.iter().any(|n| k == n))
        .collect();
    let mut merged: Env = before
        .iter()
        .filter_map(|(k, v)| {
            if BASH_NOISE.iter().any(|n| k == n) {
                return Some((k.clone(), v.clone()));
            }
            after.iter().find(|(ak, _)| ak == k).cloned()
        })
        .collect();
    for (k, v) in after {
        if !merged.iter().any(|(mk, _)| *mk == k) {
            merged.push((k, v));
        }
    }
    merged
}

/// Replaces the current process with `args` (execvp semantics, no shell), looked
/// up on the PATH of `env`. Returns only on failure.
pub fn exec_command(env: &Env, args: &[OsString]) -> Result<Infallible> {
    let Some((program, rest)) = args.split_first() else {
        return Err(RuntimeError::CommandNotFound {
            program: String::new(),
            path: String::new(),
        });
    };
    let resolved = resolve_program(program, env)?;
    let error = Command::new(&resolved)
        .arg0(program)
        .args(rest)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .exec();
    Err(RuntimeError::Exec {
        program: program.to_string_lossy().into_owned(),
        source: error,
    })
}

/// `program` itself when it contains a slash, else its PATH lookup.
fn resolve_program(program: &OsStr, env: &Env) -> Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    find_program(&program.to_string_lossy(), env).ok_or_else(|| RuntimeError::CommandNotFound {
        program: program.to_string_lossy().into_owned(),
        path: env_get(env, "PATH")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// The interactive shells cairn knows how to set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The user's `$SHELL` when it is zsh or fish *and* present in the
/// environment, else bash (the only shell containers are expected to have).
pub fn choose_shell(env: &Env) -> Shell {
    let wanted = env_get(env, "SHELL")
        .and_then(|s| Path::new(s).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let shell = match wanted.as_deref() {
        Some("zsh") => Shell::Zsh,
        Some("fish") => Shell::Fish,
        _ => return Shell::Bash,
    };
    let name = if shell == Shell::Zsh { "zsh" } else { "fish" };
    if find_program(name, env).is_some() {
        shell
    } else {
        Shell::Bash
    }
}

/// The bash rcfile: prompt first (so a profile may override it), then
/// `[profile] common` and `bash`. In Dev mode the user's `~/.bashrc` is
/// sourced first, as in their usual shell; in Run mode the environment is
/// sealed and host rc files may call tools it doesn't have. The file deletes
/// itself: bash has read it whole before running it.
pub fn bash_rcfile(activation: &Activation) -> String {
    let mut rc = String::from("command -v rm >/dev/null 2>&1 && rm -f -- \"${BASH_SOURCE[0]}\"\n");
    if activation.mode == Mode::Dev {
        rc.push_str("[ -f ~/.bashrc ] && . ~/.bashrc\n");
    }
    if activation.host_spawn.is_some() {
        // After ~/.bashrc, which may define its own: commands the
        // environment lacks run on the host (see `host_spawn`).
        rc.push_str(&format!(
            "command_not_found_handle() {{ {} \"$@\"; }}\n",
            crate::host_spawn::CLIENT_COMMAND
        ));
    }
    let prompt = format!("[{}] \\w \\$ ", activation.env_name);
    rc.push_str(&format!("PS1={}\n", shell_words::quote(&prompt)));
    push_profile(&mut rc, &activation.profile.common);
    push_profile(&mut rc, &activation.profile.bash);
    rc
}

fn zsh_rc(activation: &Activation) -> String {
    let mut rc = String::from("ZDOTDIR=\"$HOME\"\n[ -f ~/.zshrc ] && . ~/.zshrc\n");
    let prompt = format!("[{}] %~ %# ", activation.env_name);
    rc.push_str(&format!("PROMPT={}\n", shell_words::quote(&prompt)));
    push_profile(&mut rc, &activation.profile.common);
    push_profile(&mut rc, &activation.profile.zsh);
    rc
}

fn fish_rc(activation: &Activation) -> String {
    let mut rc = format!(
        "function fish_prompt; printf '[%s] %s > ' {} (prompt_pwd); end\n",
        shell_words::quote(&activation.env_name)
    );
    push_profile(&mut rc, &activation.profile.common);
    push_profile(&mut rc, &activation.profile.fish);
    rc
}

fn push_profile(rc: &mut String, script: &Option<String>) {
    if let Some(script) = script {
        rc.push_str(script);
        if !script.ends_with('\n') {
            rc.push('\n');
        }
    }
}

/// Replaces the current process with an interactive shell of the activated
/// environment. Returns only on failure.
pub fn exec_interactive(activation: &Activation, env: &Env) -> Result<Infallible> {
    let shell = choose_shell(env);
    let no_shell = || RuntimeError::NoShell {
        env: activation.env_name.clone(),
    };
    let mut env = env.clone();
    let args: Vec<OsString> = match shell {
        Shell::Bash => {
            find_program("bash", &env).ok_or_else(no_shell)?;
            let rc = write_rc_file(&bash_rcfile(activation), ".bash")?;
            vec!["bash".into(), "--rcfile".into(), rc.into(), "-i".into()]
        }
        Shell::Zsh => {
            let dir = tempfile::Builder::new()
                .prefix("cairn-zsh.")
                .tempdir()?
                .keep();
            fs_err::write(dir.join(".zshrc"), zsh_rc(activation))?;
            env_set(&mut env, "ZDOTDIR", dir.into_os_string());
            vec!["zsh".into(), "-i".into()]
        }
        Shell::Fish => {
            let rc = write_rc_file(&fish_rc(activation), ".fish")?;
            let init = format!("source {}; rm -f {}", quote_path(&rc), quote_path(&rc));
            vec!["fish".into(), "--init-command".into(), init.into()]
        }
    };
    exec_command(&env, &args)
}

fn quote_path(path: &Path) -> String {
    shell_words::quote(&path.to_string_lossy()).into_owned()
}

/// Writes an rc file that outlives this process (the shell reads it after exec).
fn write_rc_file(contents: &str, suffix: &str) -> Result<PathBuf> {
    let mut file = tempfile::Builder::new()
        .prefix("cairn-rc.")
        .suffix(suffix)
        .tempfile()?;
    file.write_all(contents.as_bytes())?;
    let (_, path) = file.keep().map_err(|e| e.error)?;
    Ok(path)
}

/// Whether stdin is a terminal (decides between a shell and services).
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;

    fn os(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn activation(mode: Mode) -> Activation {
        Activation {
            env_name: "web".into(),
            vars: vec![
                ("ZED".into(), "last-alpha".into()),
                ("HOME".into(), "/srv".into()),
                ("ALPHA".into(), "1".into()),
            ],
            mode,
            ..Activation::default()
        }
    }

    fn host_bash_env() -> Env {
        os(&[("PATH", "/usr/bin:/bin"), ("HOME", "/root")])
    }

    #[test]
    fn run_mode_path_is_the_environments_alone() {
        let base = os(&[("PATH", "/home/u/bin:/usr/bin"), ("TERM", "xterm")]);
        let env = activation_env(&activation(Mode::Run), &base);
        assert_eq!(env_get(&env, "PATH").unwrap(), ENV_PATH);
        assert_eq!(env_get(&env, "TERM").unwrap(), "xterm");
        assert_eq!(env_get(&env, "CAIRN_ENV_NAME").unwrap(), "web");
        assert_eq!(env_get(&env, "CAIRN_ENV"), None, "images have no env dir");
        assert_eq!(env_get(&env, "CAIRN_ACTIVATE").unwrap(), "1");
        assert_eq!(env_get(&env, "CAIRN_CONTAINER"), None);
    }

    #[test]
    fn dev_mode_prepends_without_duplicates() {
        let base = os(&[("PATH", "/home/u/bin:/usr/bin::/opt/x")]);
        let env = activation_env(&activation(Mode::Dev), &base);
        let expected = format!("{ENV_PATH}:/home/u/bin:/opt/x");
        assert_eq!(env_get(&env, "PATH").unwrap(), expected.as_str());
        let no_path = activation_env(&activation(Mode::Dev), &Env::new());
        assert_eq!(env_get(&no_path, "PATH").unwrap(), ENV_PATH);
    }

    #[test]
    fn vars_keep_base_positions_then_declaration_order() {
        let base = os(&[("HOME", "/root"), ("PATH", "/bin")]);
        let mut act = activation(Mode::Run);
        act.container = Some("web:latest".into());
        act.env_dir = Some("/home/u/web".into());
        let env = activation_env(&act, &base);
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "HOME",
                "PATH",
                "CAIRN_ENV_NAME",
                "CAIRN_ENV",
                "CAIRN_ACTIVATE",
                "CAIRN_CONTAINER",
                "ZED",
                "ALPHA"
            ]
        );
        assert_eq!(env_get(&env, "HOME").unwrap(), "/srv");
        assert_eq!(env_get(&env, "CAIRN_CONTAINER").unwrap(), "web:latest");
        assert_eq!(env_get(&env, "CAIRN_ENV").unwrap(), "/home/u/web");
    }

    #[test]
    fn activating_twice_changes_nothing() {
        let act = activation(Mode::Dev);
        let once = activation_env(&act, &os(&[("PATH", "/usr/bin")]));
        assert!(is_active(&act, &once));
        assert_eq!(activation_env(&act, &once), once);
        let mut other = act.clone();
        other.env_name = "other".into();
        assert!(!is_active(&other, &once));
    }

    #[test]
    fn hook_exports_are_kept_and_stdout_stays_clean() {
        let mut act = activation(Mode::Dev);
        act.hook = Some("echo noise; export FROM_HOOK=\"$ALPHA-x\"; unset ZED".into());
        let env = activate(&act, &host_bash_env()).unwrap();
        assert_eq!(env_get(&env, "FROM_HOOK").unwrap(), "1-x");
        assert_eq!(env_get(&env, "ZED"), None);
        assert_eq!(env_get(&env, "SHLVL"), None, "bash noise leaked");
        // The base order survives the round trip through bash.
        assert_eq!(env[0].0, "PATH");
        assert_eq!(env.last().unwrap().0, "FROM_HOOK");

        // Run the same activation in a child whose stdout we capture: the
        // hook's echo must land on stderr.
        let out = Command::new("bash")
            .args(["-c", &hook_script("echo noise; export Y=2")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "noise\n");
        assert!(out.stdout.split(|b| *b == 0).any(|e| e == b"Y=2"));
    }

    #[test]
    fn hook_values_with_newlines_and_early_exit_survive() {
        let env = run_hook(
            "web",
            "export M=$'a\\nb=c'; exit 0; export N=1",
            Path::new("/bin/bash"),
            &host_bash_env(),
        )
        .unwrap();
        assert_eq!(env_get(&env, "M").unwrap(), "a\nb=c");
        assert_eq!(env_get(&env, "N"), None);
    }

    #[test]
    fn failing_hook_names_env_and_code() {
        let err = run_hook("web", "exit 7", Path::new("/bin/bash"), &host_bash_env()).unwrap_err();
        assert!(
            matches!(err, RuntimeError::HookFailed { code: 7, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the on-activate hook of 'web' failed with exit code 7"
        );
    }

    #[test]
    fn hook_without_bash_is_a_clear_error() {
        let mut act = activation(Mode::Run);
        act.hook = Some("export X=1".into());
        let err = apply_hook(&act, os(&[("PATH", "/nonexistent")])).unwrap_err();
        assert!(matches!(err, RuntimeError::HookNeedsBash { .. }), "{err}");
        act.hook = None;
        assert!(apply_hook(&act, Env::new()).is_ok());
    }

    #[test]
    fn already_active_env_skips_the_hook() {
        let mut act = activation(Mode::Dev);
        act.hook = Some("exit 9".into());
        let mut base = host_bash_env();
        env_set(&mut base, "CAIRN_ACTIVATE", "1");
        env_set(&mut base, "CAIRN_ENV_NAME", "web");
        assert_eq!(activate(&act, &base).unwrap(), base);
    }

    #[test]
    fn missing_command_is_reported_with_path() {
        let env = os(&[("PATH", "/nonexistent")]);
        let err = exec_command(&env, &["no-such-tool".into()]).unwrap_err();
        assert!(matches!(err, RuntimeError::CommandNotFound { .. }), "{err}");
    }

    #[test]
    fn rcfile_sets_prompt_then_profiles() {
        let mut act = activation(Mode::Run);
        act.profile = Profile {
            common: Some("alias ll='ls -l'".into()),
            bash: Some("export FROM_BASH=1\n".into()),
            ..Profile::default()
        };
        let rc = bash_rcfile(&act);
        let prompt = rc.find("PS1='[web] \\w \\$ '").unwrap();
        let common = rc.find("alias ll").unwrap();
        let bash = rc.find("FROM_BASH").unwrap();
        assert!(prompt < common && common < bash, "{rc}");
        assert!(
            !rc.contains(".bashrc"),
            "run mode must not source host rc: {rc}"
        );
    }

    #[test]
    fn rcfile_is_valid_bash_and_sets_the_prompt() {
        let tmp = tempfile::tempdir().unwrap();
        let rc = tmp.path().join("rc");
        let mut act = activation(Mode::Run);
        act.profile.common = Some("export COMMON=1".into());
        fs_err::write(&rc, bash_rcfile(&act)).unwrap();
        let out = Command::new("bash")
            .args([
                "--norc",
                "-c",
                ". \"$0\"; echo \"$PS1|$COMMON\"",
                rc.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[web] \\w \\$ |1\n");
        assert!(!rc.exists(), "rcfile should delete itself");
    }

    #[test]
    fn shell_choice_falls_back_to_bash() {
        let env = os(&[("SHELL", "/usr/bin/zsh"), ("PATH", "/nonexistent")]);
        assert_eq!(choose_shell(&env), Shell::Bash);
        let env = os(&[("SHELL", "/bin/sh"), ("PATH", "/usr/bin")]);
        assert_eq!(choose_shell(&env), Shell::Bash);
    }
}
