//! `cairn search`: packages whose name or summary contains a term.

use crate::cli::SearchArgs;
use crate::output;
use miette::Result;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct Hit<'a> {
    name: &'a str,
    version: String,
    summary: &'a str,
}

pub fn run(args: SearchArgs) -> Result<ExitCode> {
    let sys = super::show::index_for_dir(&args.dir)?;
    let all = sys.index.search(&args.term);
    let total = all.len();
    let hits: Vec<Hit> = all
        .into_iter()
        .take(args.limit)
        .map(|r| Hit {
            name: &r.name,
            version: r.version.to_string(),
            summary: &r.summary,
        })
        .collect();
    if args.json {
        output::print_json(&hits)?;
    } else if hits.is_empty() {
        output::status(format!("no packages match '{}'", args.term));
        return Ok(ExitCode::FAILURE);
    } else {
        let width = hits.iter().map(|h| h.name.len()).max().unwrap_or(0);
        for h in &hits {
            println!("{:width$}  {}", h.name, h.summary);
        }
        if total > hits.len() {
            output::status(format!(
                "… {} more match '{}'; show them with --limit {total}",
                total - hits.len(),
                args.term
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
