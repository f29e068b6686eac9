//! `cairn show`: the versions of one package available in the archives.

use crate::cli::{DirArg, ShowArgs};
use crate::environment::Environment;
use crate::locking::{self, SystemIndex};
use crate::output;
use cairn_debian::ArchiveClient;
use cairn_manifest::Manifest;
use miette::{Result, miette};
use serde::Serialize;
use std::process::ExitCode;

/// The host system's index for the environment at `dir`, or for the default
/// sources when there is no environment (search and show work anywhere).
pub fn index_for_dir(dir: &DirArg) -> Result<SystemIndex> {
    let (manifest, manifest_dir) = match Environment::find(dir) {
        Ok(env) => (env.load_manifest()?, env.env_dir),
        Err(e) if dir.dir.is_some() => return Err(e),
        Err(_) => (
            Manifest::default(),
            std::env::current_dir().unwrap_or_default(),
        ),
    };
    let store = locking::open_store()?;
    let client = ArchiveClient::new(store);
    let sources = locking::sources_for(&manifest, &manifest_dir);
    let system = manifest
        .systems_or_host()
        .into_iter()
        .next()
        .ok_or_else(|| miette!("no system configured in [options] systems"))?;
    locking::load_index(&client, &sources, &system)
}

#[derive(Serialize)]
struct VersionRow {
    version: String,
    architecture: String,
    suite: String,
}

pub fn run(args: ShowArgs) -> Result<ExitCode> {
    let sys = index_for_dir(&args.dir)?;
    let versions = sys.index.versions(&args.package);
    let Some(first) = versions.first() else {
        let suggestions = cairn_debian::resolve::suggest(&sys.index, &args.package);
        let help = if suggestions.is_empty() {
            "search with `cairn search TERM`".to_string()
        } else {
            format!("did you mean {}?", suggestions.join(", "))
        };
        return Err(miette!(help = help, "package '{}' not found", args.package));
    };
    let sources: Vec<String> = sys.releases.iter().map(|r| r.suite.clone()).collect();
    let rows: Vec<VersionRow> = versions
        .iter()
        .map(|r| VersionRow {
            version: r.version.to_string(),
            architecture: r.architecture.clone(),
            suite: sources.get(r.origin).cloned().unwrap_or_default(),
        })
        .collect();
    if args.json {
        output::print_json(&serde_json::json!({
            "name": args.package, "summary": first.summary, "versions": rows,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} - {}", args.package, first.summary);
    for r in rows {
        println!("  {}  {}  {}", r.version, r.architecture, r.suite);
    }
    Ok(ExitCode::SUCCESS)
}
