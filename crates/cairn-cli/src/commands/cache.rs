//! `cairn cache verify` and `cairn cache gc`: the user's handles on the cache
//! maintenance in `cairn_store::gc`. This module only parses, calls and prints.

use crate::cli::{CacheCommand, CacheGcArgs, CacheVerifyArgs};
use crate::diagnostic::Diagnose;
use crate::{locking, output};
use cairn_store::Bucket;
use miette::Result;
use std::process::ExitCode;
use std::time::Duration;

/// Temp entries younger than this may belong to a cairn that is still running.
const TEMP_MIN_AGE: Duration = Duration::from_secs(3600);
/// Archive indices unused this long are superseded (Debian's security and
/// updates suites publish a new InRelease every few days; every resolve marks
/// the current ones used), so every gc removes them.
const INDEX_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn run(cmd: CacheCommand) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Verify(args) => verify(args),
        CacheCommand::Gc(args) => gc(args),
    }
}

fn verify(args: CacheVerifyArgs) -> Result<ExitCode> {
    let store = locking::open_store()?;
    let mut report = cairn_store::verify_cache(&store).diagnose()?;
    // Derived entries carry their own checksum, in formats cairn-debian owns.
    cairn_store::verify_bucket(
        &store,
        Bucket::Indices,
        &mut report,
        cairn_debian::index_cache::check_entry,
    )
    .diagnose()?;
    cairn_store::verify_bucket(
        &store,
        Bucket::Indices,
        &mut report,
        cairn_debian::contents::check_entry,
    )
    .diagnose()?;
    cairn_store::verify_bucket(
        &store,
        Bucket::Facts,
        &mut report,
        cairn_debian::deb::facts::check_entry,
    )
    .diagnose()?;
    if args.json {
        output::print_json(&report)?;
    } else {
        for bad in &report.corrupt {
            let what = if bad.evicted {
                "evicted"
            } else {
                "could not evict"
            };
            println!(
                "corrupt: {} (sha256 {}, expected {}) — {what}",
                bad.path.display(),
                bad.actual,
                bad.expected
            );
        }
        for bad in &report.damaged {
            let what = if bad.evicted {
                "evicted"
            } else {
                "in use, kept"
            };
            println!("damaged: {} ({}) — {what}", bad.path.display(), bad.reason);
        }
        output::status(format!(
            "checked {} entries ({}), {} corrupt",
            report.checked,
            human_size(report.bytes),
            report.corrupt.len() + report.damaged.len()
        ));
    }
    // Corruption was found (and repaired by eviction): say so in the exit code
    // for scripts, as `nix store verify` does.
    Ok(if report.corrupt.is_empty() && report.damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn gc(args: CacheGcArgs) -> Result<ExitCode> {
    let store = locking::open_store()?;
    let options = cairn_store::GcOptions {
        max_size: args.max_size,
        temp_min_age: TEMP_MIN_AGE,
        index_max_age: Some(INDEX_MAX_AGE),
    };
    let report = cairn_store::collect_garbage(&store, &options).diagnose()?;
    // A record only points at its blobs: once one is gone, the record goes too.
    let records_dropped = cairn_registry::drop_dangling_records(&store).diagnose()?;
    if args.json {
        output::print_json(&GcOutput {
            report: &report,
            records_dropped: &records_dropped,
        })?;
    } else {
        output::status(format!(
            "removed {} orphaned temp entries and {} cache entries, freed {}; {} cached",
            report.temps_removed.len(),
            report.evicted.len() + report.stale.len(),
            human_size(report.freed),
            human_size(report.remaining)
        ));
        if !records_dropped.is_empty() {
            output::status(format!(
                "dropped {} image records whose layers were evicted (`cairn push` needs a new `cairn containerize`)",
                records_dropped.len()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cache gc --json`: the store's report and the image records dropped.
#[derive(serde::Serialize)]
struct GcOutput<'a> {
    #[serde(flatten)]
    report: &'a cairn_store::GcReport,
    records_dropped: &'a [std::path::PathBuf],
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_size;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn human_sizes_are_short() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }
}
