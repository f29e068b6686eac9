//! The distribution-spec push of one image: each blob is checked with `HEAD`
//! and skipped when present, mounted from another repository of the same
//! registry when cairn pushed it there before, and uploaded otherwise; then
//! the manifest is `PUT` with its exact bytes and media type.
//!
//! Uploads: `POST /v2/<name>/blobs/uploads/` opens a session, then either one
//! `PUT <location>?digest=…` with the whole blob (monolithic), or, above
//! [`PushOptions::chunk_threshold`], `PATCH`es with `Content-Range` followed by
//! an empty closing `PUT`. A refused mount answers 202 with an upload
//! session, which is used as is. Blobs go up on a few threads; each blob is
//! retried as a whole on connection errors and 5xx answers, so an upload
//! session broken halfway is simply started again. An interrupted push rerun
//! skips what already arrived.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use crate::auth::{pull_scope, push_scope};
use cairn_store::RunningSha256;

use crate::client::{
    Method, Payload, RegistryClient, Reply, Request, SentCheck, resolve_location, status_error,
    with_query,
};
use crate::record::{KnownBlobs, PushImage};
use crate::reference::Reference;
use crate::{RegistryError, Result};

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Sent to the registry.
    Uploaded,
    /// Already in the repository.
    Skipped,
    /// Linked from another repository of the same registry.
    Mounted { from: String },
}

/// Hears about a push as it happens; the CLI draws bars or prints lines.
/// Every method has a no-op default.
pub trait PushReporter: Sync {
    /// Before any blob: how many there are and their total size.
    fn on_push_start(&self, _blobs: usize, _bytes: u64) {}
    /// A blob's turn has come.
    fn on_blob_start(&self, _digest: &str, _size: u64) {}
    /// Bytes of a blob sent (negative when a failed attempt's bytes are resent).
    fn on_blob_progress(&self, _digest: &str, _delta: i64) {}
    /// A blob is in the repository.
    fn on_blob_done(&self, _digest: &str, _size: u64, _outcome: &BlobOutcome) {}
    /// Something failed and will be tried again.
    fn on_retry(&self, _what: &str, _attempt: u32, _error: &RegistryError) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl PushReporter for NoProgress {}

/// Tuning for a push.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Blobs larger than this go up in chunks.
    pub chunk_threshold: u64,
    /// Size of each chunk.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: 4,
            chunk_threshold: 16 << 20,
            chunk_size: 16 << 20,
        }
    }
}

/// The outcome of a push, for people (`Display`) and for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushSummary {
    /// `registry/repository:tag`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs already there.
    pub skipped: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
}

impl std::fmt::Display for PushSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pushed {}@{} ({} blobs uploaded, {} skipped, {} mounted)",
            self.reference, self.digest, self.uploaded, self.skipped, self.mounted
        )
    }
}

/// Where a blob's bytes are.
#[derive(Clone, Copy)]
enum Source<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

#[derive(Clone, Copy)]
struct Blob<'a> {
    digest: &'a str,
    size: u64,
    source: Source<'a>,
}

/// What every blob upload shares.
struct Push<'a> {
    client: &'a RegistryClient,
    repository: &'a str,
    known: &'a Mutex<KnownBlobs>,
    options: &'a PushOptions,
    reporter: &'a dyn PushReporter,
}

/// Pushes `image` to `reference`. `known` is read for mount sources and
/// updated with every blob that ends up in the repository, even when the
/// push fails later, so the caller should save it either way.
pub fn push_image(
    client: &RegistryClient,
    reference: &Reference,
    image: &PushImage,
    known: &Mutex<KnownBlobs>,
    options: &PushOptions,
    reporter: &dyn PushReporter,
) -> Result<PushSummary> {
    image.verify_blobs()?;
    let blobs = blobs_of(image);
    reporter.on_push_start(blobs.len(), blobs.iter().map(|b| b.size).sum());
    let push = Push {
        client,
        repository: &reference.repository,
        known,
        options,
        reporter,
    };
    let outcomes = push.all_blobs(&blobs)?;
    // An index may only name manifests the repository already has.
    for platform in &image.platforms {
        push.put_manifest(&platform.manifest_digest, platform)?;
    }
    push.put_manifest(&reference.tag, image)?;
    let count = |f: fn(&BlobOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    Ok(PushSummary {
        reference: reference.to_string(),
        digest: image.manifest_digest.clone(),
        uploaded: count(|o| *o == BlobOutcome::Uploaded),
        skipped: count(|o| *o == BlobOutcome::Skipped),
        mounted: count(|o| matches!(o, BlobOutcome::Mounted { .. })),
    })
}

/// The config and each distinct layer (of every platform), largest first so
/// the long uploads start early.
fn blobs_of(image: &PushImage) -> Vec<Blob<'_>> {
    let images: Vec<&PushImage> = match image.platforms.is_empty() {
        true => vec![image],
        false => image.platforms.iter().collect(),
    };
    let mut blobs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for image in &images {
        if seen.insert(image.config_digest.as_str()) {
            blobs.push(Blob {
                digest: &image.config_digest,
                size: image.config.len() as u64,
                source: Source::Bytes(image.config.as_bytes()),
            });
        }
    }
    for layer in images.iter().flat_map(|i| &i.layers) {
        if seen.insert(layer.digest.as_str()) {
            blobs.push(Blob {
                digest: &layer.digest,
                size: layer.size,
                source: Source::File(&layer.path),
            });
        }
    }
    blobs.sort_by_key(|b| std::cmp::Reverse(b.size));
    blobs
}

impl Push<'_> {
    /// Pushes `blobs` on up to `jobs` threads; stops at the first failure.
    fn all_blobs(&self, blobs: &[Blob<'_>]) -> Result<Vec<BlobOutcome>> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let results: Mutex<Vec<(usize, Result<BlobOutcome>)>> = Mutex::new(Vec::new());
        let jobs = self.options.jobs.clamp(1, blobs.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(blob) = blobs.get(i) else { break };
                        let result = self.blob_with_retries(*blob);
                        if result.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if let Ok(mut results) = results.lock() {
                            results.push((i, result));
                        }
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_default();
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    fn blob_with_retries(&self, blob: Blob<'_>) -> Result<BlobOutcome> {
        self.reporter.on_blob_start(blob.digest, blob.size);
        let outcome = self.client.retrying(
            || self.one_blob(blob),
            |attempt, error| self.reporter.on_retry(blob.digest, attempt, error),
        )?;
        if let Ok(mut known) = self.known.lock() {
            known.insert(blob.digest, self.repository);
        }
        self.reporter.on_blob_done(blob.digest, blob.size, &outcome);
        Ok(outcome)
    }

    fn one_blob(&self, blob: Blob<'_>) -> Result<BlobOutcome> {
        if self.blob_exists(blob.digest)? {
            return Ok(BlobOutcome::Skipped);
        }
        let source = self.known.lock().ok().and_then(|k| {
            k.source_for(blob.digest, self.repository)
                .map(str::to_owned)
        });
        let location = match source {
            Some(from) => match self.try_mount(blob.digest, &from)? {
                Mount::Done => return Ok(BlobOutcome::Mounted { from }),
                Mount::Session(location) => location,
                Mount::Refused => self.start_upload()?,
            },
            None => self.start_upload()?,
        };
        if blob.size > self.options.chunk_threshold && matches!(blob.source, Source::File(_)) {
            self.upload_chunked(blob, location)?;
        } else {
            self.upload_monolithic(blob, &location)?;
        }
        Ok(BlobOutcome::Uploaded)
    }

    fn request<'b>(&'b self, method: Method, url: String, body: Payload<'b>) -> Request<'b> {
        Request {
            method,
            url,
            repository: self.repository,
            scopes: vec![push_scope(self.repository)],
            headers: Vec::new(),
            body,
        }
    }

    fn blobs_url(&self, rest: &str) -> String {
        self.client
            .url(&format!("/v2/{}/blobs/{rest}", self.repository))
    }

    fn blob_exists(&self, digest: &str) -> Result<bool> {
        let url = self.blobs_url(digest);
        let reply = self
            .client
            .send(&self.request(Method::Head, url.clone(), Payload::Empty))?;
        match reply.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.unexpected(Method::Head, &url, &reply)),
        }
    }

    /// `POST …/blobs/uploads/?mount=<digest>&from=<repo>`.
    fn try_mount(&self, digest: &str, from: &str) -> Result<Mount> {
        let url = self.blobs_url(&format!("uploads/?mount={digest}&from={from}"));
        let mut request = self.request(Method::Post, url.clone(), Payload::Empty);
        request.scopes.push(pull_scope(from));
        let reply = match self.client.send(&request) {
            Ok(reply) => reply,
            // No pull access to the source: upload like anyone else.
            Err(RegistryError::Unauthorized { .. } | RegistryError::Denied { .. }) => {
                return Ok(Mount::Refused);
            }
            Err(e) => return Err(e),
        };
        match reply.status {
            201 => Ok(Mount::Done),
            202 => Ok(Mount::Session(self.location_of(&url, &reply)?)),
            status => {
                tracing::debug!("mount of {digest} from {from} refused ({status})");
                Ok(Mount::Refused)
            }
        }
    }

    /// `POST …/blobs/uploads/`: the upload session's URL.
    fn start_upload(&self) -> Result<String> {
        let url = self.blobs_url("uploads/");
        let reply = self
            .client
            .send(&self.request(Method::Post, url.clone(), Payload::Empty))?;
        match reply.status {
            202 => self.location_of(&url, &reply),
            _ => Err(self.unexpected(Method::Post, &url, &reply)),
        }
    }

    /// One PUT with the whole blob. A blob from the store is hashed as it is
    /// sent and its last bytes are held back unless it matches its digest: a
    /// blob damaged in the cache fails the push naming its path (evicted, so
    /// the next containerize rebuilds it) and the registry commits nothing.
    fn upload_monolithic(&self, blob: Blob<'_>, location: &str) -> Result<()> {
        let progress = |delta: i64| self.reporter.on_blob_progress(blob.digest, delta);
        let running = Mutex::new(RunningSha256::default());
        let body = match blob.source {
            Source::Bytes(bytes) => Payload::Bytes(bytes),
            Source::File(path) => Payload::File {
                path,
                offset: 0,
                len: blob.size,
                progress: &progress,
                check: Some(SentCheck {
                    running: &running,
                    expected: Some(blob.digest),
                }),
            },
        };
        let url = with_query(location, "digest", blob.digest);
        let mut request = self.request(Method::Put, url.clone(), body);
        request
            .headers
            .push(("content-type", "application/octet-stream".into()));
        let reply = self.client.send(&request)?;
        match reply.status {
            201 | 204 => Ok(()),
            _ => Err(self.unexpected(Method::Put, &url, &reply)),
        }
    }

    fn upload_chunked(&self, blob: Blob<'_>, mut location: String) -> Result<()> {
        let Source::File(path) = blob.source else {
            return self.upload_monolithic(blob, &location);
        };
        let progress = |delta: i64| self.reporter.on_blob_progress(blob.digest, delta);
        // Each chunk is hashed as it is sent; the whole is checked before the
        // PUT that commits it, so a corrupt blob is never committed.
        let running = Mutex::new(RunningSha256::default());
        let mut offset = 0;
        while offset < blob.size {
            let len = self.options.chunk_size.max(1).min(blob.size - offset);
            let body = Payload::File {
                path,
                offset,
                len,
                progress: &progress,
                check: Some(SentCheck {
                    running: &running,
                    expected: None,
                }),
            };
            let mut request = self.request(Method::Patch, location.clone(), body);
            request.headers.extend([
                ("content-type", "application/octet-stream".to_owned()),
                ("content-range", format!("{offset}-{}", offset + len - 1)),
            ]);
            let reply = self.client.send(&request)?;
            if reply.status != 202 {
                return Err(self.unexpected(Method::Patch, &location, &reply));
            }
            location = self.location_of(&location, &reply)?;
            offset += len;
        }
        check_sent(path, blob, &running)?;
        let url = with_query(&location, "digest", blob.digest);
        let reply = self
            .client
            .send(&self.request(Method::Put, url.clone(), Payload::Empty))?;
        match reply.status {
            201 | 204 => Ok(()),
            _ => Err(self.unexpected(Method::Put, &url, &reply)),
        }
    }

    /// PUTs `image`'s manifest (or index) under `tag_or_digest`.
    fn put_manifest(&self, tag_or_digest: &str, image: &PushImage) -> Result<()> {
        let url = self.client.url(&format!(
            "/v2/{}/manifests/{tag_or_digest}",
            self.repository
        ));
        let reply = self.client.retrying(
            || {
                let mut request = self.request(
                    Method::Put,
                    url.clone(),
                    Payload::Bytes(image.manifest.as_bytes()),
                );
                request
                    .headers
                    .push(("content-type", image.manifest_media_type.clone()));
                let reply = self.client.send(&request)?;
                match reply.status {
                    200..=299 => Ok(reply),
                    _ => Err(self.unexpected(Method::Put, &url, &reply)),
                }
            },
            |attempt, error| self.reporter.on_retry("manifest", attempt, error),
        )?;
        match reply.header("docker-content-digest") {
            Some(digest) if digest != image.manifest_digest => tracing::warn!(
                "{} stored the manifest as {digest}, not {}",
                self.client.registry(),
                image.manifest_digest
            ),
            _ => {}
        }
        Ok(())
    }

    fn location_of(&self, request_url: &str, reply: &Reply) -> Result<String> {
        match reply.header("location") {
            Some(location) => Ok(resolve_location(request_url, location)),
            None => Err(RegistryError::Protocol {
                method: "POST",
                url: request_url
                    .split('?')
                    .next()
                    .unwrap_or(request_url)
                    .to_owned(),
                reason: format!("HTTP {} without a Location header", reply.status),
            }),
        }
    }

    /// An answer the spec does not allow here, as the most useful error.
    fn unexpected(&self, method: Method, url: &str, reply: &Reply) -> RegistryError {
        let registry = self.client.registry().to_owned();
        let repository = self.repository.to_owned();
        match reply.status {
            404 if reply.has_error_code("NAME_UNKNOWN") || method != Method::Head => {
                RegistryError::RepositoryNotFound {
                    registry,
                    repository,
                    detail: reply.detail(),
                }
            }
            403 => RegistryError::Denied {
                registry,
                repository,
                detail: reply.detail(),
            },
            _ => status_error(method, url, reply),
        }
    }
}

/// Before the commit of a chunked upload: every byte of the blob went up
/// (hashed on the way) and they hash to its digest. A mismatch evicts the
/// store's copy and fails without committing.
fn check_sent(path: &Path, blob: Blob<'_>, running: &Mutex<RunningSha256>) -> Result<()> {
    let sent = running.lock().map(|r| r.clone()).unwrap_or_default();
    let expected = blob.digest.strip_prefix("sha256:").unwrap_or(blob.digest);
    if sent.count() == blob.size && sent.hex() == expected {
        return Ok(());
    }
    let evicted = cairn_store::evict(path);
    Err(cairn_store::StoreError::DigestMismatch {
        path: path.to_path_buf(),
        expected: expected.to_owned(),
        actual: sent.hex(),
        evicted,
    }
    .into())
}

/// How a mount attempt ended.
enum Mount {
    /// 201: the blob is in the repository.
    Done,
    /// 202: the registry opened an upload session instead.
    Session(String),
    /// Any other answer: upload normally.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_upload_is_committed_only_when_every_byte_sent_matches() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("blob");
        fs_err::write(&path, b"lazer").unwrap();
        let digest = format!("sha256:{}", cairn_store::sha256_hex(b"layer"));
        let blob = Blob {
            digest: &digest,
            size: 5,
            source: Source::File(&path),
        };
        let mut sent = RunningSha256::default();
        sent.update(b"layer");
        check_sent(&path, blob, &Mutex::new(sent)).unwrap();
        let mut short = RunningSha256::default();
        short.update(b"lay");
        assert!(
            check_sent(&path, blob, &Mutex::new(short)).is_err(),
            "not all sent"
        );
        assert!(!path.exists(), "evicted");
        let mut corrupt = RunningSha256::default();
        corrupt.update(b"lazer");
        let err = check_sent(&path, blob, &Mutex::new(corrupt)).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Store(cairn_store::StoreError::DigestMismatch { path: p, .. }) if p == &path),
            "{err}"
        );
        assert!(!err.is_transient(), "a corrupt blob is not retried");
    }
}
