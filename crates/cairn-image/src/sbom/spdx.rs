//! SPDX 2.3 JSON: the document, one package for the environment and one per
//! Debian package, and their relationships (the environment `CONTAINS`
//! every package; a package `DEPENDS_ON` what resolved it).
//!
//! Owns the field names and their order only: the struct fields serialize in
//! declaration order, which is the order of the SPDX 2.3 JSON examples.
//! Values come from [`super::Sbom`].

use serde::Serialize;

use super::{Sbom, SbomPackage};

const NOASSERTION: &str = "NOASSERTION";
const ROOT_ID: &str = "SPDXRef-environment";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<String>,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    license_concluded: String,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
    name: String,
}

/// The SPDX document of `sbom`.
pub fn document(sbom: &Sbom) -> Document {
    let mut packages = vec![root_package(sbom)];
    packages.extend(sbom.packages.iter().map(package));
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: ROOT_ID.into(),
    }];
    for p in &sbom.packages {
        relationships.push(Relationship {
            spdx_element_id: ROOT_ID.into(),
            relationship_type: "CONTAINS",
            related_spdx_element: package_id(p),
        });
    }
    let by_name: std::collections::BTreeMap<&str, &SbomPackage> =
        sbom.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    for p in &sbom.packages {
        for dep in p.depends.iter().filter_map(|d| by_name.get(d.as_str())) {
            relationships.push(Relationship {
                spdx_element_id: package_id(p),
                relationship_type: "DEPENDS_ON",
                related_spdx_element: package_id(dep),
            });
        }
    }
    Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{} ({})", sbom.name, sbom.system),
        document_namespace: format!(
            "https://cairn.dev/spdx/{}-{}",
            id_safe(&sbom.name),
            sbom.uuid()
        ),
        creation_info: CreationInfo {
            created: sbom.created.clone(),
            creators: vec![format!("Tool: cairn-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        relationships,
        has_extracted_licensing_infos: sbom
            .license_refs()
            .into_iter()
            .map(|r| ExtractedLicense {
                license_id: r.id,
                extracted_text: r.text,
                name: r.name,
            })
            .collect(),
    }
}

/// The environment itself, which the document describes.
fn root_package(sbom: &Sbom) -> Package {
    Package {
        spdx_id: ROOT_ID.into(),
        name: sbom.name.clone(),
        version_info: None,
        supplier: None,
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        checksums: Vec::new(),
        homepage: None,
        source_info: None,
        license_concluded: NOASSERTION.into(),
        license_declared: NOASSERTION.into(),
        copyright_text: NOASSERTION,
        summary: Some(format!(
            "cairn environment '{}' for {} ({} Debian packages)",
            sbom.name,
            sbom.system,
            sbom.packages.len()
        )),
        external_refs: Vec::new(),
        primary_package_purpose: Some("CONTAINER"),
    }
}

fn package(p: &SbomPackage) -> Package {
    Package {
        spdx_id: package_id(p),
        name: p.name.clone(),
        version_info: Some(p.version.clone()),
        supplier: supplier(&p.maintainer),
        download_location: spdx_url(&p.download_url).unwrap_or(NOASSERTION).to_string(),
        files_analyzed: false,
        checksums: vec![Checksum {
            algorithm: "SHA256",
            checksum_value: p.sha256.clone(),
        }],
        homepage: p.homepage.as_deref().and_then(spdx_url).map(str::to_string),
        source_info: Some(format!(
            "built package from: {} {}",
            p.source, p.source_version
        )),
        license_concluded: NOASSERTION.into(),
        license_declared: p
            .license
            .expression
            .clone()
            .unwrap_or_else(|| NOASSERTION.into()),
        copyright_text: NOASSERTION,
        summary: (!p.summary.is_empty()).then(|| p.summary.clone()),
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_type: "purl",
            reference_locator: p.purl.clone(),
        }],
        primary_package_purpose: None,
    }
}

/// `SPDXRef-Package-deb-NAME-ARCH`. Debian names are lowercase letters,
/// digits, `+`, `-` and `.`; SPDX ids allow no `+`, so it becomes `2B`
/// (uppercase, which no Debian name has, so two names never meet).
pub fn package_id(p: &SbomPackage) -> String {
    format!(
        "SPDXRef-Package-deb-{}-{}",
        id_safe(&p.name),
        id_safe(&p.architecture)
    )
}

fn id_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '+' => "2B".to_string(),
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => c.to_string(),
            _ => "-".to_string(),
        })
        .collect()
}

/// `url` when SPDX's URL grammar accepts it. The spec's grammar (which
/// pyspdxtools applies) wants a host name ending in a 2–5 letter top-level
/// domain, so a mirror addressed by IP (`http://10.0.0.5/debian`,
/// `http://127.0.0.1:8080`) is not a valid download location; such a package
/// says NOASSERTION there (the purl and the checksum still identify it).
fn spdx_url(url: &str) -> Option<&str> {
    let schemes = [
        "http://", "https://", "ssh://", "git://", "svn://", "sftp://", "ftp://",
    ];
    let rest = schemes.iter().find_map(|s| url.strip_prefix(s))?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = match host_port.split_once(':') {
        Some((host, port)) => {
            let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
            port_ok.then_some(host)?
        }
        None => host_port,
    };
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let tld = labels.last()?;
    let ok = labels.len() >= 2
        && labels.iter().all(label_ok)
        && (2..=5).contains(&tld.len())
        && tld.bytes().all(|b| b.is_ascii_alphabetic());
    ok.then_some(url)
}

/// `Person: NAME (EMAIL)` from `Maintainer: NAME <EMAIL>`.
fn supplier(maintainer: &str) -> Option<String> {
    let (name, rest) = maintainer.split_once('<')?;
    let email = rest.split('>').next()?.trim();
    let name = name.trim().replace(['(', ')'], "");
    (!name.is_empty() && !email.is_empty()).then(|| format!("Person: {name} ({email})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_spdx_grammar() {
        for good in [
            "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
            "https://mirror.example.org:8443/debian/x.deb",
            "https://www.gnu.org/software/libc/libc.html",
        ] {
            assert_eq!(spdx_url(good), Some(good));
        }
        for bad in [
            "http://127.0.0.1:45959/pool/main/h/hello.deb",
            "http://localhost/x.deb",
            "file:///srv/mirror/x.deb",
            "http://mirror.example.org:notaport/x",
        ] {
            assert_eq!(spdx_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_document_has_packages_relationships_and_declared_refs() {
        let sbom = crate::sbom::tests::sample();
        let json = serde_json::to_value(document(&sbom)).expect("json");
        assert_eq!(json["spdxVersion"], "SPDX-2.3");
        let packages = json["packages"].as_array().expect("packages");
        assert_eq!(packages.len(), 5);
        let gpp = &packages[2];
        assert_eq!(gpp["SPDXID"], "SPDXRef-Package-deb-g2B2B-amd64");
        assert_eq!(gpp["licenseDeclared"], "NOASSERTION");
        assert_eq!(gpp["checksums"][0]["algorithm"], "SHA256");
        assert_eq!(gpp["sourceInfo"], "built package from: src 2.0+dfsg-1");
        assert_eq!(gpp["supplier"], "Person: Jane Doe (jane@example.org)");
        assert_eq!(
            gpp["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/g%2B%2B@1%3A2.0%2Bdfsg-1?arch=amd64&distro=debian-12"
        );
        let rels = json["relationships"].as_array().expect("relationships");
        let depends: Vec<(String, String)> = rels
            .iter()
            .filter(|r| r["relationshipType"] == "DEPENDS_ON")
            .map(|r| {
                (
                    r["spdxElementId"].as_str().unwrap_or_default().to_string(),
                    r["relatedSpdxElement"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(depends.len(), 3, "{depends:?}");
        assert_eq!(
            rels.iter()
                .filter(|r| r["relationshipType"] == "CONTAINS")
                .count(),
            4
        );
        assert_eq!(
            json["hasExtractedLicensingInfos"].as_array().map(Vec::len),
            Some(2)
        );
        let text = serde_json::to_string(&document(&sbom)).expect("json");
        assert!(text.starts_with("{\"spdxVersion\":\"SPDX-2.3\",\"dataLicense\""));
    }
}
