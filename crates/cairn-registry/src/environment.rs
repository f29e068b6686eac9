//! Published environments: an environment's `manifest.toml` and
//! `manifest.lock` stored in any OCI registry as a small artifact, one
//! immutable artifact per **generation**, and a record of the generations
//! under the environment's tag. This is the "hub" side of `cairn publish`,
//! `cairn pull REF[@N]`, `cairn generations …`, `activate -r` and the
//! Kubernetes handler. Pushing *images* is `push.rs`; nothing here builds or
//! reads image layers.
//!
//! Layout in the repository of `HOST/REPO:TAG`:
//! - Generation N is an OCI image manifest with `artifactType`
//!   [`ENVIRONMENT_ARTIFACT_TYPE`], the empty config, and two layers: the
//!   manifest ([`MANIFEST_MEDIA_TYPE`]) and the lock ([`LOCK_MEDIA_TYPE`]),
//!   titled as `oras pull` expects. Its annotations name the environment, the
//!   generation number, the creation time and the change from generation N-1.
//!   It is pushed by digest only, so nothing can retag it.
//! - `TAG` points at an OCI image index with `artifactType`
//!   [`GENERATIONS_ARTIFACT_TYPE`] (the record): one entry per generation, by
//!   digest, oldest first, and annotations saying which generation is live
//!   and what happened when (the history). Because the index references every
//!   generation, a registry's garbage collector keeps them all.
//!
//! Generation N is immutable in the sense cairn can enforce: publishing always
//! takes the next number, a record that already has N is never rewritten with
//! another digest for N, and a fetched generation must carry its own number
//! and name in its (digest-verified) annotations, so a record pointing `@2` at
//! generation 1's artifact is refused. Callers that remember a generation's
//! digest (`cairn pull` does) detect a record rewritten by someone else.
//!
//! What registries cannot guarantee: the distribution API has no
//! compare-and-swap on tags. A publish re-reads the tag just before
//! retagging and stops if it moved ([`RegistryError::ConcurrentUpdate`]),
//! and re-reads it after, but two publishers between those reads can still
//! both write, and the last one wins. The first GET of a tag cannot be
//! verified against a digest the caller knows; it is checked against the
//! `Docker-Content-Digest` header when the registry sends one, and everything
//! it leads to is fetched by digest and verified byte for byte.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth::{pull_scope, push_scope};
use crate::client::{
    Method, Payload, RegistryClient, Reply, Request, resolve_location, status_error, with_query,
};
use crate::reference::Reference;
use crate::{RegistryError, Result};
use cairn_oci::image::digest_of;

/// `artifactType` of one generation's artifact manifest.
pub const ENVIRONMENT_ARTIFACT_TYPE: &str = "application/vnd.cairn.environment.v1+json";
/// `artifactType` of the record (image index) the environment's tag points at.
pub const GENERATIONS_ARTIFACT_TYPE: &str = "application/vnd.cairn.environment.generations.v1+json";
/// Media type of the `manifest.toml` layer.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.cairn.environment.manifest.v1+toml";
/// Media type of the `manifest.lock` layer.
pub const LOCK_MEDIA_TYPE: &str = "application/vnd.cairn.environment.lock.v1+toml";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The OCI 1.1 empty descriptor: config of artifacts that have none.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";

const ANNOTATION_NAME: &str = "dev.cairn.environment.name";
const ANNOTATION_GENERATION: &str = "dev.cairn.environment.generation";
const ANNOTATION_CHANGE: &str = "dev.cairn.environment.change";
const ANNOTATION_LIVE: &str = "dev.cairn.environment.live";
const ANNOTATION_HISTORY: &str = "dev.cairn.environment.history";
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// Everything cairn reads by tag; the answer says which one it is.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A published environment's name: `HOST[:PORT]/REPO[:TAG]` optionally
/// followed by `@N` (a generation number; `@sha256:…` stays a digest, which
/// names an image, not an environment generation, and is refused here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRef {
    /// Registry, repository and the tag holding the record (default `latest`).
    pub reference: Reference,
    /// The generation pinned with `@N`; `None` means the live one.
    pub generation: Option<u64>,
}

impl EnvironmentRef {
    /// Parses `HOST[:PORT]/REPO[:TAG][@N]`.
    pub fn parse(text: &str) -> Result<EnvironmentRef> {
        let invalid = |reason: String| RegistryError::InvalidReference {
            reference: text.to_owned(),
            reason,
        };
        let (name, generation) = match text.rsplit_once('@') {
            None => (text, None),
            Some((_, digest)) if digest.contains(':') => {
                return Err(invalid(
                    "a digest names an image; an environment generation is written REF@N (e.g. @3)"
                        .into(),
                ));
            }
            Some((name, number)) => {
                let n = number
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        invalid(format!(
                            "'@{number}' is not a generation number (write REF@N with N = 1, 2, …)"
                        ))
                    })?;
                (name, Some(n))
            }
        };
        let reference = Reference::parse(name).map_err(|e| match e {
            RegistryError::InvalidReference { reason, .. } => invalid(reason),
            other => other,
        })?;
        Ok(EnvironmentRef {
            reference,
            generation,
        })
    }

    /// The same environment pinned to generation `n`.
    pub fn at(&self, n: u64) -> EnvironmentRef {
        EnvironmentRef {
            reference: self.reference.clone(),
            generation: Some(n),
        }
    }
}

impl fmt::Display for EnvironmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            Some(n) => write!(f, "{}@{n}", self.reference),
            None => write!(f, "{}", self.reference),
        }
    }
}

/// One generation's files, fetched and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedEnvironment {
    /// The environment's name (its manifest's `name`, or the publisher's choice).
    pub name: String,
    /// The generation these files are.
    pub generation: u64,
    /// `manifest.toml`, byte for byte.
    pub manifest_toml: Vec<u8>,
    /// `manifest.lock`, byte for byte.
    pub lock: Vec<u8>,
    /// `sha256:…` of the generation's artifact manifest: its identity.
    pub digest: String,
}

/// A package and its version, in a [`Change`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
}

/// A package whose version moved, in a [`Change`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMove {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// What a generation changed in the requested packages, compared with the
/// generation before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<PackageVersion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<PackageVersion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgraded: Vec<VersionMove>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downgraded: Vec<VersionMove>,
    /// Set when the lock's packages did not move but the manifest did (vars,
    /// hooks, services, options).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manifest_edited: bool,
}

impl Change {
    /// Whether nothing moved at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.upgraded.is_empty()
            && self.downgraded.is_empty()
            && !self.manifest_edited
    }
}

impl fmt::Display for Change {
    /// `added python3-flask 2.2.2-3; upgraded python3 3.11.2-1 → 3.11.2-6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let versions = |list: &[PackageVersion]| {
            list.iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let moves = |list: &[VersionMove]| {
            list.iter()
                .map(|m| format!("{} {} → {}", m.name, m.from, m.to))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.added.is_empty() {
            parts.push(format!("added {}", versions(&self.added)));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", versions(&self.removed)));
        }
        if !self.upgraded.is_empty() {
            parts.push(format!("upgraded {}", moves(&self.upgraded)));
        }
        if !self.downgraded.is_empty() {
            parts.push(format!("downgraded {}", moves(&self.downgraded)));
        }
        if parts.is_empty() {
            parts.push(if self.manifest_edited {
                "manifest edited (no package change)".to_owned()
            } else {
                "no change".to_owned()
            });
        }
        f.write_str(&parts.join("; "))
    }
}

/// One entry of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    /// 1, 2, …
    pub number: u64,
    /// `sha256:…` of its artifact manifest.
    pub digest: String,
    /// Size of its artifact manifest in bytes.
    pub size: u64,
    /// When it was published (RFC 3339, UTC).
    pub created: String,
    /// What it changed from the generation before.
    pub change: Change,
}

/// What happened to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new generation was published and made live.
    Publish,
    /// `generations switch N`.
    Switch,
    /// `generations rollback`.
    Rollback,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Publish => "publish",
            Action::Switch => "switch",
            Action::Rollback => "rollback",
        })
    }
}

/// One line of the history: at `at`, `action` made `generation` live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// RFC 3339, UTC.
    pub at: String,
    pub action: Action,
    /// The generation that became live.
    pub generation: u64,
    /// The generation that was live before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
}

/// The record the environment's tag points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generations {
    /// The environment's name.
    pub name: String,
    /// The live generation.
    pub live: u64,
    /// Every generation, oldest first.
    pub generations: Vec<Generation>,
    /// Every change of the live generation, oldest first.
    pub history: Vec<HistoryEvent>,
    /// `sha256:…` of the record (the index) as read.
    pub digest: String,
}

impl Generations {
    /// Generation `n`, if the record has it.
    pub fn get(&self, n: u64) -> Option<&Generation> {
        self.generations.iter().find(|g| g.number == n)
    }

    /// The highest generation number (0 for an empty record).
    pub fn latest(&self) -> u64 {
        self.generations.iter().map(|g| g.number).max().unwrap_or(0)
    }

    /// The generation a rollback goes to: the one that was live before the
    /// live one became live.
    pub fn rollback_target(&self) -> Option<u64> {
        self.history
            .iter()
            .rev()
            .find(|e| e.generation == self.live)
            .and_then(|e| e.previous)
    }
}

/// What a tag holds, for commands that accept both environments and images
/// (`containerize -r`).
#[derive(Debug, Clone)]
pub enum Published {
    /// A cairn environment's record.
    Environment(Generations),
    /// Anything else: an image, an index of images, another artifact.
    Other {
        /// The manifest's media type.
        media_type: String,
        /// Its `artifactType`, if any.
        artifact_type: Option<String>,
    },
}

/// What a publish made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishOutcome {
    /// `HOST/REPO:TAG@N` of the new generation.
    pub reference: String,
    /// The new generation's number.
    pub generation: u64,
    /// Its artifact's digest.
    pub digest: String,
    /// What it changed from the generation before it.
    pub change: Change,
    /// The record's new digest.
    pub record_digest: String,
}

// ---------------------------------------------------------------- reading

/// What `reference`'s tag holds: a cairn environment's record, or something
/// else. A tag that does not exist is [`RegistryError::EnvironmentNotFound`].
pub fn read_published(client: &RegistryClient, reference: &Reference) -> Result<Published> {
    let not_found = |detail: String| RegistryError::EnvironmentNotFound {
        reference: reference.to_string(),
        detail,
    };
    let (bytes, digest) = get_manifest(client, reference, &reference.tag)?
        .ok_or_else(|| not_found("the tag does not exist".into()))?;
    let head: Head =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::NotAnEnvironment {
            reference: reference.to_string(),
            found: format!("a manifest that is not JSON ({e})"),
        })?;
    if head.artifact_type.as_deref() != Some(GENERATIONS_ARTIFACT_TYPE) {
        return Ok(Published::Other {
            media_type: head.media_type.unwrap_or_default(),
            artifact_type: head.artifact_type,
        });
    }
    Ok(Published::Environment(parse_record(
        reference, &bytes, digest,
    )?))
}

/// The record of the environment at `reference`'s tag. Anything else there
/// is [`RegistryError::NotAnEnvironment`].
pub fn read_generations(client: &RegistryClient, reference: &Reference) -> Result<Generations> {
    match read_published(client, reference)? {
        Published::Environment(record) => Ok(record),
        Published::Other {
            media_type,
            artifact_type,
        } => Err(not_an_environment(reference, &media_type, artifact_type)),
    }
}

/// Generation `env.generation` (or the live one) of the environment `env`
/// names: the record, then the generation's artifact by digest, then its two
/// files by digest, each verified before it is used.
pub fn fetch_environment(
    client: &RegistryClient,
    env: &EnvironmentRef,
) -> Result<FetchedEnvironment> {
    let record = read_generations(client, &env.reference)?;
    fetch_generation(client, env, &record)
}

/// Like [`fetch_environment`], with the record already read.
pub fn fetch_generation(
    client: &RegistryClient,
    env: &EnvironmentRef,
    record: &Generations,
) -> Result<FetchedEnvironment> {
    let reference = &env.reference;
    let number = env.generation.unwrap_or(record.live);
    let generation = record
        .get(number)
        .ok_or_else(|| RegistryError::GenerationNotFound {
            reference: reference.to_string(),
            generation: number,
            latest: record.latest(),
        })?;
    let bytes = get_manifest(client, reference, &generation.digest)?.ok_or_else(|| {
        RegistryError::BadEnvironment {
            reference: env.to_string(),
            reason: format!(
                "the record names {} but the registry does not have it",
                generation.digest
            ),
        }
    })?;
    check_digest(&env.to_string(), &generation.digest, &bytes.0)?;
    let artifact = parse_artifact(env, &bytes.0)?;
    let annotated = artifact.annotation(ANNOTATION_GENERATION);
    if annotated != Some(&number.to_string()) {
        return Err(RegistryError::BadEnvironment {
            reference: env.to_string(),
            reason: format!(
                "the record says {} is generation {number}, but the artifact says {}",
                generation.digest,
                annotated.map_or("nothing", String::as_str)
            ),
        });
    }
    let name = artifact
        .annotation(ANNOTATION_NAME)
        .cloned()
        .unwrap_or_default();
    if name != record.name {
        return Err(RegistryError::BadEnvironment {
            reference: env.to_string(),
            reason: format!(
                "generation {number} belongs to environment '{name}', not '{}'",
                record.name
            ),
        });
    }
    let layer = |media_type: &str| -> Result<Vec<u8>> {
        let descriptor = artifact
            .layers
            .iter()
            .find(|l| l.media_type == media_type)
            .ok_or_else(|| RegistryError::BadEnvironment {
                reference: env.to_string(),
                reason: format!("the artifact has no {media_type} layer"),
            })?;
        if descriptor.size > MAX_FILE {
            return Err(RegistryError::BadEnvironment {
                reference: env.to_string(),
                reason: format!("its {media_type} layer has {} bytes", descriptor.size),
            });
        }
        get_blob(client, env, &descriptor.digest)
    };
    Ok(FetchedEnvironment {
        name,
        generation: number,
        manifest_toml: layer(MANIFEST_MEDIA_TYPE)?,
        lock: layer(LOCK_MEDIA_TYPE)?,
        digest: generation.digest.clone(),
    })
}

/// A manifest or lock bigger than this is not one cairn wrote.
const MAX_FILE: u64 = 16 << 20;

// ---------------------------------------------------------------- writing

/// Publishes `manifest_toml` and `lock` as the next generation of the
/// environment at `reference` (named `name`) and makes it live. `now` is the
/// Unix time recorded. A tag that holds anything but a cairn environment is
/// left alone ([`RegistryError::NotAnEnvironment`]).
pub fn publish_environment(
    client: &RegistryClient,
    reference: &Reference,
    name: &str,
    manifest_toml: &[u8],
    lock: &[u8],
    now: i64,
) -> Result<PublishOutcome> {
    let before = match read_published(client, reference) {
        Ok(Published::Environment(record)) => Some(record),
        Ok(Published::Other {
            media_type,
            artifact_type,
        }) => return Err(not_an_environment(reference, &media_type, artifact_type)),
        Err(RegistryError::EnvironmentNotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(record) = &before
        && record.name != name
    {
        return Err(RegistryError::BadEnvironment {
            reference: reference.to_string(),
            reason: format!(
                "it holds environment '{}', not '{name}'; publish to another REF, or rename the \
                 environment to '{}'",
                record.name, record.name
            ),
        });
    }
    let number = before.as_ref().map_or(0, Generations::latest) + 1;
    let previous_lock = match &before {
        Some(record) => {
            let env = EnvironmentRef {
                reference: reference.clone(),
                generation: Some(record.latest()),
            };
            Some(fetch_generation(client, &env, record)?)
        }
        None => None,
    };
    let change = match &previous_lock {
        Some(previous) => change_between(
            Some((&previous.manifest_toml, &previous.lock)),
            manifest_toml,
            lock,
        ),
        None => change_between(None, manifest_toml, lock),
    };
    let created = cairn_oci::image::rfc3339(now);
    let artifact = artifact_manifest(name, number, &created, &change, manifest_toml, lock)?;
    let digest = digest_of(&artifact);
    for blob in [EMPTY_JSON, manifest_toml, lock] {
        put_blob(client, reference, blob)?;
    }
    put_manifest(client, reference, &digest, &artifact, OCI_MANIFEST)?;
    let generation = Generation {
        number,
        digest: digest.clone(),
        size: artifact.len() as u64,
        created: created.clone(),
        change: change.clone(),
    };
    let mut record = before.clone().unwrap_or_else(|| Generations {
        name: name.to_owned(),
        live: 0,
        generations: Vec::new(),
        history: Vec::new(),
        digest: String::new(),
    });
    if record.get(number).is_some() {
        // `number` is one past the highest, so this is a broken record.
        return Err(RegistryError::GenerationExists {
            reference: reference.to_string(),
            generation: number,
        });
    }
    record.history.push(HistoryEvent {
        at: created,
        action: Action::Publish,
        generation: number,
        previous: before.as_ref().map(|r| r.live),
    });
    record.generations.push(generation);
    record.live = number;
    let record_digest = retag_record(client, reference, before.as_ref(), &record)?;
    Ok(PublishOutcome {
        reference: format!("{reference}@{number}"),
        generation: number,
        digest,
        change,
        record_digest,
    })
}

/// Makes generation `n` live (`generations switch N`, or `rollback` with
/// [`Action::Rollback`]); records the event at Unix time `now`.
pub fn set_live(
    client: &RegistryClient,
    reference: &Reference,
    n: u64,
    action: Action,
    now: i64,
) -> Result<Generations> {
    let before = read_generations(client, reference)?;
    if before.get(n).is_none() {
        return Err(RegistryError::GenerationNotFound {
            reference: reference.to_string(),
            generation: n,
            latest: before.latest(),
        });
    }
    let mut record = before.clone();
    record.history.push(HistoryEvent {
        at: cairn_oci::image::rfc3339(now),
        action,
        generation: n,
        previous: Some(before.live),
    });
    record.live = n;
    record.digest = retag_record(client, reference, Some(&before), &record)?;
    Ok(record)
}

/// PUTs `record` under the tag, after checking that the tag still holds
/// `before` (there is no compare-and-swap: this narrows the window, and the
/// read after the PUT reports a writer that slipped in). Returns the digest.
fn retag_record(
    client: &RegistryClient,
    reference: &Reference,
    before: Option<&Generations>,
    record: &Generations,
) -> Result<String> {
    let bytes = record_index(record)?;
    let digest = digest_of(&bytes);
    let expected = before.map(|r| r.digest.clone());
    let concurrent = || RegistryError::ConcurrentUpdate {
        reference: reference.to_string(),
    };
    let current = get_manifest(client, reference, &reference.tag)?.map(|(_, d)| d);
    if current != expected {
        return Err(concurrent());
    }
    put_manifest(client, reference, &reference.tag, &bytes, OCI_INDEX)?;
    let after = get_manifest(client, reference, &reference.tag)?.map(|(_, d)| d);
    if after.as_deref() != Some(digest.as_str()) {
        return Err(concurrent());
    }
    Ok(digest)
}

// ---------------------------------------------------------------- formats

/// The first fields of any manifest, to tell what a tag holds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    media_type: Option<String>,
    artifact_type: Option<String>,
}

/// An OCI descriptor, as much as cairn writes and reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// A generation's artifact manifest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    schema_version: u32,
    media_type: String,
    artifact_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl ArtifactManifest {
    fn annotation(&self, key: &str) -> Option<&String> {
        self.annotations.get(key)
    }
}

/// The record: an image index of generations.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordIndex {
    schema_version: u32,
    media_type: String,
    artifact_type: String,
    manifests: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn blob_descriptor(media_type: &str, bytes: &[u8], title: &str) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        artifact_type: None,
        digest: digest_of(bytes),
        size: bytes.len() as u64,
        data: None,
        annotations: BTreeMap::from([(ANNOTATION_TITLE.to_owned(), title.to_owned())]),
    }
}

/// The artifact manifest of one generation, as canonical bytes.
fn artifact_manifest(
    name: &str,
    number: u64,
    created: &str,
    change: &Change,
    manifest_toml: &[u8],
    lock: &[u8],
) -> Result<Vec<u8>> {
    let manifest = ArtifactManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST.to_owned(),
        artifact_type: ENVIRONMENT_ARTIFACT_TYPE.to_owned(),
        config: Descriptor {
            media_type: EMPTY_MEDIA_TYPE.to_owned(),
            artifact_type: None,
            digest: digest_of(EMPTY_JSON),
            size: EMPTY_JSON.len() as u64,
            data: Some("e30=".to_owned()),
            annotations: BTreeMap::new(),
        },
        layers: vec![
            blob_descriptor(MANIFEST_MEDIA_TYPE, manifest_toml, "manifest.toml"),
            blob_descriptor(LOCK_MEDIA_TYPE, lock, "manifest.lock"),
        ],
        annotations: generation_annotations(name, number, created, change)?,
    };
    to_json(&manifest)
}

fn generation_annotations(
    name: &str,
    number: u64,
    created: &str,
    change: &Change,
) -> Result<BTreeMap<String, String>> {
    Ok(BTreeMap::from([
        (ANNOTATION_NAME.to_owned(), name.to_owned()),
        (ANNOTATION_GENERATION.to_owned(), number.to_string()),
        (ANNOTATION_CREATED.to_owned(), created.to_owned()),
        (
            ANNOTATION_CHANGE.to_owned(),
            String::from_utf8(to_json(change)?).unwrap_or_default(),
        ),
    ]))
}

/// The record as the bytes of an image index.
fn record_index(record: &Generations) -> Result<Vec<u8>> {
    let manifests = record
        .generations
        .iter()
        .map(|g| {
            Ok(Descriptor {
                media_type: OCI_MANIFEST.to_owned(),
                artifact_type: Some(ENVIRONMENT_ARTIFACT_TYPE.to_owned()),
                digest: g.digest.clone(),
                size: g.size,
                data: None,
                annotations: generation_annotations(&record.name, g.number, &g.created, &g.change)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let index = RecordIndex {
        schema_version: 2,
        media_type: OCI_INDEX.to_owned(),
        artifact_type: GENERATIONS_ARTIFACT_TYPE.to_owned(),
        manifests,
        annotations: BTreeMap::from([
            (ANNOTATION_NAME.to_owned(), record.name.clone()),
            (ANNOTATION_LIVE.to_owned(), record.live.to_string()),
            (
                ANNOTATION_HISTORY.to_owned(),
                String::from_utf8(to_json(&record.history)?).unwrap_or_default(),
            ),
        ]),
    };
    to_json(&index)
}

fn parse_record(reference: &Reference, bytes: &[u8], digest: String) -> Result<Generations> {
    let bad = |reason: String| RegistryError::BadEnvironment {
        reference: reference.to_string(),
        reason,
    };
    let index: RecordIndex = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("its record is not a cairn record: {e}")))?;
    let annotation = |map: &BTreeMap<String, String>, key: &str| {
        map.get(key)
            .cloned()
            .ok_or_else(|| bad(format!("the record lacks the annotation {key}")))
    };
    let number = |text: String, what: &str| {
        text.parse::<u64>()
            .map_err(|_| bad(format!("{what} '{text}' is not a number")))
    };
    let mut generations = Vec::new();
    for m in &index.manifests {
        let n = number(
            annotation(&m.annotations, ANNOTATION_GENERATION)?,
            "generation",
        )?;
        if generations.iter().any(|g: &Generation| g.number == n) {
            return Err(bad(format!("the record lists generation {n} twice")));
        }
        let change = m
            .annotations
            .get(ANNOTATION_CHANGE)
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        generations.push(Generation {
            number: n,
            digest: m.digest.clone(),
            size: m.size,
            created: m
                .annotations
                .get(ANNOTATION_CREATED)
                .cloned()
                .unwrap_or_default(),
            change,
        });
    }
    let live = number(annotation(&index.annotations, ANNOTATION_LIVE)?, "live")?;
    if !generations.iter().any(|g| g.number == live) {
        return Err(bad(format!(
            "the live generation {live} is not in the record"
        )));
    }
    let history = match index.annotations.get(ANNOTATION_HISTORY) {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| bad(format!("the record's history is unreadable: {e}")))?,
        None => Vec::new(),
    };
    Ok(Generations {
        name: annotation(&index.annotations, ANNOTATION_NAME)?,
        live,
        generations,
        history,
        digest,
    })
}

fn parse_artifact(env: &EnvironmentRef, bytes: &[u8]) -> Result<ArtifactManifest> {
    let artifact: ArtifactManifest =
        serde_json::from_slice(bytes).map_err(|e| RegistryError::BadEnvironment {
            reference: env.to_string(),
            reason: format!("its artifact manifest is unreadable: {e}"),
        })?;
    if artifact.artifact_type != ENVIRONMENT_ARTIFACT_TYPE {
        return Err(RegistryError::BadEnvironment {
            reference: env.to_string(),
            reason: format!(
                "the record points at an artifact of type '{}'",
                artifact.artifact_type
            ),
        });
    }
    Ok(artifact)
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| RegistryError::BadImage(e.to_string()))
}

fn not_an_environment(
    reference: &Reference,
    media_type: &str,
    artifact_type: Option<String>,
) -> RegistryError {
    let found = match artifact_type {
        Some(t) => format!("an artifact of type {t}"),
        None if media_type.contains("index") || media_type.contains("list") => {
            "an image index (a container image)".to_owned()
        }
        None => "a container image".to_owned(),
    };
    RegistryError::NotAnEnvironment {
        reference: reference.to_string(),
        found,
    }
}

// ---------------------------------------------------------------- changes

/// The requested packages of a lock: name → versions (one per system, joined).
fn requested_versions(lock: &[u8]) -> Option<BTreeMap<String, String>> {
    let text = std::str::from_utf8(lock).ok()?;
    let lock = cairn_manifest::Lock::parse(std::path::Path::new("manifest.lock"), text).ok()?;
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in lock.packages.iter().filter(|p| p.requested) {
        let entry = versions.entry(p.name.clone()).or_default();
        if !entry.contains(&p.version) {
            entry.push(p.version.clone());
        }
    }
    Some(
        versions
            .into_iter()
            .map(|(name, v)| (name, v.join(",")))
            .collect(),
    )
}

/// What moved in the requested packages from `before` (manifest, lock) to
/// the new files. An unreadable lock counts as empty.
pub fn change_between(before: Option<(&[u8], &[u8])>, manifest_toml: &[u8], lock: &[u8]) -> Change {
    let old = before
        .and_then(|(_, l)| requested_versions(l))
        .unwrap_or_default();
    let new = requested_versions(lock).unwrap_or_default();
    let mut change = Change::default();
    for (name, version) in &new {
        match old.get(name) {
            None => change.added.push(PackageVersion {
                name: name.clone(),
                version: version.clone(),
            }),
            Some(from) if from != version => {
                let moved = VersionMove {
                    name: name.clone(),
                    from: from.clone(),
                    to: version.clone(),
                };
                if is_downgrade(from, version) {
                    change.downgraded.push(moved);
                } else {
                    change.upgraded.push(moved);
                }
            }
            Some(_) => {}
        }
    }
    for (name, version) in &old {
        if !new.contains_key(name) {
            change.removed.push(PackageVersion {
                name: name.clone(),
                version: version.clone(),
            });
        }
    }
    // The flag is only the whole story when no package moved.
    change.manifest_edited = change.is_empty()
        && before.is_some_and(|(old_manifest, old_lock)| {
            old_manifest != manifest_toml || old_lock != lock
        });
    change
}

/// Whether `to` sorts before `from` in dpkg's order (single versions only).
fn is_downgrade(from: &str, to: &str) -> bool {
    match (
        from.parse::<cairn_debian::Version>(),
        to.parse::<cairn_debian::Version>(),
    ) {
        (Ok(a), Ok(b)) => b < a,
        _ => false,
    }
}

// ---------------------------------------------------------------- HTTP

/// The manifest `tag_or_digest` names, with its digest; `None` when the
/// registry does not have it (or the repository). A digest the registry
/// announces must match the bytes.
fn get_manifest(
    client: &RegistryClient,
    reference: &Reference,
    tag_or_digest: &str,
) -> Result<Option<(Vec<u8>, String)>> {
    let url = client.url(&format!(
        "/v2/{}/manifests/{tag_or_digest}",
        reference.repository
    ));
    let reply = client.retrying(
        || {
            client.send(&Request {
                method: Method::Get,
                url: url.clone(),
                repository: &reference.repository,
                scopes: vec![pull_scope(&reference.repository)],
                headers: vec![("accept", ACCEPT.to_owned())],
                body: Payload::Empty,
            })
        },
        |_, _| {},
    )?;
    match reply.status {
        200 => {
            let digest = digest_of(&reply.body);
            if let Some(announced) = reply.header("docker-content-digest")
                && announced.starts_with("sha256:")
                && announced != digest
            {
                return Err(RegistryError::DigestMismatch {
                    reference: format!("{}:{tag_or_digest}", reference.name()),
                    expected: announced.to_owned(),
                    actual: digest,
                });
            }
            Ok(Some((reply.body, digest)))
        }
        404 => Ok(None),
        _ => Err(unexpected(reference, Method::Get, &url, &reply)),
    }
}

fn get_blob(client: &RegistryClient, env: &EnvironmentRef, digest: &str) -> Result<Vec<u8>> {
    let reference = &env.reference;
    let url = client.url(&format!("/v2/{}/blobs/{digest}", reference.repository));
    let reply = client.retrying(
        || {
            client.send(&Request {
                method: Method::Get,
                url: url.clone(),
                repository: &reference.repository,
                scopes: vec![pull_scope(&reference.repository)],
                headers: Vec::new(),
                body: Payload::Empty,
            })
        },
        |_, _| {},
    )?;
    match reply.status {
        200 => {
            check_digest(&env.to_string(), digest, &reply.body)?;
            Ok(reply.body)
        }
        404 => Err(RegistryError::BadEnvironment {
            reference: env.to_string(),
            reason: format!("the registry lost its blob {digest}"),
        }),
        _ => Err(unexpected(reference, Method::Get, &url, &reply)),
    }
}

/// Uploads `bytes` as a blob unless the repository has it (one PUT: they are small).
fn put_blob(client: &RegistryClient, reference: &Reference, bytes: &[u8]) -> Result<()> {
    let digest = digest_of(bytes);
    let send = |method: Method, url: &str, body: Payload<'_>, content_type: bool| {
        client.send(&Request {
            method,
            url: url.to_owned(),
            repository: &reference.repository,
            scopes: vec![push_scope(&reference.repository)],
            headers: match content_type {
                true => vec![("content-type", "application/octet-stream".to_owned())],
                false => Vec::new(),
            },
            body,
        })
    };
    client.retrying(
        || {
            let blob_url = client.url(&format!("/v2/{}/blobs/{digest}", reference.repository));
            let head = send(Method::Head, &blob_url, Payload::Empty, false)?;
            if head.status == 200 {
                return Ok(());
            }
            let uploads = client.url(&format!("/v2/{}/blobs/uploads/", reference.repository));
            let started = send(Method::Post, &uploads, Payload::Empty, false)?;
            if started.status != 202 {
                return Err(unexpected(reference, Method::Post, &uploads, &started));
            }
            let location = started
                .header("location")
                .map(|l| resolve_location(&uploads, l))
                .ok_or_else(|| RegistryError::Protocol {
                    method: "POST",
                    url: uploads.clone(),
                    reason: format!("HTTP {} without a Location header", started.status),
                })?;
            let url = with_query(&location, "digest", &digest);
            let done = send(Method::Put, &url, Payload::Bytes(bytes), true)?;
            match done.status {
                201 | 204 => Ok(()),
                _ => Err(unexpected(reference, Method::Put, &url, &done)),
            }
        },
        |_, _| {},
    )
}

fn put_manifest(
    client: &RegistryClient,
    reference: &Reference,
    tag_or_digest: &str,
    bytes: &[u8],
    media_type: &str,
) -> Result<()> {
    let url = client.url(&format!(
        "/v2/{}/manifests/{tag_or_digest}",
        reference.repository
    ));
    client.retrying(
        || {
            let reply = client.send(&Request {
                method: Method::Put,
                url: url.clone(),
                repository: &reference.repository,
                scopes: vec![push_scope(&reference.repository)],
                headers: vec![("content-type", media_type.to_owned())],
                body: Payload::Bytes(bytes),
            })?;
            match reply.status {
                200..=299 => Ok(()),
                _ => Err(unexpected(reference, Method::Put, &url, &reply)),
            }
        },
        |_, _| {},
    )
}

fn check_digest(what: &str, expected: &str, bytes: &[u8]) -> Result<()> {
    let actual = digest_of(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            reference: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

fn unexpected(reference: &Reference, method: Method, url: &str, reply: &Reply) -> RegistryError {
    match reply.status {
        403 => RegistryError::Denied {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            detail: reply.detail(),
        },
        404 if method != Method::Get => RegistryError::RepositoryNotFound {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            detail: reply.detail(),
        },
        _ => status_error(method, url, reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_with_and_without_a_generation() {
        let env = EnvironmentRef::parse("127.0.0.1:5000/team/web").unwrap();
        assert_eq!(env.reference.to_string(), "127.0.0.1:5000/team/web:latest");
        assert_eq!(env.generation, None);
        let env = EnvironmentRef::parse("127.0.0.1:5000/team/web:prod@3").unwrap();
        assert_eq!(env.reference.tag, "prod");
        assert_eq!(env.generation, Some(3));
        assert_eq!(env.to_string(), "127.0.0.1:5000/team/web:prod@3");
        assert_eq!(env.at(1).to_string(), "127.0.0.1:5000/team/web:prod@1");
        for bad in [
            "127.0.0.1:5000/web@0",
            "127.0.0.1:5000/web@x",
            "127.0.0.1:5000/web@",
            "127.0.0.1:5000/web@-1",
            "127.0.0.1:5000/web@sha256:abcd",
            "127.0.0.1:5000/Web@2",
        ] {
            let err = EnvironmentRef::parse(bad).unwrap_err();
            assert!(
                matches!(&err, RegistryError::InvalidReference { reference, .. } if reference == bad),
                "{bad}: {err}"
            );
        }
        let err = EnvironmentRef::parse("h.io/web@sha256:ab").unwrap_err();
        assert!(err.to_string().contains("REF@N"), "{err}");
    }

    fn lock(packages: &[(&str, &str, bool)]) -> Vec<u8> {
        let lock = cairn_manifest::Lock {
            packages: packages
                .iter()
                .map(|(name, version, requested)| cairn_manifest::LockedPackage {
                    name: (*name).into(),
                    version: (*version).into(),
                    architecture: "amd64".into(),
                    system: "x86_64-linux".into(),
                    requested: *requested,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        lock.to_toml().into_bytes()
    }

    #[test]
    fn changes_name_added_removed_upgraded_and_downgraded_requested_packages() {
        let one = lock(&[("python3", "3.11.2-1", true), ("libc6", "2.36-9", false)]);
        let two = lock(&[
            ("python3", "3.11.2-6", true),
            ("python3-flask", "2.2.2-3", true),
            ("libc6", "2.36-10", false),
        ]);
        let first = change_between(None, b"a", &one);
        assert_eq!(first.to_string(), "added python3 3.11.2-1");
        let change = change_between(Some((b"a", &one)), b"b", &two);
        assert_eq!(
            change.to_string(),
            "added python3-flask 2.2.2-3; upgraded python3 3.11.2-1 → 3.11.2-6"
        );
        let back = change_between(Some((b"b", &two)), b"c", &one);
        assert_eq!(
            back.to_string(),
            "removed python3-flask 2.2.2-3; downgraded python3 3.11.2-6 → 3.11.2-1"
        );
        let edited = change_between(Some((b"a", &one)), b"a2", &one);
        assert_eq!(edited.to_string(), "manifest edited (no package change)");
        assert!(change_between(Some((b"a", &one)), b"a", &one).is_empty());
    }

    fn record() -> Generations {
        Generations {
            name: "web".into(),
            live: 2,
            generations: (1..=3)
                .map(|n| Generation {
                    number: n,
                    digest: format!("sha256:{}", format!("{n}").repeat(64)),
                    size: 400 + n,
                    created: "2026-12-02T20:00:00Z".into(),
                    change: Change {
                        added: vec![PackageVersion {
                            name: format!("p{n}"),
                            version: "1".into(),
                        }],
                        ..Change::default()
                    },
                })
                .collect(),
            history: vec![
                HistoryEvent {
                    at: "t1".into(),
                    action: Action::Publish,
                    generation: 1,
                    previous: None,
                },
                HistoryEvent {
                    at: "t2".into(),
                    action: Action::Publish,
                    generation: 2,
                    previous: Some(1),
                },
                HistoryEvent {
                    at: "t3".into(),
                    action: Action::Publish,
                    generation: 3,
                    previous: Some(2),
                },
                HistoryEvent {
                    at: "t4".into(),
                    action: Action::Switch,
                    generation: 2,
                    previous: Some(3),
                },
            ],
            digest: String::new(),
        }
    }

    #[test]
    fn the_record_round_trips_through_its_index() {
        let record = record();
        let bytes = record_index(&record).unwrap();
        let reference = Reference::parse("127.0.0.1:5000/web").unwrap();
        let digest = digest_of(&bytes);
        let back = parse_record(&reference, &bytes, digest.clone()).unwrap();
        assert_eq!(back, Generations { digest, ..record });
        assert_eq!(record_index(&back).unwrap(), bytes, "deterministic bytes");
        let head: Head = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            head.artifact_type.as_deref(),
            Some(GENERATIONS_ARTIFACT_TYPE)
        );
        assert_eq!(head.media_type.as_deref(), Some(OCI_INDEX));
    }

    #[test]
    fn rollback_goes_to_the_generation_live_before_the_live_one() {
        let mut record = record();
        assert_eq!(record.rollback_target(), Some(3));
        record.live = 3;
        assert_eq!(record.rollback_target(), Some(2));
        record.live = 1;
        assert_eq!(record.rollback_target(), None);
        assert_eq!(record.latest(), 3);
    }

    #[test]
    fn a_record_whose_live_generation_is_missing_is_refused() {
        let mut record = record();
        record.live = 9;
        let bytes = record_index(&record).unwrap();
        let reference = Reference::parse("127.0.0.1:5000/web").unwrap();
        let err = parse_record(&reference, &bytes, digest_of(&bytes)).unwrap_err();
        assert!(
            matches!(&err, RegistryError::BadEnvironment { reference, .. } if reference.contains("web")),
            "{err}"
        );
    }

    #[test]
    fn artifacts_carry_their_number_name_and_files_deterministically() {
        let change = Change::default();
        let a = artifact_manifest("web", 2, "2026-01-01T00:00:00Z", &change, b"m", b"l").unwrap();
        let b = artifact_manifest("web", 2, "2026-01-01T00:00:00Z", &change, b"m", b"l").unwrap();
        assert_eq!(a, b);
        let env = EnvironmentRef::parse("127.0.0.1:5000/web@2").unwrap();
        let parsed = parse_artifact(&env, &a).unwrap();
        assert_eq!(parsed.annotation(ANNOTATION_GENERATION).unwrap(), "2");
        assert_eq!(parsed.annotation(ANNOTATION_NAME).unwrap(), "web");
        assert_eq!(parsed.layers[0].digest, digest_of(b"m"));
        assert_eq!(parsed.layers[1].media_type, LOCK_MEDIA_TYPE);
        assert_eq!(parsed.config.digest, digest_of(EMPTY_JSON));
    }
}
