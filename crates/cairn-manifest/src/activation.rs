//! What activating an environment means, as plain data: [`Activation`] is
//! derived from the manifest ([`activation_for`]), carried by images as
//! `/opt/cairn/env/activation.json`, and executed by cairn-runtime. It lives
//! here, upstream of image assembly and the runtime, so both can use it
//! without depending on each other.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Manifest;

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
    /// The image's command is `cmd = []`: with no command given, the
    /// container starts the services even when a terminal is attached
    /// (`docker run -it IMAGE`), as devenv's process containers do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_services: bool,
    /// Dev mode on the host: the socket of the host-spawn server that runs
    /// commands the environment lacks (`CAIRN_HOST_SPAWN`). Never in images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_spawn: Option<PathBuf>,
    /// On the host, the `bin` directories of `[build]` outputs, first on
    /// PATH (images copy the outputs into `/usr` instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_bins: Vec<PathBuf>,
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
    /// The environment's directories are prepended to the inherited PATH;
    /// on the host, the user's world stays visible (see cairn-runtime's
    /// `host` and `host_spawn`).
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

/// The activation for `manifest`, named `env_name`, optionally inside a named container.
pub fn activation_for(manifest: &Manifest, env_name: &str, container: Option<&str>) -> Activation {
    Activation {
        env_name: env_name.to_string(),
        env_dir: None,
        vars: manifest
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        hook: manifest.hook.on_activate.clone(),
        profile: Profile {
            common: manifest.profile.common.clone(),
            bash: manifest.profile.bash.clone(),
            zsh: manifest.profile.zsh.clone(),
            fish: manifest.profile.fish.clone(),
        },
        mode: match manifest.options.activate_mode {
            crate::ActivateMode::Dev => Mode::Dev,
            crate::ActivateMode::Run => Mode::Run,
        },
        services: manifest
            .services
            .iter()
            .map(|(name, s)| ServiceSpec {
                name: name.clone(),
                command: s.command.clone(),
                vars: s.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                is_daemon: s.is_daemon,
                shutdown_command: s.shutdown.as_ref().map(|x| x.command.clone()),
            })
            .collect(),
        container: container.map(str::to_string),
        start_services: false,
        host_spawn: None,
        build_bins: Vec::new(),
    }
}

/// Whether the environment needs bash: hooks, profiles, services and builds run in it.
pub fn needs_bash(manifest: &Manifest) -> bool {
    let p = &manifest.profile;
    manifest.hook.on_activate.is_some()
        || !manifest.services.is_empty()
        || !manifest.build.is_empty()
        || [&p.common, &p.bash, &p.zsh, &p.fish]
            .iter()
            .any(|s| s.is_some())
}
