//! CycloneDX 1.6 JSON: the BOM, its metadata (the environment as the
//! described component, cairn as the tool), one `library` component per
//! Debian package, and the `dependencies` graph (the environment depends on
//! what `[install]` asked for; each package on what resolved it).
//!
//! Owns the field names and their order only; values come from
//! [`super::Sbom`]. Components are referenced by their purl, which is unique
//! per name, version and architecture.

use serde::Serialize;

use super::{Sbom, SbomPackage};

const ROOT_REF: &str = "cairn-environment";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(rename = "externalReferences", skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct LicenseChoice {
    expression: String,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// The CycloneDX BOM of `sbom`.
pub fn document(sbom: &Sbom) -> Bom {
    let by_name: std::collections::BTreeMap<&str, &SbomPackage> =
        sbom.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let requested: Vec<String> = sbom
        .packages
        .iter()
        .filter(|p| p.requested)
        .map(|p| p.purl.clone())
        .collect();
    // A named container's closure may hold no requested package: then the
    // environment depends on all of them.
    let root_depends = if requested.is_empty() {
        sbom.packages.iter().map(|p| p.purl.clone()).collect()
    } else {
        requested
    };
    let mut dependencies = vec![Dependency {
        reference: ROOT_REF.into(),
        depends_on: root_depends,
    }];
    dependencies.extend(sbom.packages.iter().map(|p| {
        Dependency {
            reference: p.purl.clone(),
            depends_on: p
                .depends
                .iter()
                .filter_map(|d| by_name.get(d.as_str()).map(|dep| dep.purl.clone()))
                .collect(),
        }
    }));
    Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", sbom.uuid()),
        version: 1,
        metadata: Metadata {
            timestamp: sbom.created.clone(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "cairn".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            },
            component: Component {
                bom_ref: Some(ROOT_REF.into()),
                kind: "container",
                name: sbom.name.clone(),
                description: Some(format!(
                    "cairn environment '{}' for {} ({} Debian packages)",
                    sbom.name,
                    sbom.system,
                    sbom.packages.len()
                )),
                ..Component::default()
            },
        },
        components: sbom.packages.iter().map(component).collect(),
        dependencies,
    }
}

fn component(p: &SbomPackage) -> Component {
    let mut external_references = vec![ExternalReference {
        kind: "distribution",
        url: p.download_url.clone(),
    }];
    if let Some(homepage) = &p.homepage {
        external_references.push(ExternalReference {
            kind: "website",
            url: homepage.clone(),
        });
    }
    Component {
        bom_ref: Some(p.purl.clone()),
        kind: "library",
        publisher: (!p.maintainer.is_empty()).then(|| p.maintainer.clone()),
        name: p.name.clone(),
        version: Some(p.version.clone()),
        description: (!p.summary.is_empty()).then(|| p.summary.clone()),
        hashes: vec![Hash {
            alg: "SHA-256",
            content: p.sha256.clone(),
        }],
        licenses: p
            .license
            .expression
            .iter()
            .map(|e| LicenseChoice {
                expression: e.clone(),
            })
            .collect(),
        purl: Some(p.purl.clone()),
        external_references,
        properties: vec![
            Property {
                name: "cairn:deb:architecture",
                value: p.architecture.clone(),
            },
            Property {
                name: "cairn:deb:source",
                value: p.source.clone(),
            },
            Property {
                name: "cairn:deb:source-version",
                value: p.source_version.clone(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_dependencies_and_metadata() {
        let sbom = crate::sbom::tests::sample();
        let json = serde_json::to_value(document(&sbom)).expect("json");
        assert_eq!(json["specVersion"], "1.6");
        assert!(
            json["serialNumber"]
                .as_str()
                .is_some_and(|s| s.starts_with("urn:uuid:"))
        );
        assert_eq!(json["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
        let components = json["components"].as_array().expect("components");
        assert_eq!(components.len(), 4);
        assert_eq!(components[0]["hashes"][0]["alg"], "SHA-256");
        assert!(
            components[1].get("licenses").is_none(),
            "NOASSERTION is no licenses"
        );
        let deps = json["dependencies"].as_array().expect("dependencies");
        assert_eq!(deps[0]["ref"], ROOT_REF);
        assert_eq!(deps[0]["dependsOn"].as_array().map(Vec::len), Some(1));
        let app = &deps[1];
        assert_eq!(app["dependsOn"].as_array().map(Vec::len), Some(2));
    }
}
