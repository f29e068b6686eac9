//! Imageless Kubernetes end to end: a private containerd with the `cairn`
//! runtime (from `cairn kubernetes node-setup`), driven over CRI gRPC as the
//! kubelet drives it, runs pods whose `cairn.dev/environment` annotation names
//! an environment published to a local registry. The pause image and the pod
//! images are built by cairn and `ctr images import`ed; nothing is pulled.

use cairn_tests::cri::{ContainerSpec, Node};
use cairn_tests::registry::{Registry, RegistryAuth, TestCa};
use cairn_tests::runtime_env::RuntimeEnv;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ENVIRONMENT: &str = "cairn.dev/environment";
const WAIT: Duration = Duration::from_secs(120);

/// The environment pods run in: bash and coreutils, a variable, a hook and a service.
const ENV_TABLES: &str = r#"
[options]
essential = false

[vars]
GREETING = "hello from cairn"

[hook]
on-activate = "export HOOKED=yes"

[services.ticker]
command = "echo service started; exec sleep 3600"
"#;

/// Images and a registry every test here needs.
struct Cluster {
    node: Node,
    registry: Registry,
    /// The busybox image that serves as pause image and as a real base image.
    base_image: String,
    /// `cairn kubernetes empty-image`.
    empty_image: String,
    _dir: tempfile::TempDir,
}

/// Builds the pause/base image and the empty image, starts a registry and a
/// node; `None` (with a message) when a tool or the Debian mirror is missing.
fn cluster(test: &str, node_env: &[(&str, String)]) -> Option<Cluster> {
    if !Node::tools_ready() || !Registry::tools_ready() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let base = RuntimeEnv::real(
        &format!("{test}-base"),
        &["busybox-static"],
        "[options]\nessential = false\n\n[containerize.config]\ncmd = [\"busybox\", \"sleep\", \"86400\"]\n",
    )?;
    let base_archive = dir.path().join("base.tar");
    base.cairn_ok(&["containerize", "-f", &base_archive.display().to_string()]);
    let empty_archive = dir.path().join("empty.tar");
    let empty_name = format!("{}-empty", base.name);
    base.cairn_ok(&[
        "kubernetes",
        "empty-image",
        "--name",
        &empty_name,
        "-f",
        &empty_archive.display().to_string(),
    ]);
    let registry = Registry::start(&dir.path().join("registry"), &RegistryAuth::Anonymous, None);
    let mut env: Vec<(&str, String)> = vec![("CAIRN_INSECURE_REGISTRIES", registry.host.clone())];
    env.extend(node_env.iter().cloned());
    let base_image = format!("docker.io/library/{}:latest", base.name);
    let node = Node::start(&base_image, &[&registry.host], &env);
    node.import(&base_archive);
    node.import(&empty_archive);
    Some(Cluster {
        node,
        registry,
        base_image,
        empty_image: format!("docker.io/library/{empty_name}:1"),
        _dir: dir,
    })
}

/// Locks the test environment and publishes it (`cairn publish`) to
/// `registry` as `team/NAME`, generation 1; returns it and its REF.
fn publish(test: &str, registry: &Registry, remote_args: &str) -> Option<(RuntimeEnv, String)> {
    let env = RuntimeEnv::real(test, &["bash", "coreutils"], ENV_TABLES)?;
    let reference = format!("{}/team/{}", registry.host, env.name);
    env.cairn_ok(&[
        "publish",
        &reference,
        &format!("--remote-args={remote_args}"),
    ]);
    Some((env, reference))
}

fn container(name: &str, image: &str, command: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        command: command.iter().map(|s| s.to_string()).collect(),
        ..ContainerSpec::default()
    }
}

/// Mounts of the node that come from the handler's per-container scratch
/// directories (overlay upper layers), from /proc/self/mountinfo.
fn scratch_mounts(store: &Path) -> Vec<String> {
    let scratch = store.join("kubernetes-v1/containers");
    fs_err::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&scratch.display().to_string()))
        .map(str::to_owned)
        .collect()
}

fn scratch_dirs(store: &Path) -> Vec<PathBuf> {
    fs_err::read_dir(store.join("kubernetes-v1/containers"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[test]
fn a_pod_runs_its_command_in_the_published_environment() {
    let Some(mut cluster) = cluster("k8s-main", &[]) else {
        return;
    };
    let Some((_env, reference)) = publish("k8s-main", &cluster.registry, "--tls-verify=false")
    else {
        return;
    };
    let empty = cluster.empty_image.clone();
    let base = cluster.base_image.clone();
    let node = &mut cluster.node;

    // The environment annotation end to end, on the empty image: vars, then
    // the hook, then the command; /usr read-only, /etc copy-on-write.
    let pod = node.run_pod(
        "app",
        &[
            (ENVIRONMENT, &reference),
            ("cairn.dev/skip-containers", "side"),
        ],
    );
    let script = "echo \"greeting=$GREETING\"; echo \"hooked=$HOOKED\"; \
                  touch /usr/cairn-probe; echo \"usr-rc=$?\"; \
                  echo x > /etc/cairn-probe && echo etc-writable; \
                  echo \"bash=$(command -v bash)\"";
    let app = node
        .create_and_start(&pod, &container("app", &empty, &["bash", "-c", script]))
        .unwrap_or_else(|e| panic!("app did not start: {e}\n{}", node.log_tail()));
    assert_eq!(node.wait_exited(&app, WAIT), 0, "{}", node.logs(&app));
    let log = node.logs(&app);
    assert!(log.contains("greeting=hello from cairn"), "{log}");
    assert!(log.contains("hooked=yes"), "{log}");
    assert!(
        log.contains("Read-only file system"),
        "a write under /usr must fail with EROFS:\n{log}"
    );
    assert!(log.contains("usr-rc=1"), "{log}");
    assert!(log.contains("etc-writable"), "{log}");
    assert!(log.contains("bash=/usr/bin/bash"), "{log}");

    // A sidecar named in skip-containers runs exactly as runc runs it.
    let side_cmd =
        "/bin/busybox grep -c rootfs-v1 /proc/self/mountinfo; echo \"greeting=[$GREETING]\"";
    let side = node
        .create_and_start(
            &pod,
            &container("side", &base, &["/bin/busybox", "sh", "-c", side_cmd]),
        )
        .expect("the sidecar starts");
    node.wait_exited(&side, WAIT);
    let log = node.logs(&side);
    assert!(
        log.starts_with("0\n"),
        "the sidecar must see no environment mount:\n{log}"
    );
    assert!(log.contains("greeting=[]"), "{log}");

    // No command: the environment's services; ExecSync runs activated.
    let svc = node
        .create_and_start(&pod, &container("svc", &empty, &[]))
        .expect("the service container starts");
    node.wait_log(&svc, "service started", WAIT);
    let (code, out, err) = node.exec_sync(&svc, &["bash", "-c", "echo \"exec=$GREETING\""]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("exec=hello from cairn"), "{out}{err}");
    // Streaming Exec (kubectl exec): the same activation, over containerd's
    // streaming server, with the exit code in the v4 status channel.
    let streamed = node.exec_stream(
        &svc,
        &[
            "bash",
            "-c",
            "echo \"stream=$GREETING hooked=$HOOKED\"; command -v bash; echo oops >&2; exit 3",
        ],
    );
    assert!(
        streamed
            .stdout
            .contains("stream=hello from cairn hooked=yes"),
        "{streamed:?}"
    );
    assert!(streamed.stdout.contains("/usr/bin/bash"), "{streamed:?}");
    assert_eq!(streamed.stderr, "oops\n", "{streamed:?}");
    assert_eq!(streamed.exit_code, 3, "{streamed:?}");
    let streamed = node.exec_stream(&svc, &["bash", "-c", "true"]);
    assert_eq!(streamed.exit_code, 0, "{streamed:?}");
    let first_events = node.handler_events();
    node.remove_pod(&pod);
    assert!(
        scratch_mounts(&node.store).is_empty(),
        "mounts left: {:?}",
        scratch_mounts(&node.store)
    );

    // A second pod of the same environment fetches and unpacks nothing;
    // skip-containers-exec keeps its exec outside the activation while the
    // main process runs inside it. A real base image keeps its own files.
    let pod2 = node.run_pod(
        "app2",
        &[
            (ENVIRONMENT, &reference),
            ("cairn.dev/skip-containers-exec", "svc"),
        ],
    );
    let svc2 = node
        .create_and_start(&pod2, &container("svc", &base, &[]))
        .expect("second pod starts");
    let events = node.handler_events();
    let last = events.last().expect("an event for the second pod");
    assert_eq!(last["debs_fetched"], 0, "{events:?}");
    assert_eq!(last["rootfs_assembled"], false, "{events:?}");
    // The node store was empty before the first pod: it fetched and assembled.
    assert!(
        first_events[0]["debs_fetched"].as_u64() > Some(0),
        "{first_events:?}"
    );
    assert_eq!(
        first_events[0]["rootfs_assembled"], true,
        "{first_events:?}"
    );
    let (code, out, _) = node.exec_sync(&svc2, &["/usr/bin/env"]);
    assert_eq!(code, 0);
    assert!(
        !out.contains("GREETING"),
        "skip-containers-exec: exec must run outside the activation:\n{out}"
    );
    let (code, out, _) = node.exec_sync(&svc2, &["/bin/busybox", "true"]);
    assert_eq!(code, 0, "the base image's busybox must stay visible: {out}");
    let streamed = node.exec_stream(&svc2, &["/usr/bin/env"]);
    assert_eq!(streamed.exit_code, 0, "{streamed:?}");
    assert!(
        streamed.stdout.contains("PATH=") && !streamed.stdout.contains("GREETING"),
        "skip-containers-exec: a streamed exec must run outside the activation:\n{streamed:?}"
    );
    node.remove_pod(&pod2);

    // mutable: writes under /usr succeed, in this container only.
    let pod3 = node.run_pod(
        "app3",
        &[
            (ENVIRONMENT, &reference),
            ("cairn.dev/mutable", "true"),
            ("cairn.dev/activate-mode", "dev"),
        ],
    );
    let probe = "touch /usr/cairn-probe && echo usr-writable";
    let app3 = node
        .create_and_start(&pod3, &container("app", &empty, &["bash", "-c", probe]))
        .expect("mutable pod starts");
    assert_eq!(node.wait_exited(&app3, WAIT), 0, "{}", node.logs(&app3));
    assert!(node.logs(&app3).contains("usr-writable"));
    node.remove_pod(&pod3);
    let stray: Vec<_> = walk_named(&node.store, "cairn-probe");
    assert!(
        stray
            .iter()
            .all(|p| !p.to_string_lossy().contains("rootfs-v1")),
        "a container's write reached the shared store: {stray:?}"
    );
    assert!(
        scratch_dirs(&node.store).is_empty(),
        "scratch left: {:?}",
        scratch_dirs(&node.store)
    );
}

/// Files named `name` below `dir`.
fn walk_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if entry.file_name() == name {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn failures_fail_the_container_with_the_reference_and_leave_nothing() {
    let Some(mut cluster) = cluster("k8s-fail", &[]) else {
        return;
    };
    let empty = cluster.empty_image.clone();
    let host = cluster.registry.host.clone();
    let node = &mut cluster.node;
    let closed = cairn_tests::registry::free_port();
    let cases = [
        (
            format!("{host}/team/no-such-env:latest"),
            None,
            "unknown environment",
        ),
        (format!("{host}/team/no-such-env@7"), None, "bad generation"),
        (
            format!("127.0.0.1:{closed}/team/app:latest"),
            None,
            "registry down",
        ),
        (
            format!("{host}/team/app:latest"),
            Some(("cairn.dev/activate-mode", "debug")),
            "bad mode",
        ),
    ];
    for (i, (reference, extra, what)) in cases.iter().enumerate() {
        let mut annotations = vec![(ENVIRONMENT, reference.as_str())];
        annotations.extend(extra.iter().copied());
        let pod = node.run_pod(&format!("fail{i}"), &annotations);
        // containerd 1.6 creates the task, and so calls the runtime, only at
        // StartContainer: CreateContainer succeeds, StartContainer fails with
        // "failed to create containerd task: … cairn: …", the pod's event.
        let id = node
            .create_container(&pod, &container("app", &empty, &["true"]))
            .unwrap_or_else(|e| panic!("{what}: CreateContainer must succeed: {e}"));
        let err = node.start_container(&id).expect_err(what);
        eprintln!("{what}: {err}");
        assert!(
            err.contains("failed to create containerd task") && err.contains("cairn: "),
            "{what}: {err}"
        );
        let shown = reference.split('@').next().unwrap_or(reference);
        assert!(
            err.contains(shown),
            "{what}: the error must name {reference}: {err}"
        );
        if *what == "bad mode" {
            assert!(err.contains("cairn.dev/activate-mode"), "{err}");
        }
        node.remove_pod(&pod);
        assert!(
            scratch_mounts(&node.store).is_empty(),
            "{what}: mounts left"
        );
        assert!(
            scratch_dirs(&node.store).is_empty(),
            "{what}: scratch left: {:?}",
            scratch_dirs(&node.store)
        );
    }
    // A pod without the annotation runs unchanged under the cairn runtime.
    let pod = node.run_pod("plain", &[]);
    let base = cluster.base_image.clone();
    let plain = node
        .create_and_start(
            &pod,
            &container(
                "plain",
                &base,
                &[
                    "/bin/busybox",
                    "sh",
                    "-c",
                    "/bin/busybox grep -c rootfs-v1 /proc/self/mountinfo; true",
                ],
            ),
        )
        .expect("a plain pod starts");
    node.wait_exited(&plain, WAIT);
    assert!(
        node.logs(&plain).starts_with("0\n"),
        "{}",
        node.logs(&plain)
    );
    node.remove_pod(&pod);
}

#[test]
fn a_private_environment_is_fetched_with_the_pods_secret() {
    let Some(mut cluster) = cluster("k8s-private", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::generate(&dir.path().join("ca"));
    let (user, password) = ("alice", "k8s-s3cret-pw");
    let private = Registry::start(
        &dir.path().join("private"),
        &RegistryAuth::Htpasswd {
            user: user.to_owned(),
            password: password.to_owned(),
        },
        Some(&ca),
    );
    let cert_dir = ca.cert_dir(&dir.path().join("certs"));
    let remote = format!(
        "--creds {user}:{password} --cert-dir {}",
        cert_dir.display()
    );
    let Some((_env, reference)) = publish("k8s-private", &private, &remote) else {
        return;
    };
    // The Secret as the kubelet lays it out on the node: one file per key.
    let secret = dir.path().join("secret");
    fs_err::create_dir_all(&secret).expect("secret dir");
    fs_err::write(secret.join("token"), format!("{user}:{password}\n")).expect("token");
    fs_err::copy(&ca.ca_cert, secret.join("ca.crt")).expect("ca.crt");
    let empty = cluster.empty_image.clone();
    let node = &mut cluster.node;

    let pod = node.run_pod("private", &[(ENVIRONMENT, &reference)]);
    let mut spec = container(
        "app",
        &empty,
        &["bash", "-c", "echo \"greeting=$GREETING\""],
    );
    spec.mounts = vec![(secret.clone(), "/var/run/secrets/cairn.dev".to_owned())];
    let app = node
        .create_and_start(&pod, &spec)
        .unwrap_or_else(|e| panic!("private pod did not start: {e}"));
    assert_eq!(node.wait_exited(&app, WAIT), 0, "{}", node.logs(&app));
    assert!(node.logs(&app).contains("greeting=hello from cairn"));
    node.remove_pod(&pod);

    // Without the Secret the registry refuses, and the error names the REF.
    let pod = node.run_pod("nosecret", &[(ENVIRONMENT, &reference)]);
    let err = node
        .create_and_start(&pod, &container("app", &empty, &["true"]))
        .expect_err("no credentials");
    assert!(err.contains(&reference), "{err}");
    node.remove_pod(&pod);

    // The password is nowhere on the node: not in the store, not in logs.
    for path in walk_files(&node.store)
        .into_iter()
        .chain([node.log.clone()])
    {
        let bytes = fs_err::read(&path).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(password),
            "the secret leaked into {}",
            path.display()
        );
    }
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && entry.metadata().is_ok_and(|m| m.len() < (1 << 20)) {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Not a test: the measurement behind `bench/kubernetes.sh` (run with
/// `--ignored`). Pod start, CreateContainer to the command's first output,
/// for python3 + python3-flask: through the handler with a cold node store
/// (the `.deb`s fetched from Debian's mirror and assembled) and a warm one,
/// and as an image that containerd's CRI pulls from a local registry and
/// starts (cold: not yet pulled; warm: already there). Prints `BENCH name
/// seconds` lines.
#[test]
#[ignore = "a benchmark: bench/kubernetes.sh runs it"]
fn bench_pod_start() {
    let Some(mut cluster) = cluster("k8s-bench", &[]) else {
        return;
    };
    let Some(env) = RuntimeEnv::real("k8s-bench-flask", &["python3", "python3-flask"], "") else {
        return;
    };
    let prefix = cluster.registry.prefix("bench");
    env.cairn_ok(&[
        "containerize",
        "--copy",
        "--registry",
        &prefix,
        "--copy-args=--dest-tls-verify=false",
    ]);
    let image = format!("{}/bench/{}:latest", cluster.registry.host, env.name);
    let reference = format!("{}/published/{}", cluster.registry.host, env.name);
    env.cairn_ok(&["publish", &reference, "--remote-args=--tls-verify=false"]);
    let empty = cluster.empty_image.clone();
    let node = &mut cluster.node;
    let probe = ["python3", "-c", "import flask; print('ready', flush=True)"];
    let mut timed = |label: &str, annotations: &[(&str, &str)], image: &str, pull: bool| {
        let pod = node.run_pod(label, annotations);
        let start = std::time::Instant::now();
        if pull {
            node.pull_image(image);
        }
        let id = node
            .create_and_start(&pod, &container("app", image, &probe))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        node.wait_log(&id, "ready", WAIT);
        let seconds = start.elapsed().as_secs_f64();
        println!("BENCH {label} {seconds:.3}");
        node.remove_pod(&pod);
    };
    timed("handler-cold", &[(ENVIRONMENT, &reference)], &empty, false);
    timed("handler-warm", &[(ENVIRONMENT, &reference)], &empty, false);
    timed("image-cold", &[], &image, true);
    timed("image-warm", &[], &image, true);
}

#[test]
fn pinned_generations_stay_while_the_live_one_switches_and_rolls_back() {
    let Some(mut cluster) = cluster("k8s-gen", &[]) else {
        return;
    };
    let Some((env, reference)) = publish("k8s-gen", &cluster.registry, "--tls-verify=false") else {
        return;
    };
    // Generation 2 changes a variable.
    let manifest = env.ctx.manifest_path();
    let text = fs_err::read_to_string(&manifest).expect("read manifest");
    fs_err::write(
        &manifest,
        text.replace("hello from cairn", "hello from generation 2"),
    )
    .expect("write manifest");
    env.cairn_ok(&["publish", &reference, "--remote-args=--tls-verify=false"]);
    let empty = cluster.empty_image.clone();
    let node = &mut cluster.node;
    let mut greeting = |name: &str, env_ref: &str| {
        let pod = node.run_pod(name, &[(ENVIRONMENT, env_ref)]);
        let id = node
            .create_and_start(
                &pod,
                &container(
                    "app",
                    &empty,
                    &["bash", "-c", "echo \"greeting=$GREETING\""],
                ),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        node.wait_exited(&id, WAIT);
        let log = node.logs(&id);
        node.remove_pod(&pod);
        log
    };
    assert!(greeting("live", &reference).contains("greeting=hello from generation 2"));
    let pinned = format!("{reference}@1");
    assert!(greeting("pinned", &pinned).contains("greeting=hello from cairn"));
    let remote = ["--remote-args=--tls-verify=false"];
    env.cairn_ok(
        &[
            &["generations", "switch", "1", "-r", &reference][..],
            &remote[..],
        ]
        .concat(),
    );
    assert!(greeting("switched", &reference).contains("greeting=hello from cairn"));
    env.cairn_ok(
        &[
            &["generations", "rollback", "-r", &reference][..],
            &remote[..],
        ]
        .concat(),
    );
    assert!(greeting("rolled-back", &reference).contains("greeting=hello from generation 2"));
    assert!(greeting("still-pinned", &pinned).contains("greeting=hello from cairn"));
    let missing = format!("{reference}@9");
    let pod = node.run_pod("missing", &[(ENVIRONMENT, &missing)]);
    let err = node
        .create_and_start(&pod, &container("app", &empty, &["true"]))
        .expect_err("generation 9 does not exist");
    assert!(err.contains(&missing), "{err}");
    node.remove_pod(&pod);
}

/// A second, independent consumer: `podman kube play --runtime` with the
/// annotation in the pod YAML. Podman hands the runtime a clean environment,
/// so the node settings come from a two-line wrapper script.
#[test]
fn podman_kube_play_runs_the_pod_in_the_environment() {
    if !Node::tools_ready()
        || !Registry::tools_ready()
        || !cairn_tests::require_tool("podman")
        || !cairn_tests::require_tool("catatonit")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = Registry::start(&dir.path().join("registry"), &RegistryAuth::Anonymous, None);
    let Some((env, reference)) = publish("k8s-podman", &registry, "--tls-verify=false") else {
        return;
    };
    let empty_archive = dir.path().join("empty.tar");
    let empty_name = format!("{}-empty", env.name);
    env.cairn_ok(&[
        "kubernetes",
        "empty-image",
        "--name",
        &empty_name,
        "-f",
        &empty_archive.display().to_string(),
    ]);
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run podman")
    };
    let loaded = podman(&["load", "-i", &empty_archive.display().to_string()]);
    assert!(loaded.status.success(), "{loaded:?}");
    let bin = cairn_tests::TestContext::cairn_bin();
    let bin_dir = bin.parent().expect("cairn's directory");
    let wrapper = dir.path().join("cairn-runc");
    fs_err::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexport CAIRN_NODE_STORE={} CAIRN_INSECURE_REGISTRIES={} CAIRN_ENTRYPOINT_BIN={}\nexec {} \"$@\"\n",
            dir.path().join("store").display(),
            registry.host,
            bin_dir.join("cairn-entrypoint").display(),
            bin_dir.join("cairn-runc").display()
        ),
    )
    .expect("write wrapper");
    let status = std::process::Command::new("chmod")
        .arg("755")
        .arg(&wrapper)
        .status()
        .expect("chmod");
    assert!(status.success());
    let pod_name = env.name.clone();
    let yaml = dir.path().join("pod.yaml");
    fs_err::write(
        &yaml,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod_name}\n  annotations:\n    cairn.dev/environment: \"{reference}\"\n\
             spec:\n  restartPolicy: Never\n  containers:\n    - name: app\n      image: docker.io/library/{empty_name}:1\n\
             \u{20}     command: [\"bash\", \"-c\", \"echo greeting=$GREETING; touch /usr/x\"]\n"
        ),
    )
    .expect("write pod.yaml");
    let played = podman(&[
        "kube",
        "play",
        "--runtime",
        &wrapper.display().to_string(),
        &yaml.display().to_string(),
    ]);
    let container = format!("{pod_name}-app");
    let end = std::time::Instant::now() + Duration::from_secs(90);
    let logs = loop {
        let out = podman(&["logs", &container]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("Read-only file system") || std::time::Instant::now() > end {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = podman(&["kube", "down", &yaml.display().to_string()]);
    let _ = podman(&["rmi", &format!("docker.io/library/{empty_name}:1")]);
    assert!(
        played.status.success(),
        "podman kube play failed: {played:?}"
    );
    assert!(logs.contains("greeting=hello from cairn"), "{logs}");
    assert!(logs.contains("Read-only file system"), "{logs}");
}

/// `cairn kubernetes gc --store STORE ARGS`, parsed from `--json`.
fn node_gc(node: &Node, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(cairn_tests::TestContext::cairn_bin())
        .args(["kubernetes", "gc", "--json", "--store"])
        .arg(&node.store)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run cairn kubernetes gc");
    assert!(output.status.success(), "gc failed: {output:?}");
    serde_json::from_slice(&output.stdout).expect("gc --json prints JSON")
}

/// Entries of a store bucket, without lock and temp entries.
fn bucket_entries(store: &Path, bucket: &str) -> Vec<String> {
    fs_err::read_dir(store.join(bucket))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// GETs `url` until it answers (a server in a fresh pod takes a moment).
fn http_get(url: &str) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match ureq::get(url).call() {
            Ok(mut response) => {
                return response
                    .body_mut()
                    .read_to_string()
                    .expect("read the response body");
            }
            Err(e) if std::time::Instant::now() > end => panic!("GET {url}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// A pod on the pod network (CNI bridge) gets an address of its own and
/// serves from inside the environment; `cairn kubernetes gc` keeps what that
/// running pod uses, collects it once the pod is gone, and a pod started
/// afterwards fetches and assembles the environment again.
#[test]
fn a_pod_network_pod_serves_and_gc_collects_only_what_no_pod_uses() {
    let Some(mut cluster) = cluster("k8s-gc", &[]) else {
        return;
    };
    let Some((_env, reference)) = publish("k8s-gc", &cluster.registry, "--tls-verify=false") else {
        return;
    };
    let empty = cluster.empty_image.clone();
    let base = cluster.base_image.clone();
    let node = &mut cluster.node;

    let pod = node.run_pod_network("web", &[(ENVIRONMENT, &reference)]);
    let ip = node.pod_ip(&pod);
    let prefix = node.subnet.trim_end_matches("0/24").to_owned();
    assert!(
        ip.starts_with(&prefix),
        "the pod's IP {ip:?} is not from the node's CNI subnet {}",
        node.subnet
    );
    let serve = "mkdir -p /var/www && echo \"greeting=$GREETING\" > /var/www/index.html \
                 && exec /bin/busybox httpd -f -p 8080 -h /var/www";
    let web = node
        .create_and_start(&pod, &container("web", &base, &["bash", "-c", serve]))
        .unwrap_or_else(|e| panic!("the web pod did not start: {e}\n{}", node.log_tail()));
    let url = format!("http://{ip}:8080/");
    assert!(
        http_get(&url).contains("greeting=hello from cairn"),
        "the pod's service must answer at its own IP from inside the environment"
    );

    // gc while the pod runs: its environment and rootfs stay, and it keeps serving.
    let rootfs_before = bucket_entries(&node.store, "rootfs-v1");
    assert_eq!(rootfs_before.len(), 1, "{rootfs_before:?}");
    let report = node_gc(node, &[]);
    assert_eq!(report["rootfs_removed"], serde_json::json!([]), "{report}");
    assert_eq!(report["rootfs_in_use"], 1, "{report}");
    assert_eq!(report["environments_in_use"], 1, "{report}");
    assert_eq!(report["debs_removed"], 0, "{report}");
    assert!(report["packages_kept"].as_u64() > Some(0), "{report}");
    assert_eq!(bucket_entries(&node.store, "rootfs-v1"), rootfs_before);
    assert!(http_get(&url).contains("greeting=hello from cairn"));
    let (code, out, err) = node.exec_sync(&web, &["bash", "-c", "echo \"still=$GREETING\""]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("still=hello from cairn"), "{out}");
    node.remove_pod(&pod);

    // Gone with the pod: a dry run names it and removes nothing, gc removes it.
    let report = node_gc(node, &["--dry-run"]);
    assert_eq!(
        report["rootfs_removed"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(bucket_entries(&node.store, "rootfs-v1"), rootfs_before);
    let report = node_gc(node, &[]);
    assert_eq!(
        report["rootfs_removed"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(
        report["environments_removed"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert!(report["debs_removed"].as_u64() > Some(0), "{report}");
    assert!(report["freed"].as_u64() > Some(0), "{report}");
    assert!(bucket_entries(&node.store, "rootfs-v1").is_empty());
    assert!(
        !bucket_entries(&node.store, "debs-v1")
            .iter()
            .any(|n| n.ends_with(".deb")),
        "{:?}",
        bucket_entries(&node.store, "debs-v1")
    );

    // A pod after gc fetches and assembles again, and runs as before.
    let pod = node.run_pod("after-gc", &[(ENVIRONMENT, &reference)]);
    let app = node
        .create_and_start(
            &pod,
            &container(
                "app",
                &empty,
                &["bash", "-c", "echo \"greeting=$GREETING\""],
            ),
        )
        .unwrap_or_else(|e| panic!("the pod after gc did not start: {e}"));
    assert_eq!(node.wait_exited(&app, WAIT), 0, "{}", node.logs(&app));
    assert!(node.logs(&app).contains("greeting=hello from cairn"));
    let events = node.handler_events();
    let last = events.last().expect("an event for the pod after gc");
    assert!(last["debs_fetched"].as_u64() > Some(0), "{events:?}");
    assert_eq!(last["rootfs_assembled"], true, "{events:?}");
    node.remove_pod(&pod);

    // gc refuses a directory that is not a node store.
    let not_a_store = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(cairn_tests::TestContext::cairn_bin())
        .args(["kubernetes", "gc", "--store"])
        .arg(not_a_store.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run cairn kubernetes gc");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a node store"), "{stderr}");
}
