//! Kubernetes manifests from an image's plan (`cairn generate kubernetes`):
//! a Deployment, a Service for the exposed ports, and a PersistentVolumeClaim
//! per volume, derived from `[containerize.config]` the way the image itself
//! is, so the pod runs the image as Docker would.
//!
//! - ports → `containerPort`s and the Service's ports;
//! - volumes → `volumeMounts` backed by one PVC each;
//! - user → `securityContext.runAsUser/runAsGroup` with the image's numeric
//!   ids (the caller passes what the configuration layer resolved);
//! - working dir and `[vars]` carry over; the stop signal, when not SIGTERM
//!   (which Kubernetes always sends), is sent by a `preStop` hook;
//! - the health check becomes liveness and readiness probes running the
//!   image config's own command (inside cairn's activation).
//!
//! `imageless` emits the pod for cairn's runtime handler instead: no image,
//! `runtimeClassName: cairn` and the environment's reference in the
//! `cairn.dev/environment` annotation.
//!
//! Output is YAML written here from a JSON tree: every scalar is written as a
//! JSON string or number, which YAML 1.2 reads unchanged, so no YAML library
//! (and none of their implicit-typing pitfalls, `no` → false) is needed.

use serde_json::{Value, json};

use crate::configured::AccountIds;
use crate::{BuildPlan, Result};
use cairn_manifest::{Healthcheck, Proto};

/// `runtimeClassName` of cairn's Kubernetes runtime handler.
pub const RUNTIME_CLASS: &str = "cairn";
/// The annotation naming the environment the runtime handler runs.
pub const ENVIRONMENT_ANNOTATION: &str = "cairn.dev/environment";
/// Storage each PVC requests: a placeholder to edit, as `kompose` writes it.
pub const DEFAULT_STORAGE: &str = "1Gi";

/// What the pod runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodImage {
    /// An image reference (`registry.example.com/team/app:1.0`).
    Image(String),
    /// No image: cairn's runtime handler runs the environment `reference`.
    Imageless { environment: String },
}

/// The manifests, as YAML documents separated by `---`.
pub fn manifests(
    plan: &BuildPlan,
    image: &PodImage,
    account: Option<AccountIds>,
) -> Result<String> {
    let docs = documents(plan, image, account)?;
    Ok(docs.iter().map(to_yaml).collect::<Vec<_>>().join("---\n"))
}

/// The manifests as JSON values: Deployment, Service (when ports are
/// exposed), then one PVC per volume.
pub fn documents(
    plan: &BuildPlan,
    image: &PodImage,
    account: Option<AccountIds>,
) -> Result<Vec<Value>> {
    let name = object_name(&plan.name);
    let config = &plan.manifest.containerize.config;
    let labels = json!({ "app.kubernetes.io/name": name });
    let volumes: Vec<(String, &String)> = config
        .volumes
        .iter()
        .map(|path| (format!("{name}-{}", object_name(path)), path))
        .collect();
    let mut container = json!({
        "name": name,
        "image": match image {
            PodImage::Image(reference) => reference.as_str(),
            PodImage::Imageless { .. } => "",
        },
    });
    let fields = container.as_object_mut().expect("a JSON object");
    if !config.exposed_ports.is_empty() {
        let ports: Vec<Value> = config
            .exposed_ports
            .iter()
            .map(|p| json!({ "name": port_name(p.port, p.proto), "containerPort": p.port, "protocol": protocol(p.proto) }))
            .collect();
        fields.insert("ports".into(), Value::Array(ports));
    }
    let env: Vec<Value> = plan
        .manifest
        .vars
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v }))
        .collect();
    if !env.is_empty() {
        fields.insert("env".into(), Value::Array(env));
    }
    let working_dir = plan
        .overrides
        .working_dir
        .as_ref()
        .or(config.working_dir.as_ref());
    if let Some(dir) = working_dir {
        fields.insert("workingDir".into(), json!(dir));
    }
    if !volumes.is_empty() {
        let mounts: Vec<Value> = volumes
            .iter()
            .map(|(claim, path)| json!({ "name": claim, "mountPath": path }))
            .collect();
        fields.insert("volumeMounts".into(), Value::Array(mounts));
    }
    if let Some(ids) = account {
        fields.insert(
            "securityContext".into(),
            json!({ "runAsUser": ids.uid, "runAsGroup": ids.gid }),
        );
    }
    if let Some(signal) = &config.stop_signal
        && signal.name != "SIGTERM"
    {
        // Kubernetes always sends SIGTERM; the image asks for another signal,
        // so PID 1 (cairn, which forwards it to the services) gets it first.
        let short = signal.name.trim_start_matches("SIG");
        fields.insert(
            "lifecycle".into(),
            json!({ "preStop": { "exec": { "command": ["sh", "-c", format!("kill -s {short} 1")] } } }),
        );
    }
    if let Some(check) = &config.healthcheck {
        let command = probe_command(plan)?;
        fields.insert("livenessProbe".into(), probe(check, &command, true));
        fields.insert("readinessProbe".into(), probe(check, &command, false));
    }

    let mut pod_spec = json!({ "containers": [container] });
    let pod = pod_spec.as_object_mut().expect("a JSON object");
    if !volumes.is_empty() {
        let claims: Vec<Value> = volumes
            .iter()
            .map(|(claim, _)| json!({ "name": claim, "persistentVolumeClaim": { "claimName": claim } }))
            .collect();
        pod.insert("volumes".into(), Value::Array(claims));
    }
    let mut template_meta = json!({ "labels": labels });
    if let PodImage::Imageless { environment } = image {
        pod.insert("runtimeClassName".into(), json!(RUNTIME_CLASS));
        template_meta
            .as_object_mut()
            .expect("a JSON object")
            .insert(
                "annotations".into(),
                json!({ ENVIRONMENT_ANNOTATION: environment }),
            );
    }
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels },
            "template": { "metadata": template_meta, "spec": pod_spec },
        },
    });
    let mut docs = vec![deployment];
    if !config.exposed_ports.is_empty() {
        let ports: Vec<Value> = config
            .exposed_ports
            .iter()
            .map(|p| {
                json!({
                    "name": port_name(p.port, p.proto),
                    "port": p.port,
                    "targetPort": p.port,
                    "protocol": protocol(p.proto),
                })
            })
            .collect();
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": name, "labels": labels },
            "spec": { "selector": labels, "ports": ports },
        }));
    }
    for (claim, _) in &volumes {
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": { "name": claim, "labels": labels },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": DEFAULT_STORAGE } },
            },
        }));
    }
    Ok(docs)
}

/// The health check's command exactly as the image config runs it, without
/// Docker's `CMD` marker.
fn probe_command(plan: &BuildPlan) -> Result<Vec<String>> {
    let test = crate::top_layer::healthcheck_config(plan)?
        .map(|c| c.test)
        .unwrap_or_default();
    Ok(test.into_iter().skip(1).collect())
}

/// A probe with Docker's timings (Kubernetes counts whole seconds). The
/// start period delays the liveness probe only: readiness may pass early.
fn probe(check: &Healthcheck, command: &[String], liveness: bool) -> Value {
    let interval = check.interval.unwrap_or(Healthcheck::DEFAULT_INTERVAL);
    let timeout = check.timeout.unwrap_or(Healthcheck::DEFAULT_TIMEOUT);
    let mut probe = json!({
        "exec": { "command": command },
        "periodSeconds": interval.ceil_secs().max(1),
        "timeoutSeconds": timeout.ceil_secs().max(1),
        "failureThreshold": check.retries.unwrap_or(Healthcheck::DEFAULT_RETRIES),
    });
    if liveness && let Some(start) = check.start_period {
        probe
            .as_object_mut()
            .expect("a JSON object")
            .insert("initialDelaySeconds".into(), json!(start.ceil_secs()));
    }
    probe
}

fn protocol(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

/// A port name (an IANA_SVC_NAME: at most 15 characters, a letter in it).
fn port_name(port: u16, proto: Proto) -> String {
    let proto = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("{proto}-{port}")
}

/// A DNS-1123 label from an image name or a path: the last component of
/// `team/app`, lowercase, runs of other characters as one `-`, at most 63.
pub fn object_name(text: &str) -> String {
    let last = text
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let source = if text.starts_with('/') {
        text.trim_matches('/')
    } else {
        last
    };
    let mut name = String::new();
    for c in source.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_matches('-').chars().take(63).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "root".to_string()
    } else {
        name
    }
}

/// Block-style YAML of a JSON tree; scalars are JSON (strings quoted).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                out.push_str(&format!("{pad}{}:", yaml_key(key)));
                write_nested(item, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    // A mapping in a list starts on the dash's line.
                    Value::Object(map) if !map.is_empty() => {
                        let mut inner = String::new();
                        write_yaml(item, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(inner.trim_start());
                    }
                    _ => write_nested(item, indent, out),
                }
            }
        }
        scalar => {
            out.push_str(&format!("{pad}{scalar}\n"));
        }
    }
}

/// The value after `key:` or `-`: inline when scalar or empty, else below.
fn write_nested(item: &Value, indent: usize, out: &mut String) {
    match item {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_yaml(item, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_yaml(item, indent + 2, out);
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        scalar => out.push_str(&format!(" {scalar}\n")),
    }
}

/// Keys plain when they are simple identifiers, JSON-quoted otherwise.
fn yaml_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if plain {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_labels() {
        assert_eq!(object_name("team/My_App"), "my-app");
        assert_eq!(object_name("/var/lib/data"), "var-lib-data");
        assert_eq!(object_name("/"), "root");
        assert_eq!(object_name(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn yaml_is_block_style_with_json_scalars() {
        let value = json!({
            "a": { "b": [1, "no", { "c": true, "d": [] }] },
            "x/y": "text: with colon",
        });
        assert_eq!(
            to_yaml(&value),
            "a:\n  b:\n    - 1\n    - \"no\"\n    - c: true\n      d: []\nx/y: \"text: with colon\"\n"
        );
    }
}
