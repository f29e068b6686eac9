//! The image config, manifest and index for a list of built layers, serialised
//! deterministically, and the image reference (name and tag).
//!
//! JSON is canonical: object keys sorted at every level and no whitespace, so
//! the same inputs give the same config and manifest digests on any machine
//! (oci-spec keeps labels and annotations in `HashMap`s, whose order varies).
//!
//! Layers: gzip layers load everywhere. zstd layers
//! (`application/vnd.oci.image.layer.v1.tar+zstd`) loaded and ran in Docker
//! 20.10.24 (graphdriver), podman 4.3, containerd 1.6 and skopeo 1.9, but
//! umoci 0.4.7 rejects them and Docker releases before 20.10 cannot decompress
//! them, so gzip stays the default.
//!
//! Writing the blobs out is `archive.rs`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder, RootFsBuilder,
};
use serde::Serialize;

use crate::layer::BuiltLayer;
use crate::{OciError, Result};

/// Annotation containerd (and Docker's containerd image store) names images by.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An image name and tag, e.g. `myapp` and `1.0`, or `ghcr.io/me/app` and `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository, optionally with a registry domain.
    pub name: String,
    /// Tag.
    pub tag: String,
}

impl ImageRef {
    /// Validates a name and tag by the grammar of the distribution spec.
    pub fn new(name: &str, tag: &str) -> Result<ImageRef> {
        let invalid = |reason: &str| OciError::InvalidReference {
            reference: format!("{name}:{tag}"),
            reason: reason.to_owned(),
        };
        validate_name(name).map_err(invalid)?;
        validate_tag(tag).map_err(invalid)?;
        Ok(ImageRef {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// `name:tag` as written, for Docker's `RepoTags` (Docker adds `docker.io/library/` itself).
    pub fn short(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// The fully-qualified reference: `docker.io/library/name:tag` for a bare
    /// name, `docker.io/org/name:tag` for a path, unchanged with a domain.
    pub fn qualified(&self) -> String {
        let first = self.name.split('/').next().unwrap_or_default();
        let has_domain = self.name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        match (has_domain, self.name.contains('/')) {
            (true, _) => self.short(),
            (false, true) => format!("docker.io/{}", self.short()),
            (false, false) => format!("docker.io/library/{}", self.short()),
        }
    }
}

fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("the name must have 1 to 255 characters");
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    if components.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        let domain_ok = first
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !domain_ok {
            return Err("the registry domain may only use letters, digits, '.', '-' and ':port'");
        }
        components.remove(0);
    }
    if components.iter().all(|c| valid_path_component(c)) {
        Ok(())
    } else {
        Err(
            "name components must be lowercase letters and digits, separated by '.', '_', '__' or '-'",
        )
    }
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && !component.contains("..")
        && !component.contains("___")
        && !component.contains("._")
        && !component.contains("_.")
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(
            "a tag has 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'",
        )
    }
}

/// What the image is called and how it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Repository name, e.g. `myapp`.
    pub name: String,
    /// Tag, e.g. `latest`.
    pub tag: String,
    /// GOARCH-style architecture, e.g. `amd64`.
    pub architecture: String,
    /// GOOS-style OS, normally `linux`.
    pub os: String,
    /// Creation time (seconds since the epoch) for `created`, e.g. SOURCE_DATE_EPOCH.
    pub created_epoch: i64,
    /// How containers of this image run.
    pub config: RuntimeConfig,
}

/// The runtime part of the image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    /// Ports like `8080/tcp` or `53/udp`.
    pub exposed_ports: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The entrypoint argv.
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    pub cmd: Option<Vec<String>>,
    /// Volume mount points.
    pub volumes: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Signal to stop the container, e.g. `SIGTERM`.
    pub stop_signal: Option<String>,
    /// Docker's `Healthcheck`.
    pub healthcheck: Option<HealthcheckConfig>,
}

/// Docker's `Healthcheck` in the image config (`docker inspect` shows it;
/// Docker and Podman run it). The OCI image spec has no such field, and
/// oci-spec's `Config` none either, so it is added to the config's JSON.
/// Times are in nanoseconds; 0 means the engine's default, and is omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckConfig {
    /// `["CMD", program, args...]` (or `["CMD-SHELL", script]`).
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: u64,
    /// Time one check may take.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: u64,
    /// Grace period after the start.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: u64,
    /// Failures in a row before the container is unhealthy.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A complete image: config and manifest bytes with their digests, and the
/// layers they reference (whose blobs are in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Name and tag.
    pub reference: ImageRef,
    /// Canonical config JSON.
    pub config: Vec<u8>,
    /// `sha256:<hex>` of `config` (the image ID Docker shows).
    pub config_digest: String,
    /// Canonical manifest JSON.
    pub manifest: Vec<u8>,
    /// `sha256:<hex>` of `manifest`.
    pub manifest_digest: String,
    /// The layers, bottom first.
    pub layers: Vec<BuiltLayer>,
    architecture: String,
    os: String,
}

/// Builds the config and manifest of an image from its layers (bottom first).
pub fn build_image(spec: &ImageSpec, layers: &[BuiltLayer]) -> Result<Image> {
    let reference = ImageRef::new(&spec.name, &spec.tag)?;
    let config = config_json(spec, layers)?;
    let config_digest = digest_of(&config);
    let manifest = image_manifest(&config, &config_digest, layers)?;
    let manifest = canonical_json(&manifest, "manifest")?;
    let manifest_digest = digest_of(&manifest);
    Ok(Image {
        reference,
        config,
        config_digest,
        manifest,
        manifest_digest,
        layers: layers.to_vec(),
        architecture: spec.architecture.clone(),
        os: spec.os.clone(),
    })
}

impl Image {
    /// The OCI `index.json` naming this image the way containerd, Docker and
    /// podman read it: the fully-qualified name in `io.containerd.image.name`
    /// and the tag alone in `org.opencontainers.image.ref.name` (as `docker
    /// save` and containerd's exporter write them).
    pub fn index_json(&self) -> Result<Vec<u8>> {
        let manifest = self
            .descriptor()?
            .annotations(name_annotations(&self.reference))
            .build()?;
        canonical_index(vec![manifest])
    }

    /// GOARCH-style architecture, e.g. `arm64`.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// A descriptor of this image's manifest, with its platform.
    fn descriptor(&self) -> Result<DescriptorBuilder> {
        let mut platform = PlatformBuilder::default()
            .architecture(Arch::from(self.architecture.as_str()))
            .os(Os::from(self.os.as_str()));
        if self.architecture == "arm64" {
            // What `docker buildx` and the Go toolchain write for AArch64.
            platform = platform.variant("v8");
        }
        Ok(DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(parse_digest(&self.manifest_digest)?)
            .size(self.manifest.len() as u64)
            .platform(platform.build()?))
    }
}

/// Images of one name for several platforms, joined by an OCI image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiImage {
    /// Name and tag, shared by every platform.
    pub reference: ImageRef,
    /// One image per platform; the first is the one a single-platform
    /// consumer (Docker's `manifest.json`, `docker load`) gets.
    pub images: Vec<Image>,
    /// Canonical JSON of the image index listing every platform's manifest.
    pub index: Vec<u8>,
    /// `sha256:<hex>` of `index`.
    pub index_digest: String,
}

/// Joins per-platform images (same name and tag) into one image index.
pub fn build_multi_image(images: Vec<Image>) -> Result<MultiImage> {
    let reference =
        images
            .first()
            .map(|i| i.reference.clone())
            .ok_or_else(|| OciError::InvalidReference {
                reference: String::new(),
                reason: "an image index needs at least one image".into(),
            })?;
    let manifests = images
        .iter()
        .map(|i| Ok(i.descriptor()?.build()?))
        .collect::<Result<Vec<_>>>()?;
    let index = canonical_index(manifests)?;
    Ok(MultiImage {
        reference,
        index_digest: digest_of(&index),
        images,
        index,
    })
}

impl MultiImage {
    /// The layout's `index.json`: one descriptor, of the platform index,
    /// carrying the names (as `docker buildx --output type=oci` writes it).
    pub fn index_json(&self) -> Result<Vec<u8>> {
        let descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageIndex)
            .digest(parse_digest(&self.index_digest)?)
            .size(self.index.len() as u64)
            .annotations(name_annotations(&self.reference))
            .build()?;
        canonical_index(vec![descriptor])
    }
}

fn name_annotations(reference: &ImageRef) -> HashMap<String, String> {
    HashMap::from([
        (ANNOTATION_CONTAINERD_NAME.to_owned(), reference.qualified()),
        (
            oci_spec::image::ANNOTATION_REF_NAME.to_owned(),
            reference.tag.clone(),
        ),
    ])
}

fn canonical_index(manifests: Vec<Descriptor>) -> Result<Vec<u8>> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    canonical_json(&index, "index")
}

/// The config's canonical JSON: oci-spec's configuration, plus the Docker
/// fields it does not model.
fn config_json(spec: &ImageSpec, layers: &[BuiltLayer]) -> Result<Vec<u8>> {
    let json = |source| OciError::Json {
        what: "config",
        source,
    };
    let mut value = serde_json::to_value(image_config(spec, layers)?).map_err(json)?;
    if let Some(check) = &spec.config.healthcheck
        && let Some(config) = value.get_mut("config").and_then(|c| c.as_object_mut())
    {
        config.insert(
            "Healthcheck".to_string(),
            serde_json::to_value(check).map_err(json)?,
        );
    }
    canonical_json(&value, "config")
}

fn image_config(
    spec: &ImageSpec,
    layers: &[BuiltLayer],
) -> Result<oci_spec::image::ImageConfiguration> {
    let created = rfc3339(spec.created_epoch);
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.created_by.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
        .build()?;
    Ok(ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(spec.architecture.as_str()))
        .os(Os::from(spec.os.as_str()))
        .config(runtime_config(&spec.config)?)
        .rootfs(rootfs)
        .history(history)
        .build()?)
}

fn runtime_config(rc: &RuntimeConfig) -> Result<oci_spec::image::Config> {
    let mut config = ConfigBuilder::default();
    if let Some(user) = &rc.user {
        config = config.user(user.clone());
    }
    if !rc.exposed_ports.is_empty() {
        config = config.exposed_ports(rc.exposed_ports.clone());
    }
    if !rc.env.is_empty() {
        config = config.env(rc.env.clone());
    }
    if let Some(entrypoint) = &rc.entrypoint {
        config = config.entrypoint(entrypoint.clone());
    }
    if let Some(cmd) = &rc.cmd {
        config = config.cmd(cmd.clone());
    }
    if !rc.volumes.is_empty() {
        config = config.volumes(rc.volumes.clone());
    }
    if let Some(dir) = &rc.working_dir {
        config = config.working_dir(dir.clone());
    }
    if !rc.labels.is_empty() {
        config = config.labels(rc.labels.clone().into_iter().collect::<HashMap<_, _>>());
    }
    if let Some(signal) = &rc.stop_signal {
        config = config.stop_signal(signal.clone());
    }
    Ok(config.build()?)
}

fn image_manifest(
    config: &[u8],
    config_digest: &str,
    layers: &[BuiltLayer],
) -> Result<oci_spec::image::ImageManifest> {
    let config = Descriptor::new(
        MediaType::ImageConfig,
        config.len() as u64,
        parse_digest(config_digest)?,
    );
    let layers = layers
        .iter()
        .map(|l| {
            let media_type = MediaType::from(l.media_type.as_str());
            Ok(Descriptor::new(
                media_type,
                l.size,
                parse_digest(&l.digest)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()?)
}

fn parse_digest(digest: &str) -> Result<Digest> {
    Ok(Digest::from_str(digest)?)
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", cairn_store::sha256_hex(bytes))
}

/// Serialises with object keys sorted at every level and no whitespace.
pub(crate) fn canonical_json(value: &impl Serialize, what: &'static str) -> Result<Vec<u8>> {
    let json = |source| OciError::Json { what, source };
    let mut value = serde_json::to_value(value).map_err(json)?;
    sort_keys(&mut value);
    serde_json::to_vec(&value).map_err(json)
}

fn sort_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            // A no-op unless serde_json's `preserve_order` is on somewhere in
            // the build; then it is what keeps the output canonical.
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// RFC 3339 UTC timestamp of a Unix time. Hand-written (Howard Hinnant's
/// civil-from-days) rather than pulling in a date crate for one format.
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Compression;

    fn layer(n: u8) -> BuiltLayer {
        BuiltLayer {
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            diff_id: format!("sha256:{}", format!("{:02x}", n + 100).repeat(32)),
            size: 100 + u64::from(n),
            uncompressed_size: 1000 + u64::from(n),
            media_type: Compression::Gzip.media_type().into(),
            blob_path: "/nonexistent".into(),
            created_by: format!("cairn: pkg{n} 1.0"),
            from_cache: false,
            fresh: false,
            blob_use: Default::default(),
        }
    }

    fn spec() -> ImageSpec {
        ImageSpec {
            name: "myapp".into(),
            tag: "1.0".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            created_epoch: 1_700_000_000,
            config: RuntimeConfig {
                user: Some("1000:1000".into()),
                exposed_ports: vec!["8080/tcp".into(), "53/udp".into(), "9000/tcp".into()],
                env: vec!["PATH=/usr/bin:/bin".into()],
                entrypoint: Some(vec!["/usr/bin/cairn".into(), "entrypoint".into()]),
                cmd: None,
                volumes: vec!["/data".into(), "/cache".into()],
                working_dir: Some("/srv".into()),
                labels: (0..20)
                    .map(|i| (format!("l{i}"), format!("v{i}")))
                    .collect(),
                stop_signal: Some("SIGTERM".into()),
                healthcheck: None,
            },
        }
    }

    #[test]
    fn healthcheck_is_dockers_field_in_nanoseconds() {
        let mut with_check = spec();
        with_check.config.healthcheck = Some(HealthcheckConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 2_000_000_000,
            timeout: 0,
            start_period: 0,
            retries: 3,
        });
        let image = build_image(&with_check, &[layer(1)]).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        assert_eq!(
            config["config"]["Healthcheck"],
            serde_json::json!({"Test": ["CMD", "true"], "Interval": 2_000_000_000u64, "Retries": 3})
        );
        assert_eq!(
            serde_json::to_vec(&config).unwrap(),
            image.config,
            "canonical"
        );
        let plain = build_image(&spec(), &[layer(1)]).unwrap();
        assert!(
            !String::from_utf8(plain.config)
                .unwrap()
                .contains("Healthcheck")
        );
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn config_and_manifest_are_canonical_and_complete() {
        let layers = [layer(1), layer(2)];
        let a = build_image(&spec(), &layers).unwrap();
        for _ in 0..5 {
            assert_eq!(build_image(&spec(), &layers).unwrap(), a, "deterministic");
        }
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["rootfs"]["diff_ids"][1], layers[1].diff_id);
        assert_eq!(config["history"][0]["created_by"], "cairn: pkg1 1.0");
        assert_eq!(
            config["config"]["ExposedPorts"]["53/udp"],
            serde_json::json!({})
        );
        assert_eq!(config["config"]["Labels"]["l7"], "v7");
        // serde_json's Value sorts keys and prints compactly: canonical bytes
        // survive a round trip unchanged.
        assert_eq!(serde_json::to_vec(&config).unwrap(), a.config);
        let text = String::from_utf8(a.config.clone()).unwrap();
        assert!(
            text.find("\"l10\"").unwrap() < text.find("\"l2\"").unwrap(),
            "keys sorted"
        );
        assert_eq!(a.config_digest, digest_of(&a.config));

        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(manifest["config"]["digest"], a.config_digest.as_str());
        assert_eq!(manifest["layers"][0]["digest"], layers[0].digest.as_str());
        assert_eq!(manifest["layers"][0]["size"], 101);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }

    #[test]
    fn index_names_the_image_for_containerd_and_oci_tools() {
        let image = build_image(&spec(), &[layer(1)]).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&image.index_json().unwrap()).unwrap();
        let desc = &index["manifests"][0];
        assert_eq!(desc["digest"], image.manifest_digest.as_str());
        assert_eq!(
            desc["annotations"][ANNOTATION_CONTAINERD_NAME],
            "docker.io/library/myapp:1.0"
        );
        assert_eq!(
            desc["annotations"]["org.opencontainers.image.ref.name"],
            "1.0"
        );
        assert_eq!(desc["platform"]["os"], "linux");
    }

    #[test]
    fn multi_image_index_lists_each_platform() {
        let amd64 = build_image(&spec(), &[layer(1)]).unwrap();
        let arm = ImageSpec {
            architecture: "arm64".into(),
            ..spec()
        };
        let arm64 = build_image(&arm, &[layer(2)]).unwrap();
        let multi = build_multi_image(vec![amd64.clone(), arm64.clone()]).unwrap();
        let index: serde_json::Value = serde_json::from_slice(&multi.index).unwrap();
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let platforms: Vec<_> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["digest"].clone(), m["platform"]["architecture"].clone()))
            .collect();
        assert_eq!(
            platforms,
            [
                (amd64.manifest_digest.as_str().into(), "amd64".into()),
                (arm64.manifest_digest.as_str().into(), "arm64".into())
            ]
        );
        assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");
        let top: serde_json::Value = serde_json::from_slice(&multi.index_json().unwrap()).unwrap();
        assert_eq!(top["manifests"][0]["digest"], multi.index_digest.as_str());
        assert_eq!(
            top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "1.0"
        );
    }

    #[test]
    fn references_are_validated_and_qualified() {
        let q = |n: &str| ImageRef::new(n, "t").unwrap().qualified();
        assert_eq!(q("app"), "docker.io/library/app:t");
        assert_eq!(q("me/app"), "docker.io/me/app:t");
        assert_eq!(q("ghcr.io/me/app"), "ghcr.io/me/app:t");
        assert_eq!(q("localhost:5000/app"), "localhost:5000/app:t");
        assert_eq!(q("localhost/app"), "localhost/app:t");
        assert_eq!(q("my-app_2.x"), "docker.io/library/my-app_2.x:t");
        for bad in ["", "App", "a//b", "-a", "a-", "a..b", "ghcr.io/Me/app"] {
            assert!(ImageRef::new(bad, "t").is_err(), "{bad}");
        }
        for bad in ["", ".x", "-x", "a:b", &"x".repeat(129)] {
            assert!(ImageRef::new("a", bad).is_err(), "{bad}");
        }
        assert!(ImageRef::new("a", "v1.2_3-rc").is_ok());
    }
}
