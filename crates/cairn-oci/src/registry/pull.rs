//! Reading an image back from a registry, as much as `containerize -r REF`
//! needs to rebuild an environment that cairn pushed: the manifest (through an
//! index, for one platform), its config, and single blobs. Every byte is
//! checked against the digest that names it before it is returned.

use oci_spec::image::{ImageIndex, ImageManifest};
use crate::image::digest_of;

use super::auth::pull_scope;
use super::client::{Method, Payload, RegistryClient, Reply, Request, status_error};
use super::reference::Reference;
use super::{RegistryError, Result};

/// Manifest media types cairn reads: OCI and Docker, image and index.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// An image manifest as the registry holds it.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    /// `sha256:…` of the manifest's bytes: the image's identity.
    pub digest: String,
    pub manifest: ImageManifest,
}

/// The image manifest `reference` names. An index is followed to the entry for
/// `architecture` on linux; `index_digest` is then the index's own digest.
pub fn pull_manifest(
    client: &RegistryClient,
    reference: &Reference,
    architecture: &str,
) -> Result<(PulledManifest, Option<String>)> {
    let bytes = get_manifest(client, reference, &reference.tag)?;
    let top_digest = digest_of(&bytes);
    if let Ok(index) = serde_json::from_slice::<ImageIndex>(&bytes)
        && !index.manifests().is_empty()
    {
        let entry = index
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == "linux" && p.architecture().to_string() == architecture
                })
            })
            .ok_or_else(|| RegistryError::BadImage(format!("{reference} has no linux/{architecture} image")))?;
        let digest = entry.digest().to_string();
        let bytes = get_manifest(client, reference, &digest)?;
        check_digest(reference, &digest, &bytes)?;
        return Ok((parse_image_manifest(reference, digest, &bytes)?, Some(top_digest)));
    }
    Ok((parse_image_manifest(reference, top_digest, &bytes)?, None))
}

/// The blob `digest` of `reference`'s repository, verified.
pub fn pull_blob(client: &RegistryClient, reference: &Reference, digest: &str) -> Result<Vec<u8>> {
    let url = client.url(&format!("/v2/{}/blobs/{digest}", reference.repository));
    let reply = client.retrying(|| get(client, reference, &url, None), |_, _| {})?;
    let reply = expect_ok(reference, &url, reply)?;
    check_digest(reference, digest, &reply.body)?;
    Ok(reply.body)
}

fn get_manifest(client: &RegistryClient, reference: &Reference, tag_or_digest: &str) -> Result<Vec<u8>> {
    let url = client.url(&format!(
        "/v2/{}/manifests/{tag_or_digest}",
        reference.repository
    ));
    let reply = client.retrying(|| get(client, reference, &url, Some(MANIFEST_ACCEPT)), |_, _| {})?;
    Ok(expect_ok(reference, &url, reply)?.body)
}

fn get(
    client: &RegistryClient,
    reference: &Reference,
    url: &str,
    accept: Option<&str>,
) -> Result<Reply> {
    client.send(&Request {
        method: Method::Get,
        url: url.to_owned(),
        repository: &reference.repository,
        scopes: vec![pull_scope(&reference.repository)],
        headers: accept.map(|a| ("accept", a.to_owned())).into_iter().collect(),
        body: Payload::Empty,
    })
}

fn expect_ok(reference: &Reference, url: &str, reply: Reply) -> Result<Reply> {
    match reply.status {
        200 => Ok(reply),
        404 => Err(RegistryError::ImageNotFound {
            reference: reference.to_string(),
            detail: reply.detail(),
        }),
        403 => Err(RegistryError::Denied {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            detail: reply.detail(),
        }),
        _ => Err(status_error(Method::Get, url, &reply)),
    }
}

fn parse_image_manifest(reference: &Reference, digest: String, bytes: &[u8]) -> Result<PulledManifest> {
    let manifest = serde_json::from_slice::<ImageManifest>(bytes).map_err(|e| {
        RegistryError::BadImage(format!("the manifest of {reference} is not an image manifest: {e}"))
    })?;
    Ok(PulledManifest { digest, manifest })
}

fn check_digest(reference: &Reference, expected: &str, bytes: &[u8]) -> Result<()> {
    let actual = digest_of(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            reference: reference.to_string(),
            expected: expected.to_owned(),
            actual,
        })
    }
}
