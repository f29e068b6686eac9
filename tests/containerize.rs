//! `cairn containerize` end to end: real Debian packages become images that
//! Docker, Podman, containerd, skopeo and umoci accept and run; the config
//! fields reach the engine; rebuilds are byte-identical; layers are shared
//! between environments; `max-layers` holds; and bad input fails cleanly,
//! leaving no partial output behind.
//!
//! Tests that need Debian's archive skip with a message when it does not
//! answer; tests that need an engine or tool skip locally and fail on CI when
//! it is missing. `.deb`s and layers go to one cache shared by every test of
//! the build ([`shared_cache_dir`]), so a package is fetched and compressed
//! once; every test uses its own image name and tag and removes what it loads.

use cairn_tests::images::{
    Container, Engine, LoadedImage, OciLayout, command_like, containerd_ready, ctr, dir_entries,
    http_get_until, pipe_into, shared_cache_dir, shell_quote, unique_name,
};
use cairn_tests::{
    DebSpec, HttpServer, LocalArchive, TestContext, require_tool, stderr_of, stdout_of,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// How long the flask container may take to answer its first request.
const HTTP_DEADLINE: Duration = Duration::from_secs(90);

/// The cache shared by every test in this file.
fn shared_cache() -> PathBuf {
    shared_cache_dir("containerize")
}

/// A locked environment in its own test context whose cairn runs use the
/// shared cache, with a unique image name and tag.
struct ImageEnv {
    ctx: TestContext,
    name: String,
    tag: String,
}

impl ImageEnv {
    /// An environment resolved against the machine's real Debian mirror, or
    /// `None` (with a message) when the mirror does not answer. `extra` is TOML
    /// appended after `[containerize]`'s name and tag: more `[containerize]`
    /// keys first, then any other tables.
    fn real(test: &str, packages: &[&str], extra: &str) -> Option<ImageEnv> {
        let archive = cairn_tests::reachable_real_archive()?;
        let env = ImageEnv::with_manifest(test, packages, extra);
        env.ctx.set_sources(&archive.sources_toml());
        env.cairn_ok(&["upgrade"]);
        Some(env)
    }

    /// An environment resolved against a signed local archive holding one
    /// package, `greet` (no network needed); the server must outlive the env's
    /// first `upgrade`, so it is returned too.
    fn local(test: &str) -> (ImageEnv, LocalArchive, HttpServer) {
        let env = ImageEnv::with_manifest(test, &["greet"], "\n[containerize.config]\n");
        let (archive, server) = env
            .ctx
            .serve_archive(&[DebSpec::with_program("greet", "1.0-1")]);
        env.ctx.write_manifest_sources(&server, &archive);
        env.cairn_ok(&["upgrade"]);
        (env, archive, server)
    }

    fn with_manifest(test: &str, packages: &[&str], extra: &str) -> ImageEnv {
        let ctx = TestContext::new();
        let name = format!("cairn-e2e-{test}");
        let tag = unique_name("t");
        let installs: String = packages
            .iter()
            .map(|p| format!("{p}.pkg = \"{p}\"\n"))
            .collect();
        let manifest = format!(
            "version = 1\n\n[install]\n{installs}\n[containerize]\nname = \"{name}\"\ntag = \"{tag}\"\n{extra}"
        );
        let path = ctx.manifest_path();
        fs_err::create_dir_all(path.parent().expect("manifest dir")).expect("create env dir");
        fs_err::write(&path, manifest).expect("write manifest.toml");
        ImageEnv { ctx, name, tag }
    }

    /// `name:tag`.
    fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// `cairn` in the environment, with the shared cache.
    fn cairn(&self) -> Command {
        let mut cmd = self.ctx.cairn();
        cmd.env("CAIRN_CACHE_DIR", shared_cache());
        cmd
    }

    fn cairn_ok(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_success(self.cairn().args(args))
    }

    fn cairn_err(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_failure(self.cairn().args(args))
    }

    /// `cairn containerize -f PATH ARGS...`, asserting success.
    fn containerize_to(&self, path: &Path, args: &[&str]) -> Output {
        let mut cmd = self.cairn();
        cmd.args(["containerize", "-f"]).arg(path).args(args);
        cairn_tests::context::expect_success(&mut cmd)
    }

    /// `cairn containerize -f - | ENGINE load`, asserting both succeed.
    fn pipe_into_engine(&self, engine: Engine) -> LoadedImage {
        let mut cairn = self.cairn();
        cairn.args(["containerize", "-f", "-"]);
        let mut load = engine.command(&["load"]);
        let (built, loaded) = pipe_into(&mut cairn, &mut load);
        assert!(
            built.status.success() && loaded.status.success(),
            "`cairn containerize -f - | {} load` failed\n--- cairn stderr\n{}\n--- load stdout\n{}\n--- load stderr\n{}",
            engine.program(),
            stderr_of(&built),
            stdout_of(&loaded),
            stderr_of(&loaded),
        );
        engine.loaded(&loaded)
    }

    /// A scratch directory inside the test's temp root.
    fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.ctx.root.path().join(name);
        fs_err::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    /// The names of the locked packages.
    fn locked_names(&self) -> Vec<String> {
        let lock = self.ctx.read_lock();
        let mut names: Vec<String> = lock["packages"]
            .as_array_of_tables()
            .expect("[[packages]] in manifest.lock")
            .iter()
            .map(|p| p["name"].as_str().expect("package name").to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Replaces the manifest with `edit` applied to it, returning the original.
    fn edit_manifest(&self, edit: impl FnOnce(&mut toml_edit::DocumentMut)) -> String {
        let original = self.ctx.read_manifest();
        let mut doc: toml_edit::DocumentMut = original.parse().expect("manifest is TOML");
        edit(&mut doc);
        fs_err::write(self.ctx.manifest_path(), doc.to_string()).expect("write manifest.toml");
        original
    }
}

fn assert_hello(out: &Output) {
    assert_eq!(stdout_of(out), "Hello, world!\n", "{}", stderr_of(out));
}

fn sha256(path: &Path) -> String {
    cairn_store::sha256_file(path).expect("hash archive")
}

// 1. hello in every engine

#[test]
fn hello_streams_into_docker_load_and_runs() {
    if !Engine::Docker.ready() {
        return;
    }
    let Some(env) = ImageEnv::real("hello-docker", &["hello"], "") else {
        return;
    };
    let image = env.pipe_into_engine(Engine::Docker);
    assert_eq!(image.reference, env.reference());
    assert_hello(&image.run(&["hello"]));

    // Scanners (trivy, grype, syft) find packages in the distroless layout.
    let paths = image.exported_paths(&env.scratch("export"));
    for expected in [
        "var/lib/dpkg/status.d/hello",
        "var/lib/dpkg/status.d/libc6",
        "usr/bin/hello",
        "opt/cairn/bin/cairn",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not in the exported filesystem of {}",
            image.reference
        );
    }
}

#[test]
fn hello_streams_into_podman_load_and_runs() {
    if !Engine::Podman.ready() {
        return;
    }
    let Some(env) = ImageEnv::real("hello-podman", &["hello"], "") else {
        return;
    };
    let image = env.pipe_into_engine(Engine::Podman);
    assert!(
        image.reference.ends_with(&env.reference()),
        "podman loaded {} for {}",
        image.reference,
        env.reference()
    );
    assert_hello(&image.run(&["hello"]));
}

/// `--runtime ENGINE` loads the image itself and prints the loaded reference
/// on stdout (and nothing else there).
fn assert_runtime_flag_loads(engine: Engine, test: &str) {
    if !engine.ready() {
        return;
    }
    let Some(env) = ImageEnv::real(test, &["hello"], "") else {
        return;
    };
    let out = env.cairn_ok(&["containerize", "--runtime", engine.program()]);
    let reference = stdout_of(&out).trim().to_owned();
    let image = engine.adopt(&reference);
    assert!(
        reference.ends_with(&env.reference()) && !reference.contains('\n'),
        "stdout should be the loaded reference, got:\n{}",
        stdout_of(&out)
    );
    assert_hello(&image.run(&["hello"]));
    assert_eq!(
        dir_entries(&env.ctx.work),
        [".cairn"],
        "loading into a runtime leaves no archive behind"
    );
}

#[test]
fn runtime_docker_loads_and_prints_the_reference() {
    assert_runtime_flag_loads(Engine::Docker, "runtime-docker");
}

#[test]
fn runtime_podman_loads_and_prints_the_reference() {
    assert_runtime_flag_loads(Engine::Podman, "runtime-podman");
}

#[test]
fn containerd_imports_the_archive() {
    if !containerd_ready() {
        return;
    }
    let Some(env) = ImageEnv::real("containerd", &["hello"], "") else {
        return;
    };
    let archive = env.scratch("out").join("hello.tar");
    env.containerize_to(&archive, &[]);

    let namespace = "cairn-test";
    let reference = format!("docker.io/library/{}", env.reference());
    let import = cairn_tests::context::expect_success(&mut ctr(
        namespace,
        &["images", "import", &archive.to_string_lossy()],
    ));
    let listed = cairn_tests::context::expect_success(&mut ctr(namespace, &["images", "ls", "-q"]));
    let _ =
        cairn_tests::context::run_with_timeout(&mut ctr(namespace, &["images", "rm", &reference]));
    assert!(
        stdout_of(&listed).lines().any(|l| l.trim() == reference),
        "ctr images ls does not list {reference}\n--- import\n{}{}\n--- ls\n{}",
        stdout_of(&import),
        stderr_of(&import),
        stdout_of(&listed)
    );
}

// 2. a flask app with every config field

const FLASK_APP: &str = r#"import os, pwd
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    user = pwd.getpwuid(os.getuid()).pw_name
    return f"cairn flask uid={os.getuid()} user={user} cwd={os.getcwd()}\n"
"#;

#[test]
fn flask_image_serves_http_and_carries_every_config_field() {
    if !Engine::Docker.ready() {
        return;
    }
    let config = r#"
[containerize.config]
user = "app"
exposed-ports = ["5000/tcp"]
cmd = ["python3", "-m", "flask", "run", "--host", "0.0.0.0", "--port", "5000"]
volumes = ["/app"]
working-dir = "/app"
labels = { "org.opencontainers.image.title" = "cairn e2e flask", "com.example.team" = "tests" }
stop-signal = "SIGINT"

[vars]
FLASK_APP = "/app/app.py"
PYTHONUNBUFFERED = "1"
"#;
    let Some(env) = ImageEnv::real("flask", &["python3", "python3-flask"], config) else {
        return;
    };
    let app_dir = env.scratch("app");
    fs_err::write(app_dir.join("app.py"), FLASK_APP).expect("write app.py");
    set_mode(&app_dir, 0o755);
    set_mode(&app_dir.join("app.py"), 0o644);
    let image = env.pipe_into_engine(Engine::Docker);

    let volume = format!("{}:/app", app_dir.display());
    let container = Container::start(
        Engine::Docker,
        &["-p", "127.0.0.1:0:5000", "-v", &volume, &image.reference],
    );
    let url = format!("http://{}/", container.published("5000/tcp"));
    let body = http_get_until(&url, HTTP_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n--- container logs\n{}", container.logs()));
    assert!(
        body.starts_with("cairn flask uid=") && body.contains(" user=app cwd=/app\n"),
        "the app runs as `app` in /app, got: {body}"
    );
    assert!(!body.contains("uid=0 "), "{body}");
    drop(container);

    assert_config_fields(&image.config_json());
}

fn assert_config_fields(config: &serde_json::Value) {
    use serde_json::json;
    assert_eq!(config["User"], "app", "{config}");
    assert_eq!(config["ExposedPorts"], json!({"5000/tcp": {}}), "{config}");
    assert_eq!(
        config["Cmd"],
        json!([
            "python3", "-m", "flask", "run", "--host", "0.0.0.0", "--port", "5000"
        ]),
        "{config}"
    );
    assert_eq!(config["Volumes"], json!({"/app": {}}), "{config}");
    assert_eq!(config["WorkingDir"], "/app", "{config}");
    assert_eq!(
        config["Labels"],
        json!({"org.opencontainers.image.title": "cairn e2e flask", "com.example.team": "tests"}),
        "{config}"
    );
    assert_eq!(config["StopSignal"], "SIGINT", "{config}");
    assert_eq!(
        config["Entrypoint"],
        json!(["/opt/cairn/bin/cairn", "entrypoint", "--"]),
        "{config}"
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"FLASK_APP=/app/app.py"), "{env:?}");
    assert!(env.contains(&"PYTHONUNBUFFERED=1"), "{env:?}");
    assert!(
        env.iter()
            .any(|v| v.starts_with("PATH=") && v.contains("/usr/bin")),
        "{env:?}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

// 3. skopeo and umoci

#[test]
fn skopeo_and_umoci_read_every_format() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let Some(env) = ImageEnv::real("formats", &["hello"], "") else {
        return;
    };
    let out = env.scratch("out");
    let docker_tar = out.join("docker.tar");
    let oci_tar = out.join("oci.tar");
    let oci_dir = out.join("oci-dir");
    env.containerize_to(&docker_tar, &[]);
    env.containerize_to(&oci_tar, &["--format", "oci-archive"]);
    env.containerize_to(&oci_dir, &["--format", "oci-dir"]);

    let layout = OciLayout::open(&oci_dir);
    let digests: Vec<String> = layout.layers().into_iter().map(|l| l.digest).collect();
    let from_docker = skopeo_inspect(&format!("docker-archive:{}", docker_tar.display()));
    assert_eq!(from_docker["Architecture"], "amd64");
    assert_eq!(
        from_docker["Layers"].as_array().map(Vec::len),
        Some(digests.len()),
        "{from_docker}"
    );
    for (transport, path) in [("oci-archive", &oci_tar), ("oci", &oci_dir)] {
        let inspected = skopeo_inspect(&format!("{transport}:{}:{}", path.display(), env.tag));
        assert_eq!(
            inspected["Layers"],
            serde_json::json!(digests),
            "{transport}"
        );
    }

    let bundle = env.scratch("bundle").join("hello");
    let image_arg = format!("{}:{}", oci_dir.display(), env.tag);
    cairn_tests::context::expect_success(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image_arg])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    for file in [
        "usr/bin/hello",
        "var/lib/dpkg/status.d/hello",
        "opt/cairn/bin/cairn",
    ] {
        assert!(rootfs.join(file).is_file(), "umoci's rootfs lacks {file}");
    }
    assert!(
        rootfs.join("bin").is_symlink(),
        "merged /usr: /bin is a symlink"
    );
}

fn skopeo_inspect(image: &str) -> serde_json::Value {
    let out = cairn_tests::context::expect_success(Command::new("skopeo").args(["inspect", image]));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("skopeo inspect {image}: not JSON: {e}\n{}", stdout_of(&out)))
}

// 4. reproducibility and shared layers

#[test]
fn rebuilds_are_byte_identical_across_caches_and_time() {
    let Some(env) = ImageEnv::real("repro", &["hello"], "") else {
        return;
    };
    let out = env.scratch("out");
    let (first, second) = (out.join("first.tar"), out.join("second.tar"));
    env.containerize_to(&first, &[]);
    // Another second on the clock, and a cold cache that downloads and
    // compresses everything again.
    std::thread::sleep(Duration::from_millis(1100));
    let mut cold = env.ctx.cairn();
    cold.args(["containerize", "-f"]).arg(&second);
    cairn_tests::context::expect_success(&mut cold);
    assert!(
        env.ctx.cache.join("layers-v1").is_dir(),
        "the second build used its own cache"
    );
    assert_eq!(sha256(&first), sha256(&second), "archives differ");

    if !Engine::Docker.ready() {
        return;
    }
    let first_id = Engine::Docker.load_file(&first).id();
    let second_id = Engine::Docker.load_file(&second).id();
    assert_eq!(first_id, second_id);
}

/// The layer of package `name` (it must have one of its own).
fn layer_of(layout: &OciLayout, name: &str) -> String {
    let layers = layout.layers();
    layers
        .iter()
        .find(|l| l.packages() == [name])
        .map(|l| l.digest.clone())
        .unwrap_or_else(|| panic!("no layer for {name} alone in {layers:?}"))
}

#[test]
fn libc6_layer_is_the_same_in_different_environments() {
    let Some(hello) = ImageEnv::real("libc-hello", &["hello"], "") else {
        return;
    };
    let Some(python) = ImageEnv::real("libc-python", &["python3"], "") else {
        return;
    };
    let hello_tar = hello.scratch("out").join("hello.tar");
    let python_dir = python.scratch("out").join("python");
    hello.containerize_to(&hello_tar, &[]);
    python.containerize_to(&python_dir, &["--format", "oci-dir"]);
    let hello_layout = OciLayout::unpack(&hello_tar);
    let python_layout = OciLayout::open(&python_dir);
    assert_ne!(
        hello_layout.manifest(),
        python_layout.manifest(),
        "two different images"
    );
    assert_eq!(
        layer_of(&hello_layout, "libc6"),
        layer_of(&python_layout, "libc6")
    );
}

// 5. max-layers

#[test]
fn max_layers_gives_exactly_that_many_layers() {
    let Some(env) = ImageEnv::real("max-layers", &["python3"], "max-layers = 10\n") else {
        return;
    };
    let locked = env.locked_names();
    assert!(
        locked.len() > 10,
        "python3 needs more than 10 packages: {locked:?}"
    );
    let dir = env.scratch("out").join("image");
    env.containerize_to(&dir, &["--format", "oci-dir"]);
    let layout = OciLayout::open(&dir);
    let layers = layout.layers();
    assert_eq!(layers.len(), 10, "{layers:#?}");

    // Every locked package is in exactly one layer.
    let mut packed: Vec<String> = layers.iter().flat_map(|l| l.packages()).collect();
    packed.sort();
    assert_eq!(packed, locked);

    if Engine::Docker.ready() {
        let image = Engine::Docker.load_file(&dir_to_archive(&env, &dir));
        let out = image.run(&["python3", "-c", "import json, ssl; print('ok')"]);
        assert_eq!(stdout_of(&out), "ok\n", "{}", stderr_of(&out));
    }
}

/// The same image as a `docker load`-able archive (built again, from cache).
fn dir_to_archive(env: &ImageEnv, dir: &Path) -> PathBuf {
    let archive = dir.with_extension("tar");
    env.containerize_to(&archive, &[]);
    archive
}

#[test]
fn max_layers_below_what_cairn_needs_is_refused_naming_the_manifest() {
    // Package configuration, cairn's entrypoint and the environment take three
    // layers; packages need one more.
    let env = ImageEnv::with_manifest("max-layers-3", &["hello"], "max-layers = 3\n");
    for args in [&["upgrade"][..], &["containerize", "-f", "never.tar"]] {
        let out = env.cairn_err(args);
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains("manifest.toml") && stderr.contains("max-layers: 3 is out of range"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("from 4 to 125"), "{stderr}");
    }
    assert!(!env.ctx.work.join("never.tar").exists());
    assert!(
        !env.ctx.lock_path().exists(),
        "a refused manifest must not be locked"
    );
}

// 6. bad input

#[test]
fn invalid_config_values_fail_naming_the_manifest_and_value() {
    let (env, _archive, _server) = ImageEnv::local("bad-config");
    let out_dir = env.scratch("out");
    let cases: [(&str, toml_edit::Value, &str); 4] = [
        (
            "exposed-ports",
            toml_edit::Value::from_iter(["80000/tcp"]),
            "80000/tcp",
        ),
        (
            "exposed-ports",
            toml_edit::Value::from_iter(["5000/sctp"]),
            "5000/sctp",
        ),
        ("volumes", toml_edit::Value::from_iter(["data"]), "data"),
        ("stop-signal", toml_edit::Value::from("SIGNOPE"), "SIGNOPE"),
    ];
    for (key, value, shown) in cases {
        let original = env.edit_manifest(|doc| {
            doc["containerize"]["config"][key] = toml_edit::value(value.clone());
        });
        let out = env.cairn_err(&[
            "containerize",
            "-f",
            &out_dir.join("x.tar").to_string_lossy(),
        ]);
        fs_err::write(env.ctx.manifest_path(), original).expect("restore manifest");
        let stderr = stderr_of(&out);
        let names_value =
            stderr.contains(&format!("'{shown}'")) || stderr.contains(&format!("\"{shown}\""));
        assert!(
            stderr.contains("manifest.toml") && names_value && stderr.contains(key),
            "{key} = {value}: stderr should name manifest.toml, the key and the value:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{key}: nothing on stdout");
        assert_eq!(
            dir_entries(&out_dir),
            Vec::<String>::new(),
            "{key}: no output left"
        );
    }
}

#[test]
fn stdout_that_is_a_terminal_is_refused() {
    if !require_tool("script") {
        return;
    }
    let (env, _archive, _server) = ImageEnv::local("tty");
    // `script` gives the command a pseudo-terminal as stdout.
    let template = env.cairn();
    let line = format!(
        "{} containerize -f -",
        shell_quote(&template.get_program().to_string_lossy())
    );
    let mut cmd = command_like(&template, "script");
    cmd.args(["-qec", &line, "/dev/null"]);
    let out = cairn_tests::context::expect_failure(&mut cmd);
    let shown = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(shown.contains("terminal"), "{shown}");
    assert!(
        out.stdout.len() < 4096 && !shown.contains("oci-layout"),
        "no archive bytes reach the terminal:\n{shown}"
    );
}

#[test]
fn missing_runtime_fails_clearly_and_leaves_nothing() {
    let (env, _archive, _server) = ImageEnv::local("no-runtime");
    let empty_path = env.scratch("empty-path");
    for engine in [Engine::Docker, Engine::Podman] {
        let mut cmd = env.cairn();
        cmd.env("PATH", &empty_path)
            .args(["containerize", "--runtime", engine.program()]);
        let out = cairn_tests::context::expect_failure(&mut cmd);
        let stderr = stderr_of(&out);
        assert!(stderr.contains(engine.program()), "{stderr}");
        assert!(out.stdout.is_empty(), "{}", stdout_of(&out));
        assert_eq!(
            dir_entries(&env.ctx.work),
            [".cairn"],
            "nothing left behind"
        );
    }

    // Without --runtime and with no engine on PATH, cairn writes the archive.
    let mut cmd = env.cairn();
    cmd.env("PATH", &empty_path).arg("containerize");
    cairn_tests::context::expect_success(&mut cmd);
    let written = format!("{}-container.tar", env.name);
    assert_eq!(
        dir_entries(&env.ctx.work),
        [".cairn".to_owned(), written.clone()]
    );
    let layout = OciLayout::unpack(&env.ctx.work.join(&written));
    assert!(layout.layers().iter().any(|l| l.packages() == ["greet"]));
}

#[test]
fn failing_runtime_fails_clearly_and_leaves_nothing() {
    let (env, _archive, _server) = ImageEnv::local("bad-runtime");
    let bin = env.scratch("fake-bin");
    // One fake reads part of the archive, the other none of it: cairn must
    // report the engine's failure either way, not a broken pipe.
    let fakes = [
        "#!/bin/sh\nhead -c 4096 >/dev/null\necho 'fake docker: daemon is down' >&2\nexit 1\n",
        "#!/bin/sh\nexec 0<&-\necho 'fake docker: daemon is down' >&2\nexit 1\n",
    ];
    for script in fakes {
        let fake = bin.join("docker");
        fs_err::write(&fake, script).expect("write fake docker");
        set_mode(&fake, 0o755);
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let mut cmd = env.cairn();
        cmd.env("PATH", path)
            .args(["containerize", "--runtime", "docker"]);
        let out = cairn_tests::context::expect_failure(&mut cmd);
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains("docker") && stderr.contains("fake docker: daemon is down"),
            "the error shows what docker said:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{}", stdout_of(&out));
        assert_eq!(
            dir_entries(&env.ctx.work),
            [".cairn"],
            "nothing left behind"
        );
    }
}

#[test]
fn failed_write_leaves_no_partial_file() {
    if !require_tool("bash") {
        return;
    }
    let (env, _archive, _server) = ImageEnv::local("partial");
    // Warm the layer cache, so the write that fails is the archive's.
    env.containerize_to(&env.scratch("warm").join("x.tar"), &[]);
    let out_dir = env.scratch("out");
    let target = out_dir.join("image.tar");
    let template = env.cairn();
    // A 1 MiB file-size limit makes the archive write fail with EFBIG part way
    // (SIGXFSZ is ignored so the write returns an error instead of killing).
    let line = format!(
        "trap '' XFSZ; ulimit -f 1024; exec {} containerize -f {}",
        shell_quote(&template.get_program().to_string_lossy()),
        shell_quote(&target.to_string_lossy())
    );
    let mut cmd = command_like(&template, "bash");
    cmd.args(["-c", &line]);
    let out = cairn_tests::context::expect_failure(&mut cmd);
    assert_eq!(
        dir_entries(&out_dir),
        Vec::<String>::new(),
        "no partial or temp file left:\n{}",
        stderr_of(&out)
    );
    let stderr = stderr_of(&out);
    assert!(
        {
            eprintln!("DEBUG STDERR: {stderr}");
            stderr.contains("image.tar")
        },
        "the error names the file it could not write:\n{stderr}"
    );
}

// 7. dpkg metadata for scanners

#[test]
fn configuration_layer_has_dpkg_status_for_every_package() {
    let Some(env) = ImageEnv::real("status-d", &["hello"], "") else {
        return;
    };
    let archive = env.scratch("out").join("hello.tar");
    env.containerize_to(&archive, &[]);
    let layout = OciLayout::unpack(&archive);
    let layers = layout.layers();
    assert!(
        layers
            .last()
            .is_some_and(|l| l.created_by.contains("environment")),
        "the last layer is the environment's: {layers:?}"
    );
    let configured = layers
        .iter()
        .find(|l| l.created_by == "cairn: package configuration")
        .expect("a package configuration layer");
    let paths = layout.layer_paths(&configured.digest);
    let status = layout.layer_file(&configured.digest, "var/lib/dpkg/status");
    for name in env.locked_names() {
        let path = format!("var/lib/dpkg/status.d/{name}");
        assert!(
            paths.contains(&path),
            "{path} not in the configuration layer: {paths:?}"
        );
        let entry = layout.layer_file(&configured.digest, &path);
        assert!(
            entry.starts_with(&format!("Package: {name}\n")) && entry.contains("\nVersion: "),
            "{path}:\n{entry}"
        );
        // dpkg's field order puts `Essential:` before `Status:`.
        let header = format!("Package: {name}\n");
        let installed = status
            .split("\n\n")
            .find(|p| p.starts_with(&header))
            .is_some_and(|p| p.contains("\nStatus: install ok installed\n"));
        assert!(
            installed,
            "{name} not installed in dpkg's status:\n{status}"
        );
    }
}

/// `-f /dev/null` (or a FIFO) is written to, never replaced: an atomic rename
/// over it would turn the device into a regular file.
#[test]
fn a_special_file_target_is_written_not_replaced() {
    let (env, _archive, _server) = ImageEnv::local("special-target");
    let dir = env.scratch("fifo");
    let fifo = dir.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs_err::read(&fifo).expect("read the fifo").len())
    };
    env.containerize_to(&fifo, &[]);
    assert!(
        reader.join().expect("reader") > 0,
        "nothing reached the fifo"
    );
    let kind = fs_err::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kind),
        "the fifo was replaced"
    );
}

// 7. the layer report

/// The uncompressed size of a gzip blob, read with `gzip -dc`.
fn gunzipped_len(blob: &Path) -> u64 {
    let out = cairn_tests::context::expect_success(Command::new("gzip").arg("-dc").arg(blob));
    out.stdout.len() as u64
}

#[test]
fn report_lists_every_layer_with_sizes_cache_reuse_and_sharing() {
    let (env, _archive, _server) = ImageEnv::local("report");
    env.edit_manifest(|doc| {
        doc["containers"]["other"]["name"] = toml_edit::value(format!("{}-other", env.name));
    });
    let out_dir = env.scratch("out");
    let archive = out_dir.join("image.tar");
    let built = env.containerize_to(&archive, &["--report", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&built.stdout)
        .unwrap_or_else(|e| panic!("--report --json: {e}\n{}", stdout_of(&built)));

    // Every layer is the archive's, with its real sizes.
    let layout = OciLayout::unpack(&archive);
    let manifest = layout.manifest();
    let blobs = manifest["layers"].as_array().expect("manifest layers");
    let layers = report["layers"].as_array().expect("report layers");
    assert_eq!(layers.len(), blobs.len(), "{report}");
    for (layer, blob) in layers.iter().zip(blobs) {
        assert_eq!(layer["digest"], blob["digest"], "{report}");
        assert_eq!(layer["size"], blob["size"], "{report}");
        let path = layout.blob_path(blob["digest"].as_str().unwrap_or_default());
        assert_eq!(
            layer["size"].as_u64(),
            Some(fs_err::metadata(&path).expect("blob").len())
        );
        assert_eq!(
            layer["uncompressed_size"].as_u64(),
            Some(gunzipped_len(&path)),
            "{layer}"
        );
    }
    assert_eq!(layers[0]["packages"], serde_json::json!(["greet 1.0-1"]));
    assert!(
        layers[1..]
            .iter()
            .all(|l| l["packages"].as_array().is_some_and(|p| p.is_empty())),
        "cairn's own layers hold no package: {report}"
    );
    assert_eq!(report["image"], env.reference().as_str());
    let sum = |key: &str| layers.iter().filter_map(|l| l[key].as_u64()).sum::<u64>();
    assert_eq!(report["total"]["size"].as_u64(), Some(sum("size")));
    assert_eq!(
        report["total"]["uncompressed_size"].as_u64(),
        Some(sum("uncompressed_size"))
    );
    assert_eq!(report["total"]["layers"].as_u64(), Some(blobs.len() as u64));
    assert_eq!(report["total"]["packages"], 1);

    // Rebuilt into stdout: the report goes to stderr, every layer is reused,
    // and stdout is the archive alone.
    let mut again = env.cairn();
    again.args(["containerize", "-f", "-", "--report", "--json"]);
    let again = cairn_tests::context::expect_success(&mut again);
    let stderr = stderr_of(&again);
    let json_start = stderr.find('{').expect("JSON report on stderr");
    let rebuilt: serde_json::Value = serde_json::Deserializer::from_str(&stderr[json_start..])
        .into_iter()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON report on stderr:\n{stderr}"));
    assert!(
        rebuilt["layers"]
            .as_array()
            .is_some_and(|ls| ls.iter().all(|l| l["reused"] == true)),
        "{rebuilt}"
    );
    assert_eq!(rebuilt["manifest_digest"], report["manifest_digest"]);
    let stdout_archive = out_dir.join("stdout.tar");
    fs_err::write(&stdout_archive, &again.stdout).expect("write stdout archive");
    let listing =
        cairn_tests::context::expect_success(Command::new("tar").arg("-tf").arg(&stdout_archive));
    assert!(
        stdout_of(&listing).contains("oci-layout"),
        "stdout is the archive"
    );

    // Another image of the same packages shares the package layer, and says so.
    let named = env.containerize_to(
        &out_dir.join("other.tar"),
        &["--container", "other", "--report"],
    );
    let table = stderr_of(&named);
    let greet_row = table
        .lines()
        .find(|l| l.contains("greet 1.0-1"))
        .unwrap_or_else(|| panic!("no row for greet:\n{table}"));
    assert!(
        greet_row.contains("reused") && greet_row.contains(&env.reference()),
        "the greet layer is reused and shared with {}:\n{table}",
        env.reference()
    );
    assert!(table.contains("total: "), "{table}");
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The cairn every image carries (`cairn-entrypoint`) runs the environment
/// and reads its lock; it must not link the archive client. Once a path from
/// `list` to the re-lock code pulled TLS, OpenPGP, HTTP and the resolver
/// in, and every image grew from 3.4 MB to 12.4 MB of cairn unnoticed. A
/// linked crate names itself in the binary (its source paths, in panic
/// locations), in debug and stripped release builds alike.
#[test]
fn the_in_image_cairn_links_no_archive_client() {
    let cairn = TestContext::cairn_bin();
    let read = |name: &str| {
        let path = cairn.with_file_name(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let (entrypoint, full) = (read("cairn-entrypoint"), read("cairn"));
    // What it does link shows, so an absence below means something.
    assert!(contains(&entrypoint, b"/toml_parser-"), "toml's paths show");
    for client in ["/rustls-", "/pgp-", "/ureq-"] {
        assert!(
            contains(&full, client.as_bytes()),
            "the full cairn links {client}: the check can see it"
        );
        assert!(
            !contains(&entrypoint, client.as_bytes()),
            "cairn-entrypoint links {client}: keep the archive client out of what images carry"
        );
    }
}
