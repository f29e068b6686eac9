//! The image tables: `[containerize]` and its config, `[containers.NAME]`,
//! `[build.NAME]`, and the references from containers to `[install]` ids and
//! `[build]` names.

use super::{checked, checked_list, key_problem, parsed_list};
use crate::diagnostics::{Problem, did_you_mean};
use crate::read::{Field, Item, Table, into_map};
use crate::schema::*;
use crate::validate::{self, Broken, HealthDuration};
use std::collections::BTreeMap;

pub(super) fn read_containerize(root: &Table) -> Result<Containerize, Problem> {
    let Some(table) = root.opt_table("containerize")? else {
        return Ok(Containerize::default());
    };
    table.deny_unknown(&[
        "name",
        "tag",
        "max-layers",
        "compression",
        "copy-to-root",
        "config",
    ])?;
    let compression = match table.get("compression") {
        Some(field) => match field.str()? {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            other => {
                return Err(field.broken(Broken {
                    message: format!("'{other}' is not a supported compression"),
                    help: Some(r#"use "gzip" or "zstd""#.to_string()),
                }));
            }
        },
        None => Compression::default(),
    };
    Ok(Containerize {
        name: opt_checked(&table, "name", validate::check_image_name)?,
        tag: opt_checked(&table, "tag", validate::check_tag)?,
        max_layers: match table.get("max-layers") {
            Some(field) => read_max_layers(&field)?,
            None => DEFAULT_MAX_LAYERS,
        },
        compression,
        copy_to_root: read_copy_to_root(&table)?,
        config: match table.opt_table("config")? {
            Some(config) => read_container_config(&config)?,
            None => ContainerConfig::default(),
        },
    })
}

fn read_max_layers(field: &Field) -> Result<u32, Problem> {
    let value = field.integer()?;
    match u32::try_from(value) {
        Ok(n @ 4..=125) => Ok(n),
        _ => Err(field.broken(Broken {
            message: format!("{value} is out of range"),
            help: Some(
                "choose from 4 to 125: engines refuse images with more than 127 layers, and cairn needs three of its own (package configuration, its entrypoint and the environment) plus one for packages"
                    .to_string(),
            ),
        })),
    }
}

/// An optional string field checked with `rule`.
fn opt_checked(
    table: &Table,
    key: &str,
    rule: fn(&str) -> Result<(), Broken>,
) -> Result<Option<String>, Problem> {
    table.get(key).map(|f| checked(&f, rule)).transpose()
}

/// An optional string field parsed with `parse`.
fn opt_parsed<T>(
    table: &Table,
    key: &str,
    parse: fn(&str) -> Result<T, Broken>,
) -> Result<Option<T>, Problem> {
    table
        .get(key)
        .map(|f| parse(f.str()?).map_err(|b| f.broken(b)))
        .transpose()
}

fn read_container_config(table: &Table) -> Result<ContainerConfig, Problem> {
    table.deny_unknown(&[
        "user",
        "exposed-ports",
        "cmd",
        "volumes",
        "working-dir",
        "labels",
        "stop-signal",
        "healthcheck",
    ])?;
    let labels = table.opt_string_map("labels")?.unwrap_or_default();
    for (field, _) in &labels {
        validate::check_label_key(field.key).map_err(|b| key_problem(field, b))?;
    }
    let mut healthcheck = table
        .get("healthcheck")
        .map(|f| read_healthcheck(&f))
        .transpose()?;
    let mut labels = into_map(labels_checked_for_healthcheck(labels, &mut healthcheck)?);
    labels.remove(HEALTHCHECK_LABEL);
    Ok(ContainerConfig {
        user: opt_parsed(table, "user", validate::parse_user)?,
        exposed_ports: match table.get("exposed-ports") {
            Some(field) => parsed_list(&field, validate::parse_port)?,
            None => Vec::new(),
        },
        cmd: table.opt_list("cmd")?.map(texts),
        volumes: match table.get("volumes") {
            Some(field) => checked_list(&field, validate::check_absolute)?,
            None => Vec::new(),
        },
        working_dir: opt_checked(table, "working-dir", validate::check_absolute)?,
        labels,
        stop_signal: opt_parsed(table, "stop-signal", validate::parse_stop_signal)?,
        healthcheck,
    })
}

/// The seed manifests' way of asking for a health check: a label that no
/// engine reads. It becomes a real `healthcheck` (the CLI says so).
const HEALTHCHECK_LABEL: &str = "healthcheck";

/// Converts `labels = { healthcheck = "CMD" }` into a health check when the
/// table has no `healthcheck` of its own; both at once is ambiguous.
fn labels_checked_for_healthcheck<'a, 'i>(
    labels: Vec<(Field<'a, 'i>, String)>,
    healthcheck: &mut Option<Healthcheck>,
) -> Result<Vec<(Field<'a, 'i>, String)>, Problem> {
    let Some((field, command)) = labels.iter().find(|(f, _)| f.key == HEALTHCHECK_LABEL) else {
        return Ok(labels);
    };
    if healthcheck.is_some() {
        return Err(key_problem(
            field,
            Broken {
                message: "the health check is also set as healthcheck = { ... }".to_string(),
                help: Some(
                    "remove the label: healthcheck = { ... } is what engines read".to_string(),
                ),
            },
        ));
    }
    if command.trim().is_empty() {
        return Err(field.broken(Broken {
            message: "the health check command is empty".to_string(),
            help: Some(
                r#"write the command to run, e.g. "curl -fsS http://localhost:8000/""#.to_string(),
            ),
        }));
    }
    *healthcheck = Some(Healthcheck {
        command: StartupCommand::Shell(command.clone()),
        interval: None,
        timeout: None,
        retries: None,
        start_period: None,
        from_label: true,
    });
    Ok(labels)
}

/// `healthcheck = { command = ..., interval = "30s", timeout = "5s", retries = 3, start-period = "10s" }`.
fn read_healthcheck(field: &Field) -> Result<Healthcheck, Problem> {
    let table = field.table()?;
    table.deny_unknown(&["command", "interval", "timeout", "retries", "start-period"])?;
    let command_field =
        table.required("command", r#"["curl", "-fsS", "http://localhost:8000/"]"#)?;
    let command = if command_field.is_array() {
        let items = command_field.string_list()?;
        if items.is_empty() {
            return Err(command_field.broken(Broken {
                message: "the command is an empty list".to_string(),
                help: Some(
                    r#"name the program and its arguments, e.g. ["redis-cli", "ping"]"#.to_string(),
                ),
            }));
        }
        StartupCommand::Exec(texts(items))
    } else {
        let text = command_field.string()?;
        if text.trim().is_empty() {
            return Err(command_field.broken(Broken {
                message: "the command is empty".to_string(),
                help: Some(r#"write a shell command, e.g. "redis-cli ping""#.to_string()),
            }));
        }
        StartupCommand::Shell(text)
    };
    let retries = match table.get("retries") {
        Some(f) => {
            let value = f.integer()?;
            match u32::try_from(value) {
                Ok(n @ 1..=1000) => Some(n),
                _ => {
                    return Err(f.broken(Broken {
                        message: format!("retries = {value} is out of range"),
                        help: Some(
                            "choose from 1 to 1000 failures in a row (Docker's default is 3)"
                                .to_string(),
                        ),
                    }));
                }
            }
        }
        None => None,
    };
    Ok(Healthcheck {
        command,
        interval: health_duration(&table, "interval", false)?,
        timeout: health_duration(&table, "timeout", false)?,
        retries,
        start_period: health_duration(&table, "start-period", true)?,
        from_label: false,
    })
}

/// A duration key of the health check. Only `start-period` may be zero:
/// Docker reads a zero interval or timeout as "the default", which is not
/// what someone writing "0s" means.
fn health_duration(
    table: &Table,
    key: &str,
    zero_ok: bool,
) -> Result<Option<HealthDuration>, Problem> {
    let Some(field) = table.get(key) else {
        return Ok(None);
    };
    let duration = validate::parse_health_duration(field.str()?).map_err(|b| field.broken(b))?;
    if !zero_ok && duration.0.is_zero() {
        return Err(field.broken(Broken {
            message: "a zero duration here means the engine's default".to_string(),
            help: Some(format!(r#"write a positive duration, e.g. {key} = "30s", or leave {key} out for Docker's default"#)),
        }));
    }
    Ok(Some(duration))
}

fn texts(items: Vec<Item>) -> Vec<String> {
    items.into_iter().map(|i| i.text).collect()
}

/// A string, or a list of strings.
fn string_or_list(field: &Field) -> Result<Vec<Item>, Problem> {
    if field.is_array() {
        return field.string_list();
    }
    let text = field
        .string()
        .map_err(|p| p.help(format!("write {} = \"...\" or [\"...\"]", field.key)))?;
    Ok(vec![Item {
        text,
        span: field.span(),
    }])
}

pub(super) fn read_container(table: &Table) -> Result<NamedContainer, Problem> {
    table.deny_unknown(&[
        "name",
        "version",
        "startup-command",
        "copy-to-root",
        "working-dir",
        "max-layers",
        "exclude",
        "registry",
        "default-copy-args",
        "artifacts",
    ])?;
    let startup_command = match table.get("startup-command") {
        Some(f) if f.is_array() => Some(StartupCommand::Exec(texts(f.string_list()?))),
        Some(f) => Some(StartupCommand::Shell(f.string()?)),
        None => None,
    };
    let copy_to_root = read_copy_to_root(table)?;
    Ok(NamedContainer {
        name: opt_checked(table, "name", validate::check_image_name)?,
        version: opt_checked(table, "version", validate::check_tag)?,
        startup_command,
        copy_to_root,
        working_dir: opt_checked(table, "working-dir", validate::check_absolute)?,
        max_layers: table
            .get("max-layers")
            .map(|f| read_max_layers(&f))
            .transpose()?,
        exclude: table.opt_list("exclude")?.map(texts).unwrap_or_default(),
        registry: table.opt_string("registry")?,
        default_copy_args: opt_checked(table, "default-copy-args", validate::check_copy_args)?,
        artifacts: table.opt_list("artifacts")?.map(texts).unwrap_or_default(),
    })
}

/// `copy-to-root`: a path or a list of them, each inside the project or a
/// `build:NAME`.
fn read_copy_to_root(table: &Table) -> Result<Vec<CopySource>, Problem> {
    let Some(f) = table.get("copy-to-root") else {
        return Ok(Vec::new());
    };
    string_or_list(&f)?
        .into_iter()
        .map(|i| {
            validate::check_copy_source(&i.text).map_err(|b| f.problem_at(i.span, b))?;
            Ok(copy_source(i.text))
        })
        .collect()
}

fn copy_source(text: String) -> CopySource {
    match text.strip_prefix("build:") {
        Some(name) => CopySource::Build(name.to_string()),
        None => CopySource::Path(text),
    }
}

/// `exclude` must name `[install]` ids; `artifacts` and `build:NAME` must name builds.
pub(super) fn check_container_refs(
    root: &Table,
    install: &BTreeMap<String, InstallEntry>,
    build: &BTreeMap<String, BuildSpec>,
) -> Result<(), Problem> {
    if let Some(containerize) = root.opt_table("containerize")? {
        check_build_refs(&containerize, build)?;
    }
    let Some(containers) = root.opt_table("containers")? else {
        return Ok(());
    };
    for container in containers.fields() {
        let table = container.table()?;
        if let Some(field) = table.get("exclude") {
            check_refs(&field, field.string_list()?, install, "an [install] id")?;
        }
        if let Some(field) = table.get("artifacts") {
            check_refs(&field, field.string_list()?, build, "a [build] name")?;
        }
        check_build_refs(&table, build)?;
    }
    Ok(())
}

/// Every `build:NAME` in `table`'s `copy-to-root` must name a `[build]`.
fn check_build_refs(table: &Table, build: &BTreeMap<String, BuildSpec>) -> Result<(), Problem> {
    let Some(field) = table.get("copy-to-root") else {
        return Ok(());
    };
    let builds: Vec<Item> = string_or_list(&field)?
        .into_iter()
        .filter_map(|i| {
            let name = i.text.strip_prefix("build:")?.to_string();
            Some(Item {
                text: name,
                span: i.span,
            })
        })
        .collect();
    check_refs(&field, builds, build, "a [build] name")
}

/// Every item must be a key of `known`.
fn check_refs<T>(
    field: &Field,
    items: Vec<Item>,
    known: &BTreeMap<String, T>,
    what: &str,
) -> Result<(), Problem> {
    let Some(item) = items.into_iter().find(|i| !known.contains_key(&i.text)) else {
        return Ok(());
    };
    let names: Vec<&str> = known.keys().map(String::as_str).collect();
    let help = match did_you_mean(&item.text, names.iter().copied()) {
        Some(close) => format!("did you mean '{close}'?"),
        None if names.is_empty() => "none is defined yet".to_string(),
        None => format!("known: {}", names.join(", ")),
    };
    Err(field.problem_at(
        item.span,
        Broken {
            message: format!("'{}' is not {what}", item.text),
            help: Some(help),
        },
    ))
}

pub(super) fn read_build(table: &Table) -> Result<BuildSpec, Problem> {
    table.deny_unknown(&["command", "runtime-packages", "description"])?;
    Ok(BuildSpec {
        command: table.required("command", "\"...\"")?.string()?,
        runtime_packages: match table.get("runtime-packages") {
            Some(field) => checked_list(&field, validate::check_package_name)?,
            None => Vec::new(),
        },
        description: table.opt_string("description")?,
    })
}
