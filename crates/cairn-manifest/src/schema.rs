//! The typed manifest: plain data mirroring `manifest.toml`, plus the small
//! helpers that fill in defaults (sources, systems).
//!
//! Parsing and validation live in `parse.rs` and `validate.rs`; this module
//! only says what a valid manifest looks like once read.

use crate::validate::{HealthDuration, PortSpec, StopSignal, UserSpec, VersionConstraint};
use serde::Serialize;
use std::collections::BTreeMap;

/// The only manifest format version cairn understands.
pub const MANIFEST_VERSION: u32 = 1;

/// Systems cairn can build for, and the Debian architecture of each.
pub const SYSTEMS: &[(&str, &str)] = &[("x86_64-linux", "amd64"), ("aarch64-linux", "arm64")];

/// Image layer limit when `[containerize] max-layers` is not set.
pub const DEFAULT_MAX_LAYERS: u32 = 100;

/// A parsed, validated `manifest.toml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    /// Format version; always [`MANIFEST_VERSION`] once parsed.
    pub version: u32,
    /// The environment's name (`name = "..."`), if the manifest sets one.
    pub name: Option<String>,
    /// `release = "trixie"`: the Debian release of the default sources.
    pub release: Option<String>,
    /// `[install]`: install id -> package request.
    pub install: BTreeMap<String, InstallEntry>,
    /// `[sources]`, or `None` when absent (see [`Manifest::sources_or_default`]).
    pub sources: Option<BTreeMap<String, SourceEntry>>,
    /// `[vars]`: environment variables set on activation.
    pub vars: BTreeMap<String, String>,
    /// `[hook]`.
    pub hook: Hook,
    /// `[profile]`.
    pub profile: Profile,
    /// `[services.NAME]`.
    pub services: BTreeMap<String, Service>,
    /// `[options]`.
    pub options: Options,
    /// `[containerize]`: the default image.
    pub containerize: Containerize,
    /// `[containers.NAME]`: further named images.
    pub containers: BTreeMap<String, NamedContainer>,
    /// `[build.NAME]`: artifacts built inside the environment.
    pub build: BTreeMap<String, BuildSpec>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            name: None,
            release: None,
            install: BTreeMap::new(),
            sources: None,
            vars: BTreeMap::new(),
            hook: Hook::default(),
            profile: Profile::default(),
            services: BTreeMap::new(),
            options: Options::default(),
            containerize: Containerize::default(),
            containers: BTreeMap::new(),
            build: BTreeMap::new(),
        }
    }
}

/// One `[install]` entry: a Debian package, optionally constrained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstallEntry {
    /// Debian package name.
    pub pkg: String,
    /// Debian version constraint; `None` means the newest available.
    pub version: Option<VersionConstraint>,
    /// Systems this entry applies to; `None` means all of `options.systems`.
    pub systems: Option<Vec<String>>,
    /// `recommends = false`: not this package's Recommends (nor those of
    /// what it pulls in), whatever `options.recommends` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommends: Option<bool>,
}

impl InstallEntry {
    /// Whether this entry is installed on `system`.
    pub fn applies_to(&self, system: &str) -> bool {
        self.systems
            .as_ref()
            .is_none_or(|systems| systems.iter().any(|s| s == system))
    }
}

/// One `[sources.NAME]` entry: a Debian archive and the suites to use from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SourceEntry {
    /// Archive root (`http`, `https` or `file` URL), without a trailing slash.
    pub url: String,
    /// Suites (`bookworm`, `bookworm-updates`, ...), in priority order.
    pub suites: Vec<String>,
    /// Components; `["main"]` when not set.
    pub components: Vec<String>,
    /// Debian architectures to restrict this source to; `None` means all.
    pub architectures: Option<Vec<String>>,
    /// `None` or `"debian"`: Debian's archive keys; anything else is a keyring
    /// file path relative to the manifest's directory.
    pub keyring: Option<String>,
}

impl SourceEntry {
    /// Whether this source serves packages for the Debian architecture `arch`.
    pub fn serves_arch(&self, arch: &str) -> bool {
        self.architectures
            .as_ref()
            .is_none_or(|archs| archs.iter().any(|a| a == arch))
    }
}

/// `[hook]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Hook {
    /// Script run (by bash) on every activation.
    pub on_activate: Option<String>,
}

/// `[profile]`: shell snippets sourced on interactive activation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Sourced by every shell.
    pub common: Option<String>,
    /// Sourced by bash only.
    pub bash: Option<String>,
    /// Sourced by zsh only.
    pub zsh: Option<String>,
    /// Sourced by fish only.
    pub fish: Option<String>,
}

/// `[services.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Service {
    /// Shell command that runs the service.
    pub command: String,
    /// Extra environment for this service only.
    pub vars: BTreeMap<String, String>,
    /// The command forks into the background (the supervisor tracks its pid).
    pub is_daemon: bool,
    /// Command that stops the service, instead of a signal.
    pub shutdown: Option<Shutdown>,
}

/// `[services.NAME.shutdown]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Shutdown {
    /// Shell command that stops the service.
    pub command: String,
}

/// `[options]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Options {
    /// Systems to lock and build for; `None` means the host's.
    pub systems: Option<Vec<String>>,
    /// `options.activate.mode`.
    pub activate_mode: ActivateMode,
    /// `options.essential`: Debian's Essential set (and what it depends on)
    /// is part of the environment, as debootstrap and mmdebstrap make it.
    pub essential: bool,
    /// `options.recommends`: follow Recommends, as apt does by default.
    pub recommends: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            systems: None,
            activate_mode: ActivateMode::default(),
            essential: true,
            recommends: true,
        }
    }
}

/// How `cairn activate` sets up the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivateMode {
    /// Everything a developer needs (flox's default).
    #[default]
    Dev,
    /// Only what running the packages needs.
    Run,
}

/// Layer compression for built images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// Readable by every engine.
    #[default]
    Gzip,
    /// Smaller and faster; needs a recent engine.
    Zstd,
}

/// `[containerize]`: the default image built from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Containerize {
    /// Image name; the CLI picks one from the environment when `None`.
    pub name: Option<String>,
    /// Image tag; the CLI picks one when `None`.
    pub tag: Option<String>,
    /// Upper bound on image layers (2..=125).
    pub max_layers: u32,
    /// Layer compression.
    pub compression: Compression,
    /// Paths (relative to the environment directory) or build outputs copied
    /// to the default image's root, e.g. a private CA under
    /// `usr/local/share/ca-certificates/`.
    pub copy_to_root: Vec<CopySource>,
    /// `[containerize.config]`.
    pub config: ContainerConfig,
}

impl Default for Containerize {
    fn default() -> Self {
        Containerize {
            name: None,
            tag: None,
            max_layers: DEFAULT_MAX_LAYERS,
            compression: Compression::default(),
            copy_to_root: Vec::new(),
            config: ContainerConfig::default(),
        }
    }
}

/// `[containerize.config]`: the OCI image config fields a user may set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContainerConfig {
    /// `User`.
    pub user: Option<UserSpec>,
    /// `ExposedPorts`.
    pub exposed_ports: Vec<PortSpec>,
    /// `Cmd`; `Some(vec![])` means "start the services".
    pub cmd: Option<Vec<String>>,
    /// `Volumes`: absolute paths.
    pub volumes: Vec<String>,
    /// `WorkingDir`: an absolute path.
    pub working_dir: Option<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `StopSignal`.
    pub stop_signal: Option<StopSignal>,
    /// `Healthcheck`: a command run inside the activation.
    pub healthcheck: Option<Healthcheck>,
}

/// `[containerize.config] healthcheck`: Docker's `HEALTHCHECK`, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Healthcheck {
    /// What to run: a shell string (`sh -c`) or an argument list.
    pub command: StartupCommand,
    /// Time between checks; the engine's default (30s) when `None`.
    pub interval: Option<HealthDuration>,
    /// Time a check may take; the engine's default (30s) when `None`.
    pub timeout: Option<HealthDuration>,
    /// Failures in a row that make the container unhealthy; default 3.
    pub retries: Option<u32>,
    /// Grace time after start during which failures do not count; default 0.
    pub start_period: Option<HealthDuration>,
    /// Converted from the seed's `labels = { healthcheck = "..." }`, so the
    /// CLI can say so.
    #[serde(skip)]
    pub from_label: bool,
}

impl Healthcheck {
    /// Docker's default interval and timeout when the manifest sets none.
    pub const DEFAULT_INTERVAL: HealthDuration = HealthDuration(std::time::Duration::from_secs(30));
    /// Docker's default timeout.
    pub const DEFAULT_TIMEOUT: HealthDuration = HealthDuration(std::time::Duration::from_secs(30));
    /// Docker's default retries.
    pub const DEFAULT_RETRIES: u32 = 3;
}

/// `[containers.NAME]`: a named image (devenv style).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct NamedContainer {
    /// Image name; defaults to the table's name.
    pub name: Option<String>,
    /// Image tag.
    pub version: Option<String>,
    /// What the image runs.
    pub startup_command: Option<StartupCommand>,
    /// Paths (relative to the environment directory) or build outputs copied
    /// to the image root.
    pub copy_to_root: Vec<CopySource>,
    /// `WorkingDir`: an absolute path.
    pub working_dir: Option<String>,
    /// Overrides `[containerize] max-layers`.
    pub max_layers: Option<u32>,
    /// `[install]` ids left out of this image.
    pub exclude: Vec<String>,
    /// Where `cairn containerize --push` copies the image (a skopeo destination prefix).
    pub registry: Option<String>,
    /// Extra arguments for the copy to `registry`.
    pub default_copy_args: Option<String>,
    /// `[build]` names whose outputs go into the image.
    pub artifacts: Vec<String>,
}

/// A startup command: one shell string, or an exec-form argument list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StartupCommand {
    /// Run through `sh -c`.
    Shell(String),
    /// Run directly.
    Exec(Vec<String>),
}

/// One `copy-to-root` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopySource {
    /// A path relative to the environment directory.
    Path(String),
    /// `build:NAME`: the output of `[build.NAME]`.
    Build(String),
}

/// `[build.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildSpec {
    /// Shell command; it writes its output under `$out`.
    pub command: String,
    /// Packages the output needs at run time.
    pub runtime_packages: Vec<String>,
    /// One line saying what the build produces.
    pub description: Option<String>,
}

/// The Debian architecture for a cairn system (`x86_64-linux` -> `amd64`).
pub fn debian_arch(system: &str) -> Option<&'static str> {
    SYSTEMS
        .iter()
        .find(|(name, _)| *name == system)
        .map(|(_, arch)| *arch)
}

/// The system cairn is running on, if it is one cairn supports.
pub fn host_system() -> Option<&'static str> {
    match (std::env::consts::ARCH, std::env::consts::OS) {
        ("x86_64", "linux") => Some("x86_64-linux"),
        ("aarch64", "linux") => Some("aarch64-linux"),
        _ => None,
    }
}

/// Debian's bookworm archives, the sources of manifests that name no release.
pub fn default_sources() -> BTreeMap<String, SourceEntry> {
    crate::release::default_sources_for(crate::release::LEGACY_RELEASE)
}

impl Manifest {
    /// `[sources]`, or Debian's archives for the manifest's release when it
    /// has none.
    pub fn sources_or_default(&self) -> BTreeMap<String, SourceEntry> {
        self.sources
            .clone()
            .unwrap_or_else(|| crate::release::default_sources_for(self.release_or_legacy()))
    }

    /// The `release` the manifest names, or bookworm for manifests that
    /// predate the key.
    pub fn release_or_legacy(&self) -> &str {
        self.release
            .as_deref()
            .unwrap_or(crate::release::LEGACY_RELEASE)
    }

    /// `options.systems`, or the host's system (empty on an unsupported host).
    pub fn systems_or_host(&self) -> Vec<String> {
        match &self.options.systems {
            Some(systems) => systems.clone(),
            None => host_system().map(str::to_string).into_iter().collect(),
        }
    }

    /// The `[install]` entries that apply to `system`.
    pub fn install_for<'a>(
        &'a self,
        system: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a InstallEntry)> + 'a {
        self.install
            .iter()
            .filter(move |(_, entry)| entry.applies_to(system))
    }

    /// `max-layers` for the named container, falling back to `[containerize]`.
    pub fn max_layers_for(&self, container: Option<&str>) -> u32 {
        container
            .and_then(|name| self.containers.get(name))
            .and_then(|c| c.max_layers)
            .unwrap_or(self.containerize.max_layers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_arch_maps_supported_systems_only() {
        assert_eq!(debian_arch("x86_64-linux"), Some("amd64"));
        assert_eq!(debian_arch("aarch64-linux"), Some("arm64"));
        assert_eq!(debian_arch("x86_64-darwin"), None);
    }

    #[test]
    fn defaults_fill_sources_and_systems() {
        let manifest = Manifest::default();
        let sources = manifest.sources_or_default();
        assert_eq!(
            sources.keys().collect::<Vec<_>>(),
            ["debian", "debian-security"]
        );
        assert_eq!(sources["debian"].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            manifest.systems_or_host(),
            host_system()
                .map(str::to_string)
                .into_iter()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn install_for_filters_by_system() {
        let mut manifest = Manifest::default();
        let entry = |systems: Option<Vec<String>>| InstallEntry {
            pkg: "hello".into(),
            version: None,
            systems,
            recommends: None,
        };
        manifest.install.insert("all".into(), entry(None));
        manifest
            .install
            .insert("arm".into(), entry(Some(vec!["aarch64-linux".into()])));
        let ids: Vec<_> = manifest
            .install_for("x86_64-linux")
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["all"]);
    }
}
