//! `cairn kubernetes`: the node side of imageless Kubernetes.
//!
//! - `node-setup` writes what a node needs to offer the `cairn` runtime class:
//!   containerd's runtime entry (runc v2 with `cairn-runc` as its
//!   `BinaryName`, passing `cairn.dev/*` annotations) and the RuntimeClass.
//! - `empty-image` writes the pod image for environments that need no base:
//!   one near-empty layer whose entrypoint is the cairn the handler mounts.
//! - `gc` removes from the node store what no live container uses ([`gc`]).
//!
//! The handler itself is [`runc`] (the `cairn-runc` binary), with [`node`]
//! (the node store) and [`fetch`] (the published environment and the Secret).

pub(crate) mod fetch;
pub(crate) mod gc;
pub(crate) mod node;
pub mod runc;

use crate::cli::{
    KubernetesCommand, KubernetesEmptyImageArgs, KubernetesNodeSetupArgs, NodeSetupPrint,
};
use crate::diagnostic::Diagnose;
use cairn_runtime::CONTAINER_CAIRN_EXE;
use miette::{IntoDiagnostic, Result, miette};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// The runtime handler name, in containerd's config and the RuntimeClass.
pub const HANDLER: &str = "cairn";

pub fn run(cmd: KubernetesCommand) -> Result<ExitCode> {
    match cmd {
        KubernetesCommand::NodeSetup(args) => node_setup(&args),
        KubernetesCommand::EmptyImage(args) => empty_image(&args),
        KubernetesCommand::Gc(args) => gc::run(&args),
    }
}

/// containerd 1.6/1.7's CRI runtime entry (config version 2).
pub fn containerd_snippet(binary: &Path) -> String {
    let binary = binary
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        r#"# cairn: imageless Kubernetes. Add to /etc/containerd/config.toml, then restart containerd.
# Pods with `runtimeClassName: {HANDLER}` run through cairn-runc, which wraps runc:
# containers whose pod has a cairn.dev/environment annotation run in that environment.
# Copy SystemdCgroup (and any other option) from your runc runtime's options.
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["cairn.dev/*"]
  container_annotations = ["cairn.dev/*"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}.options]
    BinaryName = "{binary}"
"#
    )
}

/// The RuntimeClass that maps `runtimeClassName: cairn` to the handler.
pub fn runtime_class() -> String {
    format!(
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: {HANDLER}\nhandler: {HANDLER}\n"
    )
}

fn node_setup(args: &KubernetesNodeSetupArgs) -> Result<ExitCode> {
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .into_diagnostic()?
            .with_file_name("cairn-runc"),
    };
    if !binary.is_absolute() {
        return Err(miette!(
            help = "containerd runs BinaryName without a working directory: give an absolute path",
            "--binary {} is not an absolute path",
            binary.display()
        ));
    }
    let containerd = containerd_snippet(&binary);
    let class = runtime_class();
    match args.print {
        Some(NodeSetupPrint::Containerd) => print!("{containerd}"),
        Some(NodeSetupPrint::RuntimeClass) => print!("{class}"),
        None => {
            let dir = &args.out;
            fs_err::create_dir_all(dir).into_diagnostic()?;
            for (name, text) in [
                ("containerd-cairn.toml", &containerd),
                ("runtimeclass-cairn.yaml", &class),
            ] {
                let path = dir.join(name);
                cairn_store::write_atomic(&path, |f| f.write_all(text.as_bytes()))
                    .into_diagnostic()?;
                crate::output::status(format!("wrote {}", path.display()));
            }
            if !binary.is_file() {
                crate::output::status(format!(
                    "note: {} does not exist on this machine; install cairn-runc and cairn-entrypoint there on each node",
                    binary.display()
                ));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn empty_image(args: &KubernetesEmptyImageArgs) -> Result<ExitCode> {
    use cairn_oci::{CustomEntry, CustomKind, ImageSpec, LayerOptions, RuntimeConfig};
    let store = crate::locking::open_store()?;
    let system = cairn_manifest::host_system().ok_or_else(|| miette!("unsupported host"))?;
    let arch = cairn_manifest::debian_arch(system).unwrap_or("amd64");
    // One layer with /tmp: some runtimes refuse an image without layers, and
    // every program expects a writable /tmp.
    let layer = cairn_oci::build_custom_layer(
        &store,
        vec![CustomEntry {
            path: "tmp".to_owned(),
            kind: CustomKind::Dir,
            mode: 0o1777,
            uid: 0,
            gid: 0,
        }],
        &LayerOptions {
            mtime_clamp: Some(0),
            ..LayerOptions::default()
        },
    )
    .diagnose()?;
    let spec = ImageSpec {
        name: args.name.clone(),
        tag: args.tag.clone(),
        architecture: arch.to_owned(),
        os: "linux".to_owned(),
        created_epoch: 0,
        config: RuntimeConfig {
            entrypoint: Some(vec![
                CONTAINER_CAIRN_EXE.to_owned(),
                "entrypoint".to_owned(),
            ]),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            ],
            ..RuntimeConfig::default()
        },
    };
    let image = cairn_oci::build_image(&spec, &[layer]).diagnose()?;
    let path = args.file.as_str();
    if path == "-" {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            return Err(miette!(
                help = "redirect it: `cairn kubernetes empty-image -f - | ctr -n k8s.io images import -`",
                "refusing to write an image archive to a terminal"
            ));
        }
        cairn_oci::write_archive(&image, cairn_oci::ArchiveFormat::Hybrid, stdout.lock())
            .diagnose()?;
    } else {
        cairn_store::write_atomic(Path::new(path), |f| {
            cairn_oci::write_archive(&image, cairn_oci::ArchiveFormat::Hybrid, f)
                .map_err(std::io::Error::other)
        })
        .into_diagnostic()?;
        crate::output::status(format!("wrote {} ({})", path, image.reference.qualified()));
    }
    Ok(ExitCode::SUCCESS)
}
