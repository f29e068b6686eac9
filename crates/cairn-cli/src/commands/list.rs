//! `cairn list`: the locked packages, requested ones first.

use crate::cli::ListArgs;
use crate::environment::Environment;
use crate::output;
use miette::Result;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    version: &'a str,
    architecture: &'a str,
    system: &'a str,
    requested: bool,
    required_by: &'a [String],
    summary: &'a str,
}

pub fn run(args: ListArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let manifest = env.load_manifest()?;
    let lock = crate::locking::current_lock(&env, &manifest)?;
    print(&args, &lock)
}

/// `cairn list` inside an image: the lock the image was built from, as it
/// is. An image has nothing to re-lock against, and keeping the resolver
/// out of this path keeps the archive client (TLS, OpenPGP) out of
/// `cairn-entrypoint`, which every image carries.
pub fn run_in_image(args: ListArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let lock = env.load_lock()?;
    print(&args, &lock)
}

fn print(args: &ListArgs, lock: &cairn_manifest::Lock) -> Result<ExitCode> {
    let mut rows: Vec<Row> = lock
        .packages
        .iter()
        .filter(|p| !args.requested || p.requested)
        .map(|p| Row {
            name: &p.name,
            version: &p.version,
            architecture: &p.architecture,
            system: &p.system,
            requested: p.requested,
            required_by: &p.required_by,
            summary: &p.summary,
        })
        .collect();
    rows.sort_by(|a, b| b.requested.cmp(&a.requested).then(a.name.cmp(b.name)));
    if args.json {
        output::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|r| r.version.len()).max().unwrap_or(0);
    for r in rows {
        let why = if r.requested {
            "requested"
        } else {
            "dependency"
        };
        println!(
            "{:width$}  {:vwidth$}  {:6}  {why}",
            r.name, r.version, r.architecture
        );
    }
    Ok(ExitCode::SUCCESS)
}
