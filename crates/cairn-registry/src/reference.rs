//! Where an image goes: a registry host, a repository and a tag, parsed from
//! `[docker://]HOST[:PORT]/PATH/NAME[:TAG]` or from a destination prefix such
//! as `docker://127.0.0.1:5000/team/` plus the built image's `NAME:TAG`.
//!
//! Names follow Docker's rules: the first component is a registry only if it
//! has a `.` or `:` or is `localhost`; otherwise the registry is Docker Hub and
//! a one-component name gets `library/`. Name and tag grammar is checked by
//! [`cairn_oci::ImageRef`]. Talking to the registry is `client.rs`.

use std::fmt;

use crate::{RegistryError, Result};
use cairn_oci::image::ImageRef;

/// Docker Hub's name in references and credential stores.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The transport prefix skopeo and `[containers.NAME] registry` use.
pub const DOCKER_TRANSPORT: &str = "docker://";

/// A fully-resolved push destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written, e.g. `127.0.0.1:5000` or `docker.io`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `team/hello`.
    pub repository: String,
    /// Tag, e.g. `latest`.
    pub tag: String,
}

impl Reference {
    /// Parses `[docker://]HOST[:PORT]/PATH/NAME[:TAG]`; the tag defaults to `latest`.
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let bare = text.strip_prefix(DOCKER_TRANSPORT).unwrap_or(text);
        if bare.contains('@') {
            return Err(invalid(
                "a push destination needs a tag, not a digest (write NAME:TAG)",
            ));
        }
        if bare.is_empty() || bare.ends_with('/') {
            return Err(invalid("the reference needs a repository name"));
        }
        let (name, tag) = split_tag(bare);
        let (registry, repository) = split_registry(name);
        let full_name = format!("{registry}/{repository}");
        let checked = ImageRef::new(&full_name, tag.unwrap_or("latest")).map_err(|e| match e {
            cairn_oci::OciError::InvalidReference { reason, .. } => invalid(&reason),
            other => invalid(&other.to_string()),
        })?;
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag: checked.tag,
        })
    }

    /// `PREFIX` + `NAME:TAG`: `docker://127.0.0.1:5000/team/` and `hello:latest`
    /// give `127.0.0.1:5000/team/hello:latest`. The prefix must name a registry.
    pub fn with_prefix(prefix: &str, name_and_tag: &str) -> Result<Reference> {
        let bare = prefix.strip_prefix(DOCKER_TRANSPORT).unwrap_or(prefix);
        let first = bare.split('/').next().unwrap_or_default();
        if !looks_like_host(first) {
            return Err(RegistryError::InvalidReference {
                reference: prefix.to_owned(),
                reason: "a destination prefix starts with a registry host, e.g. docker://HOST[:PORT]/PATH/".into(),
            });
        }
        let joined = format!("{}/{name_and_tag}", bare.trim_end_matches('/'));
        Reference::parse(&joined)
    }

    /// The host to send API requests to (Docker Hub's API lives elsewhere).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`, as `podman pull` would take it without a tag.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// Splits a trailing `:tag` off (a `:` before the last `/` is a port).
fn split_tag(text: &str) -> (&str, Option<&str>) {
    let last_slash = text.rfind('/').map_or(0, |i| i + 1);
    match text[last_slash..].rfind(':') {
        Some(i) => (&text[..last_slash + i], Some(&text[last_slash + i + 1..])),
        None => (text, None),
    }
}

/// Splits `host/path` into registry and repository, Docker style.
fn split_registry(name: &str) -> (&str, String) {
    match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => {
            let repository = if first == DOCKER_HUB && !rest.contains('/') {
                format!("library/{rest}")
            } else {
                rest.to_owned()
            };
            (first, repository)
        }
        Some(_) => (DOCKER_HUB, name.to_owned()),
        None => (DOCKER_HUB, format!("library/{name}")),
    }
}

fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (String, String, String) {
        let r = Reference::parse(text).unwrap();
        (r.registry, r.repository, r.tag)
    }

    fn owned(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn parses_registry_repository_and_tag() {
        assert_eq!(
            parts("127.0.0.1:5000/team/hello:1.0"),
            owned("127.0.0.1:5000", "team/hello", "1.0")
        );
        assert_eq!(
            parts("docker://localhost:5000/hello"),
            owned("localhost:5000", "hello", "latest")
        );
        assert_eq!(parts("localhost/a/b/c:v"), owned("localhost", "a/b/c", "v"));
        assert_eq!(
            parts("ghcr.io/me/app"),
            owned("ghcr.io", "me/app", "latest")
        );
        assert_eq!(
            parts("hello"),
            owned("docker.io", "library/hello", "latest")
        );
        assert_eq!(parts("me/app:t"), owned("docker.io", "me/app", "t"));
        assert_eq!(
            parts("docker.io/hello"),
            owned("docker.io", "library/hello", "latest")
        );
        let r = Reference::parse("127.0.0.1:5000/team/hello:1.0").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/hello:1.0");
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(Reference::parse("x").unwrap().api_host(), DOCKER_HUB_API);
    }

    #[test]
    fn rejects_malformed_references_naming_them() {
        for bad in [
            "",
            "docker://",
            "127.0.0.1:5000/",
            "127.0.0.1:5000/Team/hello",
            "127.0.0.1:5000/team/hello:",
            "127.0.0.1:5000/team//hello",
            "127.0.0.1:5000/hello@sha256:abcd",
            "127.0.0.1:5000/hello:bad tag",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                matches!(&err, RegistryError::InvalidReference { reference, .. } if reference == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn joins_a_prefix_and_a_name() {
        let r = Reference::with_prefix("docker://127.0.0.1:5000/team/", "hello:latest").unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/hello:latest");
        let r = Reference::with_prefix("docker://localhost:5000", "app:v2").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/app:v2");
        assert!(Reference::with_prefix("docker://team/", "hello:latest").is_err());
    }
}
