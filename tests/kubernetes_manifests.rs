//! `cairn generate kubernetes` end to end: the manifests it prints pass
//! `kubernetes-validate --strict` (offline OpenAPI schemas) for Kubernetes
//! 1.30 and the newest version the validator ships, and carry every field of
//! `[containerize.config]`: ports, volumes (with their claims), the numeric
//! user, working directory, vars, the stop signal and the health check.
//!
//! The environment is locked against a signed local archive (no network).
//! The validator comes from PyPI into a venv (`.ci/setup`); the test finds it
//! through `$CAIRN_KUBERNETES_VALIDATE`, then
//! [`DEFAULT_VALIDATOR`], then `PATH`, and skips locally (fails on CI) when
//! none is there.

use cairn_tests::tools::{find_on_path, in_ci};
use cairn_tests::{DebSpec, TestContext, stderr_of, stdout_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `.ci/setup` installs kubernetes-validate.
const DEFAULT_VALIDATOR: &str = "/opt/cairn-ci/kubernetes-validate/bin/kubernetes-validate";

/// The versions validated against: the oldest supported, and the newest the
/// pinned validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

const CONFIG: &str = r#"
[vars]
GREETING = "hello"

[containerize.config]
user = "1234:5678"
exposed-ports = ["8080/tcp", "53/udp"]
volumes = ["/data", "/var/cache/app"]
working-dir = "/data"
stop-signal = "SIGINT"
healthcheck = { command = ["greet", "--check"], interval = "10s", timeout = "3s", retries = 4, start-period = "1m" }
"#;

fn validator() -> Option<PathBuf> {
    let found = std::env::var_os("CAIRN_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(DEFAULT_VALIDATOR)).filter(|p| p.is_file()))
        .or_else(|| find_on_path("kubernetes-validate"));
    if found.is_none() {
        let problem = format!(
            "kubernetes-validate not installed (looked at $CAIRN_KUBERNETES_VALIDATE, {DEFAULT_VALIDATOR} and PATH); .ci/setup installs it"
        );
        assert!(!in_ci(), "{problem}");
        eprintln!("skipping: {problem}");
    }
    found
}

/// Validates `yaml` strictly against every version; returns the failures.
fn validate(validator: &Path, yaml: &str, scratch: &Path) -> Vec<String> {
    let file = scratch.join("manifests.yaml");
    fs_err::write(&file, yaml).expect("write manifests");
    KUBERNETES_VERSIONS
        .iter()
        .filter_map(|version| {
            let out = cairn_tests::context::run_with_timeout(
                Command::new(validator)
                    .args(["--strict", "--kubernetes-version", version])
                    .arg(&file),
            );
            (!out.status.success()).then(|| {
                format!(
                    "Kubernetes {version}:\n{}{}",
                    stdout_of(&out),
                    stderr_of(&out)
                )
            })
        })
        .collect()
}

/// An environment of one local package with [`CONFIG`], locked.
fn locked_env() -> (TestContext, cairn_tests::HttpServer) {
    locked_env_with(CONFIG)
}

/// An environment of one local package with `config` tables, locked.
fn locked_env_with(config: &str) -> (TestContext, cairn_tests::HttpServer) {
    let ctx = TestContext::new();
    let (archive, server) = ctx.serve_archive(&[DebSpec::with_program("greet", "1.0-1")]);
    let manifest = format!(
        "version = 1\n\n[install]\ngreet.pkg = \"greet\"\n\n[options]\nessential = false\n\n[containerize]\nname = \"team/web_app\"\ntag = \"1.0\"\n{config}"
    );
    let path = ctx.manifest_path();
    fs_err::create_dir_all(path.parent().expect("manifest dir")).expect("create env dir");
    fs_err::write(&path, manifest).expect("write manifest.toml");
    ctx.write_manifest_sources(&server, &archive);
    ctx.run_ok(&["upgrade"]);
    (ctx, server)
}

/// The YAML documents as JSON, through Python's YAML reader (the validator
/// brings PyYAML), so the test reads what kubectl would.
fn documents(validator: &Path, yaml: &str) -> Vec<serde_json::Value> {
    let python = validator.with_file_name("python3");
    let python = if python.is_file() {
        python
    } else {
        PathBuf::from("python3")
    };
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
    ]);
    let (out, _) = {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("write yaml");
        (child.wait_with_output().expect("python3"), ())
    };
    assert!(out.status.success(), "YAML unreadable: {}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

#[test]
fn generated_manifests_validate_and_carry_the_config() {
    let Some(validator) = validator() else {
        return;
    };
    let (ctx, _server) = locked_env();
    let scratch = ctx.root.path().join("scratch");
    fs_err::create_dir_all(&scratch).expect("scratch");

    let out = ctx.run_ok(&["generate", "kubernetes"]);
    let yaml = stdout_of(&out);
    let failures = validate(&validator, &yaml, &scratch);
    assert!(
        failures.is_empty(),
        "{}\n--- YAML\n{yaml}",
        failures.join("\n")
    );

    let docs = documents(&validator, &yaml);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Service",
            "PersistentVolumeClaim",
            "PersistentVolumeClaim"
        ],
        "{yaml}"
    );
    let deployment = &docs[0];
    assert_eq!(deployment["metadata"]["name"], "web-app");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "team/web_app:1.0");
    assert_eq!(
        container["ports"],
        serde_json::json!([
            {"name": "tcp-8080", "containerPort": 8080, "protocol": "TCP"},
            {"name": "udp-53", "containerPort": 53, "protocol": "UDP"},
        ])
    );
    assert_eq!(
        container["securityContext"],
        serde_json::json!({"runAsUser": 1234, "runAsGroup": 5678})
    );
    assert_eq!(container["workingDir"], "/data");
    assert_eq!(
        container["env"],
        serde_json::json!([{"name": "GREETING", "value": "hello"}])
    );
    assert_eq!(
        container["lifecycle"]["preStop"]["exec"]["command"],
        serde_json::json!(["sh", "-c", "kill -s INT 1"])
    );
    let probe_command =
        serde_json::json!(["/opt/cairn/bin/cairn", "activate", "--", "greet", "--check"]);
    for probe in ["livenessProbe", "readinessProbe"] {
        let p = &container[probe];
        assert_eq!(p["exec"]["command"], probe_command, "{probe}: {p}");
        assert_eq!(p["periodSeconds"], 10, "{probe}");
        assert_eq!(p["timeoutSeconds"], 3, "{probe}");
        assert_eq!(p["failureThreshold"], 4, "{probe}");
    }
    assert_eq!(container["livenessProbe"]["initialDelaySeconds"], 60);
    let mounts: Vec<(&str, &str)> = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .filter_map(|m| Some((m["name"].as_str()?, m["mountPath"].as_str()?)))
        .collect();
    assert_eq!(
        mounts,
        [
            ("web-app-data", "/data"),
            ("web-app-var-cache-app", "/var/cache/app")
        ]
    );
    assert_eq!(
        pod["volumes"][1]["persistentVolumeClaim"]["claimName"],
        "web-app-var-cache-app"
    );
    assert_eq!(docs[2]["metadata"]["name"], "web-app-data");
    let service = &docs[1];
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(service["spec"]["ports"][1]["protocol"], "UDP");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // --image names the image; the output is otherwise the same.
    let out = ctx.run_ok(&[
        "generate",
        "kubernetes",
        "--image",
        "registry.example.com/web:2",
    ]);
    assert_eq!(
        documents(&validator, &stdout_of(&out))[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/web:2"
    );
}

#[test]
fn imageless_pods_name_the_runtime_handler_and_environment() {
    let Some(validator) = validator() else {
        return;
    };
    let (ctx, _server) = locked_env();
    let scratch = ctx.root.path().join("scratch");
    fs_err::create_dir_all(&scratch).expect("scratch");
    let reference = "registry.example.com/team/web-env:1.0";
    let out = ctx.run_ok(&[
        "generate",
        "kubernetes",
        "--imageless",
        "--environment",
        reference,
    ]);
    let yaml = stdout_of(&out);
    let failures = validate(&validator, &yaml, &scratch);
    assert!(
        failures.is_empty(),
        "{}\n--- YAML\n{yaml}",
        failures.join("\n")
    );
    let docs = documents(&validator, &yaml);
    let template = &docs[0]["spec"]["template"];
    assert_eq!(template["spec"]["runtimeClassName"], "cairn");
    assert_eq!(
        template["metadata"]["annotations"]["cairn.dev/environment"],
        reference
    );
    assert_eq!(template["spec"]["containers"][0]["image"], "");

    // --imageless needs the environment it runs.
    let out = ctx.run_err(&["generate", "kubernetes", "--imageless"]);
    assert!(
        stderr_of(&out).contains("--environment"),
        "{}",
        stderr_of(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn run_as_ids_are_the_images_own_and_label_checks_convert() {
    let Some(validator) = validator() else {
        return;
    };
    // The seed's label form of a health check rides along: it is converted
    // (and said so), and becomes the probes.
    let (ctx, _server) = locked_env_with(
        "\n[containerize.config]\nuser = \"app\"\nlabels = { healthcheck = \"greet\" }\n",
    );
    let out = ctx.run_ok(&["generate", "kubernetes"]);
    assert!(
        stderr_of(&out).contains("labels.healthcheck became the image's health check"),
        "{}",
        stderr_of(&out)
    );
    let docs = documents(&validator, &stdout_of(&out));
    let container = &docs[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["exec"]["command"],
        serde_json::json!([
            "/opt/cairn/bin/cairn",
            "activate",
            "--",
            "sh",
            "-c",
            "greet"
        ])
    );
    assert!(container.get("labels").is_none());
    let context = &container["securityContext"];

    // The ids /etc/passwd in the image gives the user.
    let archive = ctx.root.path().join("image.tar");
    let mut build = ctx.cairn();
    build.args(["containerize", "-f"]).arg(&archive);
    cairn_tests::context::expect_success(&mut build);
    let layout = cairn_tests::images::OciLayout::unpack(&archive);
    let configuration = layout
        .layers()
        .into_iter()
        .find(|l| l.created_by == "cairn: package configuration")
        .expect("a package configuration layer");
    let passwd = layout.layer_file(&configuration.digest, "etc/passwd");
    let fields: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("app:"))
        .unwrap_or_else(|| panic!("no app in /etc/passwd:\n{passwd}"))
        .split(':')
        .collect();
    assert_eq!(context["runAsUser"].to_string(), fields[2], "{context}");
    assert_eq!(context["runAsGroup"].to_string(), fields[3], "{context}");
}
