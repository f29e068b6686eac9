//! cairn's runtime: what happens when an environment is *used*.
//!
//! Owns activation (the environment a command sees, the `on-activate` hook,
//! interactive shells), the in-image entrypoint (PID 1 in a container), the
//! service supervisor (foreground in containers, detached on the host), and
//! host activation through unprivileged user+mount namespaces over a rootfs
//! hardlinked from the store. It knows nothing about manifests or the CLI:
//! callers hand it an [`Activation`], plain data that the CLI derives from the
//! manifest and lock, and that images carry as `/opt/cairn/env/activation.json`.

pub mod activate;
pub mod entrypoint;
pub mod host;
mod logs;
mod output;
mod process;
mod signals;
pub mod supervisor;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use activate::{ENV_PATH, activate, activation_env, exec_command, exec_interactive};
pub use entrypoint::{run_activated, run_entrypoint};
pub use host::{Bind, assemble_rootfs, run_in_rootfs};
pub use process::{ServiceLauncher, ServiceState, ServiceStatus};

/// Where an image keeps its environment: manifest, lock and `activation.json`.
pub const CONTAINER_ENV_DIR: &str = "/opt/cairn/env";
/// Where an image keeps the cairn binary.
pub const CONTAINER_CAIRN_EXE: &str = "/opt/cairn/bin/cairn";
/// File name of the serialized [`Activation`] inside an env directory.
pub const ACTIVATION_FILE: &str = "activation.json";
/// Where the in-image supervisor (PID 1) listens for `cairn services …`; the
/// image creates it owned by the configured user.
pub const CONTAINER_RUN_DIR: &str = "/run/cairn";

/// Everything needed to activate an environment, derived by the CLI from the
/// manifest and lock. Serialized as `activation.json` in images.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// Environment name, shown in the prompt and exported as `CAIRN_ENV_NAME`.
    pub env_name: String,
    /// The environment's directory on the host, exported as `CAIRN_ENV` so that
    /// `cairn` commands run inside the activation find the same environment
    /// (`CAIRN_ENV` is where the CLI looks first). `None` in images, where the
    /// CLI finds `/opt/cairn/env` by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_dir: Option<PathBuf>,
    /// `[vars]`, exported in this order.
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    /// `[hook] on-activate`, a bash script whose exported variables are kept.
    #[serde(default)]
    pub hook: Option<String>,
    /// `[profile]` scripts sourced by interactive shells.
    #[serde(default)]
    pub profile: Profile,
    /// Whether PATH is the environment's alone or prepended to the caller's.
    #[serde(default)]
    pub mode: Mode,
    /// `[services]`, in declaration order.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Exported as `CAIRN_CONTAINER` when set (the image name).
    #[serde(default)]
    pub container: Option<String>,
}

/// `[profile]`: scripts sourced by interactive shells, `common` first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub common: Option<String>,
    pub bash: Option<String>,
    pub zsh: Option<String>,
    pub fish: Option<String>,
}

/// How PATH is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// PATH is the environment's directories only.
    #[default]
    Run,
    /// The environment's directories are prepended to the inherited PATH.
    Dev,
}

/// One `[services.<name>]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Run by `bash -c` when bash exists, else split with shell-words rules.
    pub command: String,
    /// Extra variables for this service only.
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    /// The command forks a daemon and exits; see [`supervisor`] for tracking.
    #[serde(default)]
    pub is_daemon: bool,
    /// Run to stop the service instead of SIGTERM.
    #[serde(default)]
    pub shutdown_command: Option<String>,
}

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
