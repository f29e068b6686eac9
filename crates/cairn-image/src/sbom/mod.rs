//! Software bills of materials: SPDX 2.3 and CycloneDX 1.6 JSON documents
//! of an environment's packages, as plain functions over the lock and the
//! verified `.deb`s.
//!
//! Owns the model both formats share ([`Sbom`], one [`SbomPackage`] per
//! locked package: name, version, architecture, purl, the `.deb`'s sha256 and
//! URL, its source package, its license, what it depends on) and the rule
//! that makes it reproducible: every value comes from the lock or the `.deb`s
//! it pins, the creation time is the plan's epoch (the lock's archive date,
//! or `SOURCE_DATE_EPOCH`), the document's identity is a hash of its
//! content, packages are sorted, and keys are written in a fixed order
//! (serde structs, not maps). The same lock therefore gives the same bytes.
//! The formats themselves are [`spdx`] and [`cyclonedx`]; the per-`.deb`
//! facts and their cache are [`facts`]; DEP-5 licenses are [`license`].
//! Writing the document somewhere (stdout, a file, an image, a registry) is
//! the caller's.

pub mod cyclonedx;
pub mod facts;
pub mod license;
pub mod spdx;

use std::collections::BTreeMap;

use cairn_store::Store;
use rayon::prelude::*;

use crate::{BuildPlan, Result};
pub use facts::DebFacts;
pub use license::{License, LicenseRef};

/// Where `containerize --sbom` puts the document inside the image.
pub const IMAGE_DIR: &str = "opt/cairn";

/// An SBOM format cairn writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SbomFormat {
    /// SPDX 2.3, JSON.
    SpdxJson,
    /// CycloneDX 1.6, JSON.
    CycloneDxJson,
}

impl SbomFormat {
    /// The IANA media type, also the OCI `artifactType` of a referrer.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "application/spdx+json",
            SbomFormat::CycloneDxJson => "application/vnd.cyclonedx+json",
        }
    }

    /// The file name, as syft and docker's attestations name them.
    pub fn file_name(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "sbom.spdx.json",
            SbomFormat::CycloneDxJson => "sbom.cdx.json",
        }
    }

    /// The document's path inside an image (relative, as layers write it).
    pub fn image_path(self) -> String {
        format!("{IMAGE_DIR}/{}", self.file_name())
    }
}

/// One package as both formats describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12`.
    pub purl: String,
    /// The `.deb`'s sha256 (hex).
    pub sha256: String,
    /// Where the `.deb` was downloaded from.
    pub download_url: String,
    /// The lock's one-line summary.
    pub summary: String,
    /// Named in `[install]`.
    pub requested: bool,
    /// Names of the packages of this document it depends on, sorted.
    pub depends: Vec<String>,
    pub source: String,
    pub source_version: String,
    pub maintainer: String,
    pub homepage: Option<String>,
    /// Its own copyright's license, or that of the package its doc dir links to.
    pub license: License,
}

/// Everything a document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    /// The environment's (image's) name.
    pub name: String,
    /// `x86_64-linux`.
    pub system: String,
    /// `debian-12`.
    pub distro: String,
    /// RFC 3339, from the plan's epoch.
    pub created: String,
    /// Sorted by name, then architecture.
    pub packages: Vec<SbomPackage>,
}

impl Sbom {
    /// A stable identity for the document: sha256 (hex) of its content.
    pub fn content_digest(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n{}\n",
            self.name, self.system, self.distro, self.created
        );
        for p in &self.packages {
            text.push_str(&format!(
                "{} {} {} {}\n",
                p.name, p.version, p.architecture, p.sha256
            ));
        }
        cairn_store::sha256_hex(text.as_bytes())
    }

    /// The content digest as an RFC 4122 UUID (version 5 layout, as name-based
    /// UUIDs are), for CycloneDX's `serialNumber` and SPDX's namespace.
    pub fn uuid(&self) -> String {
        let digest = self.content_digest();
        let mut hex: Vec<char> = digest.chars().take(32).collect();
        hex[12] = '5';
        // The variant bits: 10xx.
        let variant = u8::from_str_radix(&hex[16].to_string(), 16).unwrap_or(0);
        hex[16] = char::from_digit(u32::from(0x8 | (variant & 0x3)), 16).unwrap_or('8');
        let s: String = hex.into_iter().collect();
        format!(
            "{}-{}-{}-{}-{}",
            &s[0..8],
            &s[8..12],
            &s[12..16],
            &s[16..20],
            &s[20..32]
        )
    }

    /// Every `LicenseRef-` used, once, by id; an id whose text differs between
    /// packages is renamed per text (see [`unique_license_refs`]).
    pub fn license_refs(&self) -> Vec<LicenseRef> {
        let mut all: BTreeMap<String, LicenseRef> = BTreeMap::new();
        for p in &self.packages {
            for r in &p.license.references {
                all.entry(r.id.clone()).or_insert_with(|| r.clone());
            }
        }
        all.into_values().collect()
    }
}

/// The document for `format`, pretty-printed, ending in a newline.
pub fn render(sbom: &Sbom, format: SbomFormat) -> Result<Vec<u8>> {
    let value = match format {
        SbomFormat::SpdxJson => serde_json::to_vec_pretty(&spdx::document(sbom)),
        SbomFormat::CycloneDxJson => serde_json::to_vec_pretty(&cyclonedx::document(sbom)),
    };
    let mut bytes = value.map_err(|source| crate::ImageError::Json {
        what: "SBOM",
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The SBOM of `plan`'s packages. Their `.deb`s must be in the store.
pub fn sbom_for_plan(store: &Store, plan: &BuildPlan) -> Result<Sbom> {
    let facts: Vec<DebFacts> = plan
        .packages
        .par_iter()
        .map(|p| facts::deb_facts(store, &store.deb_path(&p.sha256)?, &p.sha256, &p.name))
        .collect::<Result<_>>()?;
    let distro = distro_for(plan.manifest.release_or_legacy());
    Ok(assemble(
        &plan.name,
        &plan.system,
        &distro,
        plan.epoch,
        &plan.packages,
        facts,
    ))
}

/// The SBOM file `--sbom` puts in the image's top layer (none without it).
/// It describes the plan's packages with the plan's epoch, so it is the
/// document `cairn sbom` writes for the same lock, byte for byte.
pub fn image_entries(store: &Store, plan: &BuildPlan) -> Result<Vec<cairn_oci::CustomEntry>> {
    let Some(format) = plan.sbom else {
        return Ok(Vec::new());
    };
    let bytes = render(&sbom_for_plan(store, plan)?, format)?;
    Ok(vec![
        cairn_oci::CustomEntry::dir("opt", 0o755),
        cairn_oci::CustomEntry::dir(IMAGE_DIR, 0o755),
        cairn_oci::CustomEntry::file(
            format.image_path(),
            0o644,
            cairn_oci::FileContent::Bytes(bytes),
        ),
    ])
}

/// Builds the model from locked packages and their facts (same order).
pub fn assemble(
    name: &str,
    system: &str,
    distro: &str,
    epoch: i64,
    packages: &[cairn_manifest::LockedPackage],
    facts: Vec<DebFacts>,
) -> Sbom {
    let names: std::collections::BTreeSet<&str> =
        packages.iter().map(|p| p.name.as_str()).collect();
    // A package whose doc directory links to another's has that one's copyright.
    let own_license: BTreeMap<&str, &License> = packages
        .iter()
        .zip(&facts)
        .map(|(p, f)| (p.name.as_str(), &f.license))
        .collect();
    let mut out: Vec<SbomPackage> = packages
        .iter()
        .zip(&facts)
        .map(|(p, f)| {
            let license = match (&f.license.expression, &f.doc_link) {
                (None, Some(other)) => own_license
                    .get(other.as_str())
                    .map(|l| (*l).clone())
                    .unwrap_or_default(),
                _ => f.license.clone(),
            };
            let mut depends: Vec<String> = p
                .depends
                .iter()
                .filter(|d| names.contains(d.as_str()) && **d != p.name)
                .cloned()
                .collect();
            depends.sort();
            depends.dedup();
            SbomPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: p.architecture.clone(),
                purl: purl(&p.name, &p.version, &p.architecture, distro),
                sha256: p.sha256.clone(),
                download_url: format!(
                    "{}/{}",
                    p.url.trim_end_matches('/'),
                    p.filename.trim_start_matches('/')
                ),
                summary: p.summary.clone(),
                requested: p.requested,
                depends,
                source: f.source.clone(),
                source_version: f.source_version.clone(),
                maintainer: f.maintainer.clone(),
                homepage: f.homepage.clone(),
                license,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.name.as_str(), a.architecture.as_str()).cmp(&(b.name.as_str(), b.architecture.as_str()))
    });
    out.dedup_by(|a, b| a.name == b.name && a.architecture == b.architecture);
    unique_license_refs(&mut out);
    Sbom {
        name: name.to_string(),
        system: system.to_string(),
        distro: distro.to_string(),
        created: cairn_oci::image::rfc3339(epoch),
        packages: out,
    }
}

/// A document declares each `LicenseRef-` once, with one text. Two packages
/// may use the same short name (`permissive`) for different texts; then
/// each text gets its own id (`LicenseRef-permissive-1a2b3c4d`, from the
/// text's hash, so the choice does not depend on package order).
fn unique_license_refs(packages: &mut [SbomPackage]) {
    let mut texts: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for p in packages.iter() {
        for r in &p.license.references {
            texts
                .entry(r.id.clone())
                .or_default()
                .insert(r.text.clone());
        }
    }
    for p in packages.iter_mut() {
        let mut renames = BTreeMap::new();
        for r in &mut p.license.references {
            if texts.get(&r.id).is_some_and(|t| t.len() > 1) {
                let hash = cairn_store::sha256_hex(r.text.as_bytes());
                let id = format!("{}-{}", r.id, &hash[..8]);
                renames.insert(r.id.clone(), id.clone());
                r.id = id;
            }
        }
        if let Some(expression) = &mut p.license.expression
            && !renames.is_empty()
        {
            *expression = expression
                .split(' ')
                .map(|token| {
                    let core = token.trim_matches(['(', ')']);
                    match renames.get(core) {
                        Some(new) => token.replace(core, new),
                        None => token.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
}

/// The purl `distro` qualifier of a Debian release (`bookworm` → `debian-12`).
pub fn distro_for(release: &str) -> String {
    let number = match release {
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "duke" => "15",
        other => other,
    };
    format!("debian-{number}")
}

/// `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=DISTRO`, with the version's
/// `:` (epochs) and `+` percent-encoded as the purl spec asks.
pub fn purl(name: &str, version: &str, architecture: &str, distro: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const PURL: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b':')
        .add(b'+')
        .add(b'/')
        .add(b'?')
        .add(b'#')
        .add(b'@')
        .add(b'%')
        .add(b'&')
        .add(b'=');
    let enc = |s: &str| utf8_percent_encode(s, PURL).to_string();
    format!(
        "pkg:deb/debian/{}@{}?arch={}&distro={}",
        enc(name),
        enc(version),
        enc(architecture),
        enc(distro)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_manifest::LockedPackage;

    pub(crate) fn sample() -> Sbom {
        let locked = |name: &str, depends: &[&str]| LockedPackage {
            name: name.into(),
            version: "1:2.0+dfsg-1".into(),
            architecture: "amd64".into(),
            system: "x86_64-linux".into(),
            url: "http://deb.debian.org/debian/".into(),
            filename: format!("pool/main/{name}.deb"),
            sha256: cairn_store::sha256_hex(name.as_bytes()),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            requested: name == "app",
            summary: format!("{name} summary"),
            ..LockedPackage::default()
        };
        let fact = |expr: Option<&str>, text: &str, link: Option<&str>| DebFacts {
            source: "src".into(),
            source_version: "2.0+dfsg-1".into(),
            maintainer: "Jane Doe <jane@example.org>".into(),
            homepage: None,
            license: License {
                expression: expr.map(str::to_string),
                references: if text.is_empty() {
                    Vec::new()
                } else {
                    vec![LicenseRef {
                        id: "LicenseRef-permissive".into(),
                        name: "permissive".into(),
                        text: text.into(),
                    }]
                },
            },
            doc_link: link.map(str::to_string),
        };
        assemble(
            "demo",
            "x86_64-linux",
            "debian-12",
            1_700_000_000,
            &[
                locked("app", &["libb", "liba", "missing"]),
                locked("liba", &[]),
                locked("libb", &["liba"]),
                locked("g++", &[]),
            ],
            vec![
                fact(
                    Some("GPL-2.0-or-later AND LicenseRef-permissive"),
                    "text one",
                    None,
                ),
                fact(Some("LicenseRef-permissive"), "text two", None),
                fact(None, "", Some("liba")),
                fact(None, "", None),
            ],
        )
    }

    #[test]
    fn purls_follow_the_spec() {
        assert_eq!(
            purl("libc6", "2.36-9+deb12u4", "amd64", "debian-12"),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            purl("g++", "4:12.2.0-3", "amd64", "debian-13"),
            "pkg:deb/debian/g%2B%2B@4%3A12.2.0-3?arch=amd64&distro=debian-13"
        );
        assert_eq!(distro_for("bookworm"), "debian-12");
        assert_eq!(distro_for("trixie"), "debian-13");
        assert_eq!(distro_for("sid"), "debian-sid");
    }

    #[test]
    fn the_model_is_sorted_linked_and_its_refs_are_unique() {
        let sbom = sample();
        let names: Vec<&str> = sbom.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["app", "g++", "liba", "libb"]);
        let app = &sbom.packages[0];
        assert_eq!(
            app.depends,
            ["liba", "libb"],
            "sorted, unknown names dropped"
        );
        assert_eq!(
            app.download_url,
            "http://deb.debian.org/debian/pool/main/app.deb"
        );
        // libb's doc directory links to liba's: liba's license.
        assert_eq!(sbom.packages[3].license, sbom.packages[2].license);
        // Two texts for one short name: two ids, each expression rewritten.
        let refs = sbom.license_refs();
        assert_eq!(refs.len(), 2, "{refs:?}");
        assert!(
            refs.iter()
                .all(|r| r.id.starts_with("LicenseRef-permissive-"))
        );
        let app_expr = app.license.expression.clone().unwrap_or_default();
        assert!(
            app_expr.starts_with("GPL-2.0-or-later AND LicenseRef-permissive-"),
            "{app_expr}"
        );
        assert_eq!(sbom.created, "2023-11-14T22:13:20Z");
        let uuid = sbom.uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5");
        assert!("89ab".contains(&uuid[19..20]), "{uuid}");
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        for format in [SbomFormat::SpdxJson, SbomFormat::CycloneDxJson] {
            let a = render(&sample(), format).expect("render");
            let b = render(&sample(), format).expect("render");
            assert_eq!(a, b);
            assert!(a.ends_with(b"}\n"));
        }
    }
}
