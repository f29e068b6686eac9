//! Writing a built image out: as one tar stream (to a pipe or a file) or as an
//! OCI image-layout directory.
//!
//! The hybrid archive is an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) that also carries Docker's `manifest.json` and
//! `repositories`, pointing at the same blobs. So one file loads with
//! `docker load` (Docker 20.10's graphdriver store reads `manifest.json`),
//! containerd's importer and podman (they prefer `index.json`), and skopeo
//! reads it as `oci-archive:` or `docker-archive:`. Each blob appears once, as
//! a regular file, streamed from the store without a temporary copy. Every
//! header is fixed (mtime 0, uid 0, mode 0644/0755), so the same image gives
//! the same archive bytes.
//!
//! Naming: `RepoTags` holds `name:tag`, which Docker qualifies itself;
//! `index.json` holds `io.containerd.image.name` = `docker.io/library/name:tag`
//! and `org.opencontainers.image.ref.name` = `tag`, as `docker save` and
//! containerd's exporter write them. containerd's importer takes the first,
//! podman's libimage prefers it too (so podman stores
//! `docker.io/library/name:tag`, and `podman run name:tag` finds it), and
//! umoci and `skopeo … oci:DIR:tag` address the image by the tag. Checked by
//! hand with Docker 20.10.24, podman 4.3.1, containerd 1.6.20 (`ctr images
//! import`), skopeo 1.9.3 and umoci 0.4.7.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::image::{Image, MultiImage, canonical_json};
use crate::layer::BuiltLayer;
use crate::{OciError, Result};

mod feed;
mod stream;

pub use feed::{LayerFeed, write_archive_while};

/// The `oci-layout` file of image layout 1.0.0.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Which files an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// OCI layout plus Docker's `manifest.json` and `repositories`: loads in
    /// Docker, podman and containerd, and reads as `oci-archive:` and `docker-archive:`.
    Hybrid,
    /// OCI layout only (`oci-archive`).
    Oci,
    /// Docker's `manifest.json` and `repositories` only, for the first
    /// platform (`docker save`'s layout). `podman load` then stores a Docker
    /// image, and Podman reads Docker-only config fields (`Healthcheck`) only
    /// from those: from the hybrid it takes the OCI layout.
    Docker,
}

/// One entry of Docker's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// A regular file of the layout: its path and where its bytes come from.
enum LayoutFile {
    Bytes(String, Vec<u8>),
    /// A layer blob in the store.
    Blob(LayerBlob),
}

/// A layer's blob: its path in the layout, where it is in the store, its
/// size and `sha256:` digest, and whether this process just built it
/// ([`BuiltLayer::fresh`]).
struct LayerBlob {
    path: String,
    source: PathBuf,
    size: u64,
    digest: String,
    fresh: bool,
}

impl LayerBlob {
    fn of(layer: &BuiltLayer) -> LayerBlob {
        LayerBlob {
            path: blob_entry(&layer.digest),
            source: layer.blob_path.clone(),
            size: layer.size,
            digest: layer.digest.clone(),
            fresh: layer.fresh,
        }
    }
}

/// The layout path of the blob with `digest`.
fn blob_entry(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_of(digest))
}

/// What an archive holds: one image, or one image per platform under an index.
#[derive(Debug, Clone, Copy)]
pub enum Archived<'a> {
    /// A single-platform image.
    Single(&'a Image),
    /// Several platforms. Docker's `manifest.json` can name only one image,
    /// so it gets the first; the OCI index has them all.
    Multi(&'a MultiImage),
}

impl<'a> From<&'a Image> for Archived<'a> {
    fn from(image: &'a Image) -> Self {
        Archived::Single(image)
    }
}

impl<'a> From<&'a MultiImage> for Archived<'a> {
    fn from(multi: &'a MultiImage) -> Self {
        Archived::Multi(multi)
    }
}

impl<'a> Archived<'a> {
    fn images(self) -> &'a [Image] {
        match self {
            Archived::Single(image) => std::slice::from_ref(image),
            Archived::Multi(multi) => &multi.images,
        }
    }
}

/// Writes the image(s) as a tar archive to `out` (a pipe into `docker load`,
/// or an `AtomicFile`). Layer blobs are read from the store, hashed and
/// written in large chunks on two threads (`stream.rs`), so `out` needs no
/// buffering of its own.
pub fn write_archive<'a>(
    image: impl Into<Archived<'a>>,
    format: ArchiveFormat,
    mut out: impl Write,
) -> Result<()> {
    let files = layout_files(image.into(), format)?;
    stream::stream(&mut out, |chunks| write_entries(chunks, &files))?;
    out.flush()?;
    Ok(())
}

/// The tar stream of the layout: its two directories, `files`, and the two
/// zero blocks that end an archive. Headers are those `tar::Builder` writes
/// (ustar, fixed metadata).
fn write_entries(out: &mut stream::Chunks, files: &[LayoutFile]) -> Result<()> {
    append_dirs(out)?;
    for file in files {
        append_file(out, file)?;
    }
    append_end(out)
}

fn append_dirs(out: &mut stream::Chunks) -> Result<()> {
    append_dir(out, "blobs")?;
    append_dir(out, "blobs/sha256")?;
    Ok(())
}

fn append_end(out: &mut stream::Chunks) -> Result<()> {
    out.write_all(&[0; 1024])?;
    Ok(())
}

/// One regular file: its header, its bytes (a blob's verified as they
/// stream from the store, [`append_blob`]), and the padding to the next block.
fn append_file(out: &mut stream::Chunks, file: &LayoutFile) -> Result<()> {
    match file {
        LayoutFile::Bytes(path, bytes) => {
            let size = bytes.len() as u64;
            append_header(
                out,
                path,
                fixed_header(0o644, size, tar::EntryType::Regular),
            )?;
            out.write_all(bytes)?;
            pad(out, size)?;
        }
        LayoutFile::Blob(blob) => append_blob(out, blob)?,
    }
    Ok(())
}

fn append_blob(out: &mut stream::Chunks, blob: &LayerBlob) -> Result<()> {
    let mut source = open_blob(blob)?;
    append_header(
        out,
        &blob.path,
        fixed_header(0o644, blob.size, tar::EntryType::Regular),
    )?;
    out.copy_verified(&mut source, blob.size)
        .map_err(from_blob_io)?;
    pad(out, blob.size)?;
    Ok(())
}

/// Writes `image` as an OCI image-layout directory at `dest`, replacing what is
/// there. It is built in a temp dir beside `dest` and renamed into place, so
/// `dest` is never half-written. Only a new path, an empty directory or a
/// layout cairn wrote is replaced: `-f ~/src` must not delete a project.
pub fn write_oci_dir<'a>(image: impl Into<Archived<'a>>, dest: &Path) -> Result<()> {
    check_replaceable(dest)?;
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let temp = tempfile::Builder::new()
        .prefix(".cairn-oci-")
        .tempdir_in(parent)?;
    fs_err::create_dir_all(temp.path().join("blobs/sha256"))?;
    for file in layout_files(image.into(), ArchiveFormat::Oci)? {
        match file {
            LayoutFile::Bytes(path, bytes) => fs_err::write(temp.path().join(path), bytes)?,
            LayoutFile::Blob(blob) => {
                let mut source = open_blob(&blob)?;
                let target = fs_err::File::create(temp.path().join(&blob.path))?;
                // io::copy reads straight into a BufWriter's buffer: 1 MiB reads.
                let mut target = io::BufWriter::with_capacity(1 << 20, target);
                io::copy(&mut source, &mut target).map_err(from_blob_io)?;
                target.flush()?;
            }
        }
    }
    // tempfile creates the directory 0700; the layout should read like any other.
    fs_err::set_permissions(
        temp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    replace_dir(temp.keep().as_path(), dest)
}

/// The entries of a layout cairn writes (see [`layout_files`]).
const LAYOUT_ENTRIES: [&str; 5] = [
    "oci-layout",
    "index.json",
    "blobs",
    "manifest.json",
    "repositories",
];

/// Refuses to let [`write_oci_dir`] replace anything but a missing path, an
/// empty directory, or an OCI layout as cairn writes it (its exact
/// `oci-layout` and nothing but layout entries).
fn check_replaceable(dest: &Path) -> Result<()> {
    let refuse = |reason: &str| OciError::NotAnOciLayout {
        path: dest.to_path_buf(),
        reason: reason.to_owned(),
    };
    let meta = match fs_err::symlink_metadata(dest) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_dir() {
        return Err(refuse("it exists and is not a directory"));
    }
    let mut names = Vec::new();
    for entry in fs_err::read_dir(dest)? {
        names.push(entry?.file_name());
    }
    if names.is_empty() {
        return Ok(());
    }
    if let Some(other) = names
        .iter()
        .find(|n| !LAYOUT_ENTRIES.iter().any(|e| n.as_os_str() == *e))
    {
        return Err(refuse(&format!(
            "it is a non-empty directory that is not an OCI layout cairn wrote (it holds '{}')",
            other.to_string_lossy()
        )));
    }
    match fs_err::read(dest.join("oci-layout")) {
        Ok(bytes) if bytes == OCI_LAYOUT => Ok(()),
        _ => Err(refuse(
            "it is a non-empty directory without cairn's oci-layout file",
        )),
    }
}

/// Swaps `new` into `dest`; an existing `dest` is moved aside first, then removed.
fn replace_dir(new: &Path, dest: &Path) -> Result<()> {
    if fs_err::symlink_metadata(dest).is_err() {
        fs_err::rename(new, dest)?;
        return Ok(());
    }
    let old = new.with_extension("old");
    fs_err::rename(dest, &old)?;
    fs_err::rename(new, dest)?;
    if old.is_dir() {
        fs_err::remove_dir_all(&old)?;
    } else {
        fs_err::remove_file(&old)?;
    }
    Ok(())
}

/// The files of the layout in archive order, as `docker save` orders them:
/// each layer blob once (bottom first, image by image), then the platform
/// index, each image's config and manifest, and last the files naming them
/// (`index.json`, `manifest.json`, `oci-layout`, `repositories`). Metadata
/// last is what lets [`write_archive_while`] write layers as they are built:
/// only the end of the archive waits for the whole image. Directories are
/// the caller's.
fn layout_files(archived: Archived<'_>, format: ArchiveFormat) -> Result<Vec<LayoutFile>> {
    let oci = format != ArchiveFormat::Docker;
    let images = match format {
        // Docker's manifest.json names one image: the first platform's.
        ArchiveFormat::Docker => &archived.images()[..1],
        _ => archived.images(),
    };
    let primary = &images[0];
    let mut files = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for layer in images.iter().flat_map(|i| &i.layers) {
        if seen.insert(layer.digest.as_str()) {
            files.push(LayoutFile::Blob(LayerBlob::of(layer)));
        }
    }
    if oci && let Archived::Multi(multi) = archived {
        files.push(LayoutFile::Bytes(
            blob_entry(&multi.index_digest),
            multi.index.clone(),
        ));
    }
    for image in images {
        files.push(LayoutFile::Bytes(
            blob_entry(&image.config_digest),
            image.config.clone(),
        ));
        if oci {
            files.push(LayoutFile::Bytes(
                blob_entry(&image.manifest_digest),
                image.manifest.clone(),
            ));
        }
    }
    if oci {
        let index_json = match archived {
            Archived::Single(image) => image.index_json()?,
            Archived::Multi(multi) => multi.index_json()?,
        };
        files.push(LayoutFile::Bytes("index.json".into(), index_json));
    }
    if format != ArchiveFormat::Oci {
        let docker = [DockerManifest {
            config: blob_entry(&primary.config_digest),
            repo_tags: vec![primary.reference.short()],
            layers: primary
                .layers
                .iter()
                .map(|l| blob_entry(&l.digest))
                .collect(),
        }];
        files.push(LayoutFile::Bytes(
            "manifest.json".into(),
            canonical_json(&docker, "manifest.json")?,
        ));
    }
    if oci {
        files.push(LayoutFile::Bytes("oci-layout".into(), OCI_LAYOUT.to_vec()));
    }
    if format != ArchiveFormat::Oci {
        files.push(LayoutFile::Bytes(
            "repositories".into(),
            repositories(primary)?,
        ));
    }
    Ok(files)
}

/// Docker's legacy `repositories`: `{"name":{"tag":"<top layer id>"}}`.
fn repositories(image: &Image) -> Result<Vec<u8>> {
    let top = image
        .layers
        .last()
        .map(|l| hex_of(&l.digest))
        .unwrap_or_default();
    let tags = std::collections::BTreeMap::from([(image.reference.tag.clone(), top.to_owned())]);
    let repos = std::collections::BTreeMap::from([(image.reference.name.clone(), tags)]);
    canonical_json(&repos, "repositories")
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Opens a layer blob, checking its size first: a short blob would otherwise
/// produce a tar whose header promises more bytes than follow. A blob from
/// the cache is hashed as it streams out and checked against its digest at
/// the end, so a blob damaged in the cache fails the write (and is evicted,
/// so the next build rebuilds it) instead of being shipped. A blob this
/// process built was hashed as it was written, moments ago: hashing it again
/// would cost a second pass over every byte of a cold build (80 MB for the
/// flask example) and check nothing the first did not.
fn open_blob(blob: &LayerBlob) -> Result<Box<dyn io::Read>> {
    let file = fs_err::File::open(&blob.source)?;
    let actual = file.metadata()?.len();
    if actual != blob.size {
        return Err(OciError::BlobSizeMismatch {
            path: blob.source.clone(),
            expected: blob.size,
            actual,
        });
    }
    if blob.fresh {
        return Ok(Box::new(file));
    }
    Ok(Box::new(cairn_store::VerifyingReader::new(
        file,
        &blob.source,
        &blob.digest,
    )))
}

/// An I/O error while streaming a blob, keeping a digest mismatch as such.
fn from_blob_io(error: io::Error) -> OciError {
    match cairn_store::StoreError::from_io(error) {
        cairn_store::StoreError::Io(e) => OciError::Io(e),
        other => OciError::Store(other),
    }
}

fn fixed_header(mode: u32, size: u64, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_entry_type(kind);
    header
}

fn append_dir(out: &mut impl Write, path: &str) -> io::Result<()> {
    let header = fixed_header(0o755, 0, tar::EntryType::Directory);
    append_header(out, &format!("{path}/"), header)
}

/// Names the entry and writes its header, as `tar::Builder::append_data`
/// would (every path of a layout fits a ustar header).
fn append_header(out: &mut impl Write, path: &str, mut header: tar::Header) -> io::Result<()> {
    header.set_path(path)?;
    header.set_cksum();
    out.write_all(header.as_bytes())
}

/// Zeros up to the next 512-byte block after `size` bytes of contents.
fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let partial = (size % 512) as usize;
    if partial > 0 {
        out.write_all(&[0; 512][partial..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageSpec, RuntimeConfig, build_image};
    use crate::layer::{CustomEntry, FileContent, LayerOptions, build_custom_layer};
    use std::collections::BTreeMap;
    use std::io::Read;

    fn sample_image(store_dir: &Path) -> Image {
        let store = cairn_store::Store::open(store_dir).unwrap();
        let opts = LayerOptions::default();
        let file =
            |p: &str, body: &[u8]| CustomEntry::file(p, 0o644, FileContent::Bytes(body.to_vec()));
        let a = build_custom_layer(&store, vec![file("a", b"a")], &opts).unwrap();
        let b = build_custom_layer(&store, vec![file("b", b"b")], &opts).unwrap();
        let spec = ImageSpec {
            name: "demo".into(),
            tag: "v1".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            created_epoch: 0,
            config: RuntimeConfig::default(),
        };
        // The same layer twice must still be stored once.
        build_image(&spec, &[a.clone(), b, a]).unwrap()
    }

    fn read_tar(bytes: &[u8]) -> BTreeMap<String, (tar::Header, Vec<u8>)> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            assert!(
                out.insert(path, (entry.header().clone(), body)).is_none(),
                "duplicate entry"
            );
        }
        out
    }

    #[test]
    fn hybrid_archive_has_both_layouts_and_each_blob_once() {
        let tmp = tempfile::tempdir().unwrap();
        let image = sample_image(tmp.path());
        let mut bytes = Vec::new();
        write_archive(&image, ArchiveFormat::Hybrid, &mut bytes).unwrap();
        let entries = read_tar(&bytes);
        let blobs = entries
            .keys()
            .filter(|k| k.starts_with("blobs/sha256/") && k.len() > 14);
        assert_eq!(
            blobs.count(),
            2 + 2,
            "config, manifest, two distinct layers"
        );
        assert_eq!(entries["oci-layout"].1, OCI_LAYOUT);
        let docker: serde_json::Value =
            serde_json::from_slice(&entries["manifest.json"].1).unwrap();
        assert_eq!(docker[0]["RepoTags"][0], "demo:v1");
        assert_eq!(docker[0]["Layers"].as_array().unwrap().len(), 3);
        let config_path = docker[0]["Config"].as_str().unwrap();
        assert_eq!(entries[config_path].1, image.config);
        let repos: serde_json::Value = serde_json::from_slice(&entries["repositories"].1).unwrap();
        assert_eq!(repos["demo"]["v1"], hex_of(&image.layers[2].digest));
        for layer in &image.layers {
            let blob = &entries[&format!("blobs/sha256/{}", hex_of(&layer.digest))].1;
            assert_eq!(crate::image::digest_of(blob), layer.digest);
        }
        for (header, _) in entries.values() {
            assert_eq!((header.mtime().unwrap(), header.uid().unwrap()), (0, 0));
        }
        let mut again = Vec::new();
        write_archive(&image, ArchiveFormat::Hybrid, &mut again).unwrap();
        assert_eq!(bytes, again);
    }

    /// The archive as `tar::Builder` wrote it before the two-thread writer:
    /// the bytes must not change (images built before and after compare equal).
    fn archive_by_tar_builder(image: &Image, format: ArchiveFormat) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut header = fixed_header(0o755, 0, tar::EntryType::Directory);
            builder.append_data(&mut header, dir, io::empty()).unwrap();
        }
        for file in layout_files(image.into(), format).unwrap() {
            let (path, body) = match file {
                LayoutFile::Bytes(path, bytes) => (path, bytes),
                LayoutFile::Blob(blob) => (blob.path, fs_err::read(blob.source).unwrap()),
            };
            let mut header = fixed_header(0o644, body.len() as u64, tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, body.as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn archive_bytes_are_those_of_tar_builder() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cairn_store::Store::open(tmp.path()).unwrap();
        // Blobs of odd sizes, one spanning several of the writer's buffers.
        let big: Vec<u8> = (0..700_001u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let entries = vec![
            CustomEntry::file("big", 0o644, FileContent::Bytes(big)),
            CustomEntry::file("small", 0o644, FileContent::Bytes(b"x".to_vec())),
        ];
        let opts = LayerOptions::default();
        let layer = build_custom_layer(&store, entries, &opts).unwrap();
        let mut image = sample_image(tmp.path());
        image.layers.push(layer);
        for format in [
            ArchiveFormat::Hybrid,
            ArchiveFormat::Oci,
            ArchiveFormat::Docker,
        ] {
            let mut bytes = Vec::new();
            write_archive(&image, format, &mut bytes).unwrap();
            assert!(
                bytes == archive_by_tar_builder(&image, format),
                "{format:?}"
            );
        }
    }

    #[test]
    fn docker_archive_has_no_oci_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let image = sample_image(tmp.path());
        let mut bytes = Vec::new();
        write_archive(&image, ArchiveFormat::Docker, &mut bytes).unwrap();
        let entries = read_tar(&bytes);
        assert!(entries.contains_key("manifest.json") && entries.contains_key("repositories"));
        assert!(!entries.contains_key("index.json") && !entries.contains_key("oci-layout"));
        assert!(!entries.contains_key(&format!("blobs/sha256/{}", hex_of(&image.manifest_digest))));
        let config = format!("blobs/sha256/{}", hex_of(&image.config_digest));
        assert_eq!(entries[&config].1, image.config);
        for layer in &image.layers {
            assert!(entries.contains_key(&format!("blobs/sha256/{}", hex_of(&layer.digest))));
        }
    }

    #[test]
    fn oci_archive_has_no_docker_files() {
        let tmp = tempfile::tempdir().unwrap();
        let image = sample_image(tmp.path());
        let mut bytes = Vec::new();
        write_archive(&image, ArchiveFormat::Oci, &mut bytes).unwrap();
        let entries = read_tar(&bytes);
        assert!(entries.contains_key("index.json") && entries.contains_key("blobs/sha256/"));
        assert!(!entries.contains_key("manifest.json") && !entries.contains_key("repositories"));
    }

    #[test]
    fn oci_dir_is_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let image = sample_image(&tmp.path().join("store"));
        let dest = tmp.path().join("out/image");
        // A layout cairn wrote earlier, with a blob the new image does not use.
        write_oci_dir(&image, &dest).unwrap();
        fs_err::write(dest.join("blobs/sha256/stale"), b"x").unwrap();
        write_oci_dir(&image, &dest).unwrap();
        assert!(!dest.join("blobs/sha256/stale").exists());
        assert_eq!(fs_err::read(dest.join("oci-layout")).unwrap(), OCI_LAYOUT);
        let manifest = dest
            .join("blobs/sha256")
            .join(hex_of(&image.manifest_digest));
        assert_eq!(fs_err::read(manifest).unwrap(), image.manifest);
        let leftovers = fs_err::read_dir(tmp.path().join("out")).unwrap().count();
        assert_eq!(leftovers, 1, "no temp dirs left behind");
    }

    #[test]
    fn truncated_blob_is_an_error_not_a_corrupt_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let image = sample_image(tmp.path());
        fs_err::write(&image.layers[0].blob_path, b"short").unwrap();
        let err = write_archive(&image, ArchiveFormat::Hybrid, io::sink()).unwrap_err();
        assert!(matches!(err, OciError::BlobSizeMismatch { .. }), "{err}");
    }

    fn flip_a_byte(path: &Path) {
        let mut bytes = fs_err::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs_err::write(path, bytes).unwrap();
    }

    /// The image of [`sample_image`] as a later build gets it: every layer
    /// from the cache, so every blob is verified as it is copied.
    fn cached_sample_image(store_dir: &Path) -> Image {
        sample_image(store_dir);
        let image = sample_image(store_dir);
        assert!(image.layers.iter().all(|l| l.from_cache && !l.fresh));
        image
    }

    #[test]
    fn a_flipped_byte_in_a_cached_blob_is_never_shipped_and_gets_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let image = cached_sample_image(tmp.path());
        let blob = image.layers[0].blob_path.clone();
        flip_a_byte(&blob);
        let err = write_archive(&image, ArchiveFormat::Hybrid, io::sink()).unwrap_err();
        match &err {
            OciError::Store(cairn_store::StoreError::DigestMismatch { path, evicted, .. }) => {
                assert_eq!(path, &blob);
                assert!(evicted);
            }
            other => panic!("expected a digest mismatch, got {other}"),
        }
        assert!(!blob.exists(), "the corrupt blob is evicted");
        // The next build misses the cache, rebuilds the same blob, and ships it.
        let rebuilt = sample_image(tmp.path());
        assert_eq!(rebuilt.layers[0].digest, image.layers[0].digest);
        assert!(!rebuilt.layers[0].from_cache);
        let mut out = Vec::new();
        write_archive(&rebuilt, ArchiveFormat::Hybrid, &mut out).unwrap();
        let entries = read_tar(&out);
        let shipped = &entries[&format!("blobs/sha256/{}", hex_of(&image.layers[0].digest))].1;
        assert_eq!(crate::image::digest_of(shipped), image.layers[0].digest);
    }

    #[test]
    fn a_flipped_byte_fails_an_oci_dir_without_touching_dest() {
        let tmp = tempfile::tempdir().unwrap();
        let image = cached_sample_image(tmp.path());
        flip_a_byte(&image.layers[0].blob_path);
        let dest = tmp.path().join("out/layout");
        let err = write_oci_dir(&image, &dest).unwrap_err();
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert!(!dest.exists());
        let leftovers = fs_err::read_dir(tmp.path().join("out")).unwrap().count();
        assert_eq!(leftovers, 0, "no temp dirs left behind");
    }

    #[test]
    fn oci_dir_refuses_to_replace_anything_but_a_cairn_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let image = sample_image(&tmp.path().join("store"));
        // A project directory, a file, and a foreign layout survive untouched.
        let project = tmp.path().join("project");
        fs_err::create_dir_all(project.join("src")).unwrap();
        fs_err::write(project.join("Cargo.toml"), "[package]").unwrap();
        let file = tmp.path().join("notes.txt");
        fs_err::write(&file, "keep me").unwrap();
        let foreign = tmp.path().join("foreign");
        fs_err::create_dir_all(&foreign).unwrap();
        fs_err::write(foreign.join("oci-layout"), "{}").unwrap();
        for dest in [&project, &file, &foreign] {
            let err = write_oci_dir(&image, dest).unwrap_err();
            assert!(matches!(err, OciError::NotAnOciLayout { .. }), "{err}");
        }
        assert!(project.join("Cargo.toml").is_file());
        assert_eq!(fs_err::read_to_string(&file).unwrap(), "keep me");
        // An empty directory and cairn's own layout are replaced.
        let empty = tmp.path().join("empty");
        fs_err::create_dir_all(&empty).unwrap();
        write_oci_dir(&image, &empty).unwrap();
        write_oci_dir(&image, &empty).unwrap();
        assert!(empty.join("index.json").is_file());
    }
}
