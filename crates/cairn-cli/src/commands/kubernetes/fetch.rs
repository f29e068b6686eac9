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
use cairn_registry::environment::EnvironmentRef;
use cairn_registry::{Credentials, Reference, RegistryClient};
use miette::{Result, miette};
use std::path::Path;

/// A secret file holds a few KB at most; anything bigger is not one.
const MAX_SECRET_FILE: u64 = 1 << 20;

pub use cairn_registry::environment::FetchedEnvironment;

/// Fetches `environment` (`REF[@N]`: the live generation, or generation N)
/// with the Secret in `secret`, if any. The registry client verifies the
/// artifact's digest; the lock's sha256s then verify every `.deb`.
pub fn fetch(environment: &str, secret: Option<&Path>) -> Result<FetchedEnvironment> {
    let env_ref = EnvironmentRef::parse(environment).diagnose()?;
    let reference = &env_ref.reference;
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
        options.credentials = secret_credentials(dir, reference)?;
        if dir.join("ca.crt").is_file() {
            options.cert_dir = Some(dir.to_path_buf());
        }
    }
    let client =
        RegistryClient::connect(reference, client_options(reference, &options).diagnose()?)
            .diagnose()?;
    cairn_registry::environment::fetch_environment(&client, &env_ref).diagnose()
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
        return Ok(Some(Credentials::parse_user_pass(token).unwrap_or_else(
            || Credentials {
                username: "cairn".to_owned(),
                password: token.to_owned(),
            },
        )));
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
    fn a_token_secret_gives_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let reference = Reference::parse("127.0.0.1:5000/team/app").unwrap();
        assert!(
            secret_credentials(dir.path(), &reference)
                .unwrap()
                .is_none()
        );
        fs_err::write(dir.path().join("token"), "alice:s3cret\n").unwrap();
        let creds = secret_credentials(dir.path(), &reference).unwrap().unwrap();
        assert_eq!(creds.username, "alice");
        assert_eq!(creds.password, "s3cret");
        fs_err::write(dir.path().join("token"), "abcdef\n").unwrap();
        let creds = secret_credentials(dir.path(), &reference).unwrap().unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("cairn", "abcdef")
        );
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
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("bob", "pw")
        );
    }
}
