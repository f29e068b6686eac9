//! The configuration layer: what maintainer scripts would have done, applied
//! from [`crate::configure`] as one layer above the package layers (so those
//! keep the digests they share across images) and below cairn's own.
//!
//! It holds the alternatives links and state, the CA store, the accounts of
//! every package plus the image's own user (`/etc/passwd`, `group`, `shadow`,
//! `gshadow`), `/var/lib/dpkg/status` and `status.d/`. Its inputs are the locked
//! packages in order and the image's user, so it is cached under a key of
//! those: a warm build reads no `.deb` for it. On a miss every package's
//! control files and data listing are read once (in parallel); the work itself
//! is a pure function ([`crate::configure::configure`]).

use std::path::PathBuf;

use cairn_oci::{BuiltLayer, CustomEntry, FileContent, LayerInput};
use cairn_store::{Bucket, Store, sha256_hex, write_atomic};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::configure::{self, DataFile, EntryKind, PackageInput};
use crate::users::Account;
use crate::{BuildPlan, Result};

/// Bumped whenever the configuration of the same packages would change.
pub const CONFIGURE_FORMAT: &str = "cairn-configure-v3";

/// The configuration layer and the image user as its accounts resolved it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configured {
    pub layer: BuiltLayer,
    /// The `[containerize.config] user`, with the ids the image gives it
    /// (a package's system user keeps the package's ids: `user = "postgres"`).
    pub account: Option<AccountIds>,
}

/// uid and gid of the image's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountIds {
    pub uid: u32,
    pub gid: u32,
}

/// Builds (or reuses) the configuration layer of `plan`'s packages.
pub fn build_configured_layer(
    store: &Store,
    plan: &BuildPlan,
    inputs: &[LayerInput],
) -> Result<Configured> {
    let key = cache_key(plan, inputs);
    let record = store
        .bucket(Bucket::Layers)?
        .join(format!("configured-{key}.json"));
    if let Ok(text) = fs_err::read_to_string(&record)
        && let Ok(hit) = serde_json::from_str::<Configured>(&text)
        && hit.layer.blob_path.is_file()
    {
        let mut hit = hit;
        hit.layer.from_cache = true;
        return Ok(hit);
    }
    let packages = package_inputs(inputs)?;
    let configuration = configure::configure(&packages, &[]);
    let (mut entries, account) = layer_entries(plan, &packages, configuration);
    // status.d/ (the distroless layout scanners read) depends on the
    // packages alone too, so it lives here, cached, not in the top layer.
    entries.extend(crate::top_layer::dpkg_entries(inputs)?);
    let mut layer =
        cairn_oci::build_custom_layer(store, entries, &crate::top_layer::options(plan))?;
    layer.created_by = "cairn: package configuration".to_string();
    let configured = Configured { layer, account };
    let json = serde_json::to_vec(&configured).map_err(|source| crate::ImageError::Json {
        what: "configuration record",
        source,
    })?;
    write_atomic(&record, |f| std::io::Write::write_all(f, &json))?;
    Ok(configured)
}

fn cache_key(plan: &BuildPlan, inputs: &[LayerInput]) -> String {
    let mut text = format!(
        "{CONFIGURE_FORMAT}\n{}\n{}\n",
        plan.epoch,
        cairn_oci::layer::compressor_id(plan.compression)
    );
    for input in inputs {
        text.push_str(&format!("{} {}\n", input.name, input.deb_sha256));
    }
    if let Some(user) = &plan.manifest.containerize.config.user {
        text.push_str(&format!("user {user}\n"));
    }
    sha256_hex(text.as_bytes())
}

/// Control files and the data listing of every package, in lock order.
pub fn package_inputs(inputs: &[LayerInput]) -> Result<Vec<PackageInput>> {
    inputs
        .par_iter()
        .map(|input| package_input(&input.deb_path, &input.name, &input.version))
        .collect()
}

/// One package as configuration sees it, from its `.deb`.
pub fn package_input(deb: &std::path::Path, name: &str, version: &str) -> Result<PackageInput> {
    let control = cairn_debian::read_control(deb)?;
    let architecture = control
        .control
        .lines()
        .find_map(|l| l.strip_prefix("Architecture:"))
        .map(|a| a.trim().to_string())
        .unwrap_or_default();
    let mut files = Vec::new();
    cairn_debian::visit_data(deb, |entry, reader| {
        let path = format!("/{}", entry.path.trim_start_matches('/'));
        let contents = if configure::needs_contents(&path) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(reader, &mut bytes)
                .map_err(|e| cairn_debian::deb::read_error(deb, e))?;
            Some(bytes)
        } else {
            None
        };
        files.push(DataFile::from_deb_entry(entry, contents));
        Ok::<(), cairn_debian::DebError>(())
    })?;
    Ok(PackageInput {
        name: name.to_string(),
        version: version.to_string(),
        architecture,
        files,
        ..PackageInput::default()
    }
    .with_control_files(&control))
}

/// The layer's entries, with the image's user merged into the accounts.
fn layer_entries(
    plan: &BuildPlan,
    packages: &[PackageInput],
    configuration: configure::Configuration,
) -> (Vec<CustomEntry>, Option<AccountIds>) {
    let mut passwd = None;
    let mut group = None;
    let mut entries = Vec::new();
    for entry in configuration.entries {
        let path = entry.path.trim_start_matches('/').to_string();
        match (path.as_str(), entry.kind) {
            ("etc/passwd", EntryKind::File(bytes)) => passwd = Some(bytes),
            ("etc/group", EntryKind::File(bytes)) => group = Some(bytes),
            (_, EntryKind::Dir) => {
                entries.push(CustomEntry::dir(path, entry.mode).owned_by(entry.uid, entry.gid))
            }
            (_, EntryKind::File(bytes)) => entries.push(
                CustomEntry::file(path, entry.mode, FileContent::Bytes(bytes))
                    .owned_by(entry.uid, entry.gid),
            ),
            (_, EntryKind::Symlink(target)) => entries.push(CustomEntry::symlink(path, target)),
        }
    }
    let mut passwd = String::from_utf8_lossy(&passwd.unwrap_or_else(|| {
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n".to_vec()
    }))
    .into_owned();
    let mut group = String::from_utf8_lossy(
        &group.unwrap_or_else(|| b"root:x:0:\nnogroup:x:65534:\n".to_vec()),
    )
    .into_owned();
    let account = plan.manifest.containerize.config.user.as_ref().map(|spec| {
        merge_user(
            &crate::users::account_for(spec),
            &mut passwd,
            &mut group,
            &mut entries,
        )
    });
    entries.push(CustomEntry::file(
        "etc/passwd",
        0o644,
        FileContent::Bytes(passwd.into_bytes()),
    ));
    entries.push(CustomEntry::file(
        "etc/group",
        0o644,
        FileContent::Bytes(group.into_bytes()),
    ));
    entries.push(CustomEntry::file(
        "var/lib/dpkg/status",
        0o644,
        FileContent::Bytes(configure::status::dpkg_status(packages)),
    ));
    (entries, account)
}

/// Adds the image's user unless a package already created it (then its ids
/// win, so `user = "postgres"` runs as the package's postgres).
fn merge_user(
    wanted: &Account,
    passwd: &mut String,
    group: &mut String,
    entries: &mut Vec<CustomEntry>,
) -> AccountIds {
    let existing = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let uid: u32 = fields.get(2)?.parse().ok()?;
        let gid: u32 = fields.get(3)?.parse().ok()?;
        (fields[0] == wanted.name || (uid == wanted.uid && wanted.uid != 0)).then_some((uid, gid))
    });
    if let Some((uid, gid)) = existing {
        return AccountIds { uid, gid };
    }
    if let Some(line) = wanted.passwd_line() {
        passwd.push_str(&line);
    }
    let group_known = group.lines().any(|line| {
        line.split(':').next() == Some(wanted.group.as_str())
            || line.split(':').nth(2) == Some(wanted.gid.to_string().as_str())
    });
    if !group_known && let Some(line) = wanted.group_line() {
        group.push_str(&line);
    }
    if wanted.uid != 0 {
        entries.push(
            CustomEntry::dir(wanted.home.trim_start_matches('/'), 0o755)
                .owned_by(wanted.uid, wanted.gid),
        );
    }
    AccountIds {
        uid: wanted.uid,
        gid: wanted.gid,
    }
}

/// Where the configuration record of a layer key lives (for `cache verify`).
pub fn record_path(store: &Store, key: &str) -> Result<PathBuf> {
    Ok(store
        .bucket(Bucket::Layers)?
        .join(format!("configured-{key}.json")))
}
