//! `cairn-runc`: the runc wrapper that containerd's runc v2 shim runs as its
//! `BinaryName` for the `cairn` runtime class, as nvidia-container-runtime is.
//!
//! `create` of a container whose pod names `cairn.dev/environment` fetches the
//! environment into the node store and edits the bundle's `config.json`
//! (mounts, entrypoint); `exec` into such a container edits the process file so
//! the command runs activated; `delete` also removes the container's scratch
//! directory. Every other call, and every container the annotations leave
//! alone, goes to the real runc unchanged (`exec`ed, so runc's exit code,
//! output and signals are its own).
//!
//! The store entries a handled container uses stay locked in use for its
//! whole life: `create` passes the locks' descriptors to runc with
//! `--preserve-fds`, so the container's init inherits them (see
//! [`super::node`]).
//!
//! A failure fails `runc create` with a message naming the REF: written to
//! runc's `--log` file as a JSON error line (containerd's shim reports the last
//! one as "OCI runtime create failed: …", which reaches the pod's events), and
//! to stderr. Nothing is left behind: the spec is rewritten atomically only
//! once everything is ready, and the scratch directory is removed on failure.

use super::node::{self, NodeConfig};
use cairn_runtime::kubernetes::{self, ContainerRequest};
use cairn_store::EntryLock;
use miette::{IntoDiagnostic, Result, miette};
use nix::fcntl::{FcntlArg, fcntl};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// runc's global options that take a value (`--root DIR`), so the
/// subcommand is found after them.
const GLOBAL_VALUE_FLAGS: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];

/// A parsed runc command line: what the wrapper needs from it.
#[derive(Debug, Default, PartialEq, Eq)]
struct RuncCall {
    /// The arguments before the subcommand (`--root`, `--log`, …).
    globals: Vec<OsString>,
    subcommand: Option<String>,
    /// The subcommand's own arguments.
    rest: Vec<OsString>,
    log: Option<PathBuf>,
}

impl RuncCall {
    fn parse(args: &[OsString]) -> RuncCall {
        let mut call = RuncCall::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].to_string_lossy().into_owned();
            if !arg.starts_with('-') {
                call.subcommand = Some(arg);
                call.rest = args[i + 1..].to_vec();
                return call;
            }
            call.globals.push(args[i].clone());
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let value = if GLOBAL_VALUE_FLAGS.contains(&name.as_str()) && inline.is_none() {
                i += 1;
                args.get(i)
                    .inspect(|v| call.globals.push((*v).clone()))
                    .map(|v| v.to_string_lossy().into_owned())
            } else {
                inline
            };
            if name == "--log" {
                call.log = value.map(PathBuf::from);
            }
            i += 1;
        }
        call
    }

    /// The value of a subcommand option (`--bundle X`, `--bundle=X`, `-b X`).
    fn option(&self, long: &str, short: &str) -> Option<PathBuf> {
        let mut iter = self.rest.iter();
        while let Some(arg) = iter.next() {
            let text = arg.to_string_lossy();
            if text == long || text == short {
                return iter.next().map(PathBuf::from);
            }
            if let Some(value) = text.strip_prefix(&format!("{long}=")) {
                return Some(PathBuf::from(value));
            }
        }
        None
    }

    /// The container id: runc takes it as the last argument.
    fn container_id(&self) -> Option<String> {
        self.rest
            .last()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|id| !id.starts_with('-'))
    }
}

/// `cairn-runc`'s main.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    crate::output::init(&crate::cli::GlobalArgs {
        verbose: 0,
        quiet: true,
        no_progress: true,
        color: crate::cli::ColorChoice::Never,
        no_wait: false,
    });
    let config = NodeConfig::from_env();
    let call = RuncCall::parse(&args);
    let outcome = match call.subcommand.as_deref() {
        Some("create" | "run") => {
            on_create(&config, &call).and_then(|in_use| hand_over(&args, &call, in_use))
        }
        Some("exec") => on_exec(&config, &call).map(|()| args.clone()),
        Some("delete") => return on_delete(&config, &call, &args),
        _ => Ok(args.clone()),
    };
    let args = match outcome {
        Ok(args) => args,
        Err(report) => {
            let message = format!("{report}");
            eprintln!("cairn-runc: {report:?}");
            if let Some(log) = &call.log {
                append_runc_log(log, &message);
            }
            return ExitCode::FAILURE;
        }
    };
    let err = std::process::Command::new(&config.runc).args(&args).exec();
    eprintln!("cairn-runc: cannot run {}: {err}", config.runc.display());
    ExitCode::from(127)
}

/// Appends an error line in runc's JSON log format, which containerd's shim
/// reads back for the error it returns to the kubelet.
fn append_runc_log(log: &Path, message: &str) {
    // No "time": containerd parses it as RFC 3339 when present, and a line
    // without one is read all the same.
    let line = serde_json::json!({
        "level": "error",
        "msg": format!("cairn: {message}"),
    });
    let written = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "cairn-runc: cannot write the runc log {}: {e}",
            log.display()
        );
    }
}

/// The arguments for runc with the `in_use` locks handed to the container:
/// each lock's descriptor duplicated to the next free number after those the
/// caller already preserves, and `--preserve-fds` counting them, so the
/// container's init holds the locks until it exits. Nothing to hand over
/// leaves the arguments as they are.
fn hand_over(args: &[OsString], call: &RuncCall, in_use: Vec<EntryLock>) -> Result<Vec<OsString>> {
    if in_use.is_empty() {
        return Ok(args.to_vec());
    }
    let (rest, preserved) = without_preserve_fds(&call.rest)?;
    let first = 3 + preserved;
    let count = in_use.len() as i32;
    // The locks' own descriptors may sit where they must go: move them above
    // the range first (the duplicates share the locks), then close them.
    let moved: Vec<OwnedFd> = in_use
        .iter()
        .map(|lock| {
            let raw = fcntl(lock, FcntlArg::F_DUPFD_CLOEXEC(first + count))
                .map_err(|e| miette!("cannot pass a use lock to runc: {e}"))?;
            // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor, owned by no one else.
            Ok(unsafe { OwnedFd::from_raw_fd(raw) })
        })
        .collect::<Result<_>>()?;
    drop(in_use);
    for (i, fd) in moved.iter().enumerate() {
        let target = first + i as i32;
        // SAFETY: only asks whether `target` is open; the borrow ends here.
        let open = fcntl(unsafe { BorrowedFd::borrow_raw(target) }, FcntlArg::F_GETFD).is_ok();
        if open {
            return Err(miette!(
                "cannot hand the node store's use locks to the container: descriptor {target} is already open in cairn-runc (runc would pass it on)"
            ));
        }
        // SAFETY: `target` is not open (checked above), so dup2 takes no
        // descriptor from anyone; the new one (without close-on-exec) is
        // meant to outlive this process image, so it leaves Rust's ownership.
        let dup = unsafe { nix::unistd::dup2_raw(fd, target) }
            .map_err(|e| miette!("cannot pass a use lock to runc: {e}"))?;
        let _ = dup.into_raw_fd();
    }
    let mut out = call.globals.clone();
    out.push(call.subcommand.clone().unwrap_or_default().into());
    out.push("--preserve-fds".into());
    out.push((preserved + count).to_string().into());
    out.extend(rest);
    Ok(out)
}

/// The subcommand's arguments without `--preserve-fds N`, and N (0 if absent).
fn without_preserve_fds(rest: &[OsString]) -> Result<(Vec<OsString>, i32)> {
    let mut out = Vec::new();
    let mut count = 0;
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        let value = if text == "--preserve-fds" {
            iter.next().map(|v| v.to_string_lossy().into_owned())
        } else if let Some(value) = text.strip_prefix("--preserve-fds=") {
            Some(value.to_owned())
        } else {
            out.push(arg.clone());
            continue;
        };
        let value = value.unwrap_or_default();
        count = value
            .parse()
            .map_err(|_| miette!("runc --preserve-fds '{value}' is not a number"))?;
    }
    Ok((out, count))
}

/// `runc create --bundle DIR ID`: edit `DIR/config.json` when the pod asks;
/// the use locks of what the container uses, to hand over to it.
fn on_create(config: &NodeConfig, call: &RuncCall) -> Result<Vec<EntryLock>> {
    let bundle = match call.option("--bundle", "-b") {
        Some(dir) => dir,
        None => std::env::current_dir().into_diagnostic()?,
    };
    let spec_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs_err::read(&spec_path).into_diagnostic()?)
        .map_err(|e| miette!("{} is not JSON: {e}", spec_path.display()))?;
    let annotations = kubernetes::spec_annotations(&spec);
    let request = match kubernetes::container_request(&annotations) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => {
            let reference = annotations
                .get(kubernetes::ENVIRONMENT)
                .cloned()
                .unwrap_or_default();
            return Err(miette!("environment {reference}: {e}"));
        }
    };
    let id = call
        .container_id()
        .ok_or_else(|| miette!("runc create without a container id"))?;
    let scratch = config.scratch_dir(&id);
    let outcome = prepare_container(config, &bundle, &mut spec, &request, &scratch);
    let written = outcome.and_then(|in_use| write_json_atomic(&spec_path, &spec).map(|()| in_use));
    written.map_err(|e| {
        // Nothing half-made stays on the node: the scratch directory is
        // this container's alone, and the spec was not replaced.
        let _ = fs_err::remove_dir_all(&scratch);
        miette!(
            "cannot run container '{}' in environment {}: {e}",
            request.container,
            request.environment
        )
    })
}

fn prepare_container(
    config: &NodeConfig,
    bundle: &Path,
    spec: &mut Value,
    request: &ContainerRequest,
    scratch: &Path,
) -> Result<Vec<EntryLock>> {
    let secret = kubernetes::secret_source(spec);
    let prepared = node::prepare(config, request, secret.as_deref())?;
    let root = spec
        .pointer("/root/path")
        .and_then(Value::as_str)
        .unwrap_or("rootfs");
    let image_rootfs = bundle.join(root);
    let inputs = kubernetes::PlanInputs {
        env_entries: kubernetes::top_entries(&prepared.rootfs).into_diagnostic()?,
        env_rootfs: prepared.rootfs,
        image_entries: kubernetes::top_entries(&image_rootfs).into_diagnostic()?,
        image_rootfs: image_rootfs.clone(),
        env_dir: prepared.env_dir,
        cairn_exe: config.entrypoint.clone(),
        scratch: scratch.to_path_buf(),
        mutable: request.mutable,
    };
    let plan = kubernetes::container_plan(&inputs);
    for dir in &plan.scratch_dirs {
        fs_err::create_dir_all(dir).into_diagnostic()?;
    }
    kubernetes::create_links(&image_rootfs, &plan.links).map_err(|e| miette!("{e}"))?;
    kubernetes::edit_spec(spec, &plan, request);
    Ok(prepared.in_use)
}

/// `runc exec --process FILE ID`: run the command activated when the
/// container was created by the handler and not listed in skip-containers-exec.
fn on_exec(config: &NodeConfig, call: &RuncCall) -> Result<()> {
    let (Some(process_path), Some(id)) = (call.option("--process", "-p"), call.container_id())
    else {
        return Ok(());
    };
    let Some(bundle) = container_bundle(config, call, &id) else {
        return Ok(());
    };
    let spec: Value = match fs_err::read(bundle.join("config.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => return Ok(()),
    };
    let annotations = kubernetes::spec_annotations(&spec);
    let marker = annotations.get(kubernetes::EXEC_MARKER).map(String::as_str);
    let mut process: Value =
        serde_json::from_slice(&fs_err::read(&process_path).into_diagnostic()?)
            .map_err(|e| miette!("{} is not JSON: {e}", process_path.display()))?;
    if kubernetes::edit_exec_process(&mut process, marker) {
        write_json_atomic(&process_path, &process)?;
    }
    Ok(())
}

/// The bundle of a running container, from `runc state ID`.
fn container_bundle(config: &NodeConfig, call: &RuncCall, id: &str) -> Option<PathBuf> {
    let output = std::process::Command::new(&config.runc)
        .args(&call.globals)
        .args([OsStr::new("state"), OsStr::new(id)])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let state: Value = serde_json::from_slice(&output.stdout).ok()?;
    state.get("bundle")?.as_str().map(PathBuf::from)
}

/// `runc delete ID`: runs runc, then removes the container's scratch
/// directory once runc has let the container go.
fn on_delete(config: &NodeConfig, call: &RuncCall, args: &[OsString]) -> ExitCode {
    let status = std::process::Command::new(&config.runc).args(args).status();
    match status {
        Ok(status) if status.success() => {
            if let Some(id) = call.container_id() {
                let scratch = config.scratch_dir(&id);
                if scratch.exists()
                    && let Err(e) = fs_err::remove_dir_all(&scratch)
                {
                    eprintln!("cairn-runc: cannot remove {}: {e}", scratch.display());
                }
            }
            ExitCode::SUCCESS
        }
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("cairn-runc: cannot run {}: {e}", config.runc.display());
            ExitCode::from(127)
        }
    }
}

fn write_json_atomic(path: &Path, value: &Value) -> Result<()> {
    let bytes = serde_json::to_vec(value).into_diagnostic()?;
    cairn_store::write_atomic(path, |f| std::io::Write::write_all(f, &bytes)).into_diagnostic()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_the_shims_create_call() {
        let call = RuncCall::parse(&args(
            "--root /run/containerd/runc/k8s.io --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid abc123",
        ));
        assert_eq!(call.subcommand.as_deref(), Some("create"));
        assert_eq!(call.log, Some(PathBuf::from("/b/log.json")));
        assert_eq!(call.option("--bundle", "-b"), Some(PathBuf::from("/b")));
        assert_eq!(call.container_id().as_deref(), Some("abc123"));
        assert_eq!(call.globals.len(), 6);
    }

    #[test]
    fn parses_exec_and_inline_values() {
        let call = RuncCall::parse(&args(
            "--root=/r --systemd-cgroup exec --process /tmp/p.json --detach --pid-file /x c1",
        ));
        assert_eq!(call.subcommand.as_deref(), Some("exec"));
        assert_eq!(
            call.option("--process", "-p"),
            Some(PathBuf::from("/tmp/p.json"))
        );
        assert_eq!(call.container_id().as_deref(), Some("c1"));
        assert_eq!(call.globals, args("--root=/r --systemd-cgroup"));
        let call = RuncCall::parse(&args("--version"));
        assert_eq!(call.subcommand, None);
    }

    #[test]
    fn preserve_fds_is_counted_and_removed() {
        let (rest, n) = without_preserve_fds(&args("--bundle /b --preserve-fds 2 c1")).unwrap();
        assert_eq!((rest, n), (args("--bundle /b c1"), 2));
        let (rest, n) = without_preserve_fds(&args("--preserve-fds=1 c1")).unwrap();
        assert_eq!((rest, n), (args("c1"), 1));
        let (_, n) = without_preserve_fds(&args("--bundle /b c1")).unwrap();
        assert_eq!(n, 0);
        assert!(without_preserve_fds(&args("--preserve-fds x c1")).is_err());
    }
}
