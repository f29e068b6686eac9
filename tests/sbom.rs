//! SBOMs end to end: `cairn sbom` and `containerize --sbom` against a signed
//! local archive (and real Debian), checked the way a security engineer
//! would: the real validators from PyPI (spdx-tools' `pyspdxtools` for SPDX
//! 2.3, cyclonedx-python-lib's strict JSON validator for CycloneDX 1.6), the
//! package list against `/var/lib/dpkg/status` in the built image, the same
//! bytes from the same lock, and the registry's HTTP API finding the SBOM
//! attached to a pushed image as an OCI referrer.
//!
//! The validators live in a venv that `.ci/setup` creates
//! (`$CAIRN_SBOM_VENV`, default `/opt/cairn-ci/venv`); without it these tests
//! fail on CI and skip locally, naming it.

use cairn_tests::images::{OciLayout, shared_cache_dir};
use cairn_tests::registry::{Registry, RegistryAuth};
use cairn_tests::tools::in_ci;
use cairn_tests::{DebSpec, HttpServer, LocalArchive, TestContext, require_tool, stderr_of};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEP5: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: hello\n\nFiles: *\nCopyright: 2024 The Hello Authors\nLicense: GPL-3+\n\nFiles: lib/compat/*\nCopyright: 2001 Someone\nLicense: public-domain\n The author puts these files in the public domain.\n\nLicense: GPL-3+\n On Debian systems, the full text is in /usr/share/common-licenses/GPL-3.\n";

/// The venv holding pyspdxtools and cyclonedx-python-lib, or `None` (skip)
/// off CI when it is missing.
fn validators() -> Option<PathBuf> {
    let venv = std::env::var_os("CAIRN_SBOM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/cairn-ci/venv"));
    if venv.join("bin/pyspdxtools").is_file() && venv.join("bin/python").is_file() {
        return Some(venv);
    }
    let what = format!(
        "the SBOM validators (pyspdxtools, cyclonedx-python-lib) in {} (CAIRN_SBOM_VENV); .ci/setup installs them",
        venv.display()
    );
    if in_ci() {
        panic!("{what} are missing, but CI=true requires them");
    }
    eprintln!("skipping: {what} are missing");
    None
}

fn validate_spdx(venv: &Path, file: &Path) {
    let out = Command::new(venv.join("bin/pyspdxtools"))
        .arg("-i")
        .arg(file)
        .output()
        .expect("run pyspdxtools");
    assert!(
        out.status.success(),
        "pyspdxtools rejects {}:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}

fn validate_cyclonedx(venv: &Path, file: &Path) {
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\nerr = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif err:\n    print(err)\n    sys.exit(1)\nprint('valid')\n";
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("run the CycloneDX validator");
    assert!(
        out.status.success(),
        "cyclonedx-python-lib rejects {}:\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}

fn specs() -> Vec<DebSpec> {
    vec![
        DebSpec::with_program("hello", "2.10-3")
            .depends("libgreet1 (>= 1.0)")
            .source("hello-src (2.10-2)")
            .file("/usr/share/doc/hello/copyright", DEP5.as_bytes(), 0o644),
        DebSpec::new("libgreet1", "1:1.0+dfsg-1")
            .source("greet")
            .file("/usr/lib/libgreet.so.1", b"greet v1", 0o644)
            .file(
                "/usr/share/doc/libgreet1/copyright",
                b"This is free-form copyright text, not DEP-5.\n",
                0o644,
            ),
    ]
}

/// `hello` and `libgreet1` locked from a signed local archive.
struct SbomEnv {
    ctx: TestContext,
    archive: LocalArchive,
    _server: HttpServer,
}

impl SbomEnv {
    fn local() -> Option<(SbomEnv, PathBuf)> {
        let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip"];
        if !tools.iter().all(|t| require_tool(t)) {
            return None;
        }
        let venv = validators()?;
        let ctx = TestContext::new();
        let path = ctx.manifest_path();
        fs_err::create_dir_all(path.parent().expect("env dir")).expect("create env dir");
        fs_err::write(
            &path,
            "version = 1\nname = \"hello\"\n\n[install]\nhello.pkg = \"hello\"\n\n[options]\nessential = false\n",
        )
        .expect("write manifest.toml");
        let (archive, server) = ctx.serve_archive(&specs());
        ctx.write_manifest_sources(&server, &archive);
        cairn_tests::context::expect_success(ctx.cairn().args(["upgrade"]));
        Some((
            SbomEnv {
                ctx,
                archive,
                _server: server,
            },
            venv,
        ))
    }

    fn ok(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_success(self.ctx.cairn().args(args))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ctx.root.path().join(name)
    }
}

fn json_of(path: &Path) -> serde_json::Value {
    let text = fs_err::read_to_string(path).expect("read SBOM");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn sha256_of(path: &Path) -> String {
    cairn_store::sha256_file(path).expect("hash")
}

#[test]
fn spdx_and_cyclonedx_validate_and_say_what_each_package_is() {
    let Some((env, venv)) = SbomEnv::local() else {
        return;
    };
    let spdx = env.path("hello.spdx.json");
    env.ok(&["sbom", "-o", &spdx.to_string_lossy()]);
    validate_spdx(&venv, &spdx);
    let doc = json_of(&spdx);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages = doc["packages"].as_array().expect("packages");
    let find = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name && p["SPDXID"] != "SPDXRef-environment")
            .unwrap_or_else(|| panic!("{name} in {packages:?}"))
            .clone()
    };
    let hello = find("hello");
    let hello_deb = env.archive.deb_path(&specs()[0]);
    assert_eq!(hello["versionInfo"], "2.10-3");
    assert_eq!(
        hello["checksums"][0]["checksumValue"],
        sha256_of(&hello_deb)
    );
    assert_eq!(
        hello["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12"
    );
    assert_eq!(hello["sourceInfo"], "built package from: hello-src 2.10-2");
    assert_eq!(
        hello["licenseDeclared"],
        "GPL-3.0-or-later AND LicenseRef-public-domain"
    );
    // SPDX's URL grammar wants a domain name: the local archive's 127.0.0.1 is not one.
    assert_eq!(hello["downloadLocation"], "NOASSERTION");
    let greet = find("libgreet1");
    assert_eq!(greet["licenseDeclared"], "NOASSERTION", "not DEP-5");
    assert_eq!(
        greet["sourceInfo"],
        "built package from: greet 1:1.0+dfsg-1"
    );
    assert_eq!(
        greet["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libgreet1@1%3A1.0%2Bdfsg-1?arch=amd64&distro=debian-12"
    );
    let depends = doc["relationships"]
        .as_array()
        .expect("relationships")
        .iter()
        .any(|r| {
            r["spdxElementId"] == hello["SPDXID"]
                && r["relationshipType"] == "DEPENDS_ON"
                && r["relatedSpdxElement"] == greet["SPDXID"]
        });
    assert!(depends, "hello DEPENDS_ON libgreet1: {doc}");
    let declared = &doc["hasExtractedLicensingInfos"][0];
    assert_eq!(declared["licenseId"], "LicenseRef-public-domain");
    assert_eq!(
        declared["extractedText"],
        "The author puts these files in the public domain."
    );

    // CycloneDX on stdout.
    let out = env.ok(&["sbom", "--format", "cyclonedx-json"]);
    let cdx = env.path("hello.cdx.json");
    fs_err::write(&cdx, &out.stdout).expect("write CycloneDX");
    validate_cyclonedx(&venv, &cdx);
    let bom = json_of(&cdx);
    let components = bom["components"].as_array().expect("components");
    let names: BTreeSet<&str> = components
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["hello", "libgreet1"]));
    let hello = components
        .iter()
        .find(|c| c["name"] == "hello")
        .expect("hello");
    assert_eq!(hello["hashes"][0]["content"], sha256_of(&hello_deb));
    let url = hello["externalReferences"][0]["url"]
        .as_str()
        .unwrap_or_default();
    assert!(
        url.ends_with("/pool/main/h/hello/hello_2.10-3_amd64.deb"),
        "{url}"
    );
    assert_eq!(
        hello["licenses"][0]["expression"],
        "GPL-3.0-or-later AND LicenseRef-public-domain"
    );
    let deps = bom["dependencies"].as_array().expect("dependencies");
    let hello_deps = deps
        .iter()
        .find(|d| d["ref"] == hello["bom-ref"])
        .expect("hello's dependencies");
    assert_eq!(
        hello_deps["dependsOn"][0],
        "pkg:deb/debian/libgreet1@1%3A1.0%2Bdfsg-1?arch=amd64&distro=debian-12"
    );
}

#[test]
fn the_same_lock_gives_the_same_bytes_and_the_image_carries_them() {
    let Some((env, venv)) = SbomEnv::local() else {
        return;
    };
    let first = env.ok(&["sbom", "--format", "cyclonedx-json"]).stdout;
    // Another cache (so every .deb is read again) and another day.
    let mut cmd = env.ctx.cairn();
    cmd.env("CAIRN_CACHE_DIR", env.path("other-cache")).args([
        "sbom",
        "--format",
        "cyclonedx-json",
    ]);
    let second = cairn_tests::context::expect_success(&mut cmd).stdout;
    assert_eq!(first, second, "same lock, same SBOM bytes");

    let archive = env.path("image.tar");
    env.ok(&[
        "containerize",
        "--sbom",
        "cyclonedx-json",
        "-f",
        &archive.to_string_lossy(),
    ]);
    let again = env.path("image-again.tar");
    env.ok(&[
        "containerize",
        "--sbom",
        "cyclonedx-json",
        "-f",
        &again.to_string_lossy(),
    ]);
    assert_eq!(sha256_of(&archive), sha256_of(&again), "reproducible image");
    let layout = OciLayout::unpack(&archive);
    let layers = layout.layers();
    let top = layers.last().expect("a top layer");
    let carried = layout.layer_file(&top.digest, "opt/cairn/sbom.cdx.json");
    assert_eq!(
        carried.as_bytes(),
        first.as_slice(),
        "the image carries `cairn sbom`'s document"
    );
    let file = env.path("carried.cdx.json");
    fs_err::write(&file, &carried).expect("write");
    validate_cyclonedx(&venv, &file);
    assert_eq!(sbom_names(&json_of(&file)), dpkg_names(&layout));
}

/// Package names an SBOM lists (SPDX packages but the environment, or
/// CycloneDX components).
fn sbom_names(doc: &serde_json::Value) -> BTreeSet<String> {
    let list = doc["components"]
        .as_array()
        .or_else(|| doc["packages"].as_array())
        .expect("components or packages");
    list.iter()
        .filter(|p| p["SPDXID"] != "SPDXRef-environment")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

/// The installed packages `/var/lib/dpkg/status` in the image lists.
fn dpkg_names(layout: &OciLayout) -> BTreeSet<String> {
    let configured = layout
        .layers()
        .into_iter()
        .find(|l| l.created_by == "cairn: package configuration")
        .expect("a package configuration layer");
    let status = layout.layer_file(&configured.digest, "var/lib/dpkg/status");
    status
        .split("\n\n")
        .filter(|p| p.contains("\nStatus: install ok installed"))
        .filter_map(|p| {
            p.lines()
                .find_map(|l| l.strip_prefix("Package: "))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn a_pushed_image_has_its_sbom_as_a_referrer_the_registry_api_finds() {
    let Some((env, venv)) = SbomEnv::local() else {
        return;
    };
    if !Registry::tools_ready() {
        return;
    }
    let registry = Registry::start(&env.path("registry"), &RegistryAuth::Anonymous, None);
    env.ok(&[
        "containerize",
        "--sbom",
        "--copy",
        "--registry",
        &registry.prefix("team"),
        "--copy-args=--dest-tls-verify=false",
    ]);
    let base = format!("http://{}/v2/team/hello", registry.host);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |url: &str, accept: &str| {
        let mut reply = agent
            .get(url)
            .header("Accept", accept)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = reply.status().as_u16();
        let body = reply.body_mut().read_to_vec().expect("read body");
        (status, body)
    };
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let oci_index = "application/vnd.oci.image.index.v1+json";
    let (status, image_manifest) = get(&format!("{base}/manifests/latest"), oci_manifest);
    assert_eq!(status, 200);
    let image_digest = format!("sha256:{}", cairn_store::sha256_hex(&image_manifest));

    // distribution 2.8 has no referrers API: a client falls back to the tag schema.
    let (status, _) = get(&format!("{base}/referrers/{image_digest}"), oci_index);
    assert_eq!(status, 404, "distribution 2.8 has no referrers API");
    let tag = image_digest.replace(':', "-");
    let (status, index) = get(&format!("{base}/manifests/{tag}"), oci_index);
    assert_eq!(status, 200, "the referrers tag {tag} exists");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("index JSON");
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["artifactType"] == "application/spdx+json")
        .unwrap_or_else(|| panic!("an SPDX referrer in {index}"))
        .clone();
    let digest = entry["digest"].as_str().expect("digest");
    let (status, artifact) = get(&format!("{base}/manifests/{digest}"), oci_manifest);
    assert_eq!(status, 200);
    assert_eq!(
        format!("sha256:{}", cairn_store::sha256_hex(&artifact)),
        digest
    );
    let artifact: serde_json::Value = serde_json::from_slice(&artifact).expect("manifest JSON");
    assert_eq!(artifact["subject"]["digest"], image_digest.as_str());
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    let layer = &artifact["layers"][0];
    assert_eq!(layer["mediaType"], "application/spdx+json");
    let blob_digest = layer["digest"].as_str().expect("layer digest");
    let (status, blob) = get(&format!("{base}/blobs/{blob_digest}"), "*/*");
    assert_eq!(status, 200);
    let file = env.path("referrer.spdx.json");
    fs_err::write(&file, &blob).expect("write");
    validate_spdx(&venv, &file);

    // `cairn sbom -r` reads the pushed environment and writes the same document.
    let reference = format!("{}/team/hello:latest", registry.host);
    let remote = env.ok(&["sbom", "-r", &reference, "--remote-args=--tls-verify=false"]);
    assert_eq!(
        remote.stdout, blob,
        "cairn sbom -r gives the attached document"
    );

    // Pushing again replaces nothing and lists the referrer once.
    env.ok(&[
        "containerize",
        "--sbom",
        "--copy",
        "--registry",
        &registry.prefix("team"),
        "--copy-args=--dest-tls-verify=false",
    ]);
    let (_, index) = get(&format!("{base}/manifests/{tag}"), oci_index);
    let index: serde_json::Value = serde_json::from_slice(&index).expect("index JSON");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
}

#[test]
fn bad_arguments_fail_cleanly_and_write_nothing() {
    let Some((env, _venv)) = SbomEnv::local() else {
        return;
    };
    let target = env.path("never.json");
    let out = cairn_tests::context::expect_failure(env.ctx.cairn().args([
        "sbom",
        "--system",
        "riscv64-linux",
        "-o",
        &target.to_string_lossy(),
    ]));
    assert!(
        stderr_of(&out).contains("riscv64-linux"),
        "{}",
        stderr_of(&out)
    );
    assert!(!target.exists(), "no partial output");
    let out =
        cairn_tests::context::expect_failure(env.ctx.cairn().args(["sbom", "--format", "xml"]));
    assert!(stderr_of(&out).contains("spdx-json"), "{}", stderr_of(&out));
}

/// Real Debian: `hello` with the Essential set, in an image whose SBOM lists
/// exactly what dpkg's status says, and validates.
#[test]
fn real_debian_image_sbom_matches_dpkg_status() {
    let Some(venv) = validators() else {
        return;
    };
    let Some(archive) = cairn_tests::reachable_real_archive() else {
        return;
    };
    let ctx = TestContext::new();
    let path = ctx.manifest_path();
    fs_err::create_dir_all(path.parent().expect("env dir")).expect("create env dir");
    fs_err::write(
        &path,
        "version = 1\nname = \"real-hello\"\n\n[install]\nhello.pkg = \"hello\"\n",
    )
    .expect("write manifest.toml");
    ctx.set_sources(&archive.sources_toml());
    let cairn = |args: &[&str]| {
        let mut cmd = ctx.cairn();
        cmd.env("CAIRN_CACHE_DIR", shared_cache_dir("sbom"))
            .args(args);
        cairn_tests::context::expect_success(&mut cmd)
    };
    cairn(&["upgrade"]);
    let image = ctx.root.path().join("real.tar");
    cairn(&["containerize", "--sbom", "-f", &image.to_string_lossy()]);
    let layout = OciLayout::unpack(&image);
    let top = layout.layers().last().expect("a top layer").clone();
    let carried = layout.layer_file(&top.digest, "opt/cairn/sbom.spdx.json");
    let file = ctx.root.path().join("real.spdx.json");
    fs_err::write(&file, &carried).expect("write");
    validate_spdx(&venv, &file);
    let doc = json_of(&file);
    let names = sbom_names(&doc);
    assert_eq!(names, dpkg_names(&layout));
    assert!(
        names.contains("libc6") && names.contains("hello"),
        "{names:?}"
    );
    // grep's copyright is DEP-5 (GPL-3+); hello's and glibc's are free-form.
    let license = |name: &str| {
        doc["packages"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["licenseDeclared"].clone())
            .unwrap_or_default()
    };
    assert_eq!(license("grep"), "GPL-3.0-or-later");
    let hello_url = doc["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "hello"))
        .map(|p| p["downloadLocation"].clone())
        .unwrap_or_default();
    assert!(
        hello_url
            .as_str()
            .is_some_and(|u| u.starts_with("http") && u.ends_with("_amd64.deb")),
        "{hello_url}"
    );
    assert_eq!(license("hello"), "NOASSERTION");
    assert_eq!(license("libc6"), "NOASSERTION");
    let cdx = cairn(&["sbom", "--format", "cyclonedx-json"]);
    let cdx_file = ctx.root.path().join("real.cdx.json");
    fs_err::write(&cdx_file, &cdx.stdout).expect("write");
    validate_cyclonedx(&venv, &cdx_file);
}
