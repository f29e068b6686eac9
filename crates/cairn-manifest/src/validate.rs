//! Value rules: the small parsers and checks for one manifest value each
//! (ports, users, signals, version constraints, names, paths).
//!
//! They know nothing of TOML or spans: each returns a [`Broken`] rule, and
//! `parse.rs` attaches the key and the location.

use serde::{Serialize, Serializer};
use std::fmt;

/// A value that breaks a rule: what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// What is wrong with the value, e.g. `'80/sctp' is not tcp or udp`.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Broken {
    fn new(message: impl Into<String>, help: impl Into<String>) -> Broken {
        Broken {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

/// Serializes a value through its `Display` form (`"8080/tcp"`, `">= 3.11"`).
macro_rules! serialize_as_display {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

/// A Debian version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOp {
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `>>` (strictly greater)
    Gt,
    /// `<<` (strictly less)
    Lt,
}

impl VersionOp {
    /// The operator as Debian writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionOp::Eq => "=",
            VersionOp::Ge => ">=",
            VersionOp::Le => "<=",
            VersionOp::Gt => ">>",
            VersionOp::Lt => "<<",
        }
    }
}

/// A Debian version constraint, e.g. `>= 3.11`; a bare version means `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConstraint {
    /// The relation.
    pub op: VersionOp,
    /// The Debian version it compares against.
    pub version: String,
}

/// Renders as a Debian relation operand: `= 3.11.2-1`, `>= 3.11`.
impl fmt::Display for VersionConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.version)
    }
}
serialize_as_display!(VersionConstraint);

/// Parses `3.11.2-1`, `= 1.0-1`, `>= 3.11`, `<< 4`, `<= 2`, `>> 1`.
pub fn parse_version_constraint(text: &str) -> Result<VersionConstraint, Broken> {
    let help = r#"write a Debian version or constraint, e.g. "3.11.2-1", ">= 3.11" or "<< 4""#;
    let trimmed = text.trim();
    let ops = [
        (">=", VersionOp::Ge),
        ("<=", VersionOp::Le),
        (">>", VersionOp::Gt),
        ("<<", VersionOp::Lt),
        ("=", VersionOp::Eq),
    ];
    let (op, rest) = ops
        .iter()
        .find_map(|(prefix, op)| trimmed.strip_prefix(prefix).map(|rest| (*op, rest)))
        .unwrap_or((VersionOp::Eq, trimmed));
    if rest.starts_with(['<', '>']) || (trimmed.starts_with(['<', '>']) && op == VersionOp::Eq) {
        return Err(Broken::new(
            format!("'{text}': Debian has no '<' or '>' operator"),
            r#"use "<<" or ">>" for strictly less or greater, "<=" or ">=" otherwise"#,
        ));
    }
    let version = rest.trim();
    if !is_debian_version(version) {
        return Err(Broken::new(
            format!("'{text}' is not a Debian version constraint"),
            help,
        ));
    }
    Ok(VersionConstraint {
        op,
        version: version.to_string(),
    })
}

/// Debian policy §5.6.12: `[epoch:]upstream[-revision]`, upstream starting
/// with a digit. dpkg accepts a little more, but nothing a user means.
pub fn is_debian_version(version: &str) -> bool {
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) => (Some(epoch), rest),
        None => (None, version),
    };
    if epoch.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (rest, None),
    };
    let upstream_ok = upstream.starts_with(|c: char| c.is_ascii_digit())
        && upstream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c));
    let revision_ok = revision.is_none_or(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
    });
    upstream_ok && revision_ok
}

/// Debian package names: lowercase letters, digits, `+ - .`, at least two
/// characters, starting with a letter or digit.
pub fn check_package_name(name: &str) -> Result<(), Broken> {
    let ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if ok {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{name}' is not a Debian package name"),
        "Debian package names use lowercase letters, digits and + - . (e.g. \"python3\")",
    ))
}

/// Names of install ids, services, containers and builds:
/// `[A-Za-z0-9][A-Za-z0-9._-]*`.
pub fn check_name(name: &str) -> Result<(), Broken> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if ok {
        return Ok(());
    }
    // `+` because install ids default to the package name, and Debian's
    // names use it (`g++`, `libstdc++6`).
    Err(Broken::new(
        format!("'{name}' is not a valid name"),
        "names start with a letter or digit and use only letters, digits and . _ - +",
    ))
}

/// The environment's name: printable, on one line, and usable as one path
/// component, because cairn names directories after it (and an image's
/// history carries it back in, so `-r REF` must pass it through here too).
pub fn check_env_name(name: &str) -> Result<(), Broken> {
    let path_like = name.contains('/') || name == "." || name == "..";
    if !name.trim().is_empty() && !name.chars().any(char::is_control) && !path_like {
        return Ok(());
    }
    Err(Broken::new(
        format!("{name:?} is not a usable environment name"),
        "use a short name on one line without '/', e.g. \"my-app\"",
    ))
}

/// Registry credential options of skopeo and `cairn copy`: they must never
/// sit in a manifest, which is copied into every image it builds.
const CREDENTIAL_OPTIONS: &[&str] = &[
    "--creds",
    "--dest-creds",
    "--src-creds",
    "--username",
    "--password",
    "--dest-username",
    "--dest-password",
    "--src-username",
    "--src-password",
    "--registry-token",
    "--dest-registry-token",
    "--src-registry-token",
];

/// `default-copy-args` must not carry credentials: the manifest is baked
/// into every image (as docker and podman keep secrets out of Dockerfiles).
pub fn check_copy_args(args: &str) -> Result<(), Broken> {
    let secret = args.split_whitespace().find(|word| {
        let option = word.split_once('=').map_or(*word, |(option, _)| option);
        CREDENTIAL_OPTIONS.contains(&option)
    });
    let Some(word) = secret else {
        return Ok(());
    };
    let option = word.split_once('=').map_or(word, |(option, _)| option);
    Err(Broken::new(
        format!(
            "{option} puts registry credentials in the manifest, which is copied into every image"
        ),
        "log in once with `docker login REGISTRY` or `podman login REGISTRY` (or configure a \
         credential helper); cairn reads those credentials. For CI, pass --dest-creds @FILE \
         or set CAIRN_DEST_CREDS",
    ))
}

/// A `copy-to-root` path (not `build:NAME`) must stay inside the project
/// directory: `/etc` or `../../etc` would copy the host's files, secrets
/// included, into the image. Symlinks are checked when the path is resolved
/// ([`crate::copy_source_within`]).
pub fn check_copy_source(source: &str) -> Result<(), Broken> {
    if source.starts_with("build:") {
        return Ok(());
    }
    let help = "copy-to-root takes paths relative to the project directory, e.g. \"./app\"; \
                copy files from elsewhere into the project first, or produce them with [build]";
    if source.starts_with('/') {
        return Err(Broken::new(
            format!("'{source}' is outside the project directory"),
            help,
        ));
    }
    if lexical_depth(source).is_none() {
        return Err(Broken::new(
            format!("'{source}' leaves the project directory"),
            help,
        ));
    }
    Ok(())
}

/// How deep `path` (relative, `/`-separated) ends below its base, or `None`
/// when a `..` climbs above the base at any point.
pub(crate) fn lexical_depth(path: &str) -> Option<usize> {
    path.split('/').try_fold(0usize, |depth, part| match part {
        "" | "." => Some(depth),
        ".." => depth.checked_sub(1),
        _ => Some(depth + 1),
    })
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_var_name(name: &str) -> Result<(), Broken> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{name}' is not a valid environment variable name"),
        "variable names use letters, digits and _, and do not start with a digit",
    ))
}

/// A system cairn builds for.
pub fn check_system(system: &str) -> Result<(), Broken> {
    if crate::schema::debian_arch(system).is_some() {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{system}' is not a supported system"),
        r#"cairn builds for "x86_64-linux" and "aarch64-linux""#,
    ))
}

/// A Debian architecture name (`amd64`, `arm64`, `all`, ...).
pub fn check_debian_arch(arch: &str) -> Result<(), Broken> {
    let ok = !arch.is_empty()
        && arch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{arch}' is not a Debian architecture"),
        r#"use Debian's names, e.g. "amd64" or "arm64""#,
    ))
}

/// An archive URL: `http://`, `https://` or `file:///`.
pub fn check_archive_url(url: &str) -> Result<(), Broken> {
    let rest = ["http://", "https://", "file://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    let ok = match rest {
        Some(rest) if url.starts_with("file://") => rest.starts_with('/'),
        Some(rest) => !rest.is_empty() && !rest.starts_with('/'),
        None => false,
    };
    if ok && !url.chars().any(char::is_whitespace) {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{url}' is not an http, https or file URL"),
        r#"e.g. "http://deb.debian.org/debian" or "file:///srv/mirror/debian""#,
    ))
}

/// Paths inside an image must be absolute.
pub fn check_absolute(path: &str) -> Result<(), Broken> {
    if path.starts_with('/') {
        return Ok(());
    }
    let fixed = format!("/{}", path.trim_start_matches("./"));
    Err(Broken::new(
        format!("'{path}' is not an absolute path"),
        format!("paths inside the image start at its root, e.g. \"{fixed}\""),
    ))
}

/// An OCI repository name: lowercase components joined by `/`, each
/// `[a-z0-9]+` separated by `.`, `_`, `__` or dashes.
pub fn check_image_name(name: &str) -> Result<(), Broken> {
    if name.split('/').all(is_image_name_component) {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{name}' is not a valid image name"),
        "image names use lowercase letters, digits and . _ - /, e.g. \"my-app\"",
    ))
}

fn is_image_name_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    // Separators between alphanumeric runs: one `.`, one or two `_`, or any dashes.
    let mut run = String::new();
    for &b in bytes {
        if alnum(&b) {
            if !run.is_empty() && !is_separator(&run) {
                return false;
            }
            run.clear();
        } else {
            run.push(b as char);
        }
    }
    true
}

fn is_separator(run: &str) -> bool {
    matches!(run, "." | "_" | "__") || run.chars().all(|c| c == '-')
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), Broken> {
    let ok = tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{tag}' is not a valid image tag"),
        "tags use letters, digits and _ . - (at most 128), e.g. \"latest\" or \"1.0\"",
    ))
}

/// OCI annotation keys: non-empty, no whitespace or control characters.
pub fn check_label_key(key: &str) -> Result<(), Broken> {
    if !key.is_empty() && !key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Ok(());
    }
    Err(Broken::new(
        format!("'{key}' is not a valid label key"),
        "label keys are non-empty and have no spaces, e.g. \"org.opencontainers.image.title\"",
    ))
}

/// A health check timing (`interval`, `timeout`, `start-period`), written as
/// Docker and Go write durations: `30s`, `1m30s`, `500ms`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HealthDuration(pub std::time::Duration);

impl HealthDuration {
    /// Nanoseconds, as the image config's `Healthcheck` holds them.
    pub fn as_nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whole seconds, rounded up (Kubernetes probes count in seconds).
    pub fn ceil_secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// The shortest form that parses back: `1m30s`, `500ms`, `0s`.
impl fmt::Display for HealthDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (millis / 3_600_000, "h"),
            (millis / 60_000 % 60, "m"),
            (millis / 1000 % 60, "s"),
            (millis % 1000, "ms"),
        ];
        for (value, unit) in parts {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}
serialize_as_display!(HealthDuration);

/// Parses a duration in Go's form without fractions: one or more
/// `NUMBER UNIT` pairs, units `ms`, `s`, `m`, `h`. Hand-written because the
/// form is Docker's (`1m30s`), which humantime-style parsers spell otherwise,
/// and sub-millisecond precision means nothing to a health check.
pub fn parse_health_duration(text: &str) -> Result<HealthDuration, Broken> {
    let bad = || {
        Broken::new(
            format!("'{text}' is not a duration"),
            r#"write a number and a unit (ms, s, m, h), e.g. "30s", "1m30s" or "500ms""#,
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = std::time::Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let millis = number.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total
            .checked_add(std::time::Duration::from_millis(millis))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(HealthDuration(total))
}

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Proto {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// An exposed port, e.g. `8080/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// 1..=65535.
    pub port: u16,
    /// Protocol; tcp when not written.
    pub proto: Proto,
}

/// Renders the OCI `ExposedPorts` key: `8080/tcp`.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        write!(f, "{}/{proto}", self.port)
    }
}
serialize_as_display!(PortSpec);

/// Parses `8080`, `8080/tcp` or `53/udp`.
pub fn parse_port(text: &str) -> Result<PortSpec, Broken> {
    let (number, proto) = match text.split_once('/') {
        Some((number, proto)) => (number, Some(proto)),
        None => (text, None),
    };
    let port = match number.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => {
            return Err(Broken::new(
                format!("'{text}' does not start with a port number from 1 to 65535"),
                r#"write a port like "8080", "8080/tcp" or "53/udp""#,
            ));
        }
    };
    let proto = match proto {
        None | Some("tcp") => Proto::Tcp,
        Some("udp") => Proto::Udp,
        Some(_) => {
            return Err(Broken::new(
                format!("'{text}' is not tcp or udp"),
                format!(r#"use "{port}/tcp" or "{port}/udp""#),
            ));
        }
    };
    Ok(PortSpec { port, proto })
}

/// A user or group, by name or numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// A numeric id.
    Id(u32),
    /// A name from the image's passwd/group.
    Name(String),
}

impl fmt::Display for IdOrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdOrName::Id(id) => write!(f, "{id}"),
            IdOrName::Name(name) => f.write_str(name),
        }
    }
}

/// The image's `User`: `user`, `uid`, `user:group`, `uid:gid`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// The user.
    pub user: IdOrName,
    /// The group, when given.
    pub group: Option<IdOrName>,
}

/// Renders the OCI `User` value: `app:app`, `1000`.
impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{group}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}
serialize_as_display!(UserSpec);

/// Parses `user`, `uid`, `user:group`, `uid:gid`, `uid:group`, `user:gid`.
pub fn parse_user(text: &str) -> Result<UserSpec, Broken> {
    let (user, group) = match text.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (text, None),
    };
    // `Some(None)`: no group written; `None`: a group written but invalid.
    let group = match group {
        None => Some(None),
        Some(group) => parse_id_or_name(group).map(Some),
    };
    match (parse_id_or_name(user), group) {
        (Some(user), Some(group)) => Ok(UserSpec { user, group }),
        _ => Err(Broken::new(
            format!("'{text}' is not a user, uid, user:group or uid:gid"),
            r#"names use lowercase letters, digits, _ and -, e.g. "app", "1000" or "app:app""#,
        )),
    }
}

fn parse_id_or_name(text: &str) -> Option<IdOrName> {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return text.parse().ok().map(IdOrName::Id);
    }
    let ok = text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    ok.then(|| IdOrName::Name(text.to_string()))
}

/// The image's `StopSignal`, with its Linux number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignal {
    /// Canonical name (`SIGTERM`, `SIGRTMIN+3`), or the number when it has none.
    pub name: String,
    /// Linux signal number (1..=64).
    pub number: u8,
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
serialize_as_display!(StopSignal);

/// Linux's classic signals (the same numbers on x86_64 and arm64).
const SIGNALS: &[(&str, u8)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];
const SIGRTMIN: u8 = 34;
const SIGRTMAX: u8 = 64;

/// Parses `SIGTERM`, `TERM`, `sigterm`, `SIGRTMIN+3`, `RTMAX-1` or `15`.
pub fn parse_stop_signal(text: &str) -> Result<StopSignal, Broken> {
    let unknown = || {
        Broken::new(
            format!("'{text}' is not a signal name or number"),
            r#"use a name like "SIGTERM", "SIGINT" or "SIGRTMIN+3", or a number from 1 to 64"#,
        )
    };
    if let Ok(number) = text.parse::<u8>() {
        return match number {
            1..=64 => Ok(StopSignal {
                name: signal_name(number).unwrap_or_else(|| number.to_string()),
                number,
            }),
            _ => Err(unknown()),
        };
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = SIGNALS
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|(_, number)| *number)
        .or_else(|| realtime_signal(bare))
        .ok_or_else(unknown)?;
    Ok(StopSignal {
        name: signal_name(number).unwrap_or_else(|| number.to_string()),
        number,
    })
}

fn realtime_signal(bare: &str) -> Option<u8> {
    let offset = |rest: &str| -> Option<u8> {
        if rest.is_empty() {
            return Some(0);
        }
        // `u8::from_str` takes a leading `+`; `RTMIN++3` is still a typo.
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    };
    let number = if let Some(rest) = bare.strip_prefix("RTMIN") {
        let n = offset(rest.strip_prefix('+').unwrap_or(rest))?;
        (rest.is_empty() || rest.starts_with('+')).then(|| SIGRTMIN.checked_add(n))??
    } else {
        let rest = bare.strip_prefix("RTMAX")?;
        let n = offset(rest.strip_prefix('-').unwrap_or(rest))?;
        (rest.is_empty() || rest.starts_with('-')).then(|| SIGRTMAX.checked_sub(n))??
    };
    (SIGRTMIN..=SIGRTMAX).contains(&number).then_some(number)
}

/// The canonical name of a signal number, as `kill -l` prints it.
fn signal_name(number: u8) -> Option<String> {
    let classic = SIGNALS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| format!("SIG{name}"));
    classic.or_else(|| match number {
        SIGRTMIN => Some("SIGRTMIN".to_string()),
        SIGRTMAX => Some("SIGRTMAX".to_string()),
        35..=49 => Some(format!("SIGRTMIN+{}", number - SIGRTMIN)),
        50..=63 => Some(format!("SIGRTMAX-{}", SIGRTMAX - number)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_durations_parse_and_print_go_style() {
        for (text, millis, shown) in [
            ("30s", 30_000, "30s"),
            ("1m30s", 90_000, "1m30s"),
            ("500ms", 500, "500ms"),
            ("1h", 3_600_000, "1h"),
            ("90s", 90_000, "1m30s"),
            ("0s", 0, "0s"),
        ] {
            let d = parse_health_duration(text).unwrap();
            assert_eq!(d.0.as_millis(), millis, "{text}");
            assert_eq!(d.to_string(), shown, "{text}");
        }
        for bad in ["", "30", "s", "30 s", "1.5s", "30sec", "-1s", "1d"] {
            assert!(parse_health_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_health_duration("1500ms").unwrap().ceil_secs(), 2);
    }

    #[test]
    fn version_constraints() {
        let c = |s| parse_version_constraint(s).map(|c| c.to_string());
        assert_eq!(c("3.11.2-1").unwrap(), "= 3.11.2-1");
        assert_eq!(c("= 1.0-1").unwrap(), "= 1.0-1");
        assert_eq!(c(">= 3.11").unwrap(), ">= 3.11");
        assert_eq!(c(">=3.11").unwrap(), ">= 3.11");
        assert_eq!(c("<< 4").unwrap(), "<< 4");
        assert_eq!(
            c("<= 1:2.0~rc1-1+deb12u1").unwrap(),
            "<= 1:2.0~rc1-1+deb12u1"
        );
        assert_eq!(c(">> 0").unwrap(), ">> 0");
        for bad in [
            "",
            ">=",
            "3.11 beta",
            "abc",
            "=> 3",
            "1.0-",
            ":1.0",
            "x:1.0",
        ] {
            assert!(c(bad).is_err(), "{bad} should be rejected");
        }
        let err = parse_version_constraint("< 4").unwrap_err();
        assert!(err.message.contains("no '<' or '>' operator"), "{err:?}");
        assert!(parse_version_constraint("> 4").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("8080").unwrap().to_string(), "8080/tcp");
        assert_eq!(parse_port("8080/tcp").unwrap().to_string(), "8080/tcp");
        assert_eq!(parse_port("53/udp").unwrap().proto, Proto::Udp);
        let err = parse_port("80/sctp").unwrap_err();
        assert_eq!(err.message, "'80/sctp' is not tcp or udp");
        assert_eq!(err.help.as_deref(), Some(r#"use "80/tcp" or "80/udp""#));
        for bad in ["0", "65536", "http", "", "/tcp", "-1", "80/TCP"] {
            assert!(parse_port(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn users() {
        let u = |s| parse_user(s).map(|u| u.to_string());
        for good in [
            "app",
            "1000",
            "app:app",
            "1000:1000",
            "1000:app",
            "app:1000",
            "_x-1",
        ] {
            assert_eq!(u(good).unwrap(), good);
        }
        assert_eq!(
            parse_user("1000:app").unwrap(),
            UserSpec {
                user: IdOrName::Id(1000),
                group: Some(IdOrName::Name("app".into()))
            }
        );
        for bad in ["", ":", "app:", "App", "a b", "1x", "99999999999", "a:b:c"] {
            assert!(u(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn stop_signals() {
        let s = |t| parse_stop_signal(t).map(|s| (s.name, s.number));
        assert_eq!(s("SIGTERM").unwrap(), ("SIGTERM".into(), 15));
        assert_eq!(s("TERM").unwrap(), ("SIGTERM".into(), 15));
        assert_eq!(s("sigint").unwrap(), ("SIGINT".into(), 2));
        assert_eq!(s("9").unwrap(), ("SIGKILL".into(), 9));
        assert_eq!(s("SIGRTMIN+3").unwrap(), ("SIGRTMIN+3".into(), 37));
        assert_eq!(s("RTMIN").unwrap(), ("SIGRTMIN".into(), 34));
        assert_eq!(s("SIGRTMAX-1").unwrap(), ("SIGRTMAX-1".into(), 63));
        assert_eq!(s("64").unwrap(), ("SIGRTMAX".into(), 64));
        assert_eq!(s("32").unwrap(), ("32".into(), 32));
        for bad in [
            "0",
            "65",
            "SIGFOO",
            "",
            "SIGRTMIN+31",
            "RTMIN-1",
            "SIGRTMAX+1",
            "RTMIN++3",
        ] {
            assert!(s(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("python3").is_ok());
        assert!(check_name("My_app.v2-x").is_ok());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_package_name("python3-flask").is_ok());
        assert!(check_package_name("libstdc++6").is_ok());
        assert!(check_package_name("Python3").is_err());
        assert!(check_package_name("a").is_err());
        assert!(check_var_name("_PATH2").is_ok());
        assert!(check_var_name("2X").is_err());
    }

    #[test]
    fn image_names_and_tags() {
        for good in ["myimage", "team/my-app", "a.b_c__d--e/f", "x1"] {
            assert!(check_image_name(good).is_ok(), "{good}");
        }
        for bad in [
            "MyImage",
            "a//b",
            "-a",
            "a-",
            "a___b",
            "a..b",
            "",
            "host:5000/a",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
        assert!(check_tag("v1.0_rc-2").is_ok());
        assert!(check_tag(".x").is_err());
        assert!(check_tag(&"x".repeat(129)).is_err());
    }

    #[test]
    fn urls_and_paths() {
        assert!(check_archive_url("http://deb.debian.org/debian").is_ok());
        assert!(check_archive_url("https://x/y").is_ok());
        assert!(check_archive_url("file:///srv/mirror").is_ok());
        assert!(check_archive_url("file://srv").is_err());
        assert!(check_archive_url("ftp://x").is_err());
        assert!(check_archive_url("http://").is_err());
        assert!(check_absolute("/data").is_ok());
        let err = check_absolute("./data").unwrap_err();
        assert_eq!(err.message, "'./data' is not an absolute path");
        assert!(err.help.unwrap().contains("\"/data\""));
    }

    #[test]
    fn env_names_are_single_path_components() {
        for good in ["web", "my app", "café-1", "a.b"] {
            assert!(check_env_name(good).is_ok(), "{good}");
        }
        for bad in ["../../x", "a/b", "..", ".", "", "  ", "a\0b", "a\nb"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_in_copy_args_are_refused() {
        assert!(check_copy_args("--dest-tls-verify=false --retry-times 3").is_ok());
        for bad in [
            "--dest-creds user:s3cret",
            "--dest-tls-verify=false --dest-creds=user:s3cret",
            "--creds u:s3cret",
            "--dest-password s3cret",
            "--dest-registry-token s3cret",
        ] {
            let broken = check_copy_args(bad).unwrap_err();
            assert!(
                broken.message.contains("credentials"),
                "{bad}: {}",
                broken.message
            );
            assert!(
                broken
                    .help
                    .as_deref()
                    .is_some_and(|h| h.contains("docker login"))
            );
            assert!(
                !broken.message.contains("s3cret"),
                "the secret is echoed: {}",
                broken.message
            );
        }
    }

    #[test]
    fn copy_sources_stay_in_the_project() {
        for good in ["./app", "app/static", "a/../b", "build:web", "."] {
            assert!(check_copy_source(good).is_ok(), "{good}");
        }
        for bad in ["/etc", "../../../../etc", "app/../../x", "..", "./../x"] {
            assert!(check_copy_source(bad).is_err(), "{bad}");
        }
        assert_eq!(lexical_depth("a/./b/"), Some(2));
        assert_eq!(lexical_depth("a/../.."), None);
    }
}
