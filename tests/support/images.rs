//! Container images as a user meets them: the engines that load and run
//! cairn's archives (Docker, Podman, containerd), guards that remove what a
//! test loaded or started, a layer cache shared by the tests of one build, and
//! a reader for the OCI layout inside an archive or directory.
//!
//! It observes images; it does not build them (that is cairn's job) and does
//! not install or configure engines (`.ci/setup` does).

use crate::context::{expect_success, run_with_timeout, stderr_of, stdout_of};
use crate::tools::{in_ci, require_tool};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// containerd as Docker Engine runs it (the socket `ctr` needs).
pub const DOCKER_CONTAINERD_SOCKET: &str = "/run/docker/containerd/containerd.sock";

/// A container engine that loads `docker save`-style archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// The command, which is also the value of cairn's `--runtime`.
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// `docker ARGS...` or `podman ARGS...`.
    pub fn command(self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.program());
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Whether the engine is installed and `info` answers. On CI a missing or
    /// broken engine fails the test; locally the test is skipped with a message.
    pub fn ready(self) -> bool {
        if !require_tool(self.program()) {
            return false;
        }
        let info = run_with_timeout(&mut self.command(&["info"]));
        if info.status.success() {
            return true;
        }
        let problem = format!(
            "`{} info` failed, so the engine cannot be tested:\n{}",
            self.program(),
            stderr_of(&info)
        );
        assert!(!in_ci(), "{problem}");
        eprintln!("skipping: {problem}");
        false
    }

    /// Loads the archive at `path` (`ENGINE load -i`) and returns a guard for
    /// the reference it reports.
    pub fn load_file(self, path: &Path) -> LoadedImage {
        let path = path.to_string_lossy();
        let out = expect_success(&mut self.command(&["load", "-i", &path]));
        self.loaded(&out)
    }

    /// The guard for the image that `ENGINE load` reported in `output`.
    pub fn loaded(self, output: &Output) -> LoadedImage {
        let text = stdout_of(output);
        let reference = loaded_reference(&text).unwrap_or_else(|| {
            panic!(
                "`{} load` named no image\n--- stdout\n{text}\n--- stderr\n{}",
                self.program(),
                stderr_of(output)
            )
        });
        LoadedImage {
            engine: self,
            reference,
        }
    }

    /// A guard for an image some other command loaded into this engine.
    pub fn adopt(self, reference: &str) -> LoadedImage {
        LoadedImage {
            engine: self,
            reference: reference.to_owned(),
        }
    }
}

/// The image reference in `docker load` / `podman load` output
/// (`Loaded image: REF` or podman's `Loaded image(s): REF`).
pub fn loaded_reference(load_stdout: &str) -> Option<String> {
    load_stdout.lines().find_map(|line| {
        let (_, reference) = line.split_once("Loaded image")?.1.split_once(": ")?;
        let reference = reference.split(',').next()?.trim();
        (!reference.is_empty()).then(|| reference.to_owned())
    })
}

/// An image loaded into an engine, untagged when dropped. Only the tag is
/// removed (no `-f`), so a test never deletes an image another test tagged.
#[derive(Debug)]
pub struct LoadedImage {
    pub engine: Engine,
    /// As the engine reported it, e.g. `name:tag` or `docker.io/library/name:tag`.
    pub reference: String,
}

impl LoadedImage {
    /// `ENGINE run --rm IMAGE ARGS...`, asserting it succeeds.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.engine.command(&["run", "--rm", &self.reference]);
        cmd.args(args);
        expect_success(&mut cmd)
    }

    /// The image's `Id` (the config digest) as the engine reports it.
    pub fn id(&self) -> String {
        self.inspect("{{.Id}}").trim().to_owned()
    }

    /// `ENGINE image inspect --format FORMAT IMAGE`.
    pub fn inspect(&self, format: &str) -> String {
        let out = expect_success(&mut self.engine.command(&[
            "image",
            "inspect",
            "--format",
            format,
            &self.reference,
        ]));
        stdout_of(&out)
    }

    /// The image's `Config` as JSON.
    pub fn config_json(&self) -> serde_json::Value {
        let text = self.inspect("{{json .Config}}");
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "image config of {} is not JSON: {e}\n{text}",
                self.reference
            )
        })
    }

    /// Every path in the image's filesystem as the engine assembled it
    /// (`create` + `export` to a file + `tar -t`): the image needs no shell.
    pub fn exported_paths(&self, scratch: &Path) -> Vec<String> {
        let created = expect_success(&mut self.engine.command(&["create", &self.reference]));
        let container = Container {
            engine: self.engine,
            id: stdout_of(&created).trim().to_owned(),
        };
        let tar = scratch.join(format!("export-{}.tar", container.id));
        let tar_arg = tar.to_string_lossy();
        expect_success(
            &mut self
                .engine
                .command(&["export", "-o", &tar_arg, &container.id]),
        );
        let listing = expect_success(Command::new("tar").arg("-tf").arg(&tar));
        let _ = fs_err::remove_file(&tar);
        stdout_of(&listing)
            .lines()
            .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
            .collect()
    }
}

impl Drop for LoadedImage {
    fn drop(&mut self) {
        let _ = run_with_timeout(&mut self.engine.command(&["rmi", &self.reference]));
    }
}

/// A container started by a test, removed (with `rm -f`) when dropped.
#[derive(Debug)]
pub struct Container {
    pub engine: Engine,
    pub id: String,
}

impl Container {
    /// `ENGINE run -d ARGS...`.
    pub fn start(engine: Engine, args: &[&str]) -> Container {
        let mut cmd = engine.command(&["run", "-d"]);
        cmd.args(args);
        let out = expect_success(&mut cmd);
        Container {
            engine,
            id: stdout_of(&out).trim().to_owned(),
        }
    }

    /// The host address (`127.0.0.1:PORT`) published for `container_port`
    /// (e.g. `5000/tcp`).
    pub fn published(&self, container_port: &str) -> String {
        let out = expect_success(&mut self.engine.command(&["port", &self.id, container_port]));
        stdout_of(&out)
            .lines()
            .next()
            .map(|line| line.trim().to_owned())
            .unwrap_or_else(|| panic!("{container_port} of {} is not published", self.id))
    }

    /// The container's output so far, for failure messages.
    pub fn logs(&self) -> String {
        let out = run_with_timeout(&mut self.engine.command(&["logs", &self.id]));
        format!("{}{}", stdout_of(&out), stderr_of(&out))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run_with_timeout(&mut self.engine.command(&["rm", "-f", &self.id]));
    }
}

/// `GET url`, retried until it answers 200 or `deadline` passes; the body, or
/// the last error.
pub fn http_get_until(url: &str, deadline: Duration) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let end = Instant::now() + deadline;
    loop {
        let error = match agent.get(url).call() {
            Ok(mut response) => match response.body_mut().read_to_string() {
                Ok(body) => return Ok(body),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= end {
            return Err(format!("GET {url} failed until the deadline: {error}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether `ctr` can reach Docker's containerd; fails on CI when it cannot.
pub fn containerd_ready() -> bool {
    if !require_tool("ctr") {
        return false;
    }
    if Path::new(DOCKER_CONTAINERD_SOCKET).exists() {
        return true;
    }
    let problem = format!("containerd socket {DOCKER_CONTAINERD_SOCKET} does not exist");
    assert!(!in_ci(), "{problem}");
    eprintln!("skipping: {problem}");
    false
}

/// `ctr -a <docker's containerd> -n NAMESPACE ARGS...`.
pub fn ctr(namespace: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("ctr");
    cmd.args(["-a", DOCKER_CONTAINERD_SOCKET, "-n", namespace])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// A directory for caches shared by every test of this build profile
/// (`<target>/<profile>/cairn-test-cache/NAME`), so real `.deb`s and layers
/// are fetched and compressed once per machine rather than once per test.
/// cairn's cache is safe for concurrent use, and `cargo clean` removes it.
pub fn shared_cache_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in <profile>/deps/");
    let dir = profile_dir.join("cairn-test-cache").join(name);
    fs_err::create_dir_all(&dir).expect("create shared cache dir");
    dir
}

/// A name no other test (in this or a concurrent run) uses: `PREFIX-PID-N-NANOS`,
/// lowercase so it is a valid image name or tag.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
    .to_lowercase()
}

/// Runs `producer | consumer`: the producer's stdout feeds the consumer's
/// stdin. Returns both outputs (the producer's stdout is empty: it went down
/// the pipe). The producer's stderr goes through a file, so a chatty producer
/// never blocks on a full pipe while the consumer reads.
pub fn pipe_into(producer: &mut Command, consumer: &mut Command) -> (Output, Output) {
    let stderr_file = tempfile::tempfile().expect("create stderr file");
    let mut child = producer
        .stdout(Stdio::piped())
        .stderr(stderr_file.try_clone().expect("clone stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", crate::tools::describe(producer)));
    let stdout = child.stdout.take().expect("piped stdout");
    let consumed = run_with_timeout(consumer.stdin(Stdio::from(stdout)));
    let status = child.wait().expect("wait for producer");
    let produced = Output {
        status,
        stdout: Vec::new(),
        stderr: read_back(stderr_file),
    };
    (produced, consumed)
}

fn read_back(mut file: File) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut buf = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut buf);
    buf
}

/// A command like `template` (same environment and directory) running
/// `program` instead, e.g. `script` wrapping cairn.
pub fn command_like(template: &Command, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    if let Some(dir) = template.get_current_dir() {
        cmd.current_dir(dir);
    }
    cmd
}

/// `'...'` quoting for `sh -c`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The files in `dir` (names only, sorted), to prove nothing was left behind.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// One layer of an image, in manifest order, with its history line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    pub media_type: String,
    /// The config's `history[].created_by` for this layer.
    pub created_by: String,
}

impl LayerInfo {
    /// The packages a cairn package layer holds, from `cairn: a 1.0, b 2.0`.
    pub fn packages(&self) -> Vec<String> {
        self.created_by
            .strip_prefix("cairn: ")
            .filter(|rest| {
                !rest.starts_with("environment ")
                    && *rest != "copy-to-root"
                    && *rest != "package configuration"
            })
            .map(|rest| {
                rest.split(", ")
                    .filter_map(|p| p.split_whitespace().next())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) on disk:
/// a directory cairn wrote, or an archive unpacked with `tar`.
#[derive(Debug)]
pub struct OciLayout {
    pub root: PathBuf,
    _unpacked: Option<tempfile::TempDir>,
}

impl OciLayout {
    /// Reads a layout directory (`--format oci-dir`).
    pub fn open(dir: &Path) -> OciLayout {
        assert!(
            dir.join("oci-layout").is_file(),
            "{} has no oci-layout file",
            dir.display()
        );
        OciLayout {
            root: dir.to_path_buf(),
            _unpacked: None,
        }
    }

    /// Unpacks an archive (docker-archive or oci-archive) into a temp dir.
    pub fn unpack(archive: &Path) -> OciLayout {
        let dir = tempfile::Builder::new()
            .prefix("cairn-oci")
            .tempdir()
            .expect("create unpack dir");
        expect_success(
            Command::new("tar")
                .arg("-xf")
                .arg(archive)
                .arg("-C")
                .arg(dir.path()),
        );
        let mut layout = OciLayout::open(dir.path());
        layout._unpacked = Some(dir);
        layout
    }

    /// A JSON file of the layout, e.g. `index.json` or `manifest.json`.
    pub fn json(&self, relative: &str) -> serde_json::Value {
        let path = self.root.join(relative);
        let text = fs_err::read_to_string(&path).expect("read layout JSON");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
    }

    /// The file of blob `sha256:<hex>`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    /// A JSON blob.
    pub fn blob_json(&self, digest: &str) -> serde_json::Value {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.json(&format!("blobs/sha256/{hex}"))
    }

    /// The image manifest of the index's only image.
    pub fn manifest(&self) -> serde_json::Value {
        let index = self.json("index.json");
        let manifests = index["manifests"].as_array().expect("index.json manifests");
        assert_eq!(manifests.len(), 1, "one image per archive: {index}");
        self.blob_json(manifests[0]["digest"].as_str().expect("manifest digest"))
    }

    /// The image config.
    pub fn config(&self) -> serde_json::Value {
        let manifest = self.manifest();
        self.blob_json(
            manifest["config"]["digest"]
                .as_str()
                .expect("config digest"),
        )
    }

    /// The layers in order, each with its history line (history entries
    /// marked `empty_layer` have no layer and are skipped).
    pub fn layers(&self) -> Vec<LayerInfo> {
        let manifest = self.manifest();
        let config = self.config();
        let layers = manifest["layers"].as_array().expect("manifest layers");
        let history: Vec<&serde_json::Value> = config["history"]
            .as_array()
            .expect("config history")
            .iter()
            .filter(|h| h["empty_layer"] != true)
            .collect();
        assert_eq!(
            layers.len(),
            history.len(),
            "one history line per layer: {config}"
        );
        layers
            .iter()
            .zip(history)
            .map(|(layer, history)| LayerInfo {
                digest: layer["digest"].as_str().expect("layer digest").to_owned(),
                media_type: layer["mediaType"]
                    .as_str()
                    .expect("layer mediaType")
                    .to_owned(),
                created_by: history["created_by"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect()
    }

    /// The paths in a gzip layer blob (`tar -tzf`), without `./` or trailing `/`.
    pub fn layer_paths(&self, digest: &str) -> Vec<String> {
        let out = expect_success(Command::new("tar").arg("-tzf").arg(self.blob_path(digest)));
        stdout_of(&out)
            .lines()
            .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_owned())
            .collect()
    }

    /// One file's contents from a gzip layer blob.
    pub fn layer_file(&self, digest: &str, path: &str) -> String {
        let out = expect_success(
            Command::new("tar")
                .arg("-xzOf")
                .arg(self.blob_path(digest))
                .arg(path),
        );
        stdout_of(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_loaded_references_from_docker_and_podman() {
        assert_eq!(
            loaded_reference("Loaded image: hello:latest\n").as_deref(),
            Some("hello:latest")
        );
        assert_eq!(
            loaded_reference("Loaded image(s): docker.io/library/a:b\n").as_deref(),
            Some("docker.io/library/a:b")
        );
        assert_eq!(
            loaded_reference("Loaded image ID: sha256:ab\n").as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(loaded_reference("nothing\n"), None);
    }

    #[test]
    fn layer_packages_parse_history_lines() {
        let layer = |created_by: &str| LayerInfo {
            digest: String::new(),
            media_type: String::new(),
            created_by: created_by.to_owned(),
        };
        assert_eq!(layer("cairn: libc6 2.36-9").packages(), ["libc6"]);
        assert_eq!(layer("cairn: a 1, b 2:3-4").packages(), ["a", "b"]);
        assert!(layer("cairn: environment hello").packages().is_empty());
        assert!(layer("cairn 0.1.0 entrypoint").packages().is_empty());
    }

    #[test]
    fn unique_names_differ_and_quote_safely() {
        assert_ne!(unique_name("x"), unique_name("x"));
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn pipe_into_connects_two_commands() {
        let (produced, consumed) = pipe_into(
            Command::new("sh").args(["-c", "echo data; echo note >&2"]),
            &mut Command::new("cat"),
        );
        assert!(produced.status.success());
        assert_eq!(stderr_of(&produced), "note\n");
        assert_eq!(stdout_of(&consumed), "data\n");
    }
}
