//! System users and groups: what `adduser --system`, `addgroup --system`,
//! `useradd -r` and `groupadd -r` calls in maintainer scripts would add to
//! `/etc/passwd`, `/etc/group`, `/etc/shadow` and `/etc/gshadow`, with the
//! home directories they create.
//!
//! Owns reading those calls, `systemd-sysusers FILE...` calls (their
//! `/usr/lib/sysusers.d` files' `u`, `g` and `m` lines; other line types are
//! noted), the base accounts (base-passwd's `passwd.master`/`group.master`,
//! which its postinst copies to `/etc` on a fresh install), the id rule, and
//! resolving `dpkg-statoverride --add USER GROUP MODE PATH` against the
//! result. It does not handle the image's own `[containerize.config] user`:
//! [`system_accounts`] gives the caller the data to merge it into.
//!
//! **Id rule.** adduser takes the first free id from 100 up, so on Debian an
//! id depends on the order packages were installed in. Here each new name
//! gets `100 + fnv1a(name) % 900`, probing upward (and wrapping within
//! 100..=999) past ids that are taken, names being taken in sorted order:
//! the same lock gives the same ids, and adding or removing an unrelated
//! package does not renumber `postgres` (only a hash collision can move an
//! id, which the probe resolves deterministically). Ids a script passes
//! explicitly (`--uid`, `-u`) and the base ids are kept. A user's own group
//! (`--group`, `useradd`'s default user group) takes the user's id when it
//! is free as a gid, as it usually is on Debian.

use super::{DataFile, Entry, Note, PackageInput, ParsedScripts, Tree};
use std::collections::{BTreeMap, BTreeSet};

/// base-passwd's template for `/etc/passwd`.
pub const PASSWD_MASTER: &str = "/usr/share/base-passwd/passwd.master";
/// base-passwd's template for `/etc/group`.
pub const GROUP_MASTER: &str = "/usr/share/base-passwd/group.master";
/// Where packages declare accounts for `systemd-sysusers`.
pub const SYSUSERS_DIR: &str = "/usr/lib/sysusers.d/";

const FIRST_SYSTEM_ID: u32 = 100;
const LAST_SYSTEM_ID: u32 = 999;
const NOGROUP: u32 = 65534;

/// A user as a passwd line has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// A group as a group line has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The accounts of an environment: base ones first (in base-passwd's order),
/// then those packages add (by id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Home directories to create: path, uid, gid.
    pub homes: Vec<(String, u32, u32)>,
    /// Resolved `dpkg-statoverride --add` calls.
    pub overrides: Vec<super::StatOverride>,
}

/// What a script asks for, before ids are assigned.
#[derive(Debug, Clone, PartialEq, Default)]
struct UserRequest {
    name: String,
    uid: Option<u32>,
    /// `None`: nogroup; `Some(name)`: that group (its own with `--group`).
    group: Option<String>,
    own_group: bool,
    home: String,
    create_home: bool,
    shell: String,
    gecos: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct GroupRequest {
    name: String,
    gid: Option<u32>,
}

#[derive(Default)]
struct Requests {
    users: BTreeMap<String, UserRequest>,
    groups: BTreeMap<String, GroupRequest>,
    /// (user, group) memberships from `adduser USER GROUP`.
    members: BTreeSet<(String, String)>,
    /// Users whose primary group is given by id (sysusers' `uid:gid`).
    gid_groups: BTreeMap<String, u32>,
    /// `dpkg-statoverride --add USER GROUP MODE PATH`, with the package.
    overrides: Vec<(String, [String; 4])>,
}

/// Reads `dpkg-statoverride [options] --add USER GROUP MODE PATH`.
fn parse_statoverride(words: &[String]) -> Option<Result<[String; 4], String>> {
    let add = words.iter().position(|w| w == "--add")?;
    let args: Vec<&String> = words[add + 1..]
        .iter()
        .filter(|w| !w.starts_with("--"))
        .collect();
    match args.as_slice() {
        [user, group, mode, path] => Some(Ok([
            user.to_string(),
            group.to_string(),
            mode.to_string(),
            path.to_string(),
        ])),
        _ => Some(Err("--add needs USER GROUP MODE PATH".to_string())),
    }
}

/// Parses one command's words into `requests`; `Err` names what is not understood.
fn parse_command(words: &[String], requests: &mut Requests) -> Result<(), String> {
    let program = words.first().map(|p| p.rsplit('/').next().unwrap_or(p));
    match program {
        Some("adduser") => parse_adduser(&words[1..], requests, false),
        Some("addgroup") => parse_adduser(&words[1..], requests, true),
        Some("useradd") => parse_useradd(&words[1..], requests),
        Some("groupadd") => parse_groupadd(&words[1..], requests),
        _ => Ok(()),
    }
}

fn parse_adduser(args: &[String], requests: &mut Requests, addgroup: bool) -> Result<(), String> {
    let mut positional = Vec::new();
    let (mut system, mut group) = (false, addgroup);
    let mut user = UserRequest {
        home: "/nonexistent".into(),
        shell: "/usr/sbin/nologin".into(),
        ..UserRequest::default()
    };
    let mut home_given = false;
    let mut id: Option<u32> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i).cloned().ok_or(format!("{arg} needs a value"))
        };
        match arg {
            "--system" => system = true,
            "--group" => group = true,
            "--home" => {
                user.home = value()?;
                home_given = true;
            }
            "--shell" => user.shell = value()?,
            "--ingroup" => user.group = Some(value()?),
            "--gecos" | "--comment" => user.gecos = value()?,
            "--uid" | "--gid" => {
                let v = value()?;
                id = Some(
                    v.parse()
                        .map_err(|_| format!("{arg} '{v}' is not a number"))?,
                );
            }
            "--firstuid" | "--lastuid" | "--firstgid" | "--lastgid" | "--conf"
            | "--add-extra-groups" => {
                value()?;
            }
            a if a.starts_with("--") => {}
            _ => positional.push(args[i].clone()),
        }
        i += 1;
    }
    match positional.as_slice() {
        [user_name, group_name] if !system && !addgroup => {
            requests
                .members
                .insert((user_name.clone(), group_name.clone()));
            Ok(())
        }
        [name] if addgroup || (group && !system) => {
            let request = GroupRequest {
                name: name.clone(),
                gid: id,
            };
            requests.groups.entry(name.clone()).or_insert(request);
            Ok(())
        }
        [name] if system => {
            user.name = name.clone();
            user.uid = id;
            user.create_home = home_given && !args.iter().any(|a| a == "--no-create-home");
            if group {
                user.group = Some(name.clone());
                user.own_group = true;
            }
            // `--gecos X` becomes `X,,,` as adduser fills the other fields.
            if !user.gecos.is_empty() && !user.gecos.contains(',') {
                user.gecos.push_str(",,,");
            }
            requests.users.entry(name.clone()).or_insert(user);
            Ok(())
        }
        [_] => Err("only --system users are applied".to_string()),
        other => Err(format!(
            "cannot tell the account from '{}'",
            other.join(" ")
        )),
    }
}

fn parse_useradd(args: &[String], requests: &mut Requests) -> Result<(), String> {
    let mut user = UserRequest {
        shell: "/bin/sh".into(),
        own_group: true,
        ..UserRequest::default()
    };
    let mut system = false;
    let mut name = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i).cloned().ok_or(format!("{arg} needs a value"))
        };
        match arg {
            "-r" | "--system" => system = true,
            "-m" | "--create-home" => user.create_home = true,
            "-M" | "--no-create-home" => user.create_home = false,
            "-N" | "--no-user-group" => user.own_group = false,
            "-U" | "--user-group" => user.own_group = true,
            "-d" | "--home-dir" | "--home" => user.home = value()?,
            "-s" | "--shell" => user.shell = value()?,
            "-c" | "--comment" => user.gecos = value()?,
            "-g" | "--gid" => {
                user.group = Some(value()?);
                user.own_group = false;
            }
            "-u" | "--uid" => {
                let v = value()?;
                user.uid = Some(
                    v.parse()
                        .map_err(|_| format!("{arg} '{v}' is not a number"))?,
                );
            }
            "-G" | "--groups" | "-K" | "--key" | "-e" | "-f" | "-k" | "-p" | "-R" | "--root" => {
                value()?;
            }
            a if a.starts_with('-') => {}
            _ => name = Some(args[i].clone()),
        }
        i += 1;
    }
    let name = name.ok_or("no user name")?;
    if !system {
        return Err("only -r (system) users are applied".to_string());
    }
    if user.home.is_empty() {
        user.home = format!("/home/{name}");
    }
    if user.own_group {
        user.group = Some(name.clone());
    }
    user.name = name.clone();
    requests.users.entry(name).or_insert(user);
    Ok(())
}

fn parse_groupadd(args: &[String], requests: &mut Requests) -> Result<(), String> {
    let mut gid = None;
    let mut name = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-g" | "--gid" => {
                i += 1;
                let v = args.get(i).ok_or("-g needs a value")?;
                gid = Some(v.parse().map_err(|_| format!("-g '{v}' is not a number"))?);
            }
            "-K" | "--key" | "-p" | "--password" | "-R" | "--root" => i += 1,
            a if a.starts_with('-') => {}
            n => name = Some(n.to_string()),
        }
        i += 1;
    }
    let name = name.ok_or("no group name")?;
    requests
        .groups
        .entry(name.clone())
        .or_insert(GroupRequest { name, gid });
    Ok(())
}

/// Splits a sysusers.d line into fields, honouring double quotes.
fn sysusers_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    fields.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        fields.push(current);
    }
    fields
}

/// Applies a sysusers.d file (`u`, `g` and `m` lines; others are named).
fn parse_sysusers(text: &str, requests: &mut Requests) -> Result<(), String> {
    let mut ignored = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f = sysusers_fields(line);
        let field = |i: usize| f.get(i).map(String::as_str).filter(|v| *v != "-");
        match (f.first().map(String::as_str), field(1)) {
            (Some("u"), Some(name)) => {
                let (uid, gid) = match field(2).map(|id| id.split_once(':').unwrap_or((id, ""))) {
                    Some((u, g)) => (u.parse().ok(), g.parse::<u32>().ok()),
                    None => (None, None),
                };
                let request = UserRequest {
                    name: name.to_string(),
                    uid,
                    group: Some(name.to_string()),
                    own_group: gid.is_none(),
                    home: field(4).unwrap_or("/").to_string(),
                    create_home: false,
                    shell: field(5).unwrap_or("/usr/sbin/nologin").to_string(),
                    gecos: field(3).unwrap_or("").to_string(),
                };
                if let Some(gid) = gid {
                    // `u name uid:gid` joins an existing group by id.
                    requests.gid_groups.insert(name.to_string(), gid);
                }
                requests.users.entry(name.to_string()).or_insert(request);
            }
            (Some("g"), Some(name)) => {
                let gid = field(2).and_then(|g| g.parse().ok());
                let request = GroupRequest {
                    name: name.to_string(),
                    gid,
                };
                requests.groups.entry(name.to_string()).or_insert(request);
            }
            (Some("m"), Some(user)) => {
                if let Some(group) = field(2) {
                    requests
                        .members
                        .insert((user.to_string(), group.to_string()));
                }
            }
            _ => ignored.push(line.to_string()),
        }
    }
    if ignored.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "sysusers.d lines not applied: {}",
            ignored.join("; ")
        ))
    }
}

/// The sysusers.d files a `systemd-sysusers` call names (all of them when
/// it names none), applied to `requests`.
fn run_sysusers(
    words: &[String],
    packages: &[PackageInput],
    requests: &mut Requests,
) -> Result<(), String> {
    let files: Vec<&DataFile> = packages
        .iter()
        .flat_map(|p| &p.files)
        .filter(|f| f.path.starts_with(SYSUSERS_DIR) && f.path.ends_with(".conf"))
        .collect();
    let named: Vec<&String> = words[1..].iter().filter(|w| !w.starts_with('-')).collect();
    let mut chosen: Vec<&DataFile> = if named.is_empty() {
        files.clone()
    } else {
        let mut out = Vec::new();
        for name in named {
            let path = format!("{SYSUSERS_DIR}{}", name.rsplit('/').next().unwrap_or(name));
            match files.iter().find(|f| f.path == path) {
                Some(f) => out.push(*f),
                None => return Err(format!("{path} is not in the environment")),
            }
        }
        out
    };
    chosen.sort_by(|a, b| a.path.cmp(&b.path));
    for file in chosen {
        let contents = file
            .contents
            .as_deref()
            .ok_or_else(|| format!("{}: contents not provided", file.path))?;
        parse_sysusers(&String::from_utf8_lossy(contents), requests)?;
    }
    Ok(())
}

/// The id of `name` (or `#123`) among `known`.
fn id_of<'a>(name: &str, mut known: impl Iterator<Item = (&'a str, u32)>) -> Option<u32> {
    if let Some(number) = name.strip_prefix('#') {
        return number.parse().ok();
    }
    known.find(|(n, _)| *n == name).map(|(_, id)| id)
}

/// 32-bit FNV-1a: tiny, stable across platforms and Rust versions.
fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The id for `name`: its hash slot in 100..=999, probing past `taken`.
fn pick_id(name: &str, taken: &BTreeSet<u32>) -> Option<u32> {
    let span = LAST_SYSTEM_ID - FIRST_SYSTEM_ID + 1;
    let start = fnv1a(name) % span;
    (0..span)
        .map(|k| FIRST_SYSTEM_ID + (start + k) % span)
        .find(|id| !taken.contains(id))
}

/// Base accounts from base-passwd's templates, when a package ships them.
fn base_accounts(packages: &[PackageInput]) -> (Vec<User>, Vec<Group>) {
    let contents = |path: &str| -> Option<String> {
        let file: &DataFile = packages
            .iter()
            .flat_map(|p| &p.files)
            .find(|f| f.path == path)?;
        Some(String::from_utf8_lossy(file.contents.as_deref()?).into_owned())
    };
    let users = contents(PASSWD_MASTER)
        .map(|text| text.lines().filter_map(parse_passwd_line).collect())
        .unwrap_or_else(|| {
            vec![User {
                name: "root".into(),
                uid: 0,
                gid: 0,
                gecos: "root".into(),
                home: "/root".into(),
                shell: "/bin/sh".into(),
            }]
        });
    let groups = contents(GROUP_MASTER)
        .map(|text| text.lines().filter_map(parse_group_line).collect())
        .unwrap_or_else(|| {
            vec![
                Group {
                    name: "root".into(),
                    gid: 0,
                    members: vec![],
                },
                Group {
                    name: "nogroup".into(),
                    gid: NOGROUP,
                    members: vec![],
                },
            ]
        });
    (users, groups)
}

fn parse_passwd_line(line: &str) -> Option<User> {
    let f: Vec<&str> = line.split(':').collect();
    let [name, _, uid, gid, gecos, home, shell] = f.as_slice() else {
        return None;
    };
    Some(User {
        name: name.to_string(),
        uid: uid.parse().ok()?,
        gid: gid.parse().ok()?,
        gecos: gecos.to_string(),
        home: home.to_string(),
        shell: shell.to_string(),
    })
}

fn parse_group_line(line: &str) -> Option<Group> {
    let f: Vec<&str> = line.split(':').collect();
    let [name, _, gid, members] = f.as_slice() else {
        return None;
    };
    Some(Group {
        name: name.to_string(),
        gid: gid.parse().ok()?,
        members: members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The accounts `packages` (in lock order) create, with notes for calls not
/// applied; the same data [`super::configure`] writes as `/etc/passwd` etc.,
/// for a caller that merges its own users (the image's `user`) into them.
pub fn system_accounts(packages: &[PackageInput]) -> (Accounts, Vec<Note>) {
    let parsed = ParsedScripts::all_of(packages);
    let tree = Tree::new(packages, &[]);
    accounts(packages, &parsed, &tree)
}

fn accounts(
    packages: &[PackageInput],
    parsed: &[ParsedScripts],
    tree: &Tree<'_>,
) -> (Accounts, Vec<Note>) {
    let mut requests = Requests::default();
    let mut notes = Vec::new();
    for (package, scripts) in packages.iter().zip(parsed) {
        for (script, command) in scripts.all() {
            let Some(words) = &command.words else {
                continue;
            };
            let program = words.first().map(|p| p.rsplit('/').next().unwrap_or(p));
            let result = if program == Some("systemd-sysusers") {
                run_sysusers(words, packages, &mut requests)
            } else if program == Some("dpkg-statoverride") {
                match parse_statoverride(words) {
                    Some(Ok(args)) => {
                        requests.overrides.push((package.name.clone(), args));
                        Ok(())
                    }
                    Some(Err(e)) => Err(e),
                    None => Ok(()),
                }
            } else {
                parse_command(words, &mut requests)
            };
            if let Err(reason) = result {
                notes.push(Note {
                    package: package.name.clone(),
                    message: format!(
                        "{script} line {}: {} not applied: {reason}",
                        command.line,
                        words.join(" ")
                    ),
                });
            }
        }
    }
    let (mut users, mut groups) = base_accounts(packages);
    let mut uids: BTreeSet<u32> = users.iter().map(|u| u.uid).collect();
    let mut gids: BTreeSet<u32> = groups.iter().map(|g| g.gid).collect();
    uids.extend(requests.users.values().filter_map(|u| u.uid));
    gids.extend(requests.groups.values().filter_map(|g| g.gid));
    // Groups a user brings along are requested like addgroup calls.
    for user in requests.users.values().filter(|u| u.own_group) {
        let name = user.name.clone();
        requests
            .groups
            .entry(name.clone())
            .or_insert(GroupRequest { name, gid: None });
    }
    let mut new_users = Vec::new();
    for request in requests.users.values() {
        if users.iter().any(|u| u.name == request.name) {
            continue;
        }
        let Some(uid) = request.uid.or_else(|| pick_id(&request.name, &uids)) else {
            continue;
        };
        uids.insert(uid);
        new_users.push((request, uid));
    }
    // Own groups first, so that they can take their user's id.
    let mut order: Vec<&GroupRequest> = requests.groups.values().collect();
    order.sort_by_key(|g| {
        !new_users
            .iter()
            .any(|(u, _)| u.own_group && u.name == g.name)
    });
    let mut new_groups = Vec::new();
    for request in order {
        if groups.iter().any(|g| g.name == request.name) {
            continue;
        }
        let paired = new_users
            .iter()
            .find(|(u, _)| u.own_group && u.name == request.name)
            .map(|(_, uid)| *uid);
        let gid = request
            .gid
            .or(paired.filter(|id| !gids.contains(id)))
            .or_else(|| pick_id(&request.name, &gids));
        let Some(gid) = gid else { continue };
        gids.insert(gid);
        new_groups.push(Group {
            name: request.name.clone(),
            gid,
            members: vec![],
        });
    }
    new_groups.sort_by_key(|g| g.gid);
    groups.extend(new_groups);
    let mut homes = Vec::new();
    let mut added = Vec::new();
    for (request, uid) in new_users {
        let gid = match &request.group {
            _ if requests.gid_groups.contains_key(&request.name) => {
                requests.gid_groups[&request.name]
            }
            None => NOGROUP,
            Some(name) => match groups.iter().find(|g| &g.name == name) {
                Some(g) => g.gid,
                None => {
                    notes.push(Note {
                        package: String::new(),
                        message: format!(
                            "user {}: group {name} does not exist; using nogroup",
                            request.name
                        ),
                    });
                    NOGROUP
                }
            },
        };
        if request.create_home && !tree.exists(&request.home) {
            homes.push((request.home.clone(), uid, gid));
        }
        added.push(User {
            name: request.name.clone(),
            uid,
            gid,
            gecos: request.gecos.clone(),
            home: request.home.clone(),
            shell: request.shell.clone(),
        });
    }
    added.sort_by_key(|u| u.uid);
    users.extend(added);
    for (user, group) in &requests.members {
        if !users.iter().any(|u| &u.name == user) {
            continue;
        }
        // `adduser postgres ssl-cert` runs only when ssl-cert exists, and
        // `adduser postgres postgres` only when it is not already the
        // primary group (which the script checks with `id -Gn`).
        let primary = users.iter().find(|u| &u.name == user).map(|u| u.gid);
        if let Some(g) = groups.iter_mut().find(|g| &g.name == group)
            && Some(g.gid) != primary
            && !g.members.contains(user)
        {
            g.members.push(user.clone());
        }
    }
    let mut overrides = Vec::new();
    for (package, [user, group, mode, path]) in &requests.overrides {
        let uid = id_of(user, users.iter().map(|u| (u.name.as_str(), u.uid)));
        let gid = id_of(group, groups.iter().map(|g| (g.name.as_str(), g.gid)));
        let bits = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777);
        match (uid, gid, bits) {
            (Some(uid), Some(gid), Some(mode)) if tree.exists(path) => {
                overrides.push(super::StatOverride {
                    path: path.clone(),
                    uid,
                    gid,
                    mode,
                });
            }
            (Some(_), Some(_), Some(_)) => {}
            _ => notes.push(Note {
                package: package.clone(),
                message: format!(
                    "dpkg-statoverride --add {user} {group} {mode} {path} not applied: unknown user, group or mode"
                ),
            }),
        }
    }
    overrides.sort();
    (
        Accounts {
            users,
            groups,
            homes,
            overrides,
        },
        notes,
    )
}

impl Accounts {
    /// `/etc/passwd`.
    pub fn passwd(&self) -> String {
        self.users
            .iter()
            .map(|u| {
                format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    u.name, u.uid, u.gid, u.gecos, u.home, u.shell
                )
            })
            .collect()
    }

    /// `/etc/group`.
    pub fn group(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")))
            .collect()
    }

    /// `/etc/shadow`: every account locked (`*`), with no last-change date,
    /// which would make the file depend on the day it was built.
    pub fn shadow(&self) -> String {
        self.users
            .iter()
            .map(|u| format!("{}:*::0:99999:7:::\n", u.name))
            .collect()
    }

    /// `/etc/gshadow`.
    pub fn gshadow(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("{}:*::{}\n", g.name, g.members.join(",")))
            .collect()
    }
}

/// The account files and home directories as entries, and the accounts
/// (which tmpfiles.d snippets name owners from).
pub(crate) fn configure(
    packages: &[PackageInput],
    parsed: &[ParsedScripts],
    tree: &Tree<'_>,
) -> (super::Configuration, Accounts) {
    let (accounts, notes) = accounts(packages, parsed, tree);
    (entries(packages, &accounts, notes), accounts)
}

fn entries(
    packages: &[PackageInput],
    accounts: &Accounts,
    mut notes: Vec<Note>,
) -> super::Configuration {
    // Without base-passwd and with no account to add there is nothing to
    // write: the caller's own /etc/passwd (if any) stays as it is.
    let has_base = packages
        .iter()
        .flat_map(|p| &p.files)
        .any(|f| f.path == PASSWD_MASTER);
    if !has_base && accounts.users.len() == 1 && accounts.groups.len() == 2 {
        return super::Configuration {
            entries: Vec::new(),
            notes,
            overrides: accounts.overrides.clone(),
        };
    }
    for note in notes.iter_mut().filter(|n| n.package.is_empty()) {
        note.package = "(accounts)".into();
    }
    let shadow_gid = accounts
        .groups
        .iter()
        .find(|g| g.name == "shadow")
        .map_or(0, |g| g.gid);
    let mut entries = vec![
        Entry::file("/etc/passwd", 0o644, accounts.passwd().into_bytes()),
        Entry::file("/etc/group", 0o644, accounts.group().into_bytes()),
        Entry {
            gid: shadow_gid,
            ..Entry::file("/etc/shadow", 0o640, accounts.shadow().into_bytes())
        },
        Entry {
            gid: shadow_gid,
            ..Entry::file("/etc/gshadow", 0o640, accounts.gshadow().into_bytes())
        },
    ];
    for (home, uid, gid) in &accounts.homes {
        entries.push(Entry::dir(home, 0o755, *uid, *gid));
    }
    super::Configuration {
        entries,
        notes,
        overrides: accounts.overrides.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::package;
    use super::super::{DataKind, configure as configure_all};
    use super::*;

    /// postgresql-common 248+deb12u2's postinst, the account part.
    const POSTGRESQL_COMMON: &str = r#"#!/bin/sh
set -e
. /usr/share/debconf/confmodule
if [ "$1" = configure ]; then
    quiet="--quiet"
    [ "$DPKG_MAINTSCRIPT_PACKAGE" ] && quiet="--quiet" # RedHat doesn't have this
    # Make sure the administrative user exists
    if ! getent passwd postgres > /dev/null; then
        adduser --system $quiet --home /var/lib/postgresql --no-create-home \
            --shell /bin/bash --group --gecos "PostgreSQL administrator" postgres
    fi
    # if the user was created manually, make sure the group is there as well
    if ! getent group postgres > /dev/null; then
        addgroup --system $quiet postgres
    fi
    # make sure postgres is in the postgres group
    if ! id -Gn postgres | grep -qw postgres; then
        adduser $quiet postgres postgres
    fi
    if [ -z "$2" ]; then
        if getent group ssl-cert >/dev/null; then
            if ! id -Gn postgres 2> /dev/null | grep -qw ssl-cert; then
                adduser $quiet postgres ssl-cert
            fi
        fi
    fi
fi
"#;

    /// openssh-server 1:9.2p1-2+deb12u10's postinst, the account part.
    const OPENSSH_SERVER: &str = "setup_sshd_user() {\n\tif ! getent passwd sshd >/dev/null; then\n\t\tadduser --quiet --system --no-create-home --home /run/sshd --shell /usr/sbin/nologin sshd\n\tfi\n}\nsetup_sshd_user\n";

    /// redis-tools 5:7.0.15-1~deb12u10's postinst, the account part.
    const REDIS_TOOLS: &str = "#!/bin/sh\nset -eu\nUSER=\"redis\"\nif [ \"$1\" = \"configure\" ]\nthen\n\tadduser --system --home /var/lib/redis --quiet --group ${USER} || true\nfi\n";

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str =
        "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nshadow:x:42:\nssl-cert:x:101:\nnogroup:x:65534:\n";

    fn base_passwd() -> PackageInput {
        let mut p = package("base-passwd", "", &[]);
        for (path, text) in [(PASSWD_MASTER, PASSWD), (GROUP_MASTER, GROUP)] {
            p.files.push(DataFile {
                path: path.into(),
                kind: DataKind::File,
                contents: Some(text.as_bytes().to_vec()),
            });
        }
        p
    }

    fn file_text(config: &super::super::Configuration, path: &str) -> String {
        config
            .entries
            .iter()
            .find(|e| e.path == path)
            .and_then(|e| match &e.kind {
                super::super::EntryKind::File(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {path}"))
    }

    #[test]
    fn postgres_redis_and_sshd_get_deterministic_ids() {
        let packages = [
            base_passwd(),
            package(
                "postgresql-common",
                POSTGRESQL_COMMON,
                &["/var/lib/postgresql"],
            ),
            package("openssh-server", OPENSSH_SERVER, &[]),
            package("redis-tools", REDIS_TOOLS, &[]),
        ];
        let config = configure_all(&packages, &[]);
        let passwd = file_text(&config, "/etc/passwd");
        let pg = pick_id("postgres", &BTreeSet::from([0, 1, 33, 42, 65534]));
        assert!(passwd.starts_with(PASSWD), "{passwd}");
        let added: Vec<&str> = passwd.lines().skip(5).collect();
        assert_eq!(added.len(), 3);
        assert!(added.iter().any(|l| l.starts_with("postgres:x:")
            && l.ends_with(":PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash")));
        assert!(added.iter().any(
            |l| l.starts_with("sshd:x:") && l.ends_with(":65534::/run/sshd:/usr/sbin/nologin")
        ));
        assert!(added.iter().any(
            |l| l.starts_with("redis:x:") && l.ends_with("::/var/lib/redis:/usr/sbin/nologin")
        ));
        let group = file_text(&config, "/etc/group");
        assert!(group.contains("ssl-cert:x:101:postgres\n"), "{group}");
        let pg_line = added
            .iter()
            .find(|l| l.starts_with("postgres:"))
            .copied()
            .unwrap_or_default();
        let uid: u32 = pg_line
            .split(':')
            .nth(2)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        assert_eq!(Some(uid), pg);
        // postgres's own group takes its uid; a primary group lists no members.
        assert!(group.contains(&format!("postgres:x:{uid}:\n")), "{group}");
        // Homes: /var/lib/postgresql is --no-create-home, sshd too; redis's is created.
        let homes: Vec<&str> = config
            .entries
            .iter()
            .filter(|e| e.kind == super::super::EntryKind::Dir)
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(homes, ["/var/lib/redis"]);
        assert!(config.notes.is_empty(), "{:?}", config.notes);
        let shadow = file_text(&config, "/etc/shadow");
        assert!(shadow.contains("postgres:*::0:99999:7:::\n"));
        let entry = config
            .entries
            .iter()
            .find(|e| e.path == "/etc/shadow")
            .map(|e| (e.mode, e.gid));
        assert_eq!(entry, Some((0o640, 42)));
    }

    #[test]
    fn ids_do_not_depend_on_other_packages_or_their_order() {
        let uid_of = |packages: &[PackageInput], name: &str| {
            let passwd = file_text(&configure_all(packages, &[]), "/etc/passwd");
            passwd
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")))
                .map(str::to_string)
        };
        let pg = package("postgresql-common", POSTGRESQL_COMMON, &[]);
        let redis = package("redis-tools", REDIS_TOOLS, &[]);
        let alone = uid_of(&[base_passwd(), pg.clone()], "postgres");
        assert_eq!(
            uid_of(&[base_passwd(), redis.clone(), pg.clone()], "postgres"),
            alone
        );
        assert_eq!(uid_of(&[base_passwd(), pg, redis], "postgres"), alone);
    }

    #[test]
    fn collisions_probe_upward_deterministically() {
        let first = pick_id("postgres", &BTreeSet::new()).unwrap_or(0);
        let next = pick_id("postgres", &BTreeSet::from([first]));
        let expected = if first == LAST_SYSTEM_ID {
            FIRST_SYSTEM_ID
        } else {
            first + 1
        };
        assert_eq!(next, Some(expected));
        assert_eq!(pick_id("postgres", &BTreeSet::new()), Some(first));
        let all: BTreeSet<u32> = (FIRST_SYSTEM_ID..=LAST_SYSTEM_ID).collect();
        assert_eq!(pick_id("x", &all), None);
    }

    #[test]
    fn useradd_groupadd_and_explicit_ids() {
        let script = "groupadd -r -g 990 builders\nuseradd -r -u 995 -g builders -d /srv/build -m -s /bin/bash builder\nuseradd --system svc\naddgroup --system --gid 991 fixed\nadduser --system --uid 996 --ingroup fixed worker\n";
        let config = configure_all(&[base_passwd(), package("p", script, &[])], &[]);
        let passwd = file_text(&config, "/etc/passwd");
        assert!(
            passwd.contains("builder:x:995:990::/srv/build:/bin/bash\n"),
            "{passwd}"
        );
        assert!(
            passwd.contains("worker:x:996:991::/nonexistent:/usr/sbin/nologin\n"),
            "{passwd}"
        );
        let group = file_text(&config, "/etc/group");
        assert!(
            group.contains("builders:x:990:\n") && group.contains("fixed:x:991:\n"),
            "{group}"
        );
        let svc = passwd
            .lines()
            .find(|l| l.starts_with("svc:"))
            .unwrap_or_default();
        let f: Vec<&str> = svc.split(':').collect();
        assert_eq!(&f[5..], ["/home/svc", "/bin/sh"]);
        assert!(group.contains(&format!("svc:x:{}:\n", f[3])));
        assert!(
            config
                .entries
                .iter()
                .any(|e| e.path == "/srv/build" && e.uid == 995 && e.gid == 990)
        );
    }

    /// tcpdump 4.99.3-1's postinst: `addgroup`, then an `adduser` continued
    /// over lines indented with tabs.
    const TCPDUMP: &str = "#!/bin/sh -e\n\nif ! getent group tcpdump >/dev/null 2>&1; then\n    addgroup --system --quiet tcpdump\nfi\nif ! getent passwd tcpdump >/dev/null 2>&1; then\n    adduser --system --quiet --ingroup tcpdump\t\t\\\n\t    --no-create-home --home /nonexistent\t\\\n\t    tcpdump\nfi\n";

    #[test]
    fn tcpdump_user_and_group_from_a_continued_adduser() {
        let config = configure_all(&[base_passwd(), package("tcpdump", TCPDUMP, &[])], &[]);
        let passwd = file_text(&config, "/etc/passwd");
        let group = file_text(&config, "/etc/group");
        let gid = group
            .lines()
            .find_map(|l| l.strip_prefix("tcpdump:x:"))
            .map(|rest| rest.trim_end_matches(':').to_owned())
            .unwrap_or_else(|| panic!("no tcpdump group:\n{group}"));
        let user = passwd
            .lines()
            .find(|l| l.starts_with("tcpdump:"))
            .unwrap_or_else(|| panic!("no tcpdump user:\n{passwd}"));
        let fields: Vec<&str> = user.split(':').collect();
        assert_eq!(fields[3], gid, "{user}");
        assert_eq!(&fields[5..], ["/nonexistent", "/usr/sbin/nologin"]);
    }

    #[test]
    fn sysusers_files_named_by_the_postinst_are_applied() {
        // systemd-timesyncd 252's postinst and sysusers.d file, and polkitd's.
        let mut timesyncd = package(
            "systemd-timesyncd",
            "if [ -z \"${DPKG_ROOT:-}\" ] && [ -x \"/usr/bin/systemd-sysusers\" ]; then\n   systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} systemd-timesync.conf\nfi\n",
            &[],
        );
        timesyncd.files.push(DataFile {
            path: "/usr/lib/sysusers.d/systemd-timesync.conf".into(),
            kind: DataKind::File,
            contents: Some(
                b"#  SPDX\nu systemd-timesync  - \"systemd Time Synchronization\"\n".to_vec(),
            ),
        });
        let mut polkitd = package("polkitd", "systemd-sysusers polkitd.conf\n", &[]);
        polkitd.files.push(DataFile {
            path: "/usr/lib/sysusers.d/polkitd.conf".into(),
            kind: DataKind::File,
            contents: Some(
                b"u polkitd - \"polkit\" /nonexistent\nm polkitd staff\nr - 100-200\n".to_vec(),
            ),
        });
        let config = configure_all(&[base_passwd(), timesyncd, polkitd], &[]);
        let passwd = file_text(&config, "/etc/passwd");
        let line = passwd
            .lines()
            .find(|l| l.starts_with("systemd-timesync:"))
            .unwrap_or_default();
        assert!(
            line.ends_with(":systemd Time Synchronization:/:/usr/sbin/nologin"),
            "{line}"
        );
        let uid = line.split(':').nth(2).unwrap_or_default();
        assert!(file_text(&config, "/etc/group").contains(&format!("systemd-timesync:x:{uid}:\n")));
        assert!(passwd.contains(":polkit:/nonexistent:/usr/sbin/nologin\n"));
        // The `r` line is named; `m` needs the group to exist (base has no staff here).
        assert_eq!(config.notes.len(), 1, "{:?}", config.notes);
        assert!(
            config.notes[0]
                .message
                .ends_with("sysusers.d lines not applied: r - 100-200")
        );
    }

    #[test]
    fn statoverrides_resolve_names_after_accounts_exist() {
        // redis-tools 5:7.0.15-1~deb12u10: the user, then its config's owner.
        let script = format!(
            "{REDIS_TOOLS}USER=\"redis\"\nGROUP=\"$USER\"\nCONFFILE=\"/etc/redis/redis.conf\"\nif ! dpkg-statoverride --list ${{CONFFILE}} >/dev/null 2>&1\nthen\n\tdpkg-statoverride --update --add ${{USER}} ${{GROUP}} 640 ${{CONFFILE}}\nfi\n"
        );
        let redis = package("redis-tools", &script, &["/etc/redis/redis.conf"]);
        let dbus = package(
            "dbus",
            "dpkg-statoverride --update --add root messagebus 4754 /usr/lib/dbus-1.0/dbus-daemon-launch-helper\ndpkg-statoverride --add '#0' '#0' 0755 /missing\n",
            &["/usr/lib/dbus-1.0/dbus-daemon-launch-helper"],
        );
        let config = configure_all(&[base_passwd(), redis, dbus], &[]);
        let passwd = file_text(&config, "/etc/passwd");
        let redis_line = passwd
            .lines()
            .find(|l| l.starts_with("redis:"))
            .unwrap_or_default();
        let ids: Vec<u32> = redis_line
            .split(':')
            .skip(2)
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect();
        assert_eq!(
            config.overrides,
            [super::super::StatOverride {
                path: "/etc/redis/redis.conf".into(),
                uid: ids[0],
                gid: ids[1],
                mode: 0o640,
            }]
        );
        // messagebus does not exist here: named, not guessed.
        assert_eq!(config.notes.len(), 1, "{:?}", config.notes);
        assert!(config.notes[0].message.contains("root messagebus 4754"));
    }

    #[test]
    fn non_system_accounts_are_named_not_created() {
        let config = configure_all(&[base_passwd(), package("p", "adduser alice\n", &[])], &[]);
        assert!(!file_text(&config, "/etc/passwd").contains("alice"));
        assert_eq!(
            config.notes[0].message,
            "postinst line 1: adduser alice not applied: only --system users are applied"
        );
    }

    #[test]
    fn without_base_passwd_there_is_still_root() {
        let config = configure_all(&[package("p", "adduser --system --group svc\n", &[])], &[]);
        let passwd = file_text(&config, "/etc/passwd");
        assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"));
        assert!(file_text(&config, "/etc/group").starts_with("root:x:0:\nnogroup:x:65534:\n"));
    }
}
