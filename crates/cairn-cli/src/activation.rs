//! The manifest's runtime tables as the runtime crate's plain `Activation`.

use cairn_manifest::Manifest;
use cairn_runtime::{Activation, Mode, Profile, ServiceSpec};

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
            cairn_manifest::ActivateMode::Dev => Mode::Dev,
            cairn_manifest::ActivateMode::Run => Mode::Run,
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
