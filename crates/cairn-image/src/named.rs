//! Named containers (`[containers.NAME]`, devenv style) and the two predefined
//! ones: `shell` (the default: an activated environment) and `processes` (all
//! services). Turns a choice into overrides of the default image.

use crate::{ImageError, Result};
use cairn_manifest::{CopySource, LockedPackage, Manifest, StartupCommand};
use std::collections::BTreeSet;

/// What a named container changes about the default image.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// An explicit `name` of `[containers.NAME]`; otherwise the image is
    /// named `ENV-NAME` (see `BuildPlan::new`).
    pub image_name: Option<String>,
    pub tag: Option<String>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// Package names left out.
    pub exclude: BTreeSet<String>,
    pub copy_to_root: Vec<CopySource>,
}

/// The overrides for `--container NAME` (none for `shell` or no name).
pub fn overrides_for(
    manifest: &Manifest,
    name: Option<&str>,
    packages: &[LockedPackage],
) -> Result<Overrides> {
    // The default image, `shell` and `processes` carry `[containerize]
    // copy-to-root` and every build's output.
    let mut builds: Vec<CopySource> = manifest.containerize.copy_to_root.clone();
    builds.extend(manifest.build.keys().cloned().map(CopySource::Build));
    let Some(name) = name else {
        return Ok(Overrides {
            copy_to_root: builds,
            ..Overrides::default()
        });
    };
    if let Some(custom) = manifest.containers.get(name) {
        let exclude = custom
            .exclude
            .iter()
            .filter_map(|id| manifest.install.get(id).map(|e| e.pkg.clone()))
            .collect();
        let mut copy_to_root = custom.copy_to_root.clone();
        copy_to_root.extend(custom.artifacts.iter().cloned().map(CopySource::Build));
        return Ok(Overrides {
            image_name: custom.name.clone(),
            tag: custom.version.clone(),
            cmd: custom
                .startup_command
                .as_ref()
                .map(|c| startup_cmd(c, packages))
                .transpose()?,
            working_dir: custom.working_dir.clone(),
            exclude,
            copy_to_root,
        });
    }
    match name {
        "shell" => Ok(Overrides {
            copy_to_root: builds,
            ..Overrides::default()
        }),
        "processes" if manifest.services.is_empty() => Err(ImageError::ProcessesWithoutServices),
        "processes" => Ok(Overrides {
            cmd: Some(Vec::new()),
            copy_to_root: builds,
            ..Overrides::default()
        }),
        other => {
            let mut known: Vec<String> = vec!["shell".into(), "processes".into()];
            known.extend(manifest.containers.keys().cloned());
            Err(ImageError::UnknownContainer {
                name: other.to_string(),
                known,
            })
        }
    }
}

/// A string runs through the environment's shell; a list runs as is.
fn startup_cmd(command: &StartupCommand, packages: &[LockedPackage]) -> Result<Vec<String>> {
    match command {
        StartupCommand::Exec(argv) => Ok(argv.clone()),
        StartupCommand::Shell(script) => {
            let has = |n: &str| packages.iter().any(|p| p.name == n);
            let shell = if has("bash") {
                "bash"
            } else if has("dash") {
                "sh"
            } else {
                return Err(ImageError::StartupNeedsShell {
                    script: script.clone(),
                });
            };
            Ok(vec![shell.to_string(), "-c".to_string(), script.clone()])
        }
    }
}

/// For a container that ships `artifacts`, the package names their builds
/// need at run time (`runtime-packages`); `None` ships the whole environment.
pub fn runtime_roots(manifest: &Manifest, container: Option<&str>) -> Option<Vec<String>> {
    let custom = manifest.containers.get(container?)?;
    if custom.artifacts.is_empty() {
        return None;
    }
    let roots = custom
        .artifacts
        .iter()
        .filter_map(|a| manifest.build.get(a))
        .flat_map(|b| b.runtime_packages.iter())
        .map(|p| {
            manifest
                .install
                .get(p)
                .map(|e| e.pkg.clone())
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    Some(roots)
}

/// `roots` and everything they depend on, within the lock.
pub fn closure(packages: &[LockedPackage], roots: &[String]) -> Vec<LockedPackage> {
    let mut keep = BTreeSet::new();
    let mut stack: Vec<&str> = roots.iter().map(String::as_str).collect();
    while let Some(name) = stack.pop() {
        if let Some(p) = packages.iter().find(|p| p.name == name)
            && keep.insert(p.name.clone())
        {
            stack.extend(p.depends.iter().map(String::as_str));
        }
    }
    packages
        .iter()
        .filter(|p| keep.contains(&p.name))
        .cloned()
        .collect()
}

/// The locked packages without `exclude`d ones and what only they pulled in.
pub fn without_excluded(
    packages: Vec<LockedPackage>,
    exclude: &BTreeSet<String>,
) -> Vec<LockedPackage> {
    if exclude.is_empty() {
        return packages;
    }
    packages
        .into_iter()
        .filter(|p| !exclude.contains(&p.name))
        .filter(|p| {
            p.required_by.is_empty() || p.required_by.iter().any(|root| !exclude.contains(root))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, roots: &[&str]) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            required_by: roots.iter().map(|r| r.to_string()).collect(),
            ..LockedPackage::default()
        }
    }

    #[test]
    fn exclude_drops_exclusive_dependencies_only() {
        let pkgs = vec![
            pkg("gcc", &["gcc"]),
            pkg("cpp", &["gcc"]),
            pkg("libc6", &["gcc", "hello"]),
            pkg("hello", &["hello"]),
        ];
        let exclude = BTreeSet::from(["gcc".to_string()]);
        let kept: Vec<String> = without_excluded(pkgs, &exclude)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(kept, vec!["libc6", "hello"]);
    }
}
