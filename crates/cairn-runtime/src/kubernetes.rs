//! The Kubernetes runtime handler's logic: what a pod's `cairn.dev/*`
//! annotations ask for, and how a container's OCI spec changes to run in a
//! published environment.
//!
//! The mechanism is the one nvidia-container-runtime uses: containerd's runc
//! v2 shim calls a wrapper (its `BinaryName`) instead of runc; on `create` the
//! wrapper edits the bundle's `config.json`, on `exec` the process file, and
//! otherwise runs runc unchanged. This module owns the pure parts — reading the
//! annotations, planning the mounts, rewriting the process — as functions over
//! plain data, so they are unit-tested without a container. Fetching the
//! environment and assembling it in the node store, and running runc, belong
//! to the binary (`cairn-runc` in cairn-cli).
//!
//! The environment reaches the container by mounts only, never copies: each
//! top-level directory of the environment's rootfs (assembled once per lock in
//! the node's store and shared by every pod) is bind-mounted over the image,
//! or stacked over the image's own directory with a read-only overlay when the
//! image has one, so a real base image keeps its files where the environment
//! has none. `/usr` and `/opt` are read-only (a write fails with EROFS) unless
//! `cairn.dev/mutable: "true"`; `/etc` and `/var` are copy-on-write per
//! container (services write logs and state there, and the kubelet's
//! `/etc/hosts` mounts need it), with the copies in a per-container scratch
//! directory that `runc delete` removes. The store itself is never writable
//! from a container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::confined::Confined;
use crate::{CONTAINER_CAIRN_EXE, CONTAINER_ENV_DIR, Mode};

/// `REF` or `REF@N`: the published environment the pod runs in.
pub const ENVIRONMENT: &str = "cairn.dev/environment";
/// `run` (the default) or `dev`.
pub const ACTIVATE_MODE: &str = "cairn.dev/activate-mode";
/// `"true"`: the environment's files are writable (copy-on-write) for debugging.
pub const MUTABLE: &str = "cairn.dev/mutable";
/// Comma-separated container names that run exactly as plain runc runs them.
pub const SKIP_CONTAINERS: &str = "cairn.dev/skip-containers";
/// Comma-separated container names whose `kubectl exec` runs outside the activation.
pub const SKIP_CONTAINERS_EXEC: &str = "cairn.dev/skip-containers-exec";
/// Accepted for flox compatibility and ignored: cairn sends no telemetry.
pub const DISABLE_METRICS: &str = "cairn.dev/disable-metrics";
/// Set by the handler on containers it changed: `activate` when `exec` runs in
/// the activation, `plain` when skip-containers-exec names the container.
pub const EXEC_MARKER: &str = "cairn.dev/exec";
/// Where a pod mounts the Secret with its registry credentials.
pub const SECRET_MOUNT: &str = "/var/run/secrets/cairn.dev";

/// containerd's CRI annotations on every OCI spec it writes.
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// Top-level rootfs directories that belong to the runtime (kernel
/// filesystems, scratch space, homes), never taken from the environment.
const RUNTIME_DIRS: &[&str] = &["proc", "sys", "dev", "tmp", "run", "home", "root", "mnt"];
/// Environment directories each container may write to (copy-on-write).
const COPY_ON_WRITE_DIRS: &[&str] = &["etc", "var"];
/// Files inside the environment's rootfs that must exist as mountpoints:
/// containerd binds `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, and
/// the handler binds its cairn at `/opt/cairn/bin/cairn`.
pub const MOUNTPOINT_FILES: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "opt/cairn/bin/cairn",
];

/// A bad annotation value, naming the annotation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnotationError {
    #[error("annotation {annotation}: '{value}' is not {expected}")]
    BadValue {
        annotation: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("annotation {ENVIRONMENT} is empty: give REF or REF@N")]
    EmptyEnvironment,
}

/// What the pod's annotations ask of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRequest {
    /// The container's name in the pod.
    pub container: String,
    /// `REF` or `REF@N`, as written.
    pub environment: String,
    pub mode: Mode,
    pub mutable: bool,
    /// Whether `kubectl exec` runs inside the activation.
    pub exec_activated: bool,
}

/// What the annotations of an OCI spec (containerd copies the pod's and the
/// container's `cairn.dev/*` annotations into it) ask of this container:
/// `None` for the pod sandbox, a pod without [`ENVIRONMENT`], and containers
/// named in [`SKIP_CONTAINERS`], which all run unchanged.
pub fn container_request(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<ContainerRequest>, AnnotationError> {
    let get = |key: &str| annotations.get(key).map(|v| v.trim());
    if get(CRI_CONTAINER_TYPE) == Some("sandbox") {
        return Ok(None);
    }
    let Some(environment) = get(ENVIRONMENT) else {
        return Ok(None);
    };
    if environment.is_empty() {
        return Err(AnnotationError::EmptyEnvironment);
    }
    let container = get(CRI_CONTAINER_NAME).unwrap_or_default().to_owned();
    if names(get(SKIP_CONTAINERS)).any(|name| name == container) {
        return Ok(None);
    }
    let mode = match get(ACTIVATE_MODE) {
        None | Some("run") => Mode::Run,
        Some("dev") => Mode::Dev,
        Some(other) => {
            return Err(AnnotationError::BadValue {
                annotation: ACTIVATE_MODE,
                value: other.to_owned(),
                expected: "run or dev",
            });
        }
    };
    let mutable = match get(MUTABLE) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AnnotationError::BadValue {
                annotation: MUTABLE,
                value: other.to_owned(),
                expected: "\"true\" or \"false\"",
            });
        }
    };
    let exec_activated = !names(get(SKIP_CONTAINERS_EXEC)).any(|name| name == container);
    Ok(Some(ContainerRequest {
        container,
        environment: environment.to_owned(),
        mode,
        mutable,
        exec_activated,
    }))
}

/// The names in a comma-separated list, trimmed, empty ones dropped.
fn names(list: Option<&str>) -> impl Iterator<Item = &str> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// The annotations of an OCI spec (`config.json`) as strings.
pub fn spec_annotations(spec: &Value) -> BTreeMap<String, String> {
    spec.get("annotations")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The host directory mounted at [`SECRET_MOUNT`] in the container, if any:
/// the node-side source of the pod's Secret volume.
pub fn secret_source(spec: &Value) -> Option<PathBuf> {
    spec.get("mounts")?
        .as_array()?
        .iter()
        .find(|m| {
            m.get("destination")
                .and_then(Value::as_str)
                .is_some_and(|d| Path::new(d) == Path::new(SECRET_MOUNT))
        })?
        .get("source")?
        .as_str()
        .map(PathBuf::from)
}

/// What a top-level entry of a rootfs is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopEntry {
    Dir,
    Symlink(PathBuf),
    Other,
}

/// The top-level entries of a directory (a rootfs), by name.
pub fn top_entries(root: &Path) -> std::io::Result<BTreeMap<String, TopEntry>> {
    let mut entries = BTreeMap::new();
    let Ok(dir) = fs_err::read_dir(root) else {
        return Ok(entries);
    };
    for entry in dir {
        let entry = entry?;
        let kind = entry.file_type()?;
        let value = if kind.is_symlink() {
            TopEntry::Symlink(fs_err::read_link(entry.path())?)
        } else if kind.is_dir() {
            TopEntry::Dir
        } else {
            TopEntry::Other
        };
        entries.insert(entry.file_name().to_string_lossy().into_owned(), value);
    }
    Ok(entries)
}

/// Creates the [`MOUNTPOINT_FILES`] (empty) inside an environment's rootfs
/// where nothing is there yet. Resolved with the rootfs as `/` ([`Confined`]),
/// so a package's symlink cannot point the write at the node.
pub fn ensure_mountpoints(rootfs: &Path) -> crate::Result<()> {
    let root = Confined::open(rootfs)?;
    MOUNTPOINT_FILES
        .iter()
        .try_for_each(|file| root.ensure_file(Path::new(file)))
}

/// Creates the plan's top-level links (`bin -> usr/bin`) in the container's
/// rootfs where the image has nothing, inside that rootfs only: an image is as
/// untrusted as a package.
pub fn create_links(image_rootfs: &Path, links: &[(String, PathBuf)]) -> crate::Result<()> {
    let root = Confined::open(image_rootfs)?;
    links
        .iter()
        .try_for_each(|(name, target)| root.symlink_if_absent(Path::new(name), target))
}

/// Everything [`container_plan`] needs to know, as plain data.
#[derive(Debug, Clone)]
pub struct PlanInputs {
    /// The environment's rootfs in the node store.
    pub env_rootfs: PathBuf,
    pub env_entries: BTreeMap<String, TopEntry>,
    /// The container's rootfs (the image, mounted by the shim).
    pub image_rootfs: PathBuf,
    pub image_entries: BTreeMap<String, TopEntry>,
    /// The directory holding `manifest.toml`, `manifest.lock` and
    /// `activation.json`, mounted at `/opt/cairn/env`.
    pub env_dir: PathBuf,
    /// The static in-container cairn (`cairn-entrypoint`), mounted at `/opt/cairn/bin/cairn`.
    pub cairn_exe: PathBuf,
    /// A per-container directory for copy-on-write upper layers.
    pub scratch: PathBuf,
    pub mutable: bool,
}

/// One OCI mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciMount {
    pub destination: String,
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

impl OciMount {
    fn to_json(&self) -> Value {
        json!({
            "destination": self.destination,
            "type": self.kind,
            "source": self.source,
            "options": self.options,
        })
    }
}

/// What the handler does to one container: mounts to add (before the
/// runtime's own, so `/etc/hosts` and volumes land on top of them), the
/// merged-`/usr` links the image lacks, and the directories to create in the
/// scratch directory for overlay upper layers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerPlan {
    pub mounts: Vec<OciMount>,
    /// `(name, target)`: symlinks to create at the top of the image's rootfs
    /// (in the container's own writable layer), e.g. `bin -> usr/bin`.
    pub links: Vec<(String, PathBuf)>,
    pub scratch_dirs: Vec<PathBuf>,
}

/// Plans how the environment's files go on top of the image. Pure.
pub fn container_plan(inputs: &PlanInputs) -> ContainerPlan {
    let mut plan = ContainerPlan::default();
    for (name, entry) in &inputs.env_entries {
        if RUNTIME_DIRS.contains(&name.as_str()) {
            continue;
        }
        let image = inputs.image_entries.get(name);
        match (entry, image) {
            (TopEntry::Dir, None | Some(TopEntry::Dir)) => {
                let writable = inputs.mutable || COPY_ON_WRITE_DIRS.contains(&name.as_str());
                let image_dir = image.map(|_| inputs.image_rootfs.join(name));
                plan_dir(inputs, &mut plan, name, image_dir, writable);
            }
            (TopEntry::Symlink(target), None) => plan.links.push((name.clone(), target.clone())),
            // The image's own link or file wins; for merged-/usr links it
            // leads into a directory the environment provides anyway.
            _ => {}
        }
    }
    plan.mounts
        .push(read_only_bind(&inputs.env_dir, CONTAINER_ENV_DIR));
    plan.mounts
        .push(read_only_bind(&inputs.cairn_exe, CONTAINER_CAIRN_EXE));
    plan
}

fn plan_dir(
    inputs: &PlanInputs,
    plan: &mut ContainerPlan,
    name: &str,
    image_dir: Option<PathBuf>,
    writable: bool,
) {
    let env_dir = inputs.env_rootfs.join(name);
    let destination = format!("/{name}");
    if !writable && image_dir.is_none() {
        plan.mounts.push(read_only_bind(&env_dir, &destination));
        return;
    }
    // The environment's files win over the image's (leftmost lower is on top).
    let mut lower = vec![escape_overlay_path(&env_dir)];
    lower.extend(image_dir.as_deref().map(escape_overlay_path));
    let mut options = vec![format!("lowerdir={}", lower.join(":"))];
    if writable {
        let upper = inputs.scratch.join(name).join("upper");
        let work = inputs.scratch.join(name).join("work");
        options.push(format!("upperdir={}", upper.display()));
        options.push(format!("workdir={}", work.display()));
        plan.scratch_dirs.extend([upper, work]);
    } else {
        options.push("ro".to_owned());
    }
    plan.mounts.push(OciMount {
        destination,
        kind: "overlay".to_owned(),
        source: "overlay".to_owned(),
        options,
    });
}

/// overlayfs splits `lowerdir` at `:` and `,`; escape them in paths.
fn escape_overlay_path(path: &Path) -> String {
    let text = path.display().to_string();
    text.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

fn read_only_bind(source: &Path, destination: &str) -> OciMount {
    OciMount {
        destination: destination.to_owned(),
        kind: "bind".to_owned(),
        source: source.display().to_string(),
        options: ["rbind", "ro"].map(str::to_owned).to_vec(),
    }
}

/// Applies `plan` and the activation to an OCI spec: the mounts go first, the
/// process runs through the in-container cairn's entrypoint (vars, hook, then
/// the command, or the services when there is none), and [`EXEC_MARKER`]
/// records how `exec` must treat this container.
pub fn edit_spec(spec: &mut Value, plan: &ContainerPlan, request: &ContainerRequest) {
    let ours: Vec<Value> = plan.mounts.iter().map(OciMount::to_json).collect();
    let theirs = spec
        .get_mut("mounts")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    spec["mounts"] = Value::Array(ours.into_iter().chain(theirs).collect());
    if let Some(args) = spec
        .pointer_mut("/process/args")
        .and_then(Value::as_array_mut)
    {
        let original = std::mem::take(args);
        *args = entrypoint_args(original);
    }
    if !spec.get("annotations").is_some_and(Value::is_object) {
        spec["annotations"] = json!({});
    }
    spec["annotations"][EXEC_MARKER] = json!(if request.exec_activated {
        "activate"
    } else {
        "plain"
    });
}

/// `cairn entrypoint -- ARGS`, unless the image already starts with the
/// in-container cairn (the empty pod image does: its entrypoint is
/// `/opt/cairn/bin/cairn entrypoint`).
fn entrypoint_args(args: Vec<Value>) -> Vec<Value> {
    if args.first().and_then(Value::as_str) == Some(CONTAINER_CAIRN_EXE) {
        return args;
    }
    [CONTAINER_CAIRN_EXE, "entrypoint", "--"]
        .into_iter()
        .map(Value::from)
        .chain(args)
        .collect()
}

/// Rewrites an `exec` process (`process.json`) of a container whose spec
/// carries `marker` ([`EXEC_MARKER`]) so the command runs activated. Returns
/// whether it changed anything.
pub fn edit_exec_process(process: &mut Value, marker: Option<&str>) -> bool {
    if marker != Some("activate") {
        return false;
    }
    let Some(args) = process.get_mut("args").and_then(Value::as_array_mut) else {
        return false;
    };
    if args.first().and_then(Value::as_str) == Some(CONTAINER_CAIRN_EXE) {
        return false;
    }
    let original = std::mem::take(args);
    *args = [CONTAINER_CAIRN_EXE, "activate", "--"]
        .into_iter()
        .map(Value::from)
        .chain(original)
        .collect();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn container(name: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut map = annotations(&[
            (CRI_CONTAINER_TYPE, "container"),
            (CRI_CONTAINER_NAME, name),
            (ENVIRONMENT, "127.0.0.1:5000/team/app@2"),
        ]);
        map.extend(annotations(extra));
        map
    }

    #[test]
    fn a_pod_without_the_environment_annotation_is_untouched() {
        let map = annotations(&[(CRI_CONTAINER_TYPE, "container"), (MUTABLE, "true")]);
        assert_eq!(container_request(&map), Ok(None));
    }

    #[test]
    fn the_sandbox_is_untouched() {
        let mut map = container("app", &[]);
        map.insert(CRI_CONTAINER_TYPE.into(), "sandbox".into());
        assert_eq!(container_request(&map), Ok(None));
    }

    #[test]
    fn defaults_are_run_mode_read_only_and_activated_exec() {
        let request = container_request(&container("app", &[(DISABLE_METRICS, "true")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            request,
            ContainerRequest {
                container: "app".into(),
                environment: "127.0.0.1:5000/team/app@2".into(),
                mode: Mode::Run,
                mutable: false,
                exec_activated: true,
            }
        );
    }

    #[test]
    fn skip_lists_name_containers() {
        let map = container(
            "side",
            &[
                (SKIP_CONTAINERS, "a, side ,b"),
                (SKIP_CONTAINERS_EXEC, "side"),
            ],
        );
        assert_eq!(container_request(&map), Ok(None));
        let map = container("app", &[(SKIP_CONTAINERS_EXEC, "x,app")]);
        let request = container_request(&map).unwrap().unwrap();
        assert!(!request.exec_activated);
        let map = container("app", &[(SKIP_CONTAINERS, "application")]);
        assert!(container_request(&map).unwrap().is_some());
    }

    #[test]
    fn bad_values_name_the_annotation() {
        let err = container_request(&container("app", &[(ACTIVATE_MODE, "debug")])).unwrap_err();
        assert!(err.to_string().contains(ACTIVATE_MODE), "{err}");
        assert!(err.to_string().contains("'debug'"), "{err}");
        let err = container_request(&container("app", &[(MUTABLE, "yes")])).unwrap_err();
        assert!(err.to_string().contains(MUTABLE), "{err}");
        let mut map = container("app", &[]);
        map.insert(ENVIRONMENT.into(), " ".into());
        assert_eq!(
            container_request(&map),
            Err(AnnotationError::EmptyEnvironment)
        );
        let request = container_request(&container("app", &[(ACTIVATE_MODE, "dev")]))
            .unwrap()
            .unwrap();
        assert_eq!(request.mode, Mode::Dev);
    }

    fn inputs(image: &[(&str, TopEntry)], mutable: bool) -> PlanInputs {
        let env = [
            ("bin", TopEntry::Symlink("usr/bin".into())),
            ("etc", TopEntry::Dir),
            ("lib64", TopEntry::Symlink("usr/lib64".into())),
            ("opt", TopEntry::Dir),
            ("proc", TopEntry::Dir),
            ("tmp", TopEntry::Dir),
            ("usr", TopEntry::Dir),
            ("var", TopEntry::Dir),
        ];
        PlanInputs {
            env_rootfs: "/store/rootfs-v1/abc".into(),
            env_entries: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            image_rootfs: "/bundle/rootfs".into(),
            image_entries: image
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            env_dir: "/store/k8s/env".into(),
            cairn_exe: "/usr/local/bin/cairn-entrypoint".into(),
            scratch: "/store/k8s/containers/c1".into(),
            mutable,
        }
    }

    fn summary(plan: &ContainerPlan) -> Vec<String> {
        plan.mounts
            .iter()
            .map(|m| {
                format!(
                    "{} {} {} {}",
                    m.destination,
                    m.kind,
                    m.source,
                    m.options.join(",")
                )
            })
            .collect()
    }

    #[test]
    fn an_empty_image_gets_read_only_usr_and_copy_on_write_etc() {
        let plan = container_plan(&inputs(&[], false));
        assert_eq!(
            summary(&plan),
            [
                "/etc overlay overlay lowerdir=/store/rootfs-v1/abc/etc,upperdir=/store/k8s/containers/c1/etc/upper,workdir=/store/k8s/containers/c1/etc/work",
                "/opt bind /store/rootfs-v1/abc/opt rbind,ro",
                "/usr bind /store/rootfs-v1/abc/usr rbind,ro",
                "/var overlay overlay lowerdir=/store/rootfs-v1/abc/var,upperdir=/store/k8s/containers/c1/var/upper,workdir=/store/k8s/containers/c1/var/work",
                "/opt/cairn/env bind /store/k8s/env rbind,ro",
                "/opt/cairn/bin/cairn bind /usr/local/bin/cairn-entrypoint rbind,ro",
            ]
        );
        assert_eq!(
            plan.links,
            [
                ("bin".to_string(), PathBuf::from("usr/bin")),
                ("lib64".to_string(), PathBuf::from("usr/lib64"))
            ]
        );
        assert_eq!(plan.scratch_dirs.len(), 4);
    }

    #[test]
    fn a_base_image_is_stacked_under_the_environment() {
        let image = [
            ("bin", TopEntry::Symlink("usr/bin".into())),
            ("usr", TopEntry::Dir),
        ];
        let plan = container_plan(&inputs(&image, false));
        let usr = &plan.mounts[2];
        assert_eq!(usr.destination, "/usr");
        assert_eq!(
            usr.options,
            ["lowerdir=/store/rootfs-v1/abc/usr:/bundle/rootfs/usr", "ro"]
        );
        assert_eq!(
            plan.links,
            [("lib64".to_string(), PathBuf::from("usr/lib64"))]
        );
    }

    #[test]
    fn mutable_makes_every_directory_copy_on_write() {
        let plan = container_plan(&inputs(&[], true));
        let usr = plan
            .mounts
            .iter()
            .find(|m| m.destination == "/usr")
            .unwrap();
        assert_eq!(usr.kind, "overlay");
        assert!(usr.options.iter().any(|o| o.starts_with("upperdir=")));
        assert!(plan.mounts.iter().all(|m| !m.source.contains("/proc")));
    }

    #[test]
    fn overlay_paths_escape_separators() {
        assert_eq!(escape_overlay_path(Path::new("/a:b,c")), "/a\\:b\\,c");
    }

    #[test]
    fn edit_spec_puts_mounts_first_and_wraps_the_command() {
        let mut spec = json!({
            "process": {"args": ["python3", "-m", "http.server"]},
            "mounts": [{"destination": "/etc/hosts", "type": "bind", "source": "/x", "options": []}],
            "annotations": {"a": "b"},
        });
        let plan = container_plan(&inputs(&[], false));
        let request = container_request(&container("app", &[])).unwrap().unwrap();
        edit_spec(&mut spec, &plan, &request);
        let mounts = spec["mounts"].as_array().unwrap();
        assert_eq!(mounts.len(), plan.mounts.len() + 1);
        assert_eq!(mounts.last().unwrap()["destination"], "/etc/hosts");
        assert_eq!(
            spec["process"]["args"],
            json!([
                CONTAINER_CAIRN_EXE,
                "entrypoint",
                "--",
                "python3",
                "-m",
                "http.server"
            ])
        );
        assert_eq!(spec["annotations"][EXEC_MARKER], "activate");
        // The empty image already starts with cairn's entrypoint.
        let mut spec = json!({"process": {"args": [CONTAINER_CAIRN_EXE, "entrypoint"]}});
        edit_spec(&mut spec, &plan, &request);
        assert_eq!(
            spec["process"]["args"],
            json!([CONTAINER_CAIRN_EXE, "entrypoint"])
        );
    }

    #[test]
    fn exec_is_activated_only_for_marked_containers() {
        let mut process = json!({"args": ["sh", "-c", "echo hi"]});
        assert!(!edit_exec_process(&mut process, None));
        assert!(!edit_exec_process(&mut process, Some("plain")));
        assert!(edit_exec_process(&mut process, Some("activate")));
        assert_eq!(
            process["args"],
            json!([CONTAINER_CAIRN_EXE, "activate", "--", "sh", "-c", "echo hi"])
        );
    }

    #[test]
    fn the_secret_source_comes_from_the_mount() {
        let spec = json!({"mounts": [
            {"destination": "/proc", "source": "proc"},
            {"destination": "/var/run/secrets/cairn.dev", "source": "/var/lib/kubelet/pods/x/volumes/secret"},
        ]});
        assert_eq!(
            secret_source(&spec),
            Some(PathBuf::from("/var/lib/kubelet/pods/x/volumes/secret"))
        );
        assert_eq!(secret_source(&json!({})), None);
    }
}
