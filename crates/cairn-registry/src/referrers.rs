//! Attaching an artifact (an SBOM) to an image already in a registry, as an
//! OCI 1.1 referrer: an image manifest whose `artifactType` says what it is,
//! whose one layer is the artifact, whose config is the empty descriptor,
//! and whose `subject` is the image's manifest.
//!
//! Registries that implement the referrers API index such a manifest by its
//! subject and say so with an `OCI-Subject` header. Those that do not
//! (distribution 2.8, Debian bookworm's `docker-registry`) get the referrers
//! tag schema the OCI distribution spec defines as the fallback: an image
//! index tagged `sha256-<hex of the subject digest>` that lists every
//! referrer, which cairn reads, updates and puts back. [`list_referrers`]
//! reads either way, as clients such as oras and cosign do.

use serde::{Deserialize, Serialize};

use crate::auth::{pull_scope, push_scope};
use crate::client::{
    Method, Payload, RegistryClient, Reply, Request, resolve_location, status_error, with_query,
};
use crate::reference::Reference;
use crate::{RegistryError, Result};

/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The empty config of artifacts (`{}`), as the image spec defines it.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    fn new(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: cairn_oci::image::digest_of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            data: None,
            annotations: Default::default(),
        }
    }
}

/// The artifact manifest (an OCI image manifest with `artifactType` and `subject`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    pub schema_version: u32,
    pub media_type: String,
    pub artifact_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub subject: Descriptor,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: String,
    manifests: Vec<Descriptor>,
}

/// What to attach.
#[derive(Debug, Clone)]
pub struct Artifact<'a> {
    /// `artifactType`, also the layer's media type (`application/spdx+json`).
    pub artifact_type: &'a str,
    pub bytes: &'a [u8],
    /// `org.opencontainers.image.title` of the layer (`sbom.spdx.json`).
    pub title: &'a str,
    /// `org.opencontainers.image.created` of the manifest (RFC 3339).
    pub created: &'a str,
}

/// Where the referrer went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: String,
    /// The referrers tag updated, when the registry has no referrers API.
    pub fallback_tag: Option<String>,
}

/// The referrers tag of `digest` (`sha256:abc…` → `sha256-abc…`).
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Pushes `artifact` to `reference`'s repository as a referrer of `subject`
/// (an image manifest already there).
pub fn attach_referrer(
    client: &RegistryClient,
    reference: &Reference,
    subject: &Descriptor,
    artifact: &Artifact<'_>,
) -> Result<Attached> {
    let repo = Repo { client, reference };
    repo.put_blob(EMPTY_JSON)?;
    repo.put_blob(artifact.bytes)?;
    let mut layer = Descriptor::new(artifact.artifact_type, artifact.bytes);
    layer.annotations.insert(
        "org.opencontainers.image.title".into(),
        artifact.title.into(),
    );
    let mut config = Descriptor::new(EMPTY_MEDIA_TYPE, EMPTY_JSON);
    config.data = Some("e30=".into());
    let manifest = ArtifactManifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: artifact.artifact_type.into(),
        config,
        layers: vec![layer],
        subject: Descriptor {
            artifact_type: None,
            data: None,
            annotations: Default::default(),
            ..subject.clone()
        },
        annotations: [(
            "org.opencontainers.image.created".to_string(),
            artifact.created.to_string(),
        )]
        .into(),
    };
    let bytes = json(&manifest)?;
    let digest = cairn_oci::image::digest_of(&bytes);
    let reply = repo.put_manifest(&digest, MANIFEST_MEDIA_TYPE, &bytes)?;
    if reply.header("oci-subject").is_some() {
        return Ok(Attached {
            digest,
            fallback_tag: None,
        });
    }
    let mut entry = Descriptor::new(MANIFEST_MEDIA_TYPE, &bytes);
    entry.artifact_type = Some(artifact.artifact_type.into());
    entry.annotations = manifest.annotations.clone();
    let tag = referrers_tag(&subject.digest);
    let mut index = repo.get_index(&tag)?.unwrap_or(Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.into(),
        manifests: Vec::new(),
    });
    index.manifests.retain(|m| m.digest != digest);
    index.manifests.push(entry);
    repo.put_manifest(&tag, INDEX_MEDIA_TYPE, &json(&index)?)?;
    Ok(Attached {
        digest,
        fallback_tag: Some(tag),
    })
}

/// The referrers of `subject_digest`, from the referrers API or, where the
/// registry has none, from the referrers tag.
pub fn list_referrers(
    client: &RegistryClient,
    reference: &Reference,
    subject_digest: &str,
) -> Result<Vec<Descriptor>> {
    let repo = Repo { client, reference };
    let url = client.url(&format!(
        "/v2/{}/referrers/{subject_digest}",
        reference.repository
    ));
    let reply = repo.get(&url, Some(INDEX_MEDIA_TYPE))?;
    if reply.status == 200
        && let Ok(index) = serde_json::from_slice::<Index>(&reply.body)
    {
        return Ok(index.manifests);
    }
    Ok(repo
        .get_index(&referrers_tag(subject_digest))?
        .map(|i| i.manifests)
        .unwrap_or_default())
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| RegistryError::BadImage(format!("cannot encode JSON: {e}")))
}

struct Repo<'a> {
    client: &'a RegistryClient,
    reference: &'a Reference,
}

impl Repo<'_> {
    fn request<'b>(&'b self, method: Method, url: String, body: Payload<'b>) -> Request<'b> {
        Request {
            method,
            url,
            repository: &self.reference.repository,
            scopes: vec![push_scope(&self.reference.repository)],
            headers: Vec::new(),
            body,
        }
    }

    fn get(&self, url: &str, accept: Option<&str>) -> Result<Reply> {
        let mut request = self.request(Method::Get, url.to_string(), Payload::Empty);
        request.scopes = vec![pull_scope(&self.reference.repository)];
        request.headers = accept
            .map(|a| ("accept", a.to_string()))
            .into_iter()
            .collect();
        self.client
            .retrying(|| self.client.send(&request), |_, _| {})
    }

    /// Uploads `bytes` as a blob unless the repository has it.
    fn put_blob(&self, bytes: &[u8]) -> Result<()> {
        let digest = cairn_oci::image::digest_of(bytes);
        let base = format!("/v2/{}/blobs/", self.reference.repository);
        let head = self.client.url(&format!("{base}{digest}"));
        let reply = self
            .client
            .send(&self.request(Method::Head, head.clone(), Payload::Empty))?;
        if reply.status == 200 {
            return Ok(());
        }
        let start = self.client.url(&format!("{base}uploads/"));
        let reply = self
            .client
            .send(&self.request(Method::Post, start.clone(), Payload::Empty))?;
        if reply.status != 202 {
            return Err(status_error(Method::Post, &start, &reply));
        }
        let location = reply
            .header("location")
            .map(|l| resolve_location(&start, l))
            .ok_or_else(|| RegistryError::Protocol {
                method: "POST",
                url: start.clone(),
                reason: "HTTP 202 without a Location header".into(),
            })?;
        let url = with_query(&location, "digest", &digest);
        let mut request = self.request(Method::Put, url.clone(), Payload::Bytes(bytes));
        request
            .headers
            .push(("content-type", "application/octet-stream".into()));
        let reply = self.client.send(&request)?;
        match reply.status {
            201 | 204 => Ok(()),
            _ => Err(status_error(Method::Put, &url, &reply)),
        }
    }

    fn put_manifest(&self, tag_or_digest: &str, media_type: &str, bytes: &[u8]) -> Result<Reply> {
        let url = self.client.url(&format!(
            "/v2/{}/manifests/{tag_or_digest}",
            self.reference.repository
        ));
        self.client.retrying(
            || {
                let mut request = self.request(Method::Put, url.clone(), Payload::Bytes(bytes));
                request
                    .headers
                    .push(("content-type", media_type.to_string()));
                let reply = self.client.send(&request)?;
                match reply.status {
                    200..=299 => Ok(reply),
                    _ => Err(status_error(Method::Put, &url, &reply)),
                }
            },
            |_, _| {},
        )
    }

    /// The image index tagged `tag`, or `None` when there is none yet.
    fn get_index(&self, tag: &str) -> Result<Option<Index>> {
        let url = self.client.url(&format!(
            "/v2/{}/manifests/{tag}",
            self.reference.repository
        ));
        let reply = self.get(&url, Some(INDEX_MEDIA_TYPE))?;
        match reply.status {
            200 => serde_json::from_slice(&reply.body).map(Some).map_err(|e| {
                RegistryError::BadImage(format!(
                    "{}:{tag} is not an image index: {e}",
                    self.reference.repository
                ))
            }),
            404 => Ok(None),
            _ => Err(status_error(Method::Get, &url, &reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referrers_tag_replaces_the_algorithm_separator() {
        assert_eq!(referrers_tag("sha256:abc"), "sha256-abc");
    }

    #[test]
    fn the_empty_descriptor_is_the_specs() {
        let d = Descriptor::new(EMPTY_MEDIA_TYPE, EMPTY_JSON);
        assert_eq!(
            d.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.size, 2);
    }
}
