//! Who we are to a registry: a user name and password (or token), found the
//! way podman and docker find them.
//!
//! Order: `$REGISTRY_AUTH_FILE`, podman's `${XDG_RUNTIME_DIR}/containers/auth.json`,
//! then docker's `${DOCKER_CONFIG:-~/.docker}/config.json` (`credHelpers`,
//! `auths`, `credsStore`). An `auths` entry holds base64 `user:password`; a
//! helper is `docker-credential-NAME get` with the server on stdin. Explicit
//! `--dest-creds` are the caller's and win over all of these; next comes
//! `CAIRN_DEST_CREDS`. Both take `USER:PASS` or `@FILE` (a file holding
//! `USER:PASS`), so a secret need not sit in argv, where any local user can
//! read it in `ps`, or in a manifest, which is copied into every image.
//!
//! Secrets never reach a log or an error: [`Credentials`] prints its password
//! as `<redacted>`, and parse errors name the file and key, not the value.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;
use crate::{RegistryError, Result};

/// The environment variable that holds `--dest-creds` (`USER:PASS` or `@FILE`).
pub const DEST_CREDS_ENV: &str = "CAIRN_DEST_CREDS";

/// A credentials file holds one line; anything larger is not one.
const MAX_CREDS_FILE_BYTES: u64 = 64 * 1024;

/// The key docker uses for Docker Hub in `auths` and for credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and a secret (password or personal access token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token; never printed.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Parses skopeo's `USER:PASS` (the password may contain `:`).
    pub fn parse_user_pass(text: &str) -> Option<Credentials> {
        let (username, password) = text.split_once(':')?;
        (!username.is_empty()).then(|| Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The value of `--dest-creds`: `USER:PASS`, or `@FILE` naming a file
    /// whose content (trailing newline ignored) is `USER:PASS`. `source`
    /// names where the text came from, for errors (which never echo it).
    pub fn from_arg(text: &str, source: &str) -> Result<Credentials> {
        let bad = |source_name: String, reason: &str| RegistryError::Credentials {
            source_name,
            reason: reason.to_owned(),
        };
        let Some(path) = text.strip_prefix('@') else {
            return Credentials::parse_user_pass(text)
                .ok_or_else(|| bad(source.to_owned(), "expected USER:PASS or @FILE"));
        };
        let name = format!("{source} file {path}");
        let meta = fs_err::metadata(path)?;
        if !meta.is_file() {
            return Err(bad(name, "not a regular file"));
        }
        let mut content = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(fs_err::File::open(path)?, MAX_CREDS_FILE_BYTES + 1),
            &mut content,
        )
        .map_err(|_| bad(name.clone(), "not UTF-8 text"))?;
        if content.len() as u64 > MAX_CREDS_FILE_BYTES {
            return Err(bad(
                name,
                "larger than 64 KiB; it should hold one USER:PASS line",
            ));
        }
        let line = content.trim_end_matches(['\n', '\r']);
        Credentials::parse_user_pass(line).ok_or_else(|| {
            bad(
                name,
                "expected one line USER:PASS (the user may not be empty)",
            )
        })
    }

    /// Credentials from [`DEST_CREDS_ENV`], if it is set and not empty.
    pub fn from_env() -> Result<Option<Credentials>> {
        match std::env::var(DEST_CREDS_ENV) {
            Ok(text) if !text.is_empty() => Credentials::from_arg(&text, DEST_CREDS_ENV).map(Some),
            _ => Ok(None),
        }
    }

    /// The value of a Basic `Authorization` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The subset of docker's `config.json` and containers' `auth.json` we read
/// (no `Debug`: it holds secrets).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

/// Finds credentials for `registry` (`host[:port]`) and `repository` in the
/// user's auth files and credential helpers, or `None` to go anonymous.
pub fn find_credentials(registry: &str, repository: &str) -> Result<Option<Credentials>> {
    if let Some(found) = Credentials::from_env()? {
        return Ok(Some(found));
    }
    for path in auth_file_paths() {
        let Some(file) = read_auth_file(&path)? else {
            continue;
        };
        let source = path.display().to_string();
        if let Some(helper) = helper_for(&file, registry) {
            return run_helper(&helper, &helper_server(registry));
        }
        if let Some(found) = from_auths(&file, registry, repository, &source)? {
            return Ok(Some(found));
        }
        if let Some(store) = file.creds_store.as_deref().filter(|s| !s.is_empty())
            && let Some(found) = run_helper(store, &helper_server(registry))?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Credentials for `registry` and `repository` in the text of a docker
/// `config.json` (a Kubernetes `.dockerconfigjson` Secret holds one); `source`
/// names it in errors, which never carry the secret. Only `auths` is read:
/// a node runs no credential helpers on a pod's behalf.
pub fn from_docker_config(
    text: &str,
    source: &str,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>> {
    let file = parse_auth_file(text, source)?;
    from_auths(&file, registry, repository, source)
}

/// The auth files to read, most specific first.
fn auth_file_paths() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut paths = Vec::new();
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        paths.push(PathBuf::from(file));
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        paths.push(Path::new(&dir).join("containers/auth.json"));
    }
    if let Some(dir) = var("DOCKER_CONFIG") {
        paths.push(Path::new(&dir).join("config.json"));
    } else if let Some(home) = var("HOME") {
        paths.push(Path::new(&home).join(".docker/config.json"));
    }
    paths
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>> {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    parse_auth_file(&text, &path.display().to_string()).map(Some)
}

fn parse_auth_file(text: &str, source: &str) -> Result<AuthFile> {
    if text.trim().is_empty() {
        return Ok(AuthFile::default());
    }
    // serde_json's message names a line and column, never the secret itself.
    serde_json::from_str(text).map_err(|e| RegistryError::Credentials {
        source_name: source.to_owned(),
        reason: format!("not valid JSON ({e})"),
    })
}

/// The `auths` key that matches: `host/repo/path` prefixes (podman), then the
/// host in any of the spellings docker has used (`https://host/v1/`, `host`).
fn from_auths(
    file: &AuthFile,
    registry: &str,
    repository: &str,
    source: &str,
) -> Result<Option<Credentials>> {
    let mut candidates: Vec<String> = Vec::new();
    let mut path = format!("{registry}/{repository}");
    while let Some((parent, _)) = path.rsplit_once('/') {
        candidates.push(path.clone());
        path = parent.to_owned();
    }
    candidates.push(registry.to_owned());
    for wanted in candidates {
        let entry = file
            .auths
            .iter()
            .find(|(key, _)| normalize_key(key) == wanted);
        if let Some((key, entry)) = entry
            && let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty())
        {
            return decode_auth(auth, source, key).map(Some);
        }
    }
    Ok(None)
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2/` → `host:5000`.
fn normalize_key(key: &str) -> String {
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"));
    let host = match bare {
        // With a scheme, docker wrote a URL: keep only the host.
        Some(rest) => rest.split('/').next().unwrap_or_default(),
        None => key.trim_end_matches('/'),
    };
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        other => match other.strip_prefix("index.docker.io/") {
            Some(rest) => format!("{DOCKER_HUB}/{rest}"),
            None => other.to_owned(),
        },
    }
}

fn decode_auth(auth: &str, source: &str, key: &str) -> Result<Credentials> {
    let bad = |reason: &str| RegistryError::Credentials {
        source_name: source.to_owned(),
        reason: format!("auths.\"{key}\".auth {reason}"),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad("is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8"))?;
    Credentials::parse_user_pass(&text).ok_or_else(|| bad("is not base64 of USER:PASSWORD"))
}

fn helper_for(file: &AuthFile, registry: &str) -> Option<String> {
    file.cred_helpers
        .iter()
        .find(|(key, _)| normalize_key(key) == registry)
        .map(|(_, helper)| helper.clone())
}

/// What docker passes a helper on stdin for a registry.
fn helper_server(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `docker-credential-NAME get`, server on stdin; "not found" means `None`.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{name}");
    let failed = |reason: String| RegistryError::Credentials {
        source_name: program.clone(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| failed(format!("cannot write to it: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(format!("it did not finish: {e}")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_lowercase()
            + &String::from_utf8_lossy(&output.stderr).to_lowercase();
        if said.contains("not found") {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {}", output.status)));
    }
    // The answer holds the secret: report its shape, never its text.
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| failed("it printed no {Username, Secret} JSON".into()))?;
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn dest_creds_come_inline_or_from_a_file_and_errors_never_echo_them() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("creds");
        fs_err::write(&file, "ci-bot:s3cr:et\n").unwrap();
        let from_file = Credentials::from_arg(&format!("@{}", file.display()), "--dest-creds");
        assert_eq!(
            from_file.unwrap(),
            Credentials::parse_user_pass("ci-bot:s3cr:et").unwrap()
        );
        let inline = Credentials::from_arg("alice:pw", "--dest-creds").unwrap();
        assert_eq!(inline.username, "alice");

        fs_err::write(&file, "s3cret-without-user\n").unwrap();
        let err = Credentials::from_arg(&format!("@{}", file.display()), "--dest-creds");
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("USER:PASS") && !err.contains("s3cret"),
            "{err}"
        );
        let err = Credentials::from_arg("s3cret", DEST_CREDS_ENV)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(DEST_CREDS_ENV) && !err.contains("s3cret"),
            "{err}"
        );
        let err = Credentials::from_arg("@/dev/zero", "--dest-creds").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(Credentials::from_arg("@/nonexistent/creds", "--dest-creds").is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::parse_user_pass("alice:s3cr:et").unwrap();
        assert_eq!(c.password, "s3cr:et");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cr"),
            "{shown}"
        );
        assert!(Credentials::parse_user_pass("nocolon").is_none());
        assert!(Credentials::parse_user_pass(":pw").is_none());
        assert_eq!(
            Credentials::parse_user_pass("a:b").unwrap().basic_header(),
            "Basic YTpi"
        );
    }

    #[test]
    fn auths_match_host_spellings_and_repository_prefixes() {
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{hub}"}},
                "http://127.0.0.1:5000/v2/": {{"auth": "{local}"}},
                "quay.io/team": {{"auth": "{team}"}},
                "quay.io": {{"auth": "{quay}"}}
            }}}}"#,
            hub = b64("hub:1"),
            local = b64("local:2"),
            team = b64("team:3"),
            quay = b64("quay:4"),
        );
        let file = parse_auth_file(&text, "test").unwrap();
        let user = |registry: &str, repo: &str| {
            from_auths(&file, registry, repo, "test")
                .unwrap()
                .map(|c| c.username)
        };
        assert_eq!(user("docker.io", "library/x").as_deref(), Some("hub"));
        assert_eq!(user("127.0.0.1:5000", "a/b").as_deref(), Some("local"));
        assert_eq!(user("quay.io", "team/app").as_deref(), Some("team"));
        assert_eq!(user("quay.io", "other/app").as_deref(), Some("quay"));
        assert_eq!(user("ghcr.io", "x"), None);
    }

    #[test]
    fn bad_auth_values_are_named_without_their_content() {
        let text = r#"{"auths": {"r.io": {"auth": "!!notbase64-secret"}}}"#;
        let file = parse_auth_file(text, "cfg.json").unwrap();
        let err = from_auths(&file, "r.io", "x", "cfg.json").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("cfg.json") && shown.contains("r.io"),
            "{shown}"
        );
        assert!(!shown.contains("notbase64-secret"), "{shown}");
        assert!(parse_auth_file("{", "cfg.json").is_err());
        assert!(parse_auth_file("", "cfg.json").is_ok());
    }

    #[test]
    fn helpers_are_chosen_per_registry() {
        let text = r#"{"credHelpers": {"gcr.io": "gcloud"}, "credsStore": "pass"}"#;
        let file = parse_auth_file(text, "t").unwrap();
        assert_eq!(helper_for(&file, "gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(helper_for(&file, "ghcr.io"), None);
        assert_eq!(file.creds_store.as_deref(), Some("pass"));
        assert_eq!(helper_server("docker.io"), DOCKER_HUB_KEY);
    }

    #[test]
    fn a_missing_helper_is_an_error_naming_it() {
        let err = run_helper("cairn-no-such-helper", "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-cairn-no-such-helper")
        );
    }
}
