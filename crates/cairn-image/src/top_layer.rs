//! The image's own files: cairn's entrypoint binary (a layer of its own, shared
//! by every image built with the same cairn), and the small top layer with
//! users, dpkg metadata for scanners, the manifest, the lock and activation data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_manifest::StartupCommand;
use cairn_manifest::activation::{CONTAINER_RUN_DIR, activation_for};
use cairn_oci::{
    BuiltLayer, CustomEntry, FileContent, HealthcheckConfig, ImageSpec, LayerInput, LayerOptions,
    RuntimeConfig,
};
use cairn_store::Store;

use crate::configured::AccountIds;
use crate::foreign::{self, ForeignEntrypoint};
use crate::{BuildPlan, ImageError, Result};

/// Where cairn lives inside images.
pub const CAIRN_BIN: &str = "/opt/cairn/bin/cairn";
const IMAGE_PATH: &str =
    "/opt/cairn/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The layer holding cairn itself, cached by the binary's content.
/// For another architecture it holds that architecture's entrypoint instead
/// (see `foreign`); with none, only the directories, so layers still count alike.
pub fn build_binary_layer(store: &Store, plan: &BuildPlan) -> Result<BuiltLayer> {
    let mut entries = vec![
        CustomEntry::dir("opt", 0o755),
        CustomEntry::dir("opt/cairn", 0o755),
        CustomEntry::dir("opt/cairn/bin", 0o755),
    ];
    let (content, what) = match foreign_entrypoint(plan)? {
        None => (
            Some(FileContent::Path(entrypoint_binary(plan)?)),
            "entrypoint".to_string(),
        ),
        Some(ForeignEntrypoint::Binary(path)) => (
            Some(FileContent::Path(path)),
            format!("entrypoint for {}", plan.system),
        ),
        Some(ForeignEntrypoint::Script) => (
            Some(FileContent::Bytes(foreign::script(plan))),
            format!("activation script for {}", plan.system),
        ),
        Some(ForeignEntrypoint::None) => (None, format!("no entrypoint for {}", plan.system)),
    };
    if let Some(content) = content {
        entries.push(CustomEntry::file(&CAIRN_BIN[1..], 0o755, content));
    }
    // Epoch mtimes, not the lock's date: this layer must depend on the binary
    // alone, so every image built by this cairn shares it.
    let opts = LayerOptions {
        compression: plan.compression,
        mtime_clamp: None,
    };
    let mut layer = cairn_oci::build_custom_layer(store, entries, &opts)?;
    layer.created_by = format!("cairn {} {what}", env!("CARGO_PKG_VERSION"));
    Ok(layer)
}

/// The small last layer.
/// `account` is the image user's ids as the configuration layer (which
/// writes `/etc/passwd` and `/etc/group`) resolved them.
pub fn build(
    store: &Store,
    plan: &BuildPlan,
    inputs: &[LayerInput],
    account: Option<AccountIds>,
) -> Result<BuiltLayer> {
    let mut entries = base_entries();
    entries.extend(sh_link(inputs));
    entries.extend(env_entries(plan, account)?);
    entries.extend(crate::sbom::image_entries(store, plan)?);
    if matches!(foreign_entrypoint(plan)?, Some(ForeignEntrypoint::Script)) {
        entries.extend(foreign::script_files(plan));
    }
    let mut layer = cairn_oci::build_custom_layer(store, entries, &options(plan))?;
    layer.created_by = format!("cairn: environment {}", plan.name);
    Ok(layer)
}

/// Options of the layers cairn generates: dated by the plan's epoch.
pub fn options(plan: &BuildPlan) -> LayerOptions {
    LayerOptions {
        compression: plan.compression,
        mtime_clamp: Some(plan.epoch.max(0) as u64),
    }
}

/// `None` on the host's own system; else what `foreign` picks.
fn foreign_entrypoint(plan: &BuildPlan) -> Result<Option<ForeignEntrypoint>> {
    if plan.is_host_system() {
        Ok(None)
    } else {
        foreign::entrypoint_for(plan).map(Some)
    }
}

/// The in-image cairn for the host's architecture (see
/// [`crate::Entrypoints`]). It must be static, as images have no libc of ours.
fn entrypoint_binary(plan: &BuildPlan) -> Result<PathBuf> {
    let chosen = plan.entrypoints.host.clone();
    if crate::elf::is_dynamic(&chosen)? {
        return Err(ImageError::DynamicEntrypoint { path: chosen });
    }
    tracing::debug!("in-image cairn: {}", chosen.display());
    Ok(chosen)
}

/// Merged-/usr symlinks, `/var/run`, and the directories every image has.
fn base_entries() -> Vec<CustomEntry> {
    let mut entries = vec![CustomEntry::dir("usr", 0o755)];
    entries.extend(cairn_oci::merged_usr_symlinks());
    for (dir, mode) in [
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("var/tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("run", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ] {
        entries.push(CustomEntry::dir(dir, mode));
    }
    // base-files ships an empty directory and makes the link from its
    // postinst; daemons' default socket paths (/var/run/postgresql) go
    // through it.
    entries.push(CustomEntry::symlink("var/run", "/run"));
    entries
}

/// `/bin/sh` → bash when the image has bash but not dash. Debian's /bin/sh
/// comes from dash, which is Essential and so never a dependency; without it
/// `docker exec CID sh`, Kubernetes exec probes and popen() would all fail.
fn sh_link(inputs: &[LayerInput]) -> Vec<CustomEntry> {
    let has = |name: &str| inputs.iter().any(|i| i.name == name);
    if has("bash") && !has("dash") {
        vec![
            CustomEntry::dir("usr/bin", 0o755),
            CustomEntry::symlink("usr/bin/sh", "bash"),
        ]
    } else {
        Vec::new()
    }
}

/// `/var/lib/dpkg/status.d/<pkg>` (+ `.md5sums`), the distroless layout that
/// trivy, grype and syft read.
pub(crate) fn dpkg_entries(packages: &[(&str, &cairn_debian::ControlFiles)]) -> Vec<CustomEntry> {
    let mut entries = vec![
        CustomEntry::dir("var/lib", 0o755),
        CustomEntry::dir("var/lib/dpkg", 0o755),
        CustomEntry::dir("var/lib/dpkg/status.d", 0o755),
    ];
    for (name, control) in packages {
        let base = format!("var/lib/dpkg/status.d/{name}");
        let mut text = control.control.clone();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        entries.push(CustomEntry::file(
            &base,
            0o644,
            FileContent::Bytes(text.into_bytes()),
        ));
        if let Some(md5) = &control.md5sums {
            entries.push(CustomEntry::file(
                format!("{base}.md5sums"),
                0o644,
                FileContent::Bytes(md5.clone().into_bytes()),
            ));
        }
    }
    entries
}

/// The manifest, lock and activation data under /opt/cairn/env, plus the
/// working directory and volumes owned by the configured user.
fn env_entries(plan: &BuildPlan, account: Option<AccountIds>) -> Result<Vec<CustomEntry>> {
    let manifest = plan.manifest_bytes.clone();
    let lock = plan.lock_bytes.clone();
    let mut activation = activation_for(&plan.manifest, &plan.name, plan.container.as_deref());
    activation.start_services = starts_services(plan);
    let activation = serde_json::to_vec_pretty(&activation).map_err(|source| ImageError::Json {
        what: "activation data",
        source,
    })?;
    let mut entries = vec![
        CustomEntry::dir("opt", 0o755),
        CustomEntry::dir("opt/cairn", 0o755),
        CustomEntry::dir("opt/cairn/env", 0o755),
        CustomEntry::file(
            "opt/cairn/env/manifest.toml",
            0o644,
            FileContent::Bytes(manifest),
        ),
        CustomEntry::file(
            "opt/cairn/env/manifest.lock",
            0o644,
            FileContent::Bytes(lock),
        ),
        CustomEntry::file(
            "opt/cairn/env/activation.json",
            0o644,
            FileContent::Bytes(activation),
        ),
    ];
    let config = &plan.manifest.containerize.config;
    let (uid, gid) = account.map(|a| (a.uid, a.gid)).unwrap_or((0, 0));
    let working_dir = plan
        .overrides
        .working_dir
        .as_ref()
        .or(config.working_dir.as_ref());
    // The entrypoint's control socket lives here, so it must be the user's.
    let run_dir = CONTAINER_RUN_DIR.to_owned();
    let owned = working_dir
        .into_iter()
        .chain(config.volumes.iter())
        .chain([&run_dir]);
    for dir in owned {
        for parent in crate::users::parents(dir) {
            entries.push(CustomEntry::dir(&parent, 0o755));
        }
        entries.push(CustomEntry::dir(dir.trim_start_matches('/'), 0o755).owned_by(uid, gid));
    }
    Ok(entries)
}

/// Whether the image's command is `[]` (the `processes` container, or
/// `cmd = []`) and there are services to start.
fn starts_services(plan: &BuildPlan) -> bool {
    let cmd = plan
        .overrides
        .cmd
        .as_ref()
        .or(plan.manifest.containerize.config.cmd.as_ref());
    cmd.is_some_and(|c| c.is_empty()) && !plan.manifest.services.is_empty()
}

/// The OCI config: cairn's entrypoint, `[vars]` and PATH in Env, and the
/// `[containerize.config]` fields.
pub fn image_spec(plan: &BuildPlan) -> Result<ImageSpec> {
    let config = &plan.manifest.containerize.config;
    let mut env = vec![format!("PATH={IMAGE_PATH}")];
    env.extend(plan.manifest.vars.iter().map(|(k, v)| format!("{k}={v}")));
    if let Some(name) = &plan.container {
        env.push(format!("CAIRN_CONTAINER={name}"));
    }
    let labels: BTreeMap<String, String> = config.labels.clone();
    Ok(ImageSpec {
        name: plan.name.clone(),
        tag: plan.tag.clone(),
        architecture: plan.architecture().to_string(),
        os: "linux".to_string(),
        created_epoch: plan.epoch,
        config: RuntimeConfig {
            user: config.user.as_ref().map(|u| u.to_string()),
            exposed_ports: config.exposed_ports.iter().map(|p| p.to_string()).collect(),
            env,
            entrypoint: match foreign_entrypoint(plan)? {
                Some(ForeignEntrypoint::None) => None,
                _ => Some(vec![
                    CAIRN_BIN.to_string(),
                    "entrypoint".to_string(),
                    "--".to_string(),
                ]),
            },
            cmd: plan.overrides.cmd.clone().or_else(|| config.cmd.clone()),
            volumes: config.volumes.clone(),
            working_dir: plan
                .overrides
                .working_dir
                .clone()
                .or_else(|| config.working_dir.clone()),
            labels,
            stop_signal: config.stop_signal.as_ref().map(|s| s.to_string()),
            healthcheck: healthcheck_config(plan)?,
        },
    })
}

/// Docker's `Healthcheck` from `[containerize.config] healthcheck`. The
/// command runs inside the activation, as `docker exec CID cairn activate --
/// CMD` would: through the image's cairn (the hook runs, `[vars]` are set),
/// in exec form, so the engine needs no shell of its own; a string command
/// is run by `sh -c`, as Docker's `CMD-SHELL` would run it.
pub fn healthcheck_config(plan: &BuildPlan) -> Result<Option<HealthcheckConfig>> {
    let Some(check) = &plan.manifest.containerize.config.healthcheck else {
        return Ok(None);
    };
    let command: Vec<String> = match &check.command {
        StartupCommand::Exec(argv) => argv.clone(),
        StartupCommand::Shell(script) => vec!["sh".into(), "-c".into(), script.clone()],
    };
    let activation: Vec<&str> = match foreign_entrypoint(plan)? {
        None | Some(ForeignEntrypoint::Binary(_)) => vec![CAIRN_BIN, "activate", "--"],
        // The bash script takes the entrypoint's arguments, not `activate`.
        Some(ForeignEntrypoint::Script) => vec![CAIRN_BIN, "entrypoint", "--"],
        Some(ForeignEntrypoint::None) => Vec::new(),
    };
    let test = std::iter::once("CMD")
        .chain(activation)
        .map(str::to_string)
        .chain(command)
        .collect();
    Ok(Some(HealthcheckConfig {
        test,
        interval: check.interval.map_or(0, |d| d.as_nanos()),
        timeout: check.timeout.map_or(0, |d| d.as_nanos()),
        start_period: check.start_period.map_or(0, |d| d.as_nanos()),
        retries: check.retries.map_or(0, u64::from),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_manifest::{Lock, LockedPackage, Manifest};

    fn plan(system: &str, with_bash: bool) -> BuildPlan {
        let text = "version = 1\n[install]\n[containerize.config]\nhealthcheck = { command = \"redis-cli ping\", interval = \"2s\", retries = 5 }\n";
        let manifest =
            Manifest::parse(std::path::Path::new("manifest.toml"), text).expect("manifest");
        let req = crate::PlanRequest {
            default_name: "dir".into(),
            ..crate::PlanRequest::default()
        };
        let mut plan = BuildPlan::new(&manifest, &Lock::default(), system, &req).expect("plan");
        if with_bash {
            plan.packages.push(LockedPackage {
                name: "bash".into(),
                ..LockedPackage::default()
            });
        }
        plan
    }

    fn test_of(plan: &BuildPlan) -> Vec<String> {
        healthcheck_config(plan)
            .expect("config")
            .expect("a check")
            .test
    }

    #[test]
    fn healthcheck_runs_inside_whatever_activates_the_image() {
        let Some(host) = cairn_manifest::host_system() else {
            return;
        };
        let foreign = if host == "x86_64-linux" {
            "aarch64-linux"
        } else {
            "x86_64-linux"
        };
        let shell = ["sh", "-c", "redis-cli ping"];
        let native = plan(host, false);
        assert_eq!(
            test_of(&native),
            [&["CMD", CAIRN_BIN, "activate", "--"][..], &shell].concat()
        );
        let check = healthcheck_config(&native)
            .expect("config")
            .expect("a check");
        assert_eq!(
            (check.interval, check.timeout, check.retries),
            (2_000_000_000, 0, 5)
        );
        // Another architecture without cairn's binary: the bash script takes
        // the entrypoint's arguments; with no bash, nothing activates.
        assert_eq!(
            test_of(&plan(foreign, true)),
            [&["CMD", CAIRN_BIN, "entrypoint", "--"][..], &shell].concat()
        );
        assert_eq!(
            test_of(&plan(foreign, false)),
            [&["CMD"][..], &shell].concat()
        );
    }
}
