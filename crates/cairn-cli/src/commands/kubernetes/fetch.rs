//! Reading a published environment (`REF` or `REF@N`) for the handler, with
//! the registry credentials of the pod's Secret.
//!
//! The Secret is mounted at `/var/run/secrets/cairn.dev` in the pod; the
//! handler reads it from that mount's source on the node, before the container
//! exists, and keeps it in memory only: it is never logged, never written to
//! the store, and never mounted anywhere but where the pod asked. Its keys:
//! `.dockerconfigjson` or `config.json` (a docker config, as an
//! `kubernetes.io/dockerconfigjson` Secret holds), or `token` (`USER:TOKEN`,
//! or a bare token sent with the user name `cairn`), or `username` and
//! `password`; and optionally `ca.crt`, a CA to trust for the registry.

use crate::commands::containerize::copy::{CopyOptions, client_options};
use crate::diagnostic::Diagnose;
use cairn_registry::{Credentials, Reference, RegistryClient};
use miette::{Result, miette};
use std::path::Path;

/// A secret file holds a few KB at most; anything bigger is not one.
const MAX_SECRET_FILE: u64 = 1 << 20;

/// The environment's files as published.
#[derive(Debug, Clone)]
pub struct FetchedEnvironment {
    pub name: String,
    pub generation: u64,
    pub manifest_toml: Vec<u8>,
    pub lock: Vec<u8>,
    /// The artifact's digest (`sha256:…`), verified by the registry client.
    pub digest: String,
}

/// Splits `REF@N` into the reference and the pinned generation.
pub fn split_generation(text: &str) -> (&str, Option<u64>) {
    match text.rsplit_once('@') {
        Some((reference, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (reference, n.parse().ok())
        }
        _ => (text, None),
    }
}

/// Fetches `environment` (`REF[@N]`) with the Secret in `secret`, if any.
pub fn fetch(environment: &str, secret: Option<&Path>) -> Result<FetchedEnvironment> {
    let (text, generation) = split_generation(environment);
    let reference = Reference::parse(text).map_err(|e| miette!("{e}"))?;
    // As docker's `insecure-registries`: TLS is verified except for the
    // registries the node lists in CAIRN_INSECURE_REGISTRIES (plain HTTP then).
    let insecure = cairn_registry::ClientOptions::default()
        .insecure_registries
        .contains(&reference.registry);
    let mut options = CopyOptions {
        credentials: None,
        tls_verify: insecure.then_some(false),
        cert_dir: None,
        retry_times: Some(1),
    };
    if let Some(dir) = secret {
        options.credentials = secret_credentials(dir, &reference)?;
        if dir.join("ca.crt").is_file() {
            options.cert_dir = Some(dir.to_path_buf());
        }
    }
    let client = RegistryClient::connect(&reference, client_options(&reference, &options).diagnose()?)
        .diagnose()?;
    fetch_environment(&client, &reference, generation)
}

/// Stand-in for the registry's published-environment API (generations land
/// separately): reads the environment an image built by cairn carries, as
/// `containerize -r` does. A pinned generation is refused rather than ignored.
fn fetch_environment(
    client: &RegistryClient,
    reference: &Reference,
    generation: Option<u64>,
) -> Result<FetchedEnvironment> {
    if let Some(n) = generation {
        return Err(miette!("{reference}@{n}: generation {n} not found"));
    }
    let system = cairn_manifest::host_system().ok_or_else(|| miette!("unsupported host"))?;
    let arch = cairn_manifest::debian_arch(system).unwrap_or("amd64");
    let pulled = cairn_registry::pull_environment(client, reference, arch).diagnose()?;
    Ok(FetchedEnvironment {
        name: pulled.name,
        generation: 0,
        manifest_toml: pulled.manifest_toml,
        lock: pulled.lock,
        digest: pulled.image_digest,
    })
}

/// The credentials a Secret directory holds for `reference`, if any.
fn secret_credentials(dir: &Path, reference: &Reference) -> Result<Option<Credentials>> {
    for name in [".dockerconfigjson", "config.json"] {
        if let Some(text) = read_secret(dir, name)? {
            let source = format!("the Secret key {name}");
            return cairn_registry::credentials::from_docker_config(
                &text,
                &source,
                &reference.registry,
                &reference.repository,
            )
            .diagnose();
        }
    }
    if let Some(token) = read_secret(dir, "token")? {
        let token = token.trim();
        return Ok(Some(
            Credentials::parse_user_pass(token).unwrap_or_else(|| Credentials {
                username: "cairn".to_owned(),
                password: token.to_owned(),
            }),
        ));
    }
    match (read_secret(dir, "username")?, read_secret(dir, "password")?) {
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: username.trim().to_owned(),
            password: password.trim_end_matches(['\n', '\r']).to_owned(),
        })),
        _ => Ok(None),
    }
}

/// One key of the Secret, if present; errors never include its content.
fn read_secret(dir: &Path, name: &str) -> Result<Option<String>> {
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    let mut text = String::new();
    let file = fs_err::File::open(&path).map_err(|e| miette!("{e}"))?;
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_SECRET_FILE), &mut text)
        .map_err(|_| miette!("the Secret key {name} is not UTF-8 text"))?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_split_off_the_reference() {
        assert_eq!(split_generation("h:5000/team/app@3"), ("h:5000/team/app", Some(3)));
        assert_eq!(split_generation("h:5000/team/app:v1"), ("h:5000/team/app:v1", None));
        assert_eq!(split_generation("h/app@sha256:ab"), ("h/app@sha256:ab", None));
    }

    #[test]
    fn a_token_secret_gives_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let reference = Reference::parse("127.0.0.1:5000/team/app").unwrap();
        assert!(secret_credentials(dir.path(), &reference).unwrap().is_none());
        fs_err::write(dir.path().join("token"), "alice:s3cret\n").unwrap();
        let creds = secret_credentials(dir.path(), &reference).unwrap().unwrap();
        assert_eq!(creds.username, "alice");
        assert_eq!(creds.password, "s3cret");
        fs_err::write(dir.path().join("token"), "abcdef\n").unwrap();
        let creds = secret_credentials(dir.path(), &reference).unwrap().unwrap();
        assert_eq!((creds.username.as_str(), creds.password.as_str()), ("cairn", "abcdef"));
    }

    #[test]
    fn a_docker_config_secret_gives_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let reference = Reference::parse("127.0.0.1:5000/team/app").unwrap();
        // base64("bob:pw")
        fs_err::write(
            dir.path().join(".dockerconfigjson"),
            r#"{"auths": {"127.0.0.1:5000": {"auth": "Ym9iOnB3"}}}"#,
        )
        .unwrap();
        let creds = secret_credentials(dir.path(), &reference).unwrap().unwrap();
        assert_eq!((creds.username.as_str(), creds.password.as_str()), ("bob", "pw"));
    }
}
