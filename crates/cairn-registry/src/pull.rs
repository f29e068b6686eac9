//! Reading an image back from a registry, as much as `containerize -r REF`
//! needs to rebuild an environment that cairn pushed: the manifest (through an
//! index, for one platform), its config, and single blobs. Every byte is
//! checked against the digest that names it before it is returned.

use cairn_oci::image::digest_of;
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::auth::pull_scope;
use crate::client::{Method, Payload, RegistryClient, Reply, Request, status_error};
use crate::reference::Reference;
use crate::{RegistryError, Result};

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
            .ok_or_else(|| {
                RegistryError::BadImage(format!("{reference} has no linux/{architecture} image"))
            })?;
        let digest = entry.digest().to_string();
        let bytes = get_manifest(client, reference, &digest)?;
        check_digest(reference, &digest, &bytes)?;
        return Ok((
            parse_image_manifest(reference, digest, &bytes)?,
            Some(top_digest),
        ));
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

fn get_manifest(
    client: &RegistryClient,
    reference: &Reference,
    tag_or_digest: &str,
) -> Result<Vec<u8>> {
    let url = client.url(&format!(
        "/v2/{}/manifests/{tag_or_digest}",
        reference.repository
    ));
    let reply = client.retrying(
        || get(client, reference, &url, Some(MANIFEST_ACCEPT)),
        |_, _| {},
    )?;
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
        headers: accept
            .map(|a| ("accept", a.to_owned()))
            .into_iter()
            .collect(),
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

fn parse_image_manifest(
    reference: &Reference,
    digest: String,
    bytes: &[u8],
) -> Result<PulledManifest> {
    let manifest = serde_json::from_slice::<ImageManifest>(bytes).map_err(|e| {
        RegistryError::BadImage(format!(
            "the manifest of {reference} is not an image manifest: {e}"
        ))
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

/// Where images built by cairn keep the environment they were built from.
const ENV_FILES: [&str; 2] = ["opt/cairn/env/manifest.toml", "opt/cairn/env/manifest.lock"];
/// `created_by` of the layer that holds them.
const ENV_LAYER_PREFIX: &str = "cairn: environment ";
/// A manifest or lock bigger than this is not one cairn wrote.
const MAX_ENV_FILE: u64 = 16 << 20;

/// The environment an image built by cairn carries, read from a registry.
#[derive(Debug, Clone)]
pub struct PulledEnvironment {
    /// The environment's name, as the image's history gives it.
    pub name: String,
    pub manifest_toml: Vec<u8>,
    pub lock: Vec<u8>,
    /// The platform image read (`sha256:…`).
    pub image_digest: String,
    /// The index the platform image was found through, if any.
    pub index_digest: Option<String>,
}

/// Reads `manifest.toml` and `manifest.lock` from the environment layer of the
/// image `reference` names (its linux/`architecture` image when it is an index).
/// Only that layer and the config are downloaded.
pub fn pull_environment(
    client: &RegistryClient,
    reference: &Reference,
    architecture: &str,
) -> Result<PulledEnvironment> {
    let (pulled, index_digest) = pull_manifest(client, reference, architecture)?;
    let config_digest = pulled.manifest.config().digest().to_string();
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&pull_blob(client, reference, &config_digest)?).map_err(|e| {
            RegistryError::BadImage(format!("the config of {reference} is unreadable: {e}"))
        })?;
    let not_cairn = || {
        RegistryError::BadImage(format!(
            "{reference} was not built by `cairn containerize`: no layer is `{}…`",
            ENV_LAYER_PREFIX.trim_end()
        ))
    };
    let history = config.history().as_deref().unwrap_or_default();
    let layer_history = history.iter().filter(|h| h.empty_layer() != Some(true));
    let (layer, name) = pulled
        .manifest
        .layers()
        .iter()
        .zip(layer_history)
        .find_map(|(layer, h)| {
            let name = h.created_by().as_deref()?.strip_prefix(ENV_LAYER_PREFIX)?;
            Some((layer, name.to_owned()))
        })
        .ok_or_else(not_cairn)?;
    let blob = pull_blob(client, reference, layer.digest().as_ref())?;
    let mut files = read_layer_files(&blob, layer.media_type().as_ref(), &ENV_FILES)
        .map_err(|e| RegistryError::BadImage(format!("{reference}: {e}")))?;
    let mut take = |path: &str| files.remove(path).ok_or_else(not_cairn);
    Ok(PulledEnvironment {
        name,
        manifest_toml: take(ENV_FILES[0])?,
        lock: take(ENV_FILES[1])?,
        image_digest: pulled.digest,
        index_digest,
    })
}

/// The regular files among `wanted` in a (gzip or zstd) layer, read into
/// memory: nothing is written to disk, so a hostile tar has nowhere to go.
fn read_layer_files(
    blob: &[u8],
    media_type: &str,
    wanted: &[&str],
) -> std::io::Result<std::collections::BTreeMap<String, Vec<u8>>> {
    use std::io::Read;
    let reader = cairn_oci::layer::layer_tar_reader(blob, media_type)?;
    let mut found = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(reader).entries()? {
        let entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if entry.header().entry_type().is_file() && wanted.contains(&path) {
            let path = path.to_owned();
            let mut body = Vec::new();
            entry.take(MAX_ENV_FILE).read_to_end(&mut body)?;
            found.insert(path, body);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, kind, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            // Raw names, so `..` and odd paths reach the reader as a hostile tar has them.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            if kind.is_symlink() {
                header.set_size(0);
                header.set_link_name("/etc/shadow").unwrap();
            }
            header.set_cksum();
            let data: &[u8] = if kind.is_symlink() { &[] } else { body };
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn reads_only_the_wanted_regular_files_into_memory() {
        let blob = gzip_tar(&[
            (
                "./opt/cairn/env/manifest.toml",
                tar::EntryType::Regular,
                b"version = 1\n",
            ),
            (
                "../opt/cairn/env/manifest.lock",
                tar::EntryType::Regular,
                b"evil",
            ),
            ("opt/cairn/env/manifest.lock", tar::EntryType::Symlink, b""),
            (
                "etc/passwd",
                tar::EntryType::Regular,
                b"root:x:0:0::/root:/bin/sh\n",
            ),
        ]);
        let files = read_layer_files(
            &blob,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &ENV_FILES,
        )
        .unwrap();
        assert_eq!(files.len(), 1, "{:?}", files.keys());
        assert_eq!(files[ENV_FILES[0]], b"version = 1\n");
    }
}
