//! `cairn show`: one package as `apt show` gives it (fields, dependencies,
//! sizes, where it comes from, the full description), what cairn applies in
//! place of its maintainer scripts and what it does not, and every version
//! the archives offer.
//!
//! The long description comes from the archive's `Translation-en`, fetched
//! only here, verified and cached ([`cairn_debian::translation`]); the
//! maintainer-script effects from the `.deb`'s control files, through the
//! per-deb facts cache, fetching the `.deb` (verified) when it is not cached.
//! Neither is required: without the network `show` says what it could not
//! read and still succeeds.

use crate::cli::{DirArg, ShowArgs};
use crate::environment::Environment;
use crate::locking::{self, SystemIndex};
use crate::output;
use crate::progress::DownloadProgress;
use cairn_debian::fetch::DebToFetch;
use cairn_debian::{ArchiveClient, PackageDetails, PackageRecord, Source};
use cairn_image::configure::effects::{PackageEffects, package_effects};
use cairn_manifest::Manifest;
use miette::{Result, miette};
use serde::Serialize;
use std::process::ExitCode;

/// An environment's (or the default) sources and the first system's index.
pub struct Archive {
    pub client: ArchiveClient,
    pub sources: Vec<Source>,
    pub sys: SystemIndex,
}

/// The host system's index for the environment at `dir`, or for the default
/// sources when there is no environment (search and show work anywhere).
pub fn index_for_dir(dir: &DirArg) -> Result<SystemIndex> {
    Ok(archive_for_dir(dir, false)?.sys)
}

/// Like [`index_for_dir`], keeping the client and sources, and loading each
/// record's details when `details` is set.
pub fn archive_for_dir(dir: &DirArg, details: bool) -> Result<Archive> {
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
    let sys = if details {
        locking::load_index_with_details(&client, &sources, &system)?
    } else {
        locking::load_index(&client, &sources, &system)?
    };
    Ok(Archive {
        client,
        sources,
        sys,
    })
}

#[derive(Serialize)]
struct VersionRow {
    version: String,
    architecture: String,
    suite: String,
}

/// What `show` prints, in `apt show`'s order; also the `--json` form.
#[derive(Serialize)]
struct Shown {
    name: String,
    version: String,
    architecture: String,
    priority: Option<String>,
    section: Option<String>,
    source: Option<String>,
    maintainer: Option<String>,
    /// KiB, as Debian's `Installed-Size`.
    installed_size: Option<u64>,
    pre_depends: Vec<String>,
    depends: Vec<String>,
    recommends: Vec<String>,
    suggests: Vec<String>,
    provides: Vec<String>,
    conflicts: Vec<String>,
    breaks: Vec<String>,
    replaces: Vec<String>,
    enhances: Vec<String>,
    homepage: Option<String>,
    /// Bytes of the `.deb`.
    download_size: u64,
    sha256: String,
    filename: String,
    /// `URL SUITE/COMPONENT ARCH Packages`, as apt writes it.
    apt_sources: String,
    summary: String,
    /// The lines after the summary, each starting with a space.
    description: Option<String>,
    /// Why `description` is missing when the archive has one.
    description_unavailable: Option<String>,
    configuration: Configuration,
    versions: Vec<VersionRow>,
}

#[derive(Serialize)]
struct Configuration {
    /// Whether the `.deb`'s maintainer scripts could be read.
    available: bool,
    applied: Vec<String>,
    not_applied: Vec<String>,
    /// Why they could not be read.
    unavailable: Option<String>,
}

pub fn run(args: ShowArgs) -> Result<ExitCode> {
    let (name, wanted) = match args.package.split_once('=') {
        Some((name, version)) => (name, Some(version.trim())),
        None => (args.package.as_str(), None),
    };
    let archive = archive_for_dir(&args.dir, true)?;
    let sys = &archive.sys;
    let mut found: Vec<(usize, &PackageRecord)> = sys.index.by_name(name).collect();
    // Highest version first; equal versions keep source order, as `versions`.
    found.sort_by(|a, b| {
        b.1.version
            .cmp(&a.1.version)
            .then(a.1.origin.cmp(&b.1.origin))
    });
    if found.is_empty() {
        let suggestions = cairn_debian::resolve::suggest(&sys.index, name);
        let help = if suggestions.is_empty() {
            "search with `cairn search TERM`".to_string()
        } else {
            format!("did you mean {}?", suggestions.join(", "))
        };
        return Err(miette!(help = help, "package '{name}' not found"));
    }
    let chosen = match wanted {
        None => found[0],
        Some(version) => *found
            .iter()
            .find(|(_, r)| r.version.to_string() == version)
            .ok_or_else(|| {
                let have: Vec<String> = found.iter().map(|(_, r)| r.version.to_string()).collect();
                miette!(
                    help = format!("available: {}", have.join(", ")),
                    "package '{name}' has no version '{version}'"
                )
            })?,
    };
    let shown = describe(&archive, chosen, &found)?;
    if args.json {
        output::print_json(&shown)?;
    } else {
        print_human(&shown);
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(
    archive: &Archive,
    (position, record): (usize, &PackageRecord),
    found: &[(usize, &PackageRecord)],
) -> Result<Shown> {
    let details = archive.sys.index.details(position).unwrap_or_default();
    let source = &archive.sources[record.origin];
    let (description, description_unavailable) = long_description(archive, source, &details);
    let suites: Vec<String> = archive
        .sys
        .releases
        .iter()
        .map(|r| r.suite.clone())
        .collect();
    let relations =
        |deps: &[cairn_debian::Dependency]| deps.iter().map(|d| d.to_string()).collect();
    let listed = |field: &Option<String>| -> Vec<String> {
        field
            .as_deref()
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Shown {
        name: record.name.clone(),
        version: record.version.to_string(),
        architecture: record.architecture.clone(),
        priority: record.priority.clone(),
        section: record.section.clone(),
        source: record.source.clone(),
        maintainer: details.maintainer.clone(),
        installed_size: record.installed_size,
        pre_depends: relations(&record.pre_depends),
        depends: relations(&record.depends),
        recommends: relations(&record.recommends),
        suggests: listed(&details.suggests),
        provides: record.provides.iter().map(|p| p.to_string()).collect(),
        conflicts: relations(&record.conflicts),
        breaks: relations(&record.breaks),
        replaces: listed(&details.replaces),
        enhances: listed(&details.enhances),
        homepage: details.homepage.clone(),
        download_size: record.size,
        sha256: record.sha256.clone(),
        filename: record.filename.clone(),
        apt_sources: apt_sources(source, record, &archive.sys.arch),
        summary: record.summary.clone(),
        description,
        description_unavailable,
        configuration: configuration(archive, source, record),
        versions: found
            .iter()
            .map(|(_, r)| VersionRow {
                version: r.version.to_string(),
                architecture: r.architecture.clone(),
                suite: suites.get(r.origin).cloned().unwrap_or_default(),
            })
            .collect(),
    })
}

/// apt's `APT-Sources:` line. The component is the pool directory Debian
/// files the package under (`pool/main/...`).
fn apt_sources(source: &Source, record: &PackageRecord, arch: &str) -> String {
    let component = record
        .filename
        .strip_prefix("pool/")
        .and_then(|rest| rest.split('/').next())
        .filter(|c| source.components.iter().any(|s| s == c))
        .or(source.components.first().map(String::as_str))
        .unwrap_or("main");
    format!(
        "{} {}/{component} {arch} Packages",
        source.url, source.suite
    )
}

/// The long description: from the index when it carries it, else from the
/// archive's `Translation-en` by `Description-md5`. On failure, the reason,
/// so `show` still prints the summary.
fn long_description(
    archive: &Archive,
    source: &Source,
    details: &PackageDetails,
) -> (Option<String>, Option<String>) {
    if let Some(text) = &details.long_description {
        return (Some(text.clone()), None);
    }
    let Some(md5) = &details.description_md5 else {
        return (None, None);
    };
    let progress = DownloadProgress::new("Descriptions", 0);
    let fetched = archive
        .client
        .fetch_long_description(source, md5, &progress);
    progress.finish();
    match fetched {
        Ok(text) => (text, None),
        Err(e) => {
            let why = if e.is_transient() {
                format!(
                    "the long description needs the network to fetch {}'s Translation-en: {e}",
                    source.suite
                )
            } else {
                format!("the long description could not be read: {e}")
            };
            (None, Some(why))
        }
    }
}

/// What cairn applies for the package and what it does not, from its
/// `.deb` (cached, or fetched and verified now).
fn configuration(archive: &Archive, source: &Source, record: &PackageRecord) -> Configuration {
    let unavailable = |why: String| Configuration {
        available: false,
        applied: Vec::new(),
        not_applied: Vec::new(),
        unavailable: Some(why),
    };
    let store = archive.client.store();
    let item = DebToFetch {
        name: record.name.clone(),
        url: format!("{}/{}", source.url, record.filename),
        filename: record.filename.clone(),
        size: record.size,
        sha256: record.sha256.clone(),
    };
    let progress = DownloadProgress::new("Fetching", record.size);
    let fetched = archive
        .client
        .fetch_debs(std::slice::from_ref(&item), &progress);
    progress.finish();
    let deb = match fetched {
        Ok(mut paths) if !paths.is_empty() => paths.remove(0),
        Ok(_) => {
            return unavailable("fetch the package to see its maintainer-script effects".into());
        }
        Err(e) => {
            return unavailable(format!(
                "fetch the package to see its maintainer-script effects (downloading it failed: {e})"
            ));
        }
    };
    let facts = cairn_debian::deb::facts::read_facts::<cairn_image::ImageError>(
        store,
        &deb,
        &record.sha256,
        &cairn_image::configured::FACTS,
    );
    match facts {
        Ok(facts) => {
            let version = record.version.to_string();
            let package =
                cairn_image::configured::package_from_facts(&facts, &record.name, &version);
            let PackageEffects {
                applied,
                not_applied,
            } = package_effects(&package);
            Configuration {
                available: true,
                applied,
                not_applied,
                unavailable: None,
            }
        }
        Err(e) => unavailable(format!("cannot read {}: {e}", deb.display())),
    }
}

fn print_human(s: &Shown) {
    let mut out = String::new();
    let mut field = |name: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!("{name}: {value}\n"));
        }
    };
    field("Package", Some(s.name.clone()));
    field("Version", Some(s.version.clone()));
    field("Architecture", Some(s.architecture.clone()));
    field("Priority", s.priority.clone());
    field("Section", s.section.clone());
    field("Source", s.source.clone());
    field("Maintainer", s.maintainer.clone());
    field(
        "Installed-Size",
        s.installed_size.map(|k| format!("{k} kB")),
    );
    for (name, list) in [
        ("Pre-Depends", &s.pre_depends),
        ("Depends", &s.depends),
        ("Recommends", &s.recommends),
        ("Suggests", &s.suggests),
        ("Provides", &s.provides),
        ("Conflicts", &s.conflicts),
        ("Breaks", &s.breaks),
        ("Replaces", &s.replaces),
        ("Enhances", &s.enhances),
    ] {
        field(name, Some(list.join(", ")));
    }
    field("Homepage", s.homepage.clone());
    field("Download-Size", Some(download_size(s.download_size)));
    field("APT-Sources", Some(s.apt_sources.clone()));
    field("Description", Some(s.summary.clone()));
    if let Some(text) = &s.description {
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out.push_str("\nConfiguration (what cairn does in place of the maintainer scripts):\n");
    let c = &s.configuration;
    if let Some(why) = &c.unavailable {
        out.push_str(&format!("  {why}\n"));
    } else if c.applied.is_empty() && c.not_applied.is_empty() {
        out.push_str("  nothing to do: the maintainer scripts change nothing cairn tracks\n");
    }
    for line in &c.applied {
        out.push_str(&format!("  applied: {line}\n"));
    }
    for line in &c.not_applied {
        out.push_str(&format!("  not applied: {line}\n"));
    }
    out.push_str("\nVersions:\n");
    let width = s
        .versions
        .iter()
        .map(|v| v.version.len())
        .max()
        .unwrap_or(0);
    for v in &s.versions {
        out.push_str(&format!(
            "  {:width$}  {}  {}\n",
            v.version, v.architecture, v.suite
        ));
    }
    print!("{out}");
    if let Some(why) = &s.description_unavailable {
        output::status(format!("note: {why}"));
    }
}

/// The `.deb`'s size as apt prints it: SI units, three significant digits.
fn download_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ if value < 10.0 => format!("{value:.2} {}", units[unit]),
        _ if value < 100.0 => format!("{value:.1} {}", units[unit]),
        _ => format!("{value:.0} {}", units[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_sizes_read_as_apt_prints_them() {
        assert_eq!(download_size(512), "512 B");
        assert_eq!(download_size(53_080), "53.1 kB");
        assert_eq!(download_size(1_534_000), "1.53 MB");
        assert_eq!(download_size(245_000_000), "245 MB");
    }

    #[test]
    fn apt_sources_names_the_pool_component() {
        let source = Source {
            name: "debian".into(),
            url: "http://deb.debian.org/debian".into(),
            suite: "bookworm".into(),
            components: vec!["main".into(), "contrib".into()],
            keyrings: Vec::new(),
        };
        let record = |filename: &str| PackageRecord {
            name: "x".into(),
            version: "1".parse().unwrap(),
            architecture: "amd64".into(),
            multi_arch: Default::default(),
            essential: false,
            priority: None,
            section: None,
            source: None,
            pre_depends: Vec::new(),
            depends: Vec::new(),
            recommends: Vec::new(),
            provides: Vec::new(),
            conflicts: Vec::new(),
            breaks: Vec::new(),
            filename: filename.into(),
            size: 1,
            sha256: String::new(),
            installed_size: None,
            summary: String::new(),
            origin: 0,
        };
        assert_eq!(
            apt_sources(&source, &record("pool/contrib/x/x.deb"), "amd64"),
            "http://deb.debian.org/debian bookworm/contrib amd64 Packages"
        );
        assert_eq!(
            apt_sources(&source, &record("elsewhere/x.deb"), "amd64"),
            "http://deb.debian.org/debian bookworm/main amd64 Packages"
        );
    }
}
