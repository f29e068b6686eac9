//! Pushing to a registry end to end: `cairn containerize --copy` and `cairn
//! push` against Debian's real `docker-registry` on 127.0.0.1 (plain HTTP,
//! htpasswd over TLS, and a token server the test runs), checked with skopeo
//! and podman. What a user sees is what is checked: exit status, the summary
//! line, `--json` counts, and error messages that name the registry and never
//! a secret.
//!
//! Each test starts its own registry on a free port. Images come from a
//! signed local archive (fast, no network) except the one `podman run` needs,
//! which is real Debian `hello` (skipped when the mirror does not answer).

use cairn_tests::images::{shared_cache_dir, unique_name};
use cairn_tests::registry::{CutProxy, Registry, RegistryAuth, TestCa, TokenServer, free_port};
use cairn_tests::{
    DebSpec, HttpServer, LocalArchive, TestContext, require_tool, stderr_of, stdout_of,
};
use std::process::{Command, Output};

const INSECURE: &str = "--copy-args=--dest-tls-verify=false";
const USER: &str = "alice";
const PASSWORD: &str = "correct-horse-battery";

/// An environment whose `cairn` runs share one cache per test.
struct PushEnv {
    ctx: TestContext,
    /// The local archive and its server, kept alive for `upgrade`/`install`.
    local: Option<(LocalArchive, HttpServer)>,
}

fn specs() -> Vec<DebSpec> {
    vec![
        DebSpec::with_program("hello", "1.0-1").depends("libgreet1 (>= 1.0)"),
        DebSpec::new("libgreet1", "1.0-1").file("/usr/lib/libgreet.so.1", b"greet v1", 0o644),
        DebSpec::with_program("cowsay-lite", "3.0-1").arch("all"),
    ]
}

impl PushEnv {
    /// `hello` (+ `libgreet1`) from a signed local archive, image `hello:latest`.
    fn local() -> Option<PushEnv> {
        let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip"];
        if !tools.iter().all(|t| require_tool(t)) || !Registry::tools_ready() {
            return None;
        }
        let ctx = TestContext::new();
        write_manifest(&ctx, "hello.pkg = \"hello\"\n");
        let (archive, server) = ctx.serve_archive(&specs());
        ctx.write_manifest_sources(&server, &archive);
        let env = PushEnv {
            ctx,
            local: Some((archive, server)),
        };
        env.ok(&["upgrade"]);
        Some(env)
    }

    /// Real Debian `hello`, so podman can run it; `None` when Debian is unreachable.
    fn real_hello() -> Option<PushEnv> {
        PushEnv::real_hello_with("")
    }

    /// Real Debian `hello`, with `extra` TOML appended to the manifest.
    fn real_hello_with(extra: &str) -> Option<PushEnv> {
        if !Registry::tools_ready() {
            return None;
        }
        let archive = cairn_tests::reachable_real_archive()?;
        let ctx = TestContext::new();
        write_manifest(&ctx, "hello.pkg = \"hello\"\n");
        ctx.set_sources(&archive.sources_toml());
        let manifest = ctx.read_manifest() + extra;
        fs_err::write(ctx.manifest_path(), manifest).expect("write manifest.toml");
        let env = PushEnv { ctx, local: None };
        env.ok(&["upgrade"]);
        Some(env)
    }

    fn cairn(&self) -> Command {
        let mut cmd = self.ctx.cairn();
        if self.local.is_none() {
            cmd.env("CAIRN_CACHE_DIR", shared_cache_dir("registry"));
        }
        // Small chunks, so the cairn layer (megabytes) goes up as PATCHes.
        cmd.env("CAIRN_PUSH_CHUNK_SIZE", (1 << 20).to_string());
        cmd
    }

    fn ok(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_success(self.cairn().args(args))
    }

    fn err(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_failure(self.cairn().args(args))
    }

    /// Builds the image (recording it for `cairn push`) without loading it anywhere.
    fn build(&self) {
        let out = self.ctx.root.path().join("image.tar");
        self.ok(&["containerize", "-f", &out.to_string_lossy()]);
    }

    /// `cairn push TARGET --json ARGS...`, parsed.
    fn push_json(&self, target: &str, args: &[&str]) -> Summary {
        let mut all = vec!["push", target, "--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        Summary::parse(&out)
    }
}

fn write_manifest(ctx: &TestContext, installs: &str) {
    let path = ctx.manifest_path();
    fs_err::create_dir_all(path.parent().expect("env dir")).expect("create env dir");
    let text = format!(
        "version = 1\n\n[install]\n{installs}\n[containerize]\nname = \"hello\"\ntag = \"latest\"\n"
    );
    fs_err::write(path, text).expect("write manifest.toml");
}

/// `cairn push --json`'s answer.
#[derive(Debug)]
struct Summary {
    reference: String,
    digest: String,
    uploaded: u64,
    skipped: u64,
    mounted: u64,
}

impl Summary {
    fn parse(out: &Output) -> Summary {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "push --json is not JSON: {e}\n{}\n{}",
                stdout_of(out),
                stderr_of(out)
            )
        });
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {v}"))
                .to_owned()
        };
        Summary {
            reference: s("reference"),
            digest: s("digest"),
            uploaded: n("uploaded"),
            skipped: n("skipped"),
            mounted: n("mounted"),
        }
    }

    fn total(&self) -> u64 {
        self.uploaded + self.skipped + self.mounted
    }
}

/// `skopeo inspect` of a pushed image, parsed.
fn skopeo_inspect(reference: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]).args(extra);
    cmd.arg(format!("docker://{reference}"));
    let out = cairn_tests::context::expect_success(&mut cmd);
    serde_json::from_slice(&out.stdout).expect("skopeo inspect prints JSON")
}

fn assert_secret_free(out: &Output, secrets: &[&str]) {
    let text = format!("{}{}", stdout_of(out), stderr_of(out));
    for secret in secrets {
        assert!(!text.contains(secret), "output shows a secret:\n{text}");
    }
}

#[test]
fn hello_pushes_over_http_then_skips_mounts_and_runs_in_podman() {
    let Some(env) = PushEnv::real_hello() else {
        return;
    };
    let root = env.ctx.root.path();
    let registry = Registry::start(&root.join("registry"), &RegistryAuth::Anonymous, None);
    let prefix = registry.prefix("team");
    let out = env.ok(&["containerize", "--copy", "--registry", &prefix, INSECURE]);
    let reference = format!("{}/team/hello:latest", registry.host);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!("pushed {reference}@sha256:"))
            && stderr.contains("blobs uploaded"),
        "{stderr}"
    );
    let inspected = skopeo_inspect(&reference, &[]);
    let again = env.push_json(&prefix, &[INSECURE]);
    assert_eq!(inspected["Digest"].as_str(), Some(again.digest.as_str()));
    assert_eq!((again.uploaded, again.mounted), (0, 0), "{again:?}");
    assert_eq!(again.skipped, again.total());
    assert_eq!(again.reference, reference);
    let other = env.push_json(&registry.prefix("other"), &[INSECURE]);
    assert_eq!(
        (other.uploaded, other.mounted),
        (0, other.total()),
        "{other:?}"
    );
    skopeo_inspect(&format!("{}/other/hello:latest", registry.host), &[]);
    if require_tool("podman") {
        let pull = cairn_tests::context::expect_success(Command::new("podman").args([
            "pull",
            "-q",
            "--tls-verify=false",
            &reference,
        ]));
        let id = stdout_of(&pull).trim().to_owned();
        let run = cairn_tests::context::run_with_timeout(
            Command::new("podman").args(["run", "--rm", &reference, "hello"]),
        );
        let _ = Command::new("podman").args(["rmi", "-f", &id]).output();
        assert_eq!(stdout_of(&run), "Hello, world!\n", "{}", stderr_of(&run));
    }
}

/// `--tag` takes a full reference, as CI pipelines pass `$CI_REGISTRY_IMAGE:$TAG`;
/// `--copy` without `--registry` pushes there, and a bad tag fails before
/// anything is built.
#[test]
fn a_full_reference_tag_names_the_image_and_the_push() {
    let Some(env) = PushEnv::local() else {
        return;
    };
    let registry = Registry::start(
        &env.ctx.root.path().join("registry"),
        &RegistryAuth::Anonymous,
        None,
    );
    let reference = format!("{}/team/app:v1.0", registry.host);
    let out = env.ok(&["containerize", "--tag", &reference, "--copy", INSECURE]);
    assert!(
        stderr_of(&out).contains(&format!("pushed {reference}@sha256:")),
        "{}",
        stderr_of(&out)
    );
    skopeo_inspect(&reference, &[]);
    let bad = env.err(&["containerize", "--tag", "Bad:Tag!", "-f", "/dev/null"]);
    assert!(
        stderr_of(&bad).contains("Bad:Tag!") && !stderr_of(&bad).contains("built"),
        "{}",
        stderr_of(&bad)
    );
}

#[test]
fn only_changed_blobs_are_uploaded() {
    let Some(mut env) = PushEnv::local() else {
        return;
    };
    let registry = Registry::start(
        &env.ctx.root.path().join("registry"),
        &RegistryAuth::Anonymous,
        None,
    );
    let target = format!("{}/team/hello:latest", registry.host);
    env.build();
    let first = env.push_json(&target, &[INSECURE]);
    assert_eq!(first.uploaded, first.total(), "{first:?}");
    env.build();
    let unchanged = env.push_json(&target, &[INSECURE]);
    assert_eq!(unchanged.uploaded, 0, "an unchanged image uploads nothing");

    // A new hello: its layer, the configuration layer (dpkg status), the top
    // layer (lock) and the config.
    let (archive, _) = env.local.as_mut().expect("local archive");
    archive.publish(&[DebSpec::with_program("hello", "1.1-1").depends("libgreet1 (>= 1.0)")]);
    env.ok(&["upgrade"]);
    env.build();
    let one_package = env.push_json(&target, &[INSECURE]);
    assert_eq!(one_package.uploaded, 4, "{one_package:?}");
    assert_eq!(one_package.total(), first.total());

    // One more package: its layer, the configuration and top layers, the config.
    env.ok(&["install", "cowsay-lite"]);
    env.build();
    let added = env.push_json(&target, &[INSECURE]);
    assert_eq!(added.uploaded, 4, "{added:?}");
    assert_eq!(added.total(), first.total() + 1);

    // Only [vars]: the top layer (it carries the manifest) and the config.
    let manifest = env.ctx.read_manifest() + "\n[vars]\nGREETING = \"hi\"\n";
    fs_err::write(env.ctx.manifest_path(), manifest).expect("write manifest");
    env.build();
    let vars = env.push_json(&target, &[INSECURE]);
    assert_eq!(vars.uploaded, 2, "{vars:?}");
    let inspected = skopeo_inspect(&target, &[]);
    assert_eq!(inspected["Digest"].as_str(), Some(vars.digest.as_str()));
}

#[test]
fn basic_auth_over_tls_with_flags_auth_files_and_a_trusted_ca() {
    let Some(env) = PushEnv::local() else { return };
    let root = env.ctx.root.path();
    let ca = TestCa::generate(&root.join("certs"));
    let auth = RegistryAuth::Htpasswd {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let registry = Registry::start(&root.join("registry"), &auth, Some(&ca));
    let target = format!("{}/team/hello:latest", registry.host);
    env.build();
    let creds = format!("--copy-args=--dest-creds {USER}:{PASSWORD} --dest-tls-verify=false");
    let first = env.push_json(&target, &[&creds]);
    assert_eq!(first.uploaded, first.total());

    // Verified TLS through the test CA, credentials from $REGISTRY_AUTH_FILE.
    let cert_dir = ca.cert_dir(&root.join("cert-dir"));
    let auth_file = root.join("auth.json");
    let basic = base64_of(&format!("{USER}:{PASSWORD}"));
    let auths = format!(
        r#"{{"auths":{{"{}":{{"auth":"{basic}"}}}}}}"#,
        registry.host
    );
    fs_err::write(&auth_file, auths).expect("write auth.json");
    let verified = format!("--copy-args=--dest-cert-dir {}", cert_dir.display());
    let mut cmd = env.cairn();
    cmd.env("REGISTRY_AUTH_FILE", &auth_file)
        .args(["push", &target, "--json", &verified]);
    let again = Summary::parse(&cairn_tests::context::expect_success(&mut cmd));
    assert_eq!(again.skipped, again.total(), "{again:?}");

    let wrong = format!("--copy-args=--dest-creds {USER}:wrong-pass-123 --dest-tls-verify=false");
    let out = env.err(&["push", &target, &wrong]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&registry.host)
            && stderr.contains("rejected the credentials")
            && stderr.contains(USER),
        "{stderr}"
    );
    assert_secret_free(&out, &["wrong-pass-123", PASSWORD]);

    let out = env.err(&["push", &target, INSECURE]);
    assert!(
        stderr_of(&out).contains("--dest-creds"),
        "{}",
        stderr_of(&out)
    );

    let out = env.err(&[
        "push",
        &target,
        &format!("--copy-args=--dest-creds {USER}:{PASSWORD}"),
    ]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("TLS") && stderr.contains("--dest-tls-verify=false"),
        "{stderr}"
    );
    assert_secret_free(&out, &[PASSWORD]);

    let creds_flag = format!("--creds={USER}:{PASSWORD}");
    let inspected = skopeo_inspect(&target, &[&creds_flag]);
    assert_eq!(inspected["Digest"].as_str(), Some(first.digest.as_str()));

    // With no flag, the CA that podman would trust for this registry
    // (`~/.config/containers/certs.d/HOST:PORT/ca.crt`) is trusted too.
    let config_home = root.join("config");
    let engine_dir = config_home.join("containers/certs.d").join(&registry.host);
    fs_err::create_dir_all(&engine_dir).unwrap();
    for entry in fs_err::read_dir(&cert_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "crt") {
            fs_err::copy(&path, engine_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut cmd = env.cairn();
    cmd.env("REGISTRY_AUTH_FILE", &auth_file)
        .env("XDG_CONFIG_HOME", &config_home)
        .args(["push", &target, "--json"]);
    let trusted = Summary::parse(&cairn_tests::context::expect_success(&mut cmd));
    assert_eq!(trusted.skipped, trusted.total(), "{trusted:?}");
}

#[test]
fn bearer_tokens_from_a_token_server_push_and_mount() {
    let Some(env) = PushEnv::local() else { return };
    let root = env.ctx.root.path();
    let tokens = TokenServer::start(&root.join("token"), USER, PASSWORD);
    let auth = RegistryAuth::Token {
        realm: tokens.realm.clone(),
        cert: tokens.cert.clone(),
    };
    let registry = Registry::start(&root.join("registry"), &auth, None);
    env.build();
    let creds = format!("--copy-args=--dest-creds {USER}:{PASSWORD} --dest-tls-verify=false");
    let target = format!("{}/team/hello:latest", registry.host);
    let first = env.push_json(&target, &[&creds]);
    assert_eq!(
        first.uploaded,
        first.total(),
        "{first:?}\n{}",
        registry.log_text()
    );
    let mounted = env.push_json(&format!("{}/other/hello:latest", registry.host), &[&creds]);
    assert_eq!(mounted.mounted, mounted.total(), "{mounted:?}");
    let scopes = tokens.scopes();
    assert!(
        scopes
            .iter()
            .any(|s| s == "repository:team/hello:pull,push"),
        "{scopes:?}"
    );
    assert!(
        scopes.iter().any(|s| s == "repository:team/hello:pull"),
        "mount source: {scopes:?}"
    );

    let wrong = format!("--copy-args=--dest-creds {USER}:nope-nope --dest-tls-verify=false");
    let out = env.err(&["push", &target, &wrong]);
    assert!(
        stderr_of(&out).contains("rejected the credentials"),
        "{}",
        stderr_of(&out)
    );
    assert_secret_free(&out, &["nope-nope", PASSWORD]);
    let creds_flag = format!("--creds={USER}:{PASSWORD}");
    skopeo_inspect(&target, &[&creds_flag]);
}

#[test]
fn bad_destinations_fail_with_clear_secret_free_errors() {
    let Some(env) = PushEnv::local() else { return };
    let out = env.err(&["push", "127.0.0.1:5000/team/hello:latest", INSECURE]);
    assert!(
        stderr_of(&out).contains("run `cairn containerize` first"),
        "{}",
        stderr_of(&out)
    );
    env.build();

    let dead = format!("127.0.0.1:{}/team/hello:latest", free_port());
    let args = "--copy-args=--retry-times 1 --dest-tls-verify=false --dest-creds u:sekrit-pw";
    let out = env.err(&["push", &dead, args]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("cannot reach registry 127.0.0.1:"),
        "{stderr}"
    );
    assert_secret_free(&out, &["sekrit-pw"]);

    let out = env.err(&["push", "127.0.0.1:5000/Team/Hello:latest", INSECURE]);
    assert!(stderr_of(&out).contains("invalid image reference '127.0.0.1:5000/Team/Hello:latest'"));

    let out = env.err(&[
        "push",
        "127.0.0.1:5000/team/hello:latest",
        "--copy-args=--dest-frob x",
    ]);
    assert!(
        stderr_of(&out).contains("unknown --copy-args: --dest-frob"),
        "{}",
        stderr_of(&out)
    );

    let fake = NameUnknownRegistry::start();
    let target = format!("{}/team/hello:latest", fake.host);
    let out = env.err(&["push", &target, INSECURE]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!(
            "repository team/hello is unknown to registry {}",
            fake.host
        )) && stderr.contains("NAME_UNKNOWN"),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_push_completes_when_rerun_and_blips_are_retried() {
    let Some(env) = PushEnv::local() else { return };
    let registry = Registry::start(
        &env.ctx.root.path().join("registry"),
        &RegistryAuth::Anonymous,
        None,
    );
    env.build();
    // The registry "goes away" after 1 MiB: the push fails, naming it.
    let outage = CutProxy::start(&registry.host, 1 << 20, false);
    let via_outage = format!("{}/team/hello:latest", outage.host);
    let args = "--copy-args=--dest-tls-verify=false --retry-times 0";
    let out = env.err(&["push", &via_outage, args]);
    assert!(outage.has_cut());
    assert!(
        stderr_of(&out).contains(&outage.host),
        "{}",
        stderr_of(&out)
    );
    drop(outage);
    let target = format!("{}/team/hello:latest", registry.host);
    let rerun = env.push_json(&target, &[INSECURE]);
    assert!(rerun.uploaded >= 1, "{rerun:?}");
    skopeo_inspect(&target, &[]);

    // A blip on another repository: retried within one run.
    let blip = CutProxy::start(&registry.host, 1 << 20, true);
    let fresh = format!("{}/{}/hello:latest", blip.host, unique_name("blip"));
    let out = env.ok(&["push", &fresh, INSECURE]);
    assert!(blip.has_cut());
    assert!(stderr_of(&out).contains("retry 1"), "{}", stderr_of(&out));
}

/// A registry that answers `/v2/` and then says no repository exists.
struct NameUnknownRegistry {
    host: String,
    server: std::sync::Arc<tiny_http::Server>,
}

impl NameUnknownRegistry {
    fn start() -> NameUnknownRegistry {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let serving = server.clone();
        std::thread::spawn(move || {
            for request in serving.incoming_requests() {
                let (status, body) = if request.url() == "/v2/" {
                    (200, "{}".to_owned())
                } else if *request.method() == tiny_http::Method::Head {
                    // HEAD answers carry no body, as from a real registry.
                    (404, String::new())
                } else {
                    (404, r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#.to_owned())
                };
                let _ = request
                    .respond(tiny_http::Response::from_string(body).with_status_code(status));
            }
        });
        NameUnknownRegistry {
            host: format!("127.0.0.1:{port}"),
            server,
        }
    }
}

impl Drop for NameUnknownRegistry {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The ELF machine (`e_machine`) of `usr/bin/hello` in whichever of `layers`
/// (gzip blobs fetched from the registry) holds it.
fn hello_machine(
    registry: &str,
    repository: &str,
    layers: &[String],
    scratch: &std::path::Path,
) -> u16 {
    for (i, digest) in layers.iter().enumerate() {
        let url = format!("http://{registry}/v2/{repository}/blobs/{digest}");
        let mut body = ureq::get(&url).call().expect("GET blob").into_body();
        let blob = body
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("read blob");
        let path = scratch.join(format!("layer-{i}.tar.gz"));
        fs_err::write(&path, blob).expect("write blob");
        let out = Command::new("tar")
            .args([
                "-xzOf",
                &path.to_string_lossy(),
                "--wildcards",
                "*usr/bin/hello",
            ])
            .output()
            .expect("run tar");
        if out.status.success() && out.stdout.starts_with(b"\x7fELF") {
            return u16::from_le_bytes([out.stdout[0x12], out.stdout[0x13]]);
        }
    }
    panic!("no layer of {repository} holds usr/bin/hello");
}

#[test]
fn multi_arch_index_carries_amd64_and_arm64_binaries() {
    let systems = "\n[options]\nsystems = [\"x86_64-linux\", \"aarch64-linux\"]\n";
    let Some(env) = PushEnv::real_hello_with(systems) else {
        return;
    };
    let root = env.ctx.root.path();
    let registry = Registry::start(&root.join("registry"), &RegistryAuth::Anonymous, None);
    env.ok(&[
        "containerize",
        "--copy",
        "--registry",
        &registry.prefix("multi"),
        INSECURE,
    ]);
    let reference = format!("{}/multi/hello:latest", registry.host);

    let raw = skopeo_inspect(&reference, &["--raw"]);
    assert_eq!(
        raw["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    let manifests = raw["manifests"]
        .as_array()
        .expect("an index lists manifests");
    let arches: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"], "{raw}");

    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    for (manifest, machine) in manifests.iter().zip([EM_X86_64, EM_AARCH64]) {
        let digest = manifest["digest"].as_str().expect("digest");
        let by_digest = format!("{}/multi/hello@{digest}", registry.host);
        let image = skopeo_inspect(&by_digest, &["--raw"]);
        let layers: Vec<String> = image["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().unwrap_or_default().to_owned())
            .collect();
        let config = skopeo_inspect(&by_digest, &["--config"]);
        assert_eq!(config["architecture"], manifest["platform"]["architecture"]);
        assert_eq!(
            hello_machine(&registry.host, "multi/hello", &layers, root),
            machine
        );
    }

    // The same index as an OCI archive, and one platform alone with --system.
    let archive = root.join("multi.tar");
    env.ok(&[
        "containerize",
        "--format",
        "oci-archive",
        "-f",
        &archive.to_string_lossy(),
    ]);
    let mut inspect = Command::new("skopeo");
    inspect
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", archive.display()));
    let local: serde_json::Value =
        serde_json::from_slice(&cairn_tests::context::expect_success(&mut inspect).stdout)
            .expect("JSON");
    assert_eq!(
        local["manifests"].as_array().map(Vec::len),
        Some(2),
        "{local}"
    );
    let arm = root.join("arm.tar");
    env.ok(&[
        "containerize",
        "--system",
        "aarch64-linux",
        "-f",
        &arm.to_string_lossy(),
    ]);
    let mut inspect = Command::new("skopeo");
    inspect
        .arg("inspect")
        .args(["--override-arch", "arm64"])
        .arg(format!("oci-archive:{}", arm.display()));
    let single: serde_json::Value =
        serde_json::from_slice(&cairn_tests::context::expect_success(&mut inspect).stdout)
            .expect("JSON");
    assert_eq!(single["Architecture"], "arm64", "{single}");
    let out = env.err(&[
        "containerize",
        "--system",
        "riscv64-linux",
        "-f",
        "never.tar",
    ]);
    assert!(
        stderr_of(&out).contains("--system riscv64-linux is not one of the environment's systems")
    );
}

#[test]
fn remote_environment_rebuilds_the_pushed_image_byte_for_byte() {
    let Some(env) = PushEnv::local() else {
        return;
    };
    let root = env.ctx.root.path();
    let registry = Registry::start(&root.join("registry"), &RegistryAuth::Anonymous, None);
    let reference = format!("{}/team/hello:latest", registry.host);
    env.build();
    env.push_json(&reference, &[INSECURE]);

    // Elsewhere: no environment, an empty cache, only the reference.
    let other = TestContext::new();
    let rebuilt = other.root.path().join("rebuilt.tar");
    let remote_args = "--remote-args=--tls-verify=false";
    let out = cairn_tests::context::expect_success(other.cairn().args([
        "containerize",
        "-r",
        &reference,
        remote_args,
        "-f",
        &rebuilt.to_string_lossy(),
    ]));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("read environment 'hello'") && stderr.contains("✓ reproduced"),
        "{stderr}"
    );
    assert!(
        fs_err::read(root.join("image.tar")).expect("first archive")
            == fs_err::read(&rebuilt).expect("rebuilt archive"),
        "the rebuilt archive differs from the pushed image's"
    );

    let missing = other.root.path().join("missing.tar");
    let out = cairn_tests::context::expect_failure(other.cairn().args([
        "containerize",
        "-r",
        &format!("{}/team/nothing:latest", registry.host),
        remote_args,
        "-f",
        &missing.to_string_lossy(),
    ]));
    assert!(
        stderr_of(&out).contains("is not in the registry"),
        "{}",
        stderr_of(&out)
    );
    assert!(!missing.exists(), "a failed -r left {}", missing.display());
    let out = cairn_tests::context::expect_failure(other.cairn().args([
        "containerize",
        "-r",
        &reference,
        "-d",
        &other.work.to_string_lossy(),
    ]));
    assert!(
        stderr_of(&out).contains("cannot be used with"),
        "{}",
        stderr_of(&out)
    );
}
