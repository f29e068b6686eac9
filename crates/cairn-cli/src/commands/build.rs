//! `cairn build [NAME]` (flox build): runs `[build.NAME] command` in the
//! activated environment with `$out` set to a fresh directory, then moves the
//! result into the store under its content hash and records it in
//! `.cairn/build/NAME.json`, where `copy-to-root = "build:NAME"` and
//! `[containers.X] artifacts` find it.

use crate::cli::BuildArgs;
use crate::environment::Environment;
use crate::{locking, output};
use cairn_store::Bucket;
use miette::{IntoDiagnostic, Result, miette};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `.cairn/build/NAME.json` records.
#[derive(Debug, Serialize, Deserialize)]
struct ArtifactRecord {
    name: String,
    sha256: String,
    path: PathBuf,
    /// sha256 of the command that produced it: `containerize` rebuilds an
    /// output whose command changed.
    #[serde(default)]
    command_sha256: String,
}

pub fn run(args: BuildArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let manifest = env.load_manifest()?;
    let names: Vec<String> = match &args.name {
        Some(n) if manifest.build.contains_key(n) => vec![n.clone()],
        Some(n) => {
            let known: Vec<_> = manifest.build.keys().cloned().collect();
            return Err(miette!(
                help = format!("builds in this environment: {}", known.join(", ")),
                "no [build.{n}] in manifest.toml"
            ));
        }
        None => manifest.build.keys().cloned().collect(),
    };
    if names.is_empty() {
        return Err(miette!(
            help = "declare one: [build.app] command = \"…\"",
            "the environment has no builds"
        ));
    }
    for name in names {
        let record = build_one(&env, &name, &manifest.build[&name].command)?;
        output::status(format!("✓ built '{name}' → {}", record.path.display()));
    }
    Ok(ExitCode::SUCCESS)
}

fn build_one(env: &Environment, name: &str, command: &str) -> Result<ArtifactRecord> {
    let build_dir = env.root.join(".cairn").join("build");
    let out = build_dir.join(format!("{name}.out"));
    if out.exists() {
        fs_err::remove_dir_all(&out).into_diagnostic()?;
    }
    // `$out/bin` exists, as flox's guide assumes (`cat > $out/bin/x`).
    fs_err::create_dir_all(out.join("bin")).into_diagnostic()?;
    let exe = std::env::current_exe().into_diagnostic()?;
    let status = std::process::Command::new(exe)
        .args(["activate", "--mode", "run", "-d"])
        .arg(&env.root)
        .args(["--", "bash", "-ec", command])
        .env("out", &out)
        .current_dir(&env.root)
        // stdout may be carrying an image (`containerize -f -` builds first).
        .stdout(std::io::stderr())
        .status()
        .into_diagnostic()?;
    if !status.success() {
        // Builds are hermetic: only the environment's packages are on PATH.
        let help = if status.code() == Some(127) {
            "a command was not found: builds see only the environment's packages, so install it (`mkdir` and friends: `cairn install coreutils`)"
        } else {
            "the command runs in the activated environment with $out set; fix it and rerun `cairn build`"
        };
        return Err(miette!(help = help, "build '{name}' failed ({status})"));
    }
    let sha256 = tree_hash(&out)?;
    let store = locking::open_store()?;
    let dest = store
        .bucket(Bucket::Artifacts)
        .into_diagnostic()?
        .join(&sha256);
    if dest.exists() {
        fs_err::remove_dir_all(&out).into_diagnostic()?;
    } else {
        fs_err::rename(&out, &dest).into_diagnostic()?;
    }
    let record = ArtifactRecord {
        name: name.to_string(),
        sha256,
        path: dest,
        command_sha256: cairn_store::sha256_hex(command.as_bytes()),
    };
    let json = serde_json::to_vec_pretty(&record).into_diagnostic()?;
    cairn_store::write_atomic(build_dir.join(format!("{name}.json")), |f| {
        std::io::Write::write_all(f, &json)
    })
    .into_diagnostic()?;
    Ok(record)
}

/// The output of `[build.NAME]` for the default image and activation: the
/// last build when it came from the same command, else a fresh build.
pub fn ensure_built(env: &Environment, name: &str, command: &str) -> Result<PathBuf> {
    if let Some(record) = read_record(env, name)
        && record.path.is_dir()
        && record.command_sha256 == cairn_store::sha256_hex(command.as_bytes())
    {
        return Ok(record.path);
    }
    let record = build_one(env, name, command)?;
    output::status(format!("✓ built '{name}' → {}", record.path.display()));
    Ok(record.path)
}

/// The last build's outputs that still exist, by name, without building:
/// what a host activation puts on PATH.
pub fn built_outputs(
    env: &Environment,
    names: impl Iterator<Item = String>,
) -> Vec<(String, PathBuf)> {
    names
        .filter_map(|name| {
            let record = read_record(env, &name)?;
            record.path.is_dir().then_some((name, record.path))
        })
        .collect()
}

fn read_record(env: &Environment, name: &str) -> Option<ArtifactRecord> {
    let path = env
        .root
        .join(".cairn")
        .join("build")
        .join(format!("{name}.json"));
    let text = fs_err::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The directory of the last build of `name`.
pub fn artifact_dir(env: &Environment, name: &str) -> Result<PathBuf> {
    let path = env
        .root
        .join(".cairn")
        .join("build")
        .join(format!("{name}.json"));
    let text = fs_err::read_to_string(&path).map_err(|_| {
        miette!(
            help = format!("run `cairn build {name}` first"),
            "build '{name}' has no output yet"
        )
    })?;
    let record: ArtifactRecord = serde_json::from_str(&text).into_diagnostic()?;
    if !record.path.is_dir() {
        return Err(miette!(
            help = format!("run `cairn build {name}` again"),
            "the output of build '{name}' is gone from the cache"
        ));
    }
    Ok(record.path)
}

/// A content hash of a tree: sorted relative paths, modes, link targets and
/// file contents, so the same output always lands in the same store entry.
fn tree_hash(root: &Path) -> Result<String> {
    let mut paths = Vec::new();
    collect(root, root, &mut paths)?;
    paths.sort();
    let mut summary = String::new();
    for rel in paths {
        let full = root.join(&rel);
        let meta = fs_err::symlink_metadata(&full).into_diagnostic()?;
        let mode = meta.permissions().mode() & 0o7777;
        let content = if meta.file_type().is_symlink() {
            format!(
                "-> {}",
                fs_err::read_link(&full).into_diagnostic()?.display()
            )
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            cairn_store::sha256_file(&full).into_diagnostic()?
        };
        summary.push_str(&format!("{} {mode:o} {content}\n", rel.display()));
    }
    Ok(cairn_store::sha256_hex(summary.as_bytes()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs_err::read_dir(dir).into_diagnostic()? {
        let entry = entry.into_diagnostic()?;
        let path = entry.path();
        out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        if entry.file_type().into_diagnostic()?.is_dir() {
            collect(root, &path, out)?;
        }
    }
    Ok(())
}
