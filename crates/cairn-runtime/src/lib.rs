//! cairn's runtime: what happens when an environment is *used*.
//!
//! Owns activation (the environment a command sees, the `on-activate` hook,
//! interactive shells), the in-image entrypoint (PID 1 in a container), the
//! service supervisor (foreground in containers, detached on the host),
//! host activation through unprivileged user+mount namespaces over a rootfs
//! hardlinked from the store, and the Kubernetes handler's spec edits
//! ([`kubernetes`]). It knows nothing about manifests or the CLI:
//! callers hand it an [`Activation`], plain data derived from the manifest
//! (`cairn_manifest::activation`), and that images carry as `/opt/cairn/env/activation.json`.

pub mod activate;
mod confined;
pub mod entrypoint;
pub mod host;
pub mod host_spawn;
pub mod kubernetes;
mod logs;
mod output;
mod process;
mod signals;
pub mod supervisor;

use std::path::{Path, PathBuf};

pub use activate::{ENV_PATH, activate, activation_env, exec_command, exec_interactive};
pub use entrypoint::{run_activated, run_entrypoint};
pub use host::{Bind, RootfsEntry, assemble_rootfs, assembled_rootfs, run_in_rootfs};
pub use process::{ServiceLauncher, ServiceState, ServiceStatus};

pub use cairn_manifest::activation::{
    ACTIVATION_FILE, Activation, CONTAINER_CAIRN_EXE, CONTAINER_ENV_DIR, CONTAINER_RUN_DIR, Mode,
    Profile, ServiceSpec,
};

/// Errors from the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot read activation data {path}: {message}")]
    BadActivation { path: PathBuf, message: String },
    #[error("the on-activate hook of '{env}' failed with exit code {code}")]
    HookFailed { env: String, code: i32 },
    #[error("the on-activate hook of '{env}' was killed by signal {signal}")]
    HookKilled { env: String, signal: i32 },
    #[error(
        "environment '{env}' has an on-activate hook but no bash to run it: add 'bash' to [install]"
    )]
    HookNeedsBash { env: String },
    #[error("cannot start the on-activate hook with {bash}: {source}")]
    HookSpawn {
        bash: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("command not found: {program} (PATH={path})")]
    CommandNotFound { program: String, path: String },
    #[error("cannot run {program}: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "environment '{env}' has no bash for an interactive shell: pass a command, e.g. `docker run IMAGE <command>`"
    )]
    NoShell { env: String },
    #[error("cannot split the command of service '{service}': {message}")]
    BadCommand { service: String, message: String },
    #[error("unknown service '{name}'; known services: {}", known.join(", "))]
    UnknownService { name: String, known: Vec<String> },
    #[error("cannot start service '{service}': {source}")]
    ServiceSpawn {
        service: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no supervisor is running for {run_dir}: start services first")]
    SupervisorNotRunning { run_dir: PathBuf },
    #[error("a supervisor is already running for {run_dir}")]
    SupervisorRunning { run_dir: PathBuf },
    #[error("the services supervisor did not come up: {message} (see {log})")]
    SupervisorStart { message: String, log: PathBuf },
    #[error("the services supervisor answered badly: {0}")]
    SupervisorProtocol(String),
    #[error(
        "unprivileged user namespaces are unavailable ({operation}: {errno}); \
         run the environment in a container instead: `cairn containerize` then `docker run`"
    )]
    NamespacesUnavailable {
        operation: &'static str,
        errno: nix::errno::Errno,
    },
    #[error(
        "cannot enter the environment's namespace from a process with {threads} threads; \
         cairn must enter it before starting threads (re-exec itself)"
    )]
    NotSingleThreaded { threads: usize },
    #[error("{operation} {path} failed while preparing the namespace: {errno}")]
    Mount {
        operation: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("{operation} {path} inside the rootfs {rootfs} failed: {errno}")]
    RootfsPath {
        rootfs: PathBuf,
        /// Absolute inside the rootfs.
        path: PathBuf,
        operation: &'static str,
        errno: nix::errno::Errno,
    },
    #[error(
        "package {deb} ships /{path} as a symlink to '{target}', but cairn needs a real directory there \
         (activation writes to it); remove the package from [install] or report it to its maintainer"
    )]
    ReservedSymlink {
        deb: PathBuf,
        path: String,
        target: PathBuf,
    },
    #[error("cannot unpack {deb}: {message}")]
    Unpack { deb: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Reads `activation.json`.
pub fn load_activation(path: &Path) -> Result<Activation> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::BadActivation {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `activation.json` atomically.
pub fn write_activation(path: &Path, activation: &Activation) -> Result<()> {
    let json = serde_json::to_vec_pretty(activation).map_err(std::io::Error::other)?;
    cairn_store::write_atomic(path, |f| std::io::Write::write_all(f, &json))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_round_trips_through_json() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(ACTIVATION_FILE);
        let activation = Activation {
            env_name: "web".into(),
            vars: vec![("B".into(), "2".into()), ("A".into(), "1".into())],
            hook: Some("export X=1".into()),
            mode: Mode::Dev,
            services: vec![ServiceSpec {
                name: "db".into(),
                command: "postgres".into(),
                ..ServiceSpec::default()
            }],
            ..Activation::default()
        };
        write_activation(&path, &activation).unwrap();
        assert_eq!(load_activation(&path).unwrap(), activation);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"mode\": \"dev\""), "{text}");
    }

    #[test]
    fn bad_activation_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(ACTIVATION_FILE);
        std::fs::write(&path, "{\"env_name\": 3}").unwrap();
        let err = load_activation(&path).unwrap_err().to_string();
        assert!(err.contains("activation.json"), "{err}");
    }
}
