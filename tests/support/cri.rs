//! A private containerd driven over CRI gRPC, as the kubelet drives it.
//!
//! [`Node`] starts Debian's containerd (1.6, CRI plugin built in) with its own
//! root, state, socket and config in a temp dir, the `cairn` runtime from
//! `cairn kubernetes node-setup`, and a node store of its own, then talks to
//! it with the `k8s-cri` client over the unix socket: RunPodSandbox,
//! CreateContainer, StartContainer, ExecSync, ContainerStatus, the container
//! log file, StopPodSandbox, RemovePodSandbox, and Exec, whose URL on
//! containerd's streaming server [`Node::exec_stream`] speaks the Kubernetes
//! remotecommand protocol to (WebSocket, `v4.channel.k8s.io`), as kubectl does
//! through the API server. Pods use the host network unless
//! [`Node::run_pod_network`] asks for the pod network: each node has a CNI
//! bridge of its own (Debian's containernetworking-plugins, a unique bridge
//! name and /24), removed with the node. Images are `ctr images import`ed,
//! never pulled.
//!
//! It asserts nothing about cairn; `tests/kubernetes.rs` does.

use crate::context::TestContext;
use crate::tools::require_tool;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatus, ContainerStatusRequest,
    CreateContainerRequest, ExecRequest, ExecSyncRequest, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, ListPodSandboxRequest, Mount, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopPodSandboxRequest,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

/// How long containerd may take to answer on its socket.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running private containerd with the `cairn` runtime.
pub struct Node {
    /// Everything of this node: config, root, state, socket, node store, logs.
    pub dir: tempfile::TempDir,
    child: Child,
    pub socket: PathBuf,
    /// `CAIRN_NODE_STORE` of the handler.
    pub store: PathBuf,
    pub log: PathBuf,
    /// The node's CNI bridge interface and its subnet (`10.X.Y.0/24`).
    pub bridge: String,
    pub subnet: String,
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    pods: HashMap<String, PodSandboxConfig>,
}

/// A container to create in a pod.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub annotations: Vec<(String, String)>,
    /// `(host path, container path)` bind mounts, read-only.
    pub mounts: Vec<(PathBuf, String)>,
}

impl Node {
    /// Whether containerd, ctr and runc are installed and we are root; fails
    /// under CI=true when not, skips locally with a message naming the tool.
    pub fn tools_ready() -> bool {
        if !["containerd", "ctr", "runc", "containerd-shim-runc-v2"]
            .iter()
            .all(|t| require_tool(t))
        {
            return false;
        }
        if !nix_is_root() {
            let problem = "the containerd tests need root (containerd mounts and runs runc)";
            assert!(!crate::tools::in_ci(), "{problem}");
            eprintln!("skipping: {problem}");
            return false;
        }
        true
    }

    /// Starts containerd with `sandbox_image` as the pause image, PullImage
    /// over plain HTTP from `http_registries` (`host:port`), and `handler_env`
    /// in the environment of its shims (and so of cairn-runc).
    pub fn start(
        sandbox_image: &str,
        http_registries: &[&str],
        handler_env: &[(&str, String)],
    ) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("cairn-node")
            .tempdir()
            .expect("create node dir");
        let path = |name: &str| dir.path().join(name);
        for sub in ["root", "state", "cni-conf", "opt", "pods"] {
            fs_err::create_dir_all(path(sub)).expect("create node subdir");
        }
        let socket = path("containerd.sock");
        let store = path("node-store");
        let bin_dir = TestContext::cairn_bin()
            .parent()
            .expect("cairn's directory")
            .to_path_buf();
        let setup = Command::new(TestContext::cairn_bin())
            .args([
                "kubernetes",
                "node-setup",
                "--print",
                "containerd",
                "--binary",
            ])
            .arg(bin_dir.join("cairn-runc"))
            .stdin(Stdio::null())
            .output()
            .expect("run cairn kubernetes node-setup");
        assert!(setup.status.success(), "node-setup failed: {setup:?}");
        let snippet = String::from_utf8(setup.stdout).expect("node-setup output is UTF-8");
        let mirrors: String = http_registries
            .iter()
            .map(|host| {
                format!(
                    "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"{host}\"]\n  endpoint = [\"http://{host}\"]\n"
                )
            })
            .collect();
        let (bridge, subnet) = cni_network(dir.path());
        let config = node_config(dir.path(), &socket, sandbox_image, &snippet) + &mirrors;
        fs_err::write(path("config.toml"), config).expect("write containerd config");
        let log = path("containerd.log");
        let out = fs_err::File::create(&log).expect("create containerd log");
        let err = out.file().try_clone().expect("clone log handle");
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(path("config.toml"))
            .env("CAIRN_NODE_STORE", &store)
            .env("CAIRN_ENTRYPOINT_BIN", bin_dir.join("cairn-entrypoint"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.into_file()))
            .stderr(Stdio::from(err));
        for (key, value) in handler_env {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("start containerd");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let channel = wait_for_socket(&rt, &socket, &log);
        Node {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            dir,
            child,
            socket,
            store,
            log,
            bridge,
            subnet,
            rt,
            pods: HashMap::new(),
        }
    }

    /// `ctr images import ARCHIVE` into the CRI's `k8s.io` namespace.
    pub fn import(&self, archive: &Path) {
        let output = Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(archive)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr images import");
        assert!(
            output.status.success(),
            "ctr images import {} failed: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// PullImage through the CRI, as the kubelet does before CreateContainer.
    pub fn pull_image(&self, image: &str) {
        let mut client = self.images.clone();
        let request = k8s_cri::v1::PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_owned(),
                ..ImageSpec::default()
            }),
            ..k8s_cri::v1::PullImageRequest::default()
        };
        self.rt
            .block_on(client.pull_image(request))
            .unwrap_or_else(|e| panic!("PullImage {image}: {e}"));
    }

    /// RunPodSandbox with the host network and the `cairn` runtime handler.
    pub fn run_pod(&mut self, name: &str, annotations: &[(&str, &str)]) -> String {
        self.run_pod_in(name, annotations, NamespaceMode::Node)
    }

    /// RunPodSandbox on the pod network (the node's CNI bridge): the pod
    /// gets a network namespace and an address of its own.
    pub fn run_pod_network(&mut self, name: &str, annotations: &[(&str, &str)]) -> String {
        self.run_pod_in(name, annotations, NamespaceMode::Pod)
    }

    /// The pod's IP address, from PodSandboxStatus.
    pub fn pod_ip(&self, pod: &str) -> String {
        let mut client = self.runtime.clone();
        let request = k8s_cri::v1::PodSandboxStatusRequest {
            pod_sandbox_id: pod.to_owned(),
            verbose: false,
        };
        self.rt
            .block_on(client.pod_sandbox_status(request))
            .unwrap_or_else(|e| panic!("PodSandboxStatus {pod}: {e}"))
            .into_inner()
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default()
    }

    fn run_pod_in(
        &mut self,
        name: &str,
        annotations: &[(&str, &str)],
        network: NamespaceMode,
    ) -> String {
        let log_dir = self.dir.path().join("pods").join(name);
        fs_err::create_dir_all(&log_dir).expect("create pod log dir");
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_owned(),
                uid: format!("uid-{name}"),
                namespace: "default".to_owned(),
                attempt: 0,
            }),
            // Host-network pods keep the node's hostname (the kubelet sends none).
            hostname: String::new(),
            log_directory: log_dir.display().to_string(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: network as i32,
                        ..NamespaceOption::default()
                    }),
                    ..LinuxSandboxSecurityContext::default()
                }),
                ..LinuxPodSandboxConfig::default()
            }),
            ..PodSandboxConfig::default()
        };
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "cairn".to_owned(),
        };
        let mut client = self.runtime.clone();
        let id = self
            .rt
            .block_on(client.run_pod_sandbox(request))
            .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {e}\n{}", self.log_tail()))
            .into_inner()
            .pod_sandbox_id;
        self.pods.insert(id.clone(), config);
        id
    }

    /// CreateContainer then StartContainer; the error of either as text.
    pub fn create_and_start(&self, pod: &str, spec: &ContainerSpec) -> Result<String, String> {
        let id = self.create_container(pod, spec)?;
        self.start_container(&id)?;
        Ok(id)
    }

    /// CreateContainer, as the kubelet sends it.
    pub fn create_container(&self, pod: &str, spec: &ContainerSpec) -> Result<String, String> {
        let sandbox = self.pods.get(pod).expect("a pod of this node").clone();
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: spec.name.clone(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: spec.image.clone(),
                ..ImageSpec::default()
            }),
            command: spec.command.clone(),
            args: spec.args.clone(),
            log_path: format!("{}.log", spec.name),
            annotations: spec.annotations.iter().cloned().collect(),
            mounts: spec
                .mounts
                .iter()
                .map(|(host, inside)| Mount {
                    container_path: inside.clone(),
                    host_path: host.display().to_string(),
                    readonly: true,
                    ..Mount::default()
                })
                .collect(),
            ..ContainerConfig::default()
        };
        let request = CreateContainerRequest {
            pod_sandbox_id: pod.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox),
        };
        let mut client = self.runtime.clone();
        self.rt
            .block_on(client.create_container(request))
            .map(|r| r.into_inner().container_id)
            .map_err(|e| e.message().to_owned())
    }

    pub fn start_container(&self, id: &str) -> Result<(), String> {
        let mut client = self.runtime.clone();
        let request = StartContainerRequest {
            container_id: id.to_owned(),
        };
        self.rt
            .block_on(client.start_container(request))
            .map(drop)
            .map_err(|e| e.message().to_owned())
    }

    /// ExecSync: (exit code, stdout, stderr).
    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let mut client = self.runtime.clone();
        let request = ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
        };
        let reply = self
            .rt
            .block_on(client.exec_sync(request))
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?} in {id}: {e}"))
            .into_inner();
        (
            reply.exit_code,
            String::from_utf8_lossy(&reply.stdout).into_owned(),
            String::from_utf8_lossy(&reply.stderr).into_owned(),
        )
    }

    /// CRI Exec, then the streaming session kubectl would run against the
    /// returned URL: stdout, stderr and the exit code from the v4 error
    /// channel's Status (`Success`, or `NonZeroExitCode` with an `ExitCode`
    /// cause).
    pub fn exec_stream(&self, id: &str, cmd: &[&str]) -> StreamedExec {
        let mut client = self.runtime.clone();
        let request = ExecRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        };
        let url = self
            .rt
            .block_on(client.exec(request))
            .unwrap_or_else(|e| panic!("Exec {cmd:?} in {id}: {e}"))
            .into_inner()
            .url;
        remotecommand(&url)
    }

    pub fn status(&self, id: &str) -> ContainerStatus {
        let mut client = self.runtime.clone();
        let request = ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        self.rt
            .block_on(client.container_status(request))
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"))
            .into_inner()
            .status
            .expect("a status")
    }

    /// Waits until the container exits; its exit code.
    pub fn wait_exited(&self, id: &str, deadline: Duration) -> i32 {
        let end = Instant::now() + deadline;
        loop {
            let status = self.status(id);
            if status.state == ContainerState::ContainerExited as i32 {
                return status.exit_code;
            }
            assert!(
                Instant::now() < end,
                "container {id} still running after {deadline:?}: {status:?}\nlog: {}",
                self.logs(id)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the container's log holds `needle`; the log.
    pub fn wait_log(&self, id: &str, needle: &str, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            let log = self.logs(id);
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < end,
                "container {id}'s log lacks {needle:?} after {deadline:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The container's output, from the CRI log file (`TIME STREAM TAG TEXT` lines).
    pub fn logs(&self, id: &str) -> String {
        let path = self.status(id).log_path;
        let text = fs_err::read_to_string(&path).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.splitn(4, ' ').nth(3))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// StopPodSandbox then RemovePodSandbox.
    pub fn remove_pod(&mut self, pod: &str) {
        let mut client = self.runtime.clone();
        // containerd 1.6 sometimes answers "ttrpc: closed" when a container's
        // shim exits during the stop (the container had already finished);
        // the kubelet retries on its next sync, and so does this.
        let mut attempt = 0;
        loop {
            let stop = StopPodSandboxRequest {
                pod_sandbox_id: pod.to_owned(),
            };
            match self.rt.block_on(client.stop_pod_sandbox(stop)) {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    eprintln!("StopPodSandbox {pod}: {e}; retrying");
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => panic!("StopPodSandbox {pod}: {e}"),
            }
        }
        let remove = RemovePodSandboxRequest {
            pod_sandbox_id: pod.to_owned(),
        };
        self.rt
            .block_on(client.remove_pod_sandbox(remove))
            .unwrap_or_else(|e| panic!("RemovePodSandbox {pod}: {e}"));
        self.pods.remove(pod);
    }

    /// The handler's record of what it did (`events.jsonl`), one value per container.
    pub fn handler_events(&self) -> Vec<serde_json::Value> {
        let path = self.store.join("kubernetes-v1/events.jsonl");
        fs_err::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("events.jsonl holds JSON lines"))
            .collect()
    }

    /// The end of containerd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs_err::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Pods left by a failing test: stop them, or their shims outlive containerd.
        let mut client = self.runtime.clone();
        let listed = self
            .rt
            .block_on(client.list_pod_sandbox(ListPodSandboxRequest { filter: None }));
        if let Ok(list) = listed {
            for pod in list.into_inner().items {
                let id = pod.id;
                let _ = self
                    .rt
                    .block_on(client.stop_pod_sandbox(StopPodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    }));
                let _ = self.rt.block_on(
                    client.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id }),
                );
            }
        }
        let _ = nix_kill(self.child.id());
        let _ = self.child.wait();
        unmount_below(self.dir.path());
        // The bridge outlives containerd; the CNI plugin made it, so remove it.
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// What a streamed exec printed, and its exit code.
#[derive(Debug, Default)]
pub struct StreamedExec {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
    /// The Status JSON of the error channel, as sent.
    pub status: String,
}

/// Channels of the `v4.channel.k8s.io` protocol: each binary message starts
/// with the channel's number.
const STDOUT_CHANNEL: u8 = 1;
const STDERR_CHANNEL: u8 = 2;
const ERROR_CHANNEL: u8 = 3;

/// Runs the client side of the Kubernetes remotecommand protocol against a
/// streaming URL from Exec: a WebSocket upgrade with the
/// `v4.channel.k8s.io` subprotocol, then reads until the server closes.
fn remotecommand(url: &str) -> StreamedExec {
    use tungstenite::client::IntoClientRequest;
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .unwrap_or_else(|e| panic!("streaming URL {url}: {e}"));
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static("v4.channel.k8s.io"),
    );
    let authority = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| panic!("no host in {url}"));
    let tcp = std::net::TcpStream::connect(&authority)
        .unwrap_or_else(|e| panic!("connect to the streaming server {authority}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("set read timeout");
    let (mut socket, response) = tungstenite::client(request, tcp)
        .unwrap_or_else(|e| panic!("WebSocket upgrade at {url}: {e}"));
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        protocol, "v4.channel.k8s.io",
        "the server chose {protocol:?}"
    );
    let mut out = StreamedExec::default();
    loop {
        let message = match socket.read() {
            Ok(message) => message,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            // The server may drop the connection right after the status.
            Err(tungstenite::Error::Io(_) | tungstenite::Error::Protocol(_))
                if !out.status.is_empty() =>
            {
                break;
            }
            Err(e) => panic!("reading the exec stream: {e}\nso far: {out:?}"),
        };
        let data = match message {
            tungstenite::Message::Binary(data) => data.to_vec(),
            tungstenite::Message::Text(text) => text.as_bytes().to_vec(),
            tungstenite::Message::Close(_) => break,
            _ => continue,
        };
        let Some((&channel, payload)) = data.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(payload);
        match channel {
            STDOUT_CHANNEL => out.stdout.push_str(&text),
            STDERR_CHANNEL => out.stderr.push_str(&text),
            ERROR_CHANNEL => out.status.push_str(&text),
            _ => {}
        }
    }
    out.exit_code = exit_code_of(&out.status);
    out
}

/// The exit code a v4 Status reports: 0 for `Success`, the `ExitCode`
/// cause for `NonZeroExitCode`; -1 for anything else (no status, or an
/// error that is not the command's).
fn exit_code_of(status: &str) -> i32 {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(status) else {
        return -1;
    };
    if value["status"] == "Success" {
        return 0;
    }
    value["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["reason"] == "ExitCode")
        .and_then(|c| c["message"].as_str()?.parse().ok())
        .unwrap_or(-1)
}

/// Writes the node's CNI config: a bridge (`cairnXXXXXX`, unique per node)
/// with host-local addresses from a /24 no route on this machine uses, its
/// state in the node's directory; the bridge is the pods' gateway, so the
/// host reaches a pod at its address. Returns the bridge and the subnet.
fn cni_network(dir: &Path) -> (String, String) {
    let routes = Command::new("ip")
        .args(["-4", "route"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // A different /24 per node: tests run in parallel, each with a node.
    let seed = seed(dir);
    let third = (0..250u32)
        .map(|i| (seed + i) % 250 + 1)
        .find(|n| !routes.contains(&format!("10.88.{n}.")))
        .expect("a free 10.88.N.0/24");
    let bridge = format!("cairn{:06x}", seed & 0xff_ffff);
    let subnet = format!("10.88.{third}.0/24");
    let conflist = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": bridge,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "dataDir": dir.join("cni-state").display().to_string(),
            },
        }],
    });
    fs_err::write(
        dir.join("cni-conf").join("10-cairn.conflist"),
        serde_json::to_string_pretty(&conflist).expect("CNI config as JSON"),
    )
    .expect("write the CNI config");
    (bridge, subnet)
}

/// A number from the node's unique temp dir name.
fn seed(dir: &Path) -> u32 {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    name.unwrap_or_default()
        .bytes()
        .fold(2166136261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16777619)
        })
}

fn nix_is_root() -> bool {
    // SAFETY-free: read our uid from /proc rather than adding libc.
    fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn nix_kill(pid: u32) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
}

/// Lazily unmounts whatever containerd left mounted under `dir` (snapshots,
/// shm), deepest first, so the temp dir can be removed.
fn unmount_below(dir: &Path) {
    let mountinfo = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

fn wait_for_socket(rt: &tokio::runtime::Runtime, socket: &Path, log: &Path) -> Channel {
    let end = Instant::now() + START_DEADLINE;
    loop {
        if socket.exists() {
            let path = socket.to_path_buf();
            let connected = rt.block_on(async {
                Endpoint::try_from("http://[::]:50051")
                    .expect("endpoint")
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    }))
                    .await
            });
            if let Ok(channel) = connected {
                let mut client = RuntimeServiceClient::new(channel.clone());
                let ready = rt.block_on(client.version(k8s_cri::v1::VersionRequest {
                    version: "v1".to_owned(),
                }));
                if ready.is_ok() {
                    return channel;
                }
            }
        }
        assert!(
            Instant::now() < end,
            "containerd did not answer on {} within {START_DEADLINE:?}:\n{}",
            socket.display(),
            fs_err::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// containerd's config: everything in `dir`, the CRI plugin with the cairn
/// runtime, overlayfs snapshots, and restricted OOM score adjustments (as in
/// a container, where raising it is not allowed).
fn node_config(dir: &Path, socket: &Path, sandbox_image: &str, cairn_runtime: &str) -> String {
    let p = |name: &str| dir.join(name).display().to_string();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

{cairn_runtime}"#,
        root = p("root"),
        state = p("state"),
        socket = socket.display(),
        opt = p("opt"),
        cni_bin = "/usr/lib/cni",
        cni_conf = p("cni-conf"),
    )
}
