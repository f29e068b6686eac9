//! What a push reads from the store: the last image built for an
//! environment ([`PushImage`], in `images-v1/last/<key>.json`), and which
//! repositories of a registry already hold which blobs ([`KnownBlobs`], in
//! `images-v1/registries/<sha256 of host>.json`) so a push can mount them
//! instead of uploading.
//!
//! Both are small JSON files written atomically. The blobs themselves stay
//! where the layer cache put them; a record only points at them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use cairn_store::{Bucket, Store, sha256_hex, write_atomic};
use serde::{Deserialize, Serialize};

use crate::{RegistryError, Result};
use cairn_oci::image::{Image, MultiImage};

/// One blob of an image, on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushBlob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// OCI media type.
    pub media_type: String,
    /// Where the blob lives (normally `layers-v1/blobs/sha256/…`).
    pub path: PathBuf,
}

/// Everything a push needs: the exact manifest and config bytes, and the layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushImage {
    /// Image name as built, e.g. `hello`.
    pub name: String,
    /// Tag as built, e.g. `latest`.
    pub tag: String,
    /// The manifest, byte for byte (canonical JSON, so valid UTF-8).
    pub manifest: String,
    /// `sha256:<hex>` of `manifest`.
    pub manifest_digest: String,
    /// The manifest's media type, sent as `Content-Type`.
    pub manifest_media_type: String,
    /// The config, byte for byte.
    pub config: String,
    /// `sha256:<hex>` of `config`.
    pub config_digest: String,
    /// Layers, bottom first (duplicates allowed, pushed once).
    pub layers: Vec<PushBlob>,
    /// For a multi-platform image: each platform's image. `manifest` is then
    /// the image index, and `config` and `layers` are empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PushImage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestHead {
    media_type: Option<String>,
}

impl PushImage {
    /// The push view of a built image.
    pub fn from_image(image: &Image) -> Result<PushImage> {
        let text = |bytes: &[u8], what: &str| {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| RegistryError::BadImage(format!("the {what} is not UTF-8 JSON")))
        };
        let head: ManifestHead = serde_json::from_slice(&image.manifest)
            .map_err(|e| RegistryError::BadImage(format!("the manifest is not JSON: {e}")))?;
        Ok(PushImage {
            name: image.reference.name.clone(),
            tag: image.reference.tag.clone(),
            manifest: text(&image.manifest, "manifest")?,
            manifest_digest: image.manifest_digest.clone(),
            manifest_media_type: head
                .media_type
                .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into()),
            config: text(&image.config, "config")?,
            config_digest: image.config_digest.clone(),
            layers: image
                .layers
                .iter()
                .map(|l| PushBlob {
                    digest: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                    path: l.blob_path.clone(),
                })
                .collect(),
            platforms: Vec::new(),
        })
    }

    /// The push view of a multi-platform image: the index, then each platform.
    pub fn from_multi(multi: &MultiImage) -> Result<PushImage> {
        let index = String::from_utf8(multi.index.clone())
            .map_err(|_| RegistryError::BadImage("the image index is not UTF-8 JSON".into()))?;
        Ok(PushImage {
            name: multi.reference.name.clone(),
            tag: multi.reference.tag.clone(),
            manifest: index,
            manifest_digest: multi.index_digest.clone(),
            manifest_media_type: "application/vnd.oci.image.index.v1+json".into(),
            config: String::new(),
            config_digest: String::new(),
            layers: Vec::new(),
            platforms: multi
                .images
                .iter()
                .map(PushImage::from_image)
                .collect::<Result<_>>()?,
        })
    }

    /// `name:tag` as built.
    pub fn name_and_tag(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// Checks every layer blob is still in the store with its recorded size.
    pub fn verify_blobs(&self) -> Result<()> {
        for platform in &self.platforms {
            platform.verify_blobs()?;
        }
        for layer in &self.layers {
            let actual = fs_err::metadata(&layer.path)?.len();
            if actual != layer.size {
                return Err(RegistryError::BlobSizeMismatch {
                    digest: layer.digest.clone(),
                    path: layer.path.clone(),
                    expected: layer.size,
                    actual,
                });
            }
        }
        Ok(())
    }

    /// A layer blob this record names that is no longer in the store (`cache
    /// gc` or `cache verify` removed it), if any: such a record is dangling,
    /// and is neither pushed nor counted as another image.
    pub fn missing_blob(&self) -> Option<&PushBlob> {
        self.layers
            .iter()
            .find(|layer| !layer.path.is_file())
            .or_else(|| self.platforms.iter().find_map(PushImage::missing_blob))
    }

    /// Records this image as the last one built under `key` (e.g. a hash of
    /// the environment's path).
    pub fn save(&self, store: &Store, key: &str) -> Result<PathBuf> {
        // Not while `drop_dangling_records` decides about the old record.
        let _writing = store.lock_entry(Bucket::Images, &record_lock_key(key))?;
        let path = last_image_path(store, key)?;
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| RegistryError::BadImage(e.to_string()))?;
        write_atomic(&path, |f| std::io::Write::write_all(f, &json))?;
        Ok(path)
    }

    /// The image last recorded under `key`, if any.
    pub fn load(store: &Store, key: &str) -> Result<Option<PushImage>> {
        let path = last_image_path(store, key)?;
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::CorruptRecord {
                path,
                reason: e.to_string(),
            })
    }
}

/// Every image the store has a record of, by key, skipping records that do
/// not read (they only matter to `cairn push`, which reports them itself).
pub fn recorded_images(store: &Store) -> Result<Vec<(String, PushImage)>> {
    let dir = store.bucket(Bucket::Images)?.join("last");
    let entries = match fs_err::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut images = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(key) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        match PushImage::load(store, key) {
            Ok(Some(image)) if image.missing_blob().is_some() => {
                tracing::debug!("skipping dangling image record {}", path.display());
            }
            Ok(Some(image)) => images.push((key.to_string(), image)),
            Ok(None) => {}
            Err(e) => tracing::debug!("skipping image record {}: {e}", path.display()),
        }
    }
    images.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(images)
}

impl PushImage {
    /// The layer digests of this image (of every platform, for an index).
    pub fn layer_digests(&self) -> BTreeSet<&str> {
        self.layers
            .iter()
            .map(|l| l.digest.as_str())
            .chain(self.platforms.iter().flat_map(|p| p.layer_digests()))
            .collect()
    }
}

/// Removes every image record that names a blob the store no longer has
/// (after `cache gc` evicted it), so no dangling record is ever served: a
/// record only points at blobs and does not keep them. Returns the records
/// removed.
pub fn drop_dangling_records(store: &Store) -> Result<Vec<PathBuf>> {
    let dir = store.bucket(Bucket::Images)?.join("last");
    let entries = match fs_err::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut dropped = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(key) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        // Under the record's lock, so a build saving a fresh record for the
        // same key (its blobs held) is never the one removed.
        let _deciding = store.lock_entry(Bucket::Images, &record_lock_key(key))?;
        let dangling = match PushImage::load(store, key) {
            Ok(Some(image)) => image.missing_blob().is_some(),
            Ok(None) => false,
            // Unreadable: `cairn push` reports it; it names nothing to keep.
            Err(_) => true,
        };
        if dangling {
            fs_err::remove_file(&path)?;
            dropped.push(path);
        }
    }
    dropped.sort();
    Ok(dropped)
}

/// The entry-lock key of the record saved under `key`.
fn record_lock_key(key: &str) -> String {
    format!("last-{key}")
}

fn last_image_path(store: &Store, key: &str) -> Result<PathBuf> {
    let dir = store.bucket(Bucket::Images)?.join("last");
    fs_err::create_dir_all(&dir)?;
    Ok(dir.join(format!("{key}.json")))
}

/// Which repositories of one registry hold which blobs, as far as cairn
/// pushed them. A hint for mounting: the registry has the final word.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownBlobs {
    /// `host[:port]`.
    pub registry: String,
    /// Digest → repositories.
    pub blobs: BTreeMap<String, BTreeSet<String>>,
}

impl KnownBlobs {
    /// What cairn remembers about `registry` (empty when nothing, or when the
    /// file is unreadable: it is only a hint).
    pub fn load(store: &Store, registry: &str) -> Result<KnownBlobs> {
        let path = known_path(store, registry)?;
        let empty = KnownBlobs {
            registry: registry.to_owned(),
            blobs: BTreeMap::new(),
        };
        let Ok(bytes) = fs_err::read(&path) else {
            return Ok(empty);
        };
        match serde_json::from_slice::<KnownBlobs>(&bytes) {
            Ok(known) if known.registry == registry => Ok(known),
            _ => {
                tracing::debug!("ignoring unreadable {}", path.display());
                Ok(empty)
            }
        }
    }

    /// A repository other than `target` known to hold `digest`.
    pub fn source_for(&self, digest: &str, target: &str) -> Option<&str> {
        self.blobs
            .get(digest)?
            .iter()
            .map(String::as_str)
            .find(|repo| *repo != target)
    }

    /// Remembers that `repository` holds `digest`.
    pub fn insert(&mut self, digest: &str, repository: &str) {
        self.blobs
            .entry(digest.to_owned())
            .or_default()
            .insert(repository.to_owned());
    }

    /// Merges into what is on disk (another push may have written meanwhile)
    /// and writes atomically under the entry's lock.
    pub fn save(&self, store: &Store) -> Result<()> {
        let key = format!("registry-{}", sha256_hex(self.registry.as_bytes()));
        let _lock = store.lock_entry(Bucket::Images, &key)?;
        let mut merged = KnownBlobs::load(store, &self.registry)?;
        for (digest, repos) in &self.blobs {
            merged
                .blobs
                .entry(digest.clone())
                .or_default()
                .extend(repos.iter().cloned());
        }
        let json =
            serde_json::to_vec(&merged).map_err(|e| RegistryError::BadImage(e.to_string()))?;
        write_atomic(known_path(store, &self.registry)?, |f| {
            std::io::Write::write_all(f, &json)
        })?;
        Ok(())
    }
}

fn known_path(store: &Store, registry: &str) -> Result<PathBuf> {
    let dir = store.bucket(Bucket::Images)?.join("registries");
    fs_err::create_dir_all(&dir)?;
    Ok(dir.join(format!("{}.json", sha256_hex(registry.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_blobs_round_trip_and_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut a = KnownBlobs::load(&store, "r:1").unwrap();
        a.insert("sha256:aa", "team/a");
        a.save(&store).unwrap();
        let mut b = KnownBlobs::load(&store, "r:1").unwrap();
        b.insert("sha256:aa", "team/b");
        b.insert("sha256:bb", "team/b");
        b.save(&store).unwrap();
        let known = KnownBlobs::load(&store, "r:1").unwrap();
        assert_eq!(known.source_for("sha256:aa", "team/b"), Some("team/a"));
        assert_eq!(known.source_for("sha256:bb", "team/b"), None);
        assert_eq!(known.source_for("sha256:bb", "team/c"), Some("team/b"));
        assert!(
            KnownBlobs::load(&store, "other:2")
                .unwrap()
                .blobs
                .is_empty()
        );
    }

    #[test]
    fn image_records_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(PushImage::load(&store, "k").unwrap(), None);
        let blob = tmp.path().join("blob");
        fs_err::write(&blob, b"12345").unwrap();
        let image = PushImage {
            name: "hello".into(),
            tag: "latest".into(),
            manifest: "{}".into(),
            manifest_digest: "sha256:m".into(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config: "{}".into(),
            config_digest: "sha256:c".into(),
            layers: vec![PushBlob {
                digest: "sha256:l".into(),
                size: 5,
                media_type: "x".into(),
                path: blob.clone(),
            }],
            platforms: Vec::new(),
        };
        image.save(&store, "k").unwrap();
        let loaded = PushImage::load(&store, "k").unwrap().unwrap();
        assert_eq!(loaded, image);
        loaded.verify_blobs().unwrap();
        fs_err::write(&blob, b"1").unwrap();
        assert!(matches!(
            loaded.verify_blobs(),
            Err(RegistryError::BlobSizeMismatch { .. })
        ));
    }

    /// A record with one layer at `blob`, named `name`.
    fn record_of(name: &str, blob: &std::path::Path) -> PushImage {
        PushImage {
            name: name.into(),
            tag: "latest".into(),
            manifest: "{}".into(),
            manifest_digest: "sha256:m".into(),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config: "{}".into(),
            config_digest: "sha256:c".into(),
            layers: vec![PushBlob {
                digest: format!("sha256:{name}"),
                size: 1,
                media_type: "x".into(),
                path: blob.to_path_buf(),
            }],
            platforms: Vec::new(),
        }
    }

    #[test]
    fn a_record_whose_blob_is_gone_is_never_served_and_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (kept_blob, gone_blob) = (tmp.path().join("kept"), tmp.path().join("gone"));
        fs_err::write(&kept_blob, b"k").unwrap();
        fs_err::write(&gone_blob, b"g").unwrap();
        let kept = record_of("kept", &kept_blob);
        let single = record_of("single", &gone_blob);
        // An index whose second platform lost its layer dangles too.
        let multi = PushImage {
            platforms: vec![kept.clone(), single.clone()],
            layers: Vec::new(),
            ..record_of("multi", &kept_blob)
        };
        for (key, record) in [("a", &kept), ("b", &single), ("c", &multi)] {
            record.save(&store, key).unwrap();
        }
        assert_eq!(recorded_images(&store).unwrap().len(), 3);

        fs_err::remove_file(&gone_blob).unwrap();
        assert_eq!(multi.missing_blob(), Some(&single.layers[0]));
        let served: Vec<String> = recorded_images(&store)
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(served, ["a"]);
        let dropped = drop_dangling_records(&store).unwrap();
        assert_eq!(
            dropped,
            [
                last_image_path(&store, "b").unwrap(),
                last_image_path(&store, "c").unwrap()
            ]
        );
        assert_eq!(PushImage::load(&store, "b").unwrap(), None);
        assert_eq!(PushImage::load(&store, "a").unwrap(), Some(kept));
    }
}
