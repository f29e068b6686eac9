//! The configuration layer: what maintainer scripts would have done, applied
//! from [`crate::configure`] as one layer above the package layers (so those
//! keep the digests they share across images) and below cairn's own.
//!
//! It holds the alternatives links and state, the CA store, the accounts of
//! every package plus the image's own user (`/etc/passwd`, `group`, `shadow`,
//! `gshadow`), `/var/lib/dpkg/status` and `status.d/`. Its inputs are the locked
//! packages in order and the image's user, so it is cached under a key of
//! those: a warm build reads no `.deb` for it. On a miss it works from each
//! package's facts (control files, data listing, a few files' bytes: see
//! [`FACTS`]), which the layer pass of a cold build stored as it read the
//! `.deb`, so a cold build reads each `.deb` once; the work itself is a pure
//! function ([`crate::configure::configure`]).

use std::path::PathBuf;

use cairn_debian::ControlFiles;
use cairn_debian::deb::facts::{DebFacts, FactsRequest, read_facts};
use cairn_oci::{BuiltLayer, CustomEntry, FileContent, LayerInput};
use cairn_store::{Bucket, Store, sha256_hex};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::configure::{self, DataFile, EntryKind, PackageInput};
use crate::users::Account;
use crate::{BuildPlan, Result};

/// Bumped whenever the configuration of the same packages would change.
pub const CONFIGURE_FORMAT: &str = "cairn-configure-v11";

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

/// Builds (or reuses) the configuration layer of `plan`'s packages, plus
/// `local` files the image adds that configuration reads (private CA
/// certificates from `copy-to-root`, see [`crate::local_files`]).
pub fn build_configured_layer(
    store: &Store,
    plan: &BuildPlan,
    inputs: &[LayerInput],
    local: &[DataFile],
) -> Result<Configured> {
    let key = cache_key(plan, inputs, local);
    let record = store
        .bucket(Bucket::Layers)?
        .join(format!("configured-{key}.json"));
    if let Ok(text) = fs_err::read_to_string(&record)
        && let Ok(mut hit) = serde_json::from_str::<Configured>(&text)
    {
        // Held before the check, so `cache gc` cannot evict it before the
        // archive reads it.
        hit.layer.blob_use = cairn_oci::BlobUse::hold(store, &hit.layer.digest)?;
        // By size, as layer records are: the record is not synced on its own.
        let size = fs_err::metadata(&hit.layer.blob_path).map(|m| m.len());
        if size.is_ok_and(|size| size == hit.layer.size) {
            hit.layer.from_cache = true;
            return Ok(hit);
        }
    }
    let facts = package_facts(store, inputs)?;
    let mut packages: Vec<PackageInput> = inputs
        .iter()
        .zip(&facts)
        .map(|(input, facts)| package_from_facts(facts, &input.name, &input.version))
        .collect();
    let debs: Vec<&std::path::Path> = inputs.iter().map(|i| i.deb_path.as_path()).collect();
    add_sourced_files(&mut packages, &debs)?;
    let configuration = configure::configure(&packages, local);
    let overrides = configuration.overrides.clone();
    let (mut entries, account) = layer_entries(plan, &packages, configuration);
    apply_stat_overrides(&mut entries, &overrides, inputs, &packages)?;
    // status.d/ (the distroless layout scanners read) depends on the
    // packages alone too, so it lives here, cached, not in the top layer.
    let controls: Vec<(&str, &ControlFiles)> = inputs
        .iter()
        .zip(&facts)
        .map(|(input, facts)| (input.name.as_str(), &facts.control))
        .collect();
    entries.extend(crate::top_layer::dpkg_entries(&controls));
    let mut layer =
        cairn_oci::build_custom_layer(store, entries, &crate::top_layer::options(plan))?;
    layer.created_by = "cairn: package configuration".to_string();
    let configured = Configured { layer, account };
    let json = serde_json::to_vec(&configured).map_err(|source| crate::ImageError::Json {
        what: "configuration record",
        source,
    })?;
    // Not fsynced (that was 11 ms at the end of every cold build): a record
    // lost in a crash is a miss, one whose blob was lost fails the size
    // check above, and a damaged blob fails the archive's digest check.
    let mut file = cairn_store::AtomicFile::create(&record)?;
    std::io::Write::write_all(&mut file, &json)?;
    file.commit_unsynced()?;
    Ok(configured)
}

fn cache_key(plan: &BuildPlan, inputs: &[LayerInput], local: &[DataFile]) -> String {
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
    text.push_str(&crate::local_files::key_text(local));
    sha256_hex(text.as_bytes())
}

/// What configuration keeps of each `.deb` as the layer pass reads it
/// ([`crate::build`] hands this to cairn-oci): the entries, and the bytes of
/// those [`configure::needs_contents`] names. Its version is
/// [`CONFIGURE_FORMAT`], bumped whenever `needs_contents` changes.
pub const FACTS: FactsRequest = FactsRequest {
    wants: wants_contents,
    wants_from_control: configure::sourced_by_own_scripts,
    version: CONFIGURE_FORMAT,
};

fn wants_contents(path: &str) -> bool {
    configure::needs_contents(&format!("/{path}"))
}

/// The facts of every package, in lock order: stored by the layer pass of
/// this build (a cold build reads each `.deb` once), or read now from the
/// `.deb`, checked against its sha256, when its layer came from the cache.
pub fn package_facts(store: &Store, inputs: &[LayerInput]) -> Result<Vec<DebFacts>> {
    inputs
        .par_iter()
        .map(|input| read_facts(store, &input.deb_path, &input.deb_sha256, &FACTS))
        .collect()
}

/// What the maintainer scripts of each package do that cairn does not
/// apply ([`configure::effects::script_notes`]), in the order of `inputs`.
/// Reads only each `.deb`'s control member (a few KB), in parallel: this
/// runs on `cairn install` for every package new to the lock.
pub fn script_notes(inputs: &[LayerInput]) -> Result<Vec<configure::Note>> {
    let per_package: Vec<Vec<configure::Note>> = inputs
        .par_iter()
        .map(|input| {
            let control = cairn_debian::read_control(&input.deb_path)?;
            let package = PackageInput {
                name: input.name.clone(),
                version: input.version.clone(),
                ..PackageInput::default()
            }
            .with_control_files(&control);
            Ok(configure::effects::script_notes(&package))
        })
        .collect::<Result<_>>()?;
    Ok(per_package.into_iter().flatten().collect())
}

/// Reads into `packages` the bytes of the files their maintainer scripts
/// source ([`configure::sourced_paths`]) that the facts lack, from the
/// `.deb` (`debs`, in the same order) that ships each. Facts keep a helper a
/// package sources from itself ([`configure::sourced_by_own_scripts`]);
/// one sourced from another package (postgresql-client-15 from
/// postgresql-common) is known only once every package's scripts are, and
/// is read here. Rounds repeat while a helper read names another (at most 4).
pub fn add_sourced_files(packages: &mut [PackageInput], debs: &[&std::path::Path]) -> Result<()> {
    /// A helper larger than this is not a shell library.
    const MAX_HELPER: u64 = 1 << 20;
    for _ in 0..4 {
        let wanted: std::collections::BTreeSet<String> = configure::sourced_paths(packages)
            .iter()
            .map(|p| configure::merged_usr(p))
            .collect();
        let mut missing: Vec<(usize, Vec<String>)> = Vec::new();
        for (k, package) in packages.iter().enumerate() {
            let paths: Vec<String> = package
                .files
                .iter()
                .filter(|f| f.contents.is_none() && f.kind == configure::DataKind::File)
                .filter(|f| wanted.contains(&f.path))
                .map(|f| f.path.clone())
                .collect();
            if !paths.is_empty() {
                missing.push((k, paths));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        for (k, paths) in missing {
            let Some(deb) = debs.get(k) else { continue };
            let mut found: Vec<(String, Vec<u8>)> = Vec::new();
            cairn_debian::visit_data(deb, |entry, reader| {
                let path = format!("/{}", entry.path.trim_start_matches('/'));
                if paths.contains(&path) {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(
                        &mut std::io::Read::take(reader, MAX_HELPER),
                        &mut bytes,
                    )
                    .map_err(|e| cairn_debian::deb::read_error(deb, e))?;
                    found.push((path, bytes));
                }
                Ok::<(), cairn_debian::DebError>(())
            })?;
            for file in &mut packages[k].files {
                if let Some((_, bytes)) = found.iter().find(|(p, _)| *p == file.path) {
                    file.contents = Some(bytes.clone());
                } else if paths.contains(&file.path) {
                    // Listed but not read (a hardlink): never asked for again.
                    file.contents = Some(Vec::new());
                }
            }
        }
    }
    Ok(())
}

/// One package as configuration sees it, from its facts.
pub fn package_from_facts(facts: &DebFacts, name: &str, version: &str) -> PackageInput {
    let architecture = control_architecture(&facts.control.control);
    let files = facts
        .entries
        .iter()
        .map(|entry| DataFile::from_deb_entry(entry, facts.contents.get(&entry.path).cloned()))
        .collect();
    PackageInput {
        name: name.to_string(),
        version: version.to_string(),
        architecture,
        files,
        ..PackageInput::default()
    }
    .with_control_files(&facts.control)
}

fn control_architecture(control: &str) -> String {
    control
        .lines()
        .find_map(|l| l.strip_prefix("Architecture:"))
        .map(|a| a.trim().to_string())
        .unwrap_or_default()
}

/// One package as configuration sees it, from its `.deb`.
pub fn package_input(deb: &std::path::Path, name: &str, version: &str) -> Result<PackageInput> {
    let control = cairn_debian::read_control(deb)?;
    let architecture = control_architecture(&control.control);
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

/// Applies `dpkg-statoverride --add` results: a path this layer already
/// holds takes the owner and mode; a package's own directory is re-emitted
/// with them; a package's own file is re-emitted with its bytes, read from
/// the `.deb` (checked against the lock's sha256, like every read). The
/// package layers keep their shared digests; the override lands above them,
/// as the file would be after dpkg ran the postinst. Symlinks have no mode
/// to override and are left alone.
fn apply_stat_overrides(
    entries: &mut Vec<CustomEntry>,
    overrides: &[configure::StatOverride],
    inputs: &[LayerInput],
    packages: &[PackageInput],
) -> Result<()> {
    use crate::configure::DataKind;
    use std::collections::BTreeMap;
    // package index -> (relative path -> override) of files to re-read.
    let mut files: BTreeMap<usize, BTreeMap<String, &configure::StatOverride>> = BTreeMap::new();
    for o in overrides {
        let rel = o.path.trim_start_matches('/');
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.path.trim_start_matches('/') == rel)
        {
            *entry = entry.clone().owned_by(o.uid, o.gid);
            entry.mode = o.mode;
            continue;
        }
        let owner = packages.iter().enumerate().find_map(|(i, p)| {
            p.files
                .iter()
                .find(|f| f.path == o.path)
                .map(|f| (i, &f.kind))
        });
        match owner {
            Some((_, DataKind::Dir)) => {
                entries.push(CustomEntry::dir(rel, o.mode).owned_by(o.uid, o.gid));
            }
            Some((i, DataKind::File)) => {
                files.entry(i).or_default().insert(rel.to_string(), o);
            }
            Some((_, DataKind::Symlink { .. })) | None => {}
        }
    }
    for (i, wanted) in files {
        let input = &inputs[i];
        let mut found = Vec::new();
        cairn_debian::deb::read_deb_verified(
            &input.deb_path,
            &input.deb_sha256,
            |entry, reader| {
                let path = entry.path.trim_start_matches('/');
                if let Some(o) = wanted.get(path) {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(reader, &mut bytes)
                        .map_err(|e| cairn_debian::deb::read_error(&input.deb_path, e))?;
                    found.push(
                        CustomEntry::file(path, o.mode, FileContent::Bytes(bytes))
                            .owned_by(o.uid, o.gid),
                    );
                }
                Ok::<(), crate::ImageError>(())
            },
        )?;
        entries.extend(found);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_debian::deb::fixtures::{deb_from_files, sample_deb};

    /// A cold build reads each `.deb` once: the layer pass leaves the facts
    /// configuration needs, which then equal what reading the `.deb` gives,
    /// with the `.deb` gone.
    #[test]
    fn the_layer_pass_leaves_what_configuration_needs() {
        let (tmp, deb) = sample_deb("xz");
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let input = LayerInput {
            name: "sample".into(),
            version: "1.0".into(),
            deb_path: deb.clone(),
            deb_sha256: cairn_store::sha256_file(&deb).unwrap(),
        };
        let direct = package_input(&deb, "sample", "1.0").unwrap();
        let layers = [vec![input.clone()]];
        let opts = cairn_oci::LayerOptions::default();
        cairn_oci::build_layers_with_facts(&store, &layers, &opts, Some(&FACTS), |_, _| {})
            .unwrap();
        fs_err::remove_file(&deb).unwrap();
        let facts = package_facts(&store, &[input]).unwrap();
        let from_facts = package_from_facts(&facts[0], "sample", "1.0");
        assert_eq!(from_facts, direct);
        assert!(from_facts.postinst.is_some());
        assert!(from_facts.files.iter().any(|f| f.path == "/usr/bin/tool"));
    }

    /// A postinst that sources another package's helper (as
    /// postgresql-client-15 sources postgresql-common's): the helper's bytes
    /// are read from its `.deb`, and the alternative it registers is applied.
    #[test]
    fn files_sourced_from_another_package_are_read_from_its_deb() {
        let tmp = tempfile::tempdir().unwrap();
        let helper = deb_from_files(
            tmp.path(),
            "helper",
            &[(
                "usr/share/helper/functions",
                "add_alt () {\n    update-alternatives --install /usr/bin/$1 $1 $2 50\n}\n",
            )],
        );
        let user = deb_from_files(
            tmp.path(),
            "user",
            &[
                (
                    "DEBIAN/postinst",
                    "#!/bin/sh\nset -e\n. /usr/share/helper/functions\nadd_alt frob /usr/bin/frob-real\n",
                ),
                ("usr/bin/frob-real", "#!/bin/sh\n"),
            ],
        );
        let mut packages = vec![
            package_input(&helper, "helper", "1.0").unwrap(),
            package_input(&user, "user", "1.0").unwrap(),
        ];
        let link = |packages: &[PackageInput]| {
            configure::configure(packages, &[])
                .entries
                .into_iter()
                .find(|e| e.path == "/etc/alternatives/frob")
                .map(|e| e.kind)
        };
        assert_eq!(link(&packages), None, "not guessed without the helper");
        add_sourced_files(&mut packages, &[helper.as_path(), user.as_path()]).unwrap();
        assert_eq!(
            link(&packages),
            Some(EntryKind::Symlink("/usr/bin/frob-real".into()))
        );
    }

    /// `dpkg-statoverride --add` results land in the layer: a package's file
    /// re-emitted with its bytes (read through the sha256 check), its
    /// directory re-emitted, an entry already here changed in place.
    #[test]
    fn stat_overrides_change_owner_and_mode_above_the_package_layer() {
        let (_tmp, deb) = sample_deb("xz");
        let input = LayerInput {
            name: "sample".into(),
            version: "1.0".into(),
            deb_path: deb.clone(),
            deb_sha256: cairn_store::sha256_file(&deb).unwrap(),
        };
        let package = package_input(&deb, "sample", "1.0").unwrap();
        let so = |path: &str, uid, gid, mode| configure::StatOverride {
            path: path.into(),
            uid,
            gid,
            mode,
        };
        let overrides = [
            so("/usr/bin/suid", 0, 42, 0o2755),
            so("/usr/share/doc/sample", 7, 7, 0o750),
            so("/etc/ssl/private", 0, 9, 0o710),
            so("/not/shipped", 1, 1, 0o600),
        ];
        let mut entries = vec![CustomEntry::dir("etc/ssl/private", 0o700)];
        apply_stat_overrides(
            &mut entries,
            &overrides,
            std::slice::from_ref(&input),
            std::slice::from_ref(&package),
        )
        .unwrap();
        let find = |p: &str| {
            entries
                .iter()
                .find(|e| e.path.trim_start_matches('/') == p)
                .cloned()
        };
        let suid = find("usr/bin/suid").expect("file re-emitted");
        assert_eq!((suid.uid, suid.gid, suid.mode), (0, 42, 0o2755));
        assert_eq!(
            suid.kind,
            cairn_oci::CustomKind::File(FileContent::Bytes(b"suid".to_vec()))
        );
        let doc = find("usr/share/doc/sample").expect("dir re-emitted");
        assert_eq!(
            (doc.uid, doc.gid, doc.mode, doc.kind),
            (7, 7, 0o750, cairn_oci::CustomKind::Dir)
        );
        let private = find("etc/ssl/private").unwrap();
        assert_eq!((private.gid, private.mode), (9, 0o710));
        assert!(find("not/shipped").is_none());
        assert_eq!(entries.len(), 3);

        // A substituted .deb is refused, not read.
        let wrong = LayerInput {
            deb_sha256: "0".repeat(64),
            ..input
        };
        let mut entries = Vec::new();
        let err =
            apply_stat_overrides(&mut entries, &overrides[..1], &[wrong], &[package]).unwrap_err();
        assert!(
            err.to_string().contains("sha256") || err.to_string().contains("digest"),
            "{err}"
        );
    }
}
