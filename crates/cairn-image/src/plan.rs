//! The build plan: everything that decides an image's bytes, gathered once
//! from the manifest, the lock and the caller's choices. Assembly
//! ([`crate::build`]) is a function of this plan and the store; nothing else
//! (no environment variable, no working directory) is read after it is made.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_manifest::{Lock, LockedPackage, Manifest};
use cairn_oci::Compression;

use crate::Result;
use crate::named::{self, Overrides};

/// What the caller chose: the edge (CLI flags, environment variables) turned
/// into plain values.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    /// The environment's directory: `copy-to-root` paths are relative to it.
    pub project_dir: PathBuf,
    /// The manifest's bytes as written, carried into the image verbatim.
    pub manifest_bytes: Vec<u8>,
    /// The lock's bytes as written, carried into the image verbatim.
    pub lock_bytes: Vec<u8>,
    /// `--container NAME`.
    pub container: Option<String>,
    /// `--tag`, winning over the manifest.
    pub tag: Option<String>,
    /// The image name from a `--tag NAME:TAG` or a full reference, winning
    /// over the manifest and the container's.
    pub name: Option<String>,
    /// `--compression`, winning over the manifest.
    pub compression: Option<Compression>,
    /// The name when neither the manifest nor a container names the image.
    pub default_name: String,
    /// `SOURCE_DATE_EPOCH`, when set: the generated files' date, and a clamp
    /// on package mtimes.
    pub source_date_epoch: Option<i64>,
    /// Build outputs by `[build]` name, for containers that ship artifacts.
    pub artifacts: BTreeMap<String, PathBuf>,
    /// The in-image cairn for the host's architecture, and any foreign ones.
    pub entrypoints: Entrypoints,
    /// `--sbom`: put an SBOM of the image's packages in it.
    pub sbom: Option<crate::sbom::SbomFormat>,
}

/// Where the static in-image cairn binaries are.
#[derive(Debug, Clone, Default)]
pub struct Entrypoints {
    /// For the host's own architecture.
    pub host: PathBuf,
    /// By CPU (`aarch64`): from `CAIRN_ENTRYPOINT_BIN_<CPU>`.
    pub foreign: BTreeMap<String, PathBuf>,
}

/// What to build for one system: the environment, its lock and the chosen options.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    pub project_dir: PathBuf,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub lock_bytes: Vec<u8>,
    /// `x86_64-linux`, `aarch64-linux`.
    pub system: String,
    /// The packages in this image, in lock order.
    pub packages: Vec<LockedPackage>,
    pub name: String,
    pub tag: String,
    /// The date of generated files and the image config.
    pub epoch: i64,
    /// Clamp on package mtimes (only with `SOURCE_DATE_EPOCH`, so a package's
    /// layer is otherwise the same in every environment).
    pub mtime_clamp: Option<u64>,
    pub max_layers: usize,
    pub compression: Compression,
    pub container: Option<String>,
    pub overrides: Overrides,
    pub artifacts: BTreeMap<String, PathBuf>,
    pub entrypoints: Entrypoints,
    /// The SBOM the image carries, if any (`/opt/cairn/sbom.*`).
    pub sbom: Option<crate::sbom::SbomFormat>,
}

impl BuildPlan {
    /// The plan for `system`, from the manifest, its lock and the request.
    pub fn new(manifest: &Manifest, lock: &Lock, system: &str, req: &PlanRequest) -> Result<Self> {
        let locked: Vec<LockedPackage> = lock.packages_for(system).cloned().collect();
        let container = req.container.as_deref();
        let overrides = named::overrides_for(manifest, container, &locked)?;
        let packages = match named::runtime_roots(manifest, container) {
            Some(mut roots) => {
                if cairn_manifest::activation::needs_bash(manifest) {
                    roots.push("bash".to_string());
                }
                named::closure(&locked, &roots)
            }
            None => named::without_excluded(locked, &overrides.exclude),
        };
        let cz = &manifest.containerize;
        let base = cz
            .name
            .clone()
            .or_else(|| manifest.name.clone())
            .unwrap_or_else(|| req.default_name.clone());
        // A named container never takes the main image's name, nor a bare
        // `api:latest` that another project's `api` would overwrite.
        let name = match (&overrides.image_name, container) {
            _ if req.name.is_some() => req.name.clone().unwrap_or_default(),
            (Some(explicit), _) => explicit.clone(),
            (None, Some(container)) => format!("{base}-{container}"),
            (None, None) => base,
        };
        let compression = req.compression.unwrap_or(match cz.compression {
            cairn_manifest::Compression::Gzip => Compression::Gzip,
            cairn_manifest::Compression::Zstd => Compression::Zstd,
        });
        Ok(BuildPlan {
            project_dir: req.project_dir.clone(),
            manifest: manifest.clone(),
            manifest_bytes: req.manifest_bytes.clone(),
            lock_bytes: req.lock_bytes.clone(),
            system: system.to_string(),
            packages,
            tag: req
                .tag
                .clone()
                .or_else(|| overrides.tag.clone())
                .or_else(|| cz.tag.clone())
                .unwrap_or_else(|| "latest".into()),
            epoch: req
                .source_date_epoch
                .unwrap_or_else(|| lock.source_date_epoch()),
            mtime_clamp: req.source_date_epoch.map(|e| e.max(0) as u64),
            max_layers: manifest.max_layers_for(container) as usize,
            container: req.container.clone(),
            name: if req.name.is_some() {
                name
            } else {
                image_name(&name)
            },
            compression,
            overrides,
            artifacts: req.artifacts.clone(),
            entrypoints: req.entrypoints.clone(),
            sbom: req.sbom,
        })
    }

    /// The image architecture (GOARCH style, which Debian's names match).
    pub fn architecture(&self) -> &'static str {
        cairn_manifest::debian_arch(&self.system).unwrap_or("amd64")
    }

    /// Whether the image is for the machine cairn runs on.
    pub fn is_host_system(&self) -> bool {
        cairn_manifest::host_system() == Some(self.system.as_str())
    }

    /// The CPU part of the system (`x86_64`).
    pub fn cpu(&self) -> &str {
        self.system.split('-').next().unwrap_or_default()
    }
}

/// What `--tag` says: a tag (`v1.0`), a name and tag (`myapp:latest`), or a
/// full reference (`registry.company.com/team/app:v1.0`, as CI pipelines pass
/// `$CI_REGISTRY_IMAGE:$TAG`). Returns (name, tag), checked by the
/// distribution spec's grammar before anything is built.
pub fn split_tag_arg(arg: &str) -> Result<(Option<String>, String), cairn_oci::OciError> {
    let last = arg.rsplit('/').next().unwrap_or(arg);
    let (name, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => {
            let name = &arg[..arg.len() - tag.len() - 1];
            (Some(name.to_string()), tag.to_string())
        }
        None if arg.contains('/') => (Some(arg.to_string()), "latest".to_string()),
        None => (None, arg.to_string()),
    };
    cairn_oci::ImageRef::new(name.as_deref().unwrap_or("x"), &tag)?;
    Ok((name, tag))
}

/// Image names are lowercase; environment names may not be.
pub fn image_name(name: &str) -> String {
    let cleaned: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(['-', '.', '_']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(manifest: &str, container: Option<&str>) -> BuildPlan {
        let manifest =
            Manifest::parse(std::path::Path::new("manifest.toml"), manifest).expect("manifest");
        let req = PlanRequest {
            container: container.map(str::to_string),
            default_name: "dir".into(),
            ..PlanRequest::default()
        };
        BuildPlan::new(&manifest, &Lock::default(), "x86_64-linux", &req).expect("plan")
    }

    #[test]
    fn named_containers_get_names_of_their_own() {
        let text = "version = 1\nname = \"web\"\n[install]\n[services.a]\ncommand = \"true\"\n[containers.api]\nstartup-command = [\"true\"]\n[containers.pinned]\nname = \"exact\"\n";
        assert_eq!(plan_for(text, None).name, "web");
        assert_eq!(plan_for(text, Some("processes")).name, "web-processes");
        assert_eq!(plan_for(text, Some("shell")).name, "web-shell");
        assert_eq!(plan_for(text, Some("api")).name, "web-api");
        assert_eq!(plan_for(text, Some("pinned")).name, "exact");
        assert_eq!(
            plan_for(text, Some("processes")).overrides.cmd,
            Some(vec![])
        );
    }

    #[test]
    fn tag_arguments_take_the_forms_ci_pipelines_pass() {
        let ok = |arg: &str| split_tag_arg(arg).expect(arg);
        assert_eq!(ok("v1.0"), (None, "v1.0".into()));
        assert_eq!(ok("myapp:latest"), (Some("myapp".into()), "latest".into()));
        assert_eq!(
            ok("registry.company.com/team/app:v1.0"),
            (Some("registry.company.com/team/app".into()), "v1.0".into())
        );
        assert_eq!(
            ok("localhost:5000/app:2"),
            (Some("localhost:5000/app".into()), "2".into())
        );
        assert_eq!(ok("team/app"), (Some("team/app".into()), "latest".into()));
        for bad in ["UPPER:1", "app:", "a b", "app:bad tag"] {
            assert!(split_tag_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_names_are_lowercase_and_trimmed() {
        assert_eq!(image_name("My App!"), "my-app");
        assert_eq!(image_name("team/Web_1"), "team/web_1");
        assert_eq!(image_name("--x--"), "x");
    }
}
