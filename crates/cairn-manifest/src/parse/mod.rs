//! The manifest schema as code: which tables hold which keys, which are
//! required, and the cross-checks between tables (an `exclude` names an
//! `[install]` id, an `artifacts` entry names a `[build]`).
//!
//! Value rules are in `validate.rs`; typed access and spans in `read.rs`;
//! the image tables (`[containerize]`, `[containers]`, `[build]`) in `image.rs`.

mod image;
#[cfg(test)]
mod tests;

use crate::diagnostics::{Problem, syntax_problem};
use crate::read::{Field, Table, into_map};
use crate::schema::*;
use crate::validate::{self, Broken};
use image::{check_container_refs, read_build, read_container, read_containerize};
use std::collections::BTreeMap;
use toml::de::DeTable;

const ROOT_KEYS: &[&str] = &[
    "version",
    "name",
    "release",
    "install",
    "sources",
    "vars",
    "hook",
    "profile",
    "services",
    "options",
    "containerize",
    "containers",
    "build",
];

/// Parses and validates manifest text; the first problem found, in file order
/// within each table, is returned.
pub(crate) fn manifest_from_str(text: &str) -> Result<Manifest, Problem> {
    let doc = DeTable::parse(text).map_err(|e| syntax_problem(&e, text))?;
    let root = Table::root(doc.get_ref());
    root.deny_unknown(ROOT_KEYS)?;
    let version = read_version(&root)?;
    let options = read_options(&root)?;
    let install = read_install(&root, &options)?;
    let build = named_tables(&root, "build", read_build)?;
    let containers = named_tables(&root, "containers", read_container)?;
    check_container_refs(&root, &install, &build)?;
    Ok(Manifest {
        version,
        name: root
            .get("name")
            .map(|f| checked(&f, validate::check_env_name))
            .transpose()?,
        release: root
            .get("release")
            .map(|f| checked(&f, crate::release::check_release))
            .transpose()?,
        install,
        sources: read_sources(&root)?,
        vars: read_vars(&root)?,
        hook: read_hook(&root)?,
        profile: read_profile(&root)?,
        services: named_tables(&root, "services", read_service)?,
        options,
        containerize: read_containerize(&root)?,
        containers,
        build,
    })
}

/// Reads a string field and checks it with `rule`.
fn checked(field: &Field, rule: fn(&str) -> Result<(), Broken>) -> Result<String, Problem> {
    let text = field.string()?;
    rule(&text).map_err(|b| field.broken(b))?;
    Ok(text)
}

/// Reads a list of strings, checking each item with `rule`.
fn checked_list(
    field: &Field,
    rule: fn(&str) -> Result<(), Broken>,
) -> Result<Vec<String>, Problem> {
    let items = field.string_list()?;
    for item in &items {
        rule(&item.text).map_err(|b| field.problem_at(item.span.clone(), b))?;
    }
    Ok(items.into_iter().map(|item| item.text).collect())
}

/// Parses each item of a list with `parse`.
fn parsed_list<T>(field: &Field, parse: fn(&str) -> Result<T, Broken>) -> Result<Vec<T>, Problem> {
    let items = field.string_list()?;
    items
        .iter()
        .map(|item| parse(&item.text).map_err(|b| field.problem_at(item.span.clone(), b)))
        .collect()
}

/// A problem with a key itself (a name, a variable, a label key).
fn key_problem(field: &Field, broken: Broken) -> Problem {
    let problem = Problem::new(
        field.key_span.clone(),
        format!("{}: {}", field.path, broken.message),
    )
    .label("invalid key");
    match broken.help {
        Some(help) => problem.help(help),
        None => problem,
    }
}

fn read_version(root: &Table) -> Result<u32, Problem> {
    let Some(field) = root.get("version") else {
        return Err(Problem::new(0..0, "the manifest has no 'version' key")
            .label("expected `version = 1` here")
            .help("add `version = 1` as the first line"));
    };
    match field.integer()? {
        1 => Ok(MANIFEST_VERSION),
        other => Err(Problem::new(
            field.span(),
            format!("version: manifest version {other} is not supported"),
        )
        .label("unsupported version")
        .help("this cairn reads `version = 1` manifests")),
    }
}

/// A table of named subtables (`[services.NAME]`), each read with `read`.
fn named_tables<T>(
    root: &Table,
    key: &str,
    read: fn(&Table) -> Result<T, Problem>,
) -> Result<BTreeMap<String, T>, Problem> {
    let Some(table) = root.opt_table(key)? else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for field in table.fields() {
        validate::check_name(field.key).map_err(|b| key_problem(&field, b))?;
        out.insert(field.key.to_string(), read(&field.table()?)?);
    }
    Ok(out)
}

fn read_options(root: &Table) -> Result<Options, Problem> {
    let Some(table) = root.opt_table("options")? else {
        return Ok(Options::default());
    };
    table.deny_unknown(&["systems", "activate", "essential", "recommends"])?;
    let systems = match table.get("systems") {
        Some(field) => Some(read_systems(&field)?),
        None => None,
    };
    let mut activate_mode = ActivateMode::default();
    if let Some(activate) = table.opt_table("activate")? {
        activate.deny_unknown(&["mode"])?;
        if let Some(field) = activate.get("mode") {
            activate_mode = match field.str()? {
                "dev" => ActivateMode::Dev,
                "run" => ActivateMode::Run,
                other => {
                    return Err(field.broken(Broken {
                        message: format!("'{other}' is not an activation mode"),
                        help: Some(r#"use "dev" or "run""#.to_string()),
                    }));
                }
            };
        }
    }
    Ok(Options {
        systems,
        activate_mode,
        essential: table.opt_bool("essential")?.unwrap_or(true),
        recommends: table.opt_bool("recommends")?.unwrap_or(true),
    })
}

fn read_systems(field: &Field) -> Result<Vec<String>, Problem> {
    let systems = checked_list(field, validate::check_system)?;
    if systems.is_empty() {
        return Err(field.broken(Broken {
            message: "the list of systems is empty".to_string(),
            help: Some(
                r#"list at least one, e.g. ["x86_64-linux"], or remove the key"#.to_string(),
            ),
        }));
    }
    Ok(systems)
}

fn read_install(
    root: &Table,
    options: &Options,
) -> Result<BTreeMap<String, InstallEntry>, Problem> {
    let Some(table) = root.opt_table("install")? else {
        return Ok(BTreeMap::new());
    };
    let mut install = BTreeMap::new();
    let mut seen: Vec<(String, InstallEntry)> = Vec::new();
    for field in table.fields() {
        validate::check_name(field.key).map_err(|b| key_problem(&field, b))?;
        let entry = read_install_entry(&field, options)?;
        check_duplicate_pkg(&field, &entry, &seen)?;
        seen.push((field.key.to_string(), entry.clone()));
        install.insert(field.key.to_string(), entry);
    }
    Ok(install)
}

fn read_install_entry(field: &Field, options: &Options) -> Result<InstallEntry, Problem> {
    let table = field.table().map_err(|p| {
        p.help(format!(
            "write it as {}.pkg = \"<debian package>\"",
            field.key
        ))
    })?;
    table.deny_unknown(&["pkg", "version", "systems", "recommends"])?;
    let pkg = table.required("pkg", "\"<debian package>\"")?;
    let pkg = checked(&pkg, validate::check_package_name)?;
    let version = match table.get("version") {
        Some(f) => Some(validate::parse_version_constraint(f.str()?).map_err(|b| f.broken(b))?),
        None => None,
    };
    let systems = match table.get("systems") {
        Some(f) => Some(read_entry_systems(&f, options)?),
        None => None,
    };
    let recommends = table.opt_bool("recommends")?;
    Ok(InstallEntry {
        pkg,
        version,
        systems,
        recommends,
    })
}

/// An entry's systems must be among `options.systems` when that is set.
fn read_entry_systems(field: &Field, options: &Options) -> Result<Vec<String>, Problem> {
    let systems = read_systems(field)?;
    let Some(allowed) = &options.systems else {
        return Ok(systems);
    };
    for item in field.string_list()? {
        if !allowed.contains(&item.text) {
            return Err(field.problem_at(
                item.span,
                Broken {
                    message: format!("'{}' is not in options.systems", item.text),
                    help: Some(format!(
                        "add it to options.systems ({})",
                        allowed.join(", ")
                    )),
                },
            ));
        }
    }
    Ok(systems)
}

/// Two ids may name the same package only for disjoint systems, otherwise the
/// lock could not say which constraint won.
fn check_duplicate_pkg(
    field: &Field,
    entry: &InstallEntry,
    seen: &[(String, InstallEntry)],
) -> Result<(), Problem> {
    let overlaps = |other: &InstallEntry| match (&entry.systems, &other.systems) {
        (Some(a), Some(b)) => a.iter().any(|s| b.contains(s)),
        _ => true,
    };
    let Some((first, _)) = seen
        .iter()
        .find(|(_, other)| other.pkg == entry.pkg && overlaps(other))
    else {
        return Ok(());
    };
    let span = field
        .table()
        .ok()
        .and_then(|t| t.get("pkg"))
        .map_or(field.key_span.clone(), |f| f.span());
    Err(Problem::new(
        span,
        format!(
            "install.{}: package '{}' is already installed as '{first}'",
            field.key, entry.pkg
        ),
    )
    .label("duplicate package")
    .help("remove one of the two entries, or give them disjoint 'systems'"))
}

fn read_sources(root: &Table) -> Result<Option<BTreeMap<String, SourceEntry>>, Problem> {
    let Some(field) = root.get("sources") else {
        return Ok(None);
    };
    let sources = named_tables(root, "sources", read_source)?;
    if sources.is_empty() {
        return Err(
            Problem::new(field.key_span, "sources: no archives are listed")
                .label("empty [sources]")
                .help("add a [sources.NAME] table, or remove [sources] to use Debian's archives"),
        );
    }
    Ok(Some(sources))
}

fn read_source(table: &Table) -> Result<SourceEntry, Problem> {
    table.deny_unknown(&["url", "suites", "components", "architectures", "keyring"])?;
    let url = table.required("url", "\"http://deb.debian.org/debian\"")?;
    let url = checked(&url, validate::check_archive_url)?;
    let suites = table.required("suites", "[\"bookworm\"]")?;
    let suites = words(&suites, "suite", "[\"bookworm\"]")?;
    let components = match table.get("components") {
        Some(field) => words(&field, "component", "[\"main\"]")?,
        None => vec!["main".to_string()],
    };
    let architectures = match table.get("architectures") {
        Some(field) => Some(checked_list(&field, validate::check_debian_arch)?),
        None => None,
    };
    let keyring = match table.get("keyring") {
        Some(field) => Some(checked(&field, check_keyring)?),
        None => None,
    };
    Ok(SourceEntry {
        url: url.trim_end_matches('/').to_string(),
        suites,
        components,
        architectures,
        keyring,
    })
}

fn check_keyring(keyring: &str) -> Result<(), Broken> {
    if !keyring.trim().is_empty() {
        return Ok(());
    }
    Err(Broken {
        message: "the keyring path is empty".to_string(),
        help: Some(r#"use "debian" for Debian's keys, or a path to a keyring file"#.to_string()),
    })
}

/// A non-empty list of plain words (suites, components).
fn words(field: &Field, what: &str, example: &str) -> Result<Vec<String>, Problem> {
    let items = field.string_list()?;
    let bad = items
        .iter()
        .find(|i| i.text.is_empty() || i.text.contains(char::is_whitespace));
    if let Some(item) = bad {
        return Err(field.problem_at(
            item.span.clone(),
            Broken {
                message: format!("'{}' is not a valid {what} name", item.text),
                help: Some(format!("e.g. {example}")),
            },
        ));
    }
    if items.is_empty() {
        return Err(field.broken(Broken {
            message: format!("at least one {what} is needed"),
            help: Some(format!("e.g. {} = {example}", field.key)),
        }));
    }
    Ok(items.into_iter().map(|i| i.text).collect())
}

fn read_vars(root: &Table) -> Result<BTreeMap<String, String>, Problem> {
    let Some(pairs) = root.opt_string_map("vars")? else {
        return Ok(BTreeMap::new());
    };
    for (field, _) in &pairs {
        validate::check_var_name(field.key).map_err(|b| key_problem(field, b))?;
    }
    Ok(into_map(pairs))
}

fn read_hook(root: &Table) -> Result<Hook, Problem> {
    let Some(table) = root.opt_table("hook")? else {
        return Ok(Hook::default());
    };
    table.deny_unknown(&["on-activate"])?;
    Ok(Hook {
        on_activate: table.opt_string("on-activate")?,
    })
}

fn read_profile(root: &Table) -> Result<Profile, Problem> {
    let Some(table) = root.opt_table("profile")? else {
        return Ok(Profile::default());
    };
    table.deny_unknown(&["common", "bash", "zsh", "fish"])?;
    Ok(Profile {
        common: table.opt_string("common")?,
        bash: table.opt_string("bash")?,
        zsh: table.opt_string("zsh")?,
        fish: table.opt_string("fish")?,
    })
}

fn read_service(table: &Table) -> Result<Service, Problem> {
    table.deny_unknown(&["command", "vars", "is-daemon", "shutdown"])?;
    let command = table.required("command", "\"...\"")?.string()?;
    let shutdown = match table.opt_table("shutdown")? {
        Some(shutdown) => {
            shutdown.deny_unknown(&["command"])?;
            let command = shutdown.required("command", "\"...\"")?.string()?;
            Some(Shutdown { command })
        }
        None => None,
    };
    let vars = table.opt_string_map("vars")?.unwrap_or_default();
    for (field, _) in &vars {
        validate::check_var_name(field.key).map_err(|b| key_problem(field, b))?;
    }
    Ok(Service {
        command,
        vars: into_map(vars),
        is_daemon: table.opt_bool("is-daemon")?.unwrap_or(false),
        shutdown,
    })
}
