//! Host activation without root: a rootfs hardlinked from the store, entered
//! through unprivileged user + mount namespaces.
//!
//! [`assemble_rootfs`] unpacks each `.deb` once (`unpacked-v1/<sha256>`) and
//! builds `rootfs-v1/<lock hash>` by hardlinking those trees (never copying),
//! so a rootfs costs only directory entries. [`run_in_rootfs`] enters it.
//!
//! The syscalls sit behind one seam, youki-style: [`mount_plan`] is a pure
//! function from inputs to a list of [`MountOp`]s (unit-tested), and
//! `apply_op` performs one op (tested end to end). The rootfs is remounted
//! read-only inside the namespace: its files are hardlinks into the shared
//! store, so a write through them would corrupt every environment using them.
//! `/tmp`, `$HOME` and the working directory stay writable.
//!
//! Packages are untrusted: every path operation on a rootfs goes through
//! [`Confined`], which resolves paths as if the rootfs were `/`, so a package
//! symlink (`tmp -> ../../../../tmp/victim`, `etc -> /etc`) can never make
//! cairn create, chmod or mount anything on the host. The directories cairn
//! itself writes to ([`SKELETON_DIRS`]) must not be symlinks at all: a package
//! shipping one is refused by name at assembly.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use cairn_store::{Bucket, Store};
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::activate::{self, current_env, exec_command, exec_interactive};
use crate::confined::Confined;
use crate::{Activation, Mode, Result, RuntimeError};

/// Directories every rootfs has, as mountpoints or for tools that expect them.
const SKELETON_DIRS: &[&str] = &[
    "proc",
    "sys",
    "dev",
    "tmp",
    "home",
    "root",
    "run",
    "etc",
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "var/tmp",
    "opt/cairn/env",
    "opt/cairn/bin",
];
/// Merged-/usr links, as in Debian since bookworm.
const MERGED_USR: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
];
/// `/var/run` and `/var/lock`, which Debian's base-files makes links into
/// `/run` from its postinst (its `.deb` carries empty directories): sockets such as
/// `/var/run/docker.sock` must resolve into the bound `/run`.
const RUN_LINKS: &[(&str, &str)] = &[("var/run", "/run"), ("var/lock", "/run/lock")];
/// Host files bound over placeholders so names, users and DNS resolve as on the host.
const HOST_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/passwd",
    "/etc/group",
];

/// An extra bind mount into the rootfs, e.g. the env directory onto
/// `/opt/cairn/env` or the cairn binary onto `/opt/cairn/bin/cairn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path (file or directory).
    pub source: PathBuf,
    /// Absolute path inside the rootfs.
    pub target: PathBuf,
}

/// Unpacks every `.deb` (sha256, path) into the store once, then builds (or
/// reuses) the rootfs for `lock_hash` out of hardlinks. Returns its path.
pub fn assemble_rootfs(
    store: &Store,
    debs: &[(String, PathBuf)],
    extra: &[RootfsEntry],
    lock_hash: &str,
) -> Result<PathBuf> {
    let bucket = store.bucket(Bucket::Rootfs)?;
    let rootfs = bucket.join(lock_hash);
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    // The trees stay in use (gc keeps them) until they are linked in.
    let (trees, _in_use): (Vec<PathBuf>, Vec<_>) = debs
        .iter()
        .map(|(sha, deb)| unpacked_tree(store, sha, deb))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let _lock = store.lock_entry(Bucket::Rootfs, lock_hash)?;
    if rootfs.is_dir() {
        return Ok(rootfs);
    }
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&bucket)?;
    for tree in &trees {
        link_tree(tree, staging.path())?;
    }
    refuse_reserved_symlinks(staging.path(), &trees, debs)?;
    add_extra(staging.path(), extra)?;
    add_skeleton(staging.path())?;
    fs_err::rename(staging.keep(), &rootfs)?;
    tracing::debug!(
        "assembled {} from {} packages",
        rootfs.display(),
        trees.len()
    );
    Ok(rootfs)
}

/// The rootfs already assembled for `lock_hash`, if any (so a caller can
/// skip computing what [`assemble_rootfs`] would add).
pub fn assembled_rootfs(store: &Store, lock_hash: &str) -> Result<Option<PathBuf>> {
    let rootfs = store.bucket(Bucket::Rootfs)?.join(lock_hash);
    Ok(rootfs.is_dir().then_some(rootfs))
}

/// A file the caller adds on top of the packages (package configuration:
/// alternatives, the CA store, accounts, dpkg status), as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsEntry {
    Dir {
        path: PathBuf,
        mode: u32,
    },
    File {
        path: PathBuf,
        contents: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
}

/// Writes `extra` into the staging rootfs through [`Confined`], replacing
/// (never writing through) what the packages put there, so a package's
/// symlink cannot redirect a write onto the host or into the store.
fn add_extra(root: &Path, extra: &[RootfsEntry]) -> Result<()> {
    if extra.is_empty() {
        return Ok(());
    }
    let confined = Confined::open(root)?;
    for entry in extra {
        match entry {
            RootfsEntry::Dir { path, mode } => {
                confined.create_dir_all(path)?;
                confined.set_dir_mode(path, *mode)?;
            }
            RootfsEntry::File {
                path,
                contents,
                mode,
            } => confined.replace_file(path, contents, *mode)?,
            RootfsEntry::Symlink { path, target } => confined.replace_symlink(path, target)?,
        }
    }
    Ok(())
}

/// `unpacked-v1/<sha256>`, extracted on first use (temp dir, then rename),
/// and held in use ([`Store::use_entry`]) while the guard lives.
fn unpacked_tree(
    store: &Store,
    sha256: &str,
    deb: &Path,
) -> Result<(PathBuf, cairn_store::EntryLock)> {
    let bucket = store.bucket(Bucket::Unpacked)?;
    let dir = bucket.join(sha256);
    let in_use = store.use_entry(Bucket::Unpacked, sha256)?;
    if dir.is_dir() {
        return Ok((dir, in_use));
    }
    let _lock = store.lock_entry(Bucket::Unpacked, sha256)?;
    if dir.is_dir() {
        return Ok((dir, in_use));
    }
    // Checked against the lock's sha256 before unpacking: a `.deb` swapped in
    // the cache is evicted (refetched next run) rather than activated.
    cairn_store::verify_file(deb, sha256)?;
    let staging = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&bucket)?;
    cairn_debian::unpack_deb(deb, staging.path()).map_err(|e| RuntimeError::Unpack {
        deb: deb.to_path_buf(),
        message: e.to_string(),
    })?;
    fs_err::rename(staging.keep(), &dir)?;
    Ok((dir, in_use))
}

/// Mirrors `src` into `dst`: directories created (mode copied), files
/// hardlinked, symlinks recreated. A later package's file replaces an earlier
/// one's, as dpkg does with `Replaces`. Hand-written because it is a dozen
/// lines and walkdir would add nothing but a dependency.
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs_err::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type()?;
        let existing = fs_err::symlink_metadata(&to).ok();
        if kind.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    fs_err::remove_file(&to)?;
                    fs_err::create_dir(&to)?;
                }
                None => fs_err::create_dir(&to)?,
            }
            link_tree(&from, &to)?;
            let mode = fs_err::metadata(&from)?.permissions().mode();
            // Keep the owner's write bit so later packages can add entries.
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(mode | 0o200))?;
            continue;
        }
        match existing {
            Some(m) if m.is_dir() => {
                tracing::warn!(
                    "{} is a directory in another package; keeping it",
                    to.display()
                );
                continue;
            }
            Some(_) => fs_err::remove_file(&to)?,
            None => {}
        }
        if kind.is_symlink() {
            fs_err::os::unix::fs::symlink(fs_err::read_link(&from)?, &to)?;
        } else {
            fs_err::hard_link(&from, &to)?;
        }
    }
    Ok(())
}

/// The skeleton directories and each of their parents, e.g. `opt`,
/// `opt/cairn`, `opt/cairn/env`.
fn reserved_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = SKELETON_DIRS
        .iter()
        .flat_map(|d| Path::new(d).ancestors().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Fails when a package made a directory cairn writes to into a symlink.
/// [`Confined`] would keep the writes inside the rootfs anyway, but such a
/// package is hostile or broken, and the user should hear which one it is.
fn refuse_reserved_symlinks(
    staging: &Path,
    trees: &[PathBuf],
    debs: &[(String, PathBuf)],
) -> Result<()> {
    for dir in reserved_dirs() {
        let Ok(target) = fs_err::read_link(staging.join(&dir)) else {
            continue;
        };
        // The last package shipping the link is the one whose link won.
        let deb = trees
            .iter()
            .zip(debs)
            .rev()
            .find(|(tree, _)| {
                fs_err::symlink_metadata(tree.join(&dir)).is_ok_and(|m| m.is_symlink())
            })
            .map_or_else(PathBuf::new, |(_, (_, deb))| deb.clone());
        return Err(RuntimeError::ReservedSymlink {
            deb,
            path: dir.display().to_string(),
            target,
        });
    }
    Ok(())
}

/// Mountpoints, merged-/usr links, `/opt/cairn` and `/bin/sh`, where packages
/// lacked them. Every operation stays inside `root` ([`Confined`]).
fn add_skeleton(root: &Path) -> Result<()> {
    let root = Confined::open(root)?;
    for dir in SKELETON_DIRS {
        root.create_dir_all(Path::new(dir))?;
    }
    root.set_dir_mode(Path::new("tmp"), 0o1777)?;
    for (link, target) in MERGED_USR {
        root.symlink_if_absent(Path::new(link), Path::new(target))?;
    }
    for (link, target) in RUN_LINKS {
        // base-files ships them as empty directories and makes the links
        // from its postinst; a directory with content stays.
        root.remove_empty_dir(Path::new(link))?;
        root.symlink_if_absent(Path::new(link), Path::new(target))?;
    }
    add_bin_sh(&root)
}

/// `/bin/sh` → bash when no package provides it. Debian always has `/bin/sh`
/// (dash is Essential, so nothing depends on it and a lock rarely includes it),
/// and `system()`, `popen()` and tools like initdb fail obscurely without it.
fn add_bin_sh(root: &Confined) -> Result<()> {
    let sh = Path::new("usr/bin/sh");
    let present = root.is_symlink(sh) || root.resolve(sh, nix::fcntl::OFlag::O_PATH).is_ok();
    if !present && root.is_file(Path::new("usr/bin/bash")) {
        root.symlink_if_absent(sh, Path::new("bash"))?;
    }
    Ok(())
}

/// One step of entering the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// `mkdir -p` a mountpoint (done before the rootfs turns read-only).
    /// Paths inside the rootfs are absolute as seen from inside it, and are
    /// resolved with the rootfs as `/` ([`Confined`]).
    EnsureDir(PathBuf),
    /// Create an empty placeholder file (inside the rootfs) to bind a file onto.
    EnsureFile(PathBuf),
    /// `unshare(CLONE_NEWUSER | CLONE_NEWNS)`.
    Unshare,
    /// Deny setgroups, then map `uid`/`gid` to themselves.
    MapIds {
        uid: u32,
        gid: u32,
    },
    /// `mount --make-rprivate /`, so nothing propagates back to the host.
    MakePrivate,
    /// A bind mount (recursive for directories) of a host `source` onto a
    /// `target` inside the rootfs.
    Bind {
        source: PathBuf,
        target: PathBuf,
        recursive: bool,
    },
    /// Remount a bind mount read-only, keeping its locked flags.
    RemountReadOnly(PathBuf),
    Chroot(PathBuf),
    Chdir(PathBuf),
}

/// Top-level host directories that dev mode leaves to the environment: the
/// OS itself (whose files must be the environment's for Debian's absolute
/// paths to work), and the mountpoints every activation binds anyway.
const OS_DIRS: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "lost+found",
    "opt",
    "proc",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "var",
];

/// The host directories a dev-mode activation keeps: every top-level
/// directory outside [`OS_DIRS`] (`/home`, `/root`, `/srv`, `/mnt`, `/media`,
/// `/run` and its sockets, project trees such as `/work`), `/usr/local`, and
/// each `/opt/*` except cairn's own. Reads `/` and `/opt`.
pub fn host_world() -> Vec<PathBuf> {
    let dirs_in = |dir: &str, skip: &[&str]| -> Vec<PathBuf> {
        let Ok(entries) = fs_err::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| !skip.iter().any(|s| e.file_name() == *s))
            .map(|e| e.path())
            // A top-level symlink to a directory is bound at its own name.
            .filter(|p| fs_err::metadata(p).is_ok_and(|m| m.is_dir()))
            .collect();
        found.sort();
        found
    };
    let mut dirs = dirs_in("/", OS_DIRS);
    if Path::new("/usr/local").is_dir() {
        dirs.push(PathBuf::from("/usr/local"));
    }
    dirs.extend(dirs_in("/opt", &["cairn"]));
    dirs
}

/// What [`mount_plan`] needs to know about the host.
#[derive(Debug, Clone)]
pub struct PlanInputs {
    pub rootfs: PathBuf,
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    pub uid: u32,
    pub gid: u32,
    /// The [`HOST_FILES`] that exist on the host.
    pub host_files: Vec<PathBuf>,
    /// Extra binds with whether their source is a file.
    pub binds: Vec<(Bind, bool)>,
    /// Dev mode: host directories bound at their own paths ([`host_world`]);
    /// empty in run mode, where only the environment is visible.
    pub host_dirs: Vec<PathBuf>,
}

/// `target` as an absolute path inside the rootfs, without `..`.
fn inside(target: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in target.components() {
        if let Component::Normal(p) = part {
            out.push(p);
        }
    }
    out
}

/// The ordered operations that enter `inputs.rootfs`. Pure.
pub fn mount_plan(inputs: &PlanInputs) -> Vec<MountOp> {
    let root = &inputs.rootfs;
    // (host source, path inside, is_file, recursive)
    let mut binds: Vec<(PathBuf, PathBuf, bool)> = ["/dev", "/proc", "/sys", "/tmp"]
        .iter()
        .map(|d| (PathBuf::from(d), PathBuf::from(d), false))
        .collect();
    let covered = |binds: &[(PathBuf, PathBuf, bool)], path: &Path| {
        path == Path::new("/") || binds.iter().any(|(_, inner, _)| path.starts_with(inner))
    };
    for dir in &inputs.host_dirs {
        if dir.is_absolute() && !covered(&binds, dir) {
            binds.push((dir.clone(), dir.clone(), false));
        }
    }
    for dir in inputs.home.iter().chain([&inputs.cwd]) {
        if dir.is_absolute() && !covered(&binds, dir) {
            binds.push((dir.clone(), dir.clone(), false));
        }
    }
    for file in &inputs.host_files {
        binds.push((file.clone(), file.clone(), true));
    }
    for (bind, is_file) in &inputs.binds {
        binds.push((bind.source.clone(), bind.target.clone(), *is_file));
    }
    let mut plan: Vec<MountOp> = binds
        .iter()
        .map(|(_, inner, is_file)| match is_file {
            true => MountOp::EnsureFile(inside(inner)),
            false => MountOp::EnsureDir(inside(inner)),
        })
        .collect();
    plan.extend([
        MountOp::Unshare,
        MountOp::MapIds {
            uid: inputs.uid,
            gid: inputs.gid,
        },
        MountOp::MakePrivate,
        MountOp::Bind {
            source: root.clone(),
            target: PathBuf::from("/"),
            recursive: false,
        },
        MountOp::RemountReadOnly(root.clone()),
    ]);
    plan.extend(
        binds
            .into_iter()
            .map(|(source, inner, is_file)| MountOp::Bind {
                source,
                target: inside(&inner),
                recursive: !is_file,
            }),
    );
    plan.push(MountOp::Chroot(root.clone()));
    plan.push(MountOp::Chdir(inputs.cwd.clone()));
    plan
}

/// Enters `rootfs` (see the module docs) and execs `cmd` in the activated
/// environment, or an interactive shell when `cmd` is empty. Must be called
/// while this process has a single thread (the kernel refuses a new user
/// namespace otherwise). Returns only on failure.
///
/// A host-spawn server ([`crate::host_spawn`]) is started first, outside the
/// namespace: in dev mode (`activation.mode`) the host's world stays
/// ([`host_world`]) and commands the environment lacks run on the host; in
/// both modes a command found nowhere gets the hint of the package that
/// ships it, when the activation names its environment (`env_dir`).
pub fn run_in_rootfs(
    rootfs: &Path,
    activation: &Activation,
    cmd: &[OsString],
    binds: &[Bind],
) -> Result<Infallible> {
    let mut activation = activation.clone();
    // Our pid is the activation's for good: the command is exec'd in place.
    let mut server_args: Vec<OsString> = vec![
        "_host-spawn".into(),
        "--serve".into(),
        "--parent".into(),
        std::process::id().to_string().into(),
    ];
    if let Some(dir) = &activation.env_dir {
        server_args.extend(["-d".into(), dir.clone().into_os_string()]);
    }
    let serve = match activation.mode {
        Mode::Dev => true,
        Mode::Run => {
            server_args.push("--hints-only".into());
            activation.env_dir.is_some()
        }
    };
    if serve {
        let socket = crate::host_spawn::bind_socket()?;
        activation.host_spawn = Some(socket.path.clone());
        let exe = std::env::current_exe()?;
        crate::host_spawn::start_server(&exe, &server_args, socket)?;
    }
    let host_dirs = match activation.mode {
        Mode::Dev => host_world(),
        Mode::Run => Vec::new(),
    };
    enter_rootfs(rootfs, binds, &host_dirs)?;
    let env = activate::activate(&activation, &current_env())?;
    if cmd.is_empty() {
        return exec_interactive(&activation, &env);
    }
    match exec_command(&env, cmd) {
        Err(RuntimeError::CommandNotFound { .. }) if activation.host_spawn.is_some() => {
            let socket = activation.host_spawn.as_deref().unwrap_or(Path::new(""));
            let argv: Vec<String> = cmd
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let style = crate::host_spawn::NotFoundStyle::Cairn;
            let code = crate::host_spawn::run_on_host(socket, &argv, &env, style)?;
            std::process::exit(code)
        }
        other => other,
    }
}

/// Performs the [`mount_plan`] for `rootfs` in this process, binding
/// `host_dirs` too (dev mode).
pub fn enter_rootfs(rootfs: &Path, binds: &[Bind], host_dirs: &[PathBuf]) -> Result<()> {
    let inputs = PlanInputs {
        rootfs: rootfs.to_path_buf(),
        cwd: std::env::current_dir()?,
        home: std::env::var_os("HOME").map(PathBuf::from),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        host_files: HOST_FILES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect(),
        binds: binds
            .iter()
            .map(|b| {
                (
                    b.clone(),
                    fs_err::metadata(&b.source).is_ok_and(|m| !m.is_dir()),
                )
            })
            .collect(),
        host_dirs: host_dirs.to_vec(),
    };
    mount_plan(&inputs)
        .iter()
        .try_for_each(|op| apply_op(rootfs, op))
}

fn mount_error(operation: &'static str, path: &Path) -> impl FnOnce(Errno) -> RuntimeError {
    let path = path.to_path_buf();
    move |errno| RuntimeError::Mount {
        operation,
        path,
        errno,
    }
}

fn ns_unavailable(operation: &'static str) -> impl FnOnce(Errno) -> RuntimeError {
    move |errno| RuntimeError::NamespacesUnavailable { operation, errno }
}

/// Performs one [`MountOp`] for `rootfs`.
fn apply_op(rootfs: &Path, op: &MountOp) -> Result<()> {
    tracing::trace!("namespace: {op:?}");
    match op {
        MountOp::EnsureDir(path) => Confined::open(rootfs)?.create_dir_all(path).map(drop),
        MountOp::EnsureFile(path) => Confined::open(rootfs)?.ensure_file(path),
        MountOp::Unshare => unshare(),
        MountOp::MapIds { uid, gid } => map_ids(*uid, *gid),
        MountOp::MakePrivate => mount(None, Path::new("/"), MsFlags::MS_REC | MsFlags::MS_PRIVATE)
            .map_err(mount_error("make-private", Path::new("/"))),
        MountOp::Bind {
            source,
            target,
            recursive,
        } => bind(rootfs, source, target, *recursive),
        MountOp::RemountReadOnly(path) => remount_read_only(path),
        MountOp::Chroot(path) => {
            nix::unistd::chroot(path).map_err(mount_error("chroot", path))?;
            nix::unistd::chdir("/").map_err(mount_error("chdir", Path::new("/")))
        }
        MountOp::Chdir(path) => nix::unistd::chdir(path).map_err(mount_error("chdir", path)),
    }
}

/// The kernel refuses a new user namespace to a multi-threaded process with
/// EINVAL, which would otherwise read as "namespaces unavailable".
fn unshare() -> Result<()> {
    let flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
    match nix::sched::unshare(flags) {
        Err(Errno::EINVAL) if thread_count() > 1 => Err(RuntimeError::NotSingleThreaded {
            threads: thread_count(),
        }),
        other => other.map_err(ns_unavailable("unshare")),
    }
}

fn thread_count() -> usize {
    fs_err::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

fn map_ids(uid: u32, gid: u32) -> Result<()> {
    let write = |file: &'static str, text: String| {
        fs_err::write(format!("/proc/self/{file}"), text).map_err(|e| {
            RuntimeError::NamespacesUnavailable {
                operation: file,
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            }
        })
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    write("gid_map", format!("{gid} {gid} 1\n"))
}

fn mount(source: Option<&Path>, target: &Path, flags: MsFlags) -> nix::Result<()> {
    nix::mount::mount(source, target, None::<&str>, flags, None::<&str>)
}

/// Binds `source` onto `target` inside `rootfs`. The target is resolved with
/// the rootfs as `/` (a package symlink there is followed as it would be after
/// chroot, never onto the host) and mounted through its fd. The rootfs is
/// opened afresh: an fd from before its read-only self-bind would name the
/// mount underneath, hidden after chroot.
fn bind(rootfs: &Path, source: &Path, target: &Path, recursive: bool) -> Result<()> {
    let shown = rootfs.join(inside(target).strip_prefix("/").unwrap_or(target));
    let fd = Confined::open(rootfs)?
        .resolve(target, nix::fcntl::OFlag::O_PATH)
        .map_err(mount_error("resolve bind target", &shown))?;
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), &Confined::fd_path(&fd), flags).map_err(mount_error("bind-mount", &shown))
}

/// Read-only remount of a bind mount. The flags the kernel locked on the
/// underlying mount (nosuid, nodev, …) must be repeated or the remount is EPERM.
fn remount_read_only(path: &Path) -> Result<()> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let locked = statvfs(path).map_err(mount_error("statvfs", path))?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if locked.contains(st) {
            flags |= ms;
        }
    }
    mount(None, path, flags).map_err(mount_error("remount read-only", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> PlanInputs {
        PlanInputs {
            rootfs: "/c/rootfs-v1/abc".into(),
            cwd: "/work/proj".into(),
            home: Some("/home/u".into()),
            uid: 1000,
            gid: 100,
            host_files: vec!["/etc/resolv.conf".into(), "/etc/passwd".into()],
            binds: vec![(
                Bind {
                    source: "/work/proj/.cairn/env".into(),
                    target: "/opt/cairn/env".into(),
                },
                false,
            )],
            host_dirs: Vec::new(),
        }
    }

    fn bind_op(source: &str, target: &str, recursive: bool) -> MountOp {
        MountOp::Bind {
            source: source.into(),
            target: target.into(),
            recursive,
        }
    }

    #[test]
    fn a_deb_substituted_in_the_cache_is_evicted_not_unpacked() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("cache")).unwrap();
        let locked = cairn_store::sha256_hex(b"the locked package");
        let deb = store.deb_path(&locked).unwrap();
        fs_err::write(&deb, b"another package").unwrap();
        let err = unpacked_tree(&store, &locked, &deb).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::Store(cairn_store::StoreError::DigestMismatch { path, .. }) if path == &deb),
            "{err}"
        );
        assert!(!deb.exists());
        assert!(
            !store
                .bucket(Bucket::Unpacked)
                .unwrap()
                .join(&locked)
                .exists()
        );
    }

    #[test]
    fn plan_orders_mountpoints_namespace_readonly_binds_chroot() {
        use MountOp::*;
        let r = "/c/rootfs-v1/abc";
        let plan = mount_plan(&inputs());
        let expected = vec![
            EnsureDir("/dev".into()),
            EnsureDir("/proc".into()),
            EnsureDir("/sys".into()),
            EnsureDir("/tmp".into()),
            EnsureDir("/home/u".into()),
            EnsureDir("/work/proj".into()),
            EnsureFile("/etc/resolv.conf".into()),
            EnsureFile("/etc/passwd".into()),
            EnsureDir("/opt/cairn/env".into()),
            Unshare,
            MapIds {
                uid: 1000,
                gid: 100,
            },
            MakePrivate,
            bind_op(r, "/", false),
            RemountReadOnly(r.into()),
            bind_op("/dev", "/dev", true),
            bind_op("/proc", "/proc", true),
            bind_op("/sys", "/sys", true),
            bind_op("/tmp", "/tmp", true),
            bind_op("/home/u", "/home/u", true),
            bind_op("/work/proj", "/work/proj", true),
            bind_op("/etc/resolv.conf", "/etc/resolv.conf", false),
            bind_op("/etc/passwd", "/etc/passwd", false),
            bind_op("/work/proj/.cairn/env", "/opt/cairn/env", true),
            Chroot(r.into()),
            Chdir("/work/proj".into()),
        ];
        assert_eq!(plan, expected);
    }

    #[test]
    fn cwd_under_home_or_tmp_or_root_is_not_bound_twice() {
        for cwd in ["/home/u/src", "/tmp/x", "/"] {
            let mut i = inputs();
            i.cwd = cwd.into();
            let binds: Vec<_> = mount_plan(&i)
                .into_iter()
                .filter(|op| matches!(op, MountOp::Bind { source, .. } if source == Path::new(cwd)))
                .collect();
            assert!(binds.is_empty(), "{cwd}: {binds:?}");
            assert_eq!(mount_plan(&i).last(), Some(&MountOp::Chdir(cwd.into())));
        }
    }

    #[test]
    fn dev_mode_binds_the_host_world_before_home_and_cwd() {
        let mut i = inputs();
        i.cwd = "/work/proj".into();
        i.host_dirs = vec![
            "/home".into(),
            "/run".into(),
            "/work".into(),
            "/usr/local".into(),
            "/opt/google".into(),
        ];
        let plan = mount_plan(&i);
        let bound: Vec<&Path> = plan
            .iter()
            .filter_map(|op| match op {
                MountOp::Bind {
                    source, recursive, ..
                } if *recursive => Some(source.as_path()),
                _ => None,
            })
            .collect();
        // $HOME (/home/u) and the cwd (/work/proj) are inside bound dirs.
        assert_eq!(
            bound,
            [
                "/dev",
                "/proc",
                "/sys",
                "/tmp",
                "/home",
                "/run",
                "/work",
                "/usr/local",
                "/opt/google",
                "/work/proj/.cairn/env"
            ]
            .map(Path::new)
        );
        assert!(plan.contains(&MountOp::EnsureDir("/usr/local".into())));
        assert_eq!(plan.last(), Some(&MountOp::Chdir("/work/proj".into())));
    }

    #[test]
    fn the_host_world_leaves_the_os_to_the_environment() {
        let world = host_world();
        for os in [
            "/usr",
            "/etc",
            "/var",
            "/bin",
            "/lib",
            "/proc",
            "/tmp",
            "/opt/cairn",
        ] {
            assert!(!world.iter().any(|d| d == Path::new(os)), "{os}: {world:?}");
        }
        if Path::new("/usr/local").is_dir() {
            assert!(world.iter().any(|d| d == Path::new("/usr/local")));
        }
        if Path::new("/run").is_dir() {
            assert!(world.iter().any(|d| d == Path::new("/run")));
        }
    }

    #[test]
    fn targets_cannot_escape_the_rootfs() {
        assert_eq!(inside(Path::new("/../../etc/x")), Path::new("/etc/x"));
        let mut i = inputs();
        i.home = None;
        assert!(
            !mount_plan(&i)
                .iter()
                .any(|op| matches!(op, MountOp::EnsureDir(p) if p.ends_with("home/u")))
        );
    }

    #[test]
    fn unshare_in_a_threaded_process_says_why() {
        // libtest runs this on a second thread, so the kernel must refuse.
        let err = unshare().unwrap_err();
        assert!(
            matches!(err, RuntimeError::NotSingleThreaded { .. }),
            "{err}"
        );
    }

    #[test]
    fn link_tree_hardlinks_files_and_recreates_symlinks() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, dst) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("dst"),
        );
        fs_err::create_dir_all(a.join("usr/bin")).unwrap();
        fs_err::write(a.join("usr/bin/tool"), "v1").unwrap();
        fs_err::os::unix::fs::symlink("tool", a.join("usr/bin/alias")).unwrap();
        fs_err::create_dir_all(b.join("usr/bin")).unwrap();
        fs_err::write(b.join("usr/bin/tool"), "v2").unwrap();
        fs_err::create_dir_all(&dst).unwrap();
        link_tree(&a, &dst).unwrap();
        link_tree(&b, &dst).unwrap();
        add_skeleton(&dst).unwrap();
        let tool = dst.join("usr/bin/tool");
        assert_eq!(fs_err::read_to_string(&tool).unwrap(), "v2");
        assert_eq!(
            fs_err::metadata(&tool).unwrap().ino(),
            fs_err::metadata(b.join("usr/bin/tool")).unwrap().ino()
        );
        assert_eq!(
            fs_err::read_link(dst.join("usr/bin/alias")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            fs_err::read_link(dst.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert!(dst.join("opt/cairn/env").is_dir() && dst.join("proc").is_dir());
        assert!(fs_err::symlink_metadata(dst.join("usr/bin/sh")).is_err());
    }

    #[test]
    fn bin_sh_is_bash_unless_a_package_provides_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (bash_only, with_dash) = (tmp.path().join("a"), tmp.path().join("b"));
        for root in [&bash_only, &with_dash] {
            fs_err::create_dir_all(root.join("usr/bin")).unwrap();
            fs_err::write(root.join("usr/bin/bash"), "").unwrap();
        }
        fs_err::os::unix::fs::symlink("dash", with_dash.join("usr/bin/sh")).unwrap();
        add_skeleton(&bash_only).unwrap();
        add_skeleton(&with_dash).unwrap();
        let link = |root: &Path| fs_err::read_link(root.join("usr/bin/sh")).unwrap();
        assert_eq!(link(&bash_only), Path::new("bash"));
        assert_eq!(link(&with_dash), Path::new("dash"));
    }

    /// A `.deb` built with dpkg-deb whose data holds only the given symlinks.
    fn deb_with_links(dir: &Path, name: &str, links: &[(&str, &str)]) -> PathBuf {
        let root = dir.join(format!("{name}-pkg"));
        fs_err::create_dir_all(root.join("DEBIAN")).unwrap();
        let control = format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: hostile\n"
        );
        fs_err::write(root.join("DEBIAN/control"), control).unwrap();
        for (link, target) in links {
            let path = root.join(link);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::os::unix::fs::symlink(target, path).unwrap();
        }
        let deb = dir.join(format!("{name}_1.0_all.deb"));
        cairn_debian::deb::fixtures::dpkg_deb_build(&root, &deb, &[]);
        deb
    }

    /// A host directory a hostile package aims at, with a mode to watch.
    fn victim(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let victim = dir.join("victim");
        fs_err::create_dir_all(&victim).unwrap();
        fs_err::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
        victim
    }

    fn assert_untouched(victim: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let entries: Vec<_> = fs_err::read_dir(victim).unwrap().collect();
        assert!(entries.is_empty(), "{entries:?}");
        let mode = fs_err::metadata(victim).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700, "victim mode changed");
    }

    #[test]
    fn assembly_refuses_a_package_symlinking_a_skeleton_dir_out_of_the_rootfs() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = victim(tmp.path());
        let up = "../".repeat(40);
        let relative = format!(
            "{up}{}",
            victim.display().to_string().trim_start_matches('/')
        );
        let absolute = victim.display().to_string();
        for (link, target) in [
            ("tmp", relative.as_str()),
            ("etc", absolute.as_str()),
            ("usr", absolute.as_str()),
            ("opt", relative.as_str()),
            ("var", absolute.as_str()),
            ("opt/cairn", absolute.as_str()),
        ] {
            let case = tmp.path().join(link.replace('/', "-"));
            let store = Store::open(case.join("store")).unwrap();
            let good = deb_with_links(&case, "good", &[("srv/x", "y")]);
            let evil = deb_with_links(&case, "evil", &[(link, target)]);
            // Real digests: unpacking checks each .deb against its locked sha256.
            let sha = |deb: &Path| cairn_store::sha256_file(deb).unwrap();
            let debs = [(sha(&good), good), (sha(&evil), evil.clone())];
            let err = assemble_rootfs(&store, &debs, &[], "lock").unwrap_err();
            match &err {
                RuntimeError::ReservedSymlink { deb, path, .. } => {
                    assert_eq!((deb, path.as_str()), (&evil, link), "{err}");
                }
                other => panic!("{link}: {other}"),
            }
            let message = err.to_string();
            assert!(
                message.contains("evil_1.0_all.deb") && message.contains(&format!("/{link} ")),
                "{message}"
            );
            assert_untouched(&victim);
            assert!(!store.bucket(Bucket::Rootfs).unwrap().join("lock").exists());
        }
    }

    #[test]
    fn activation_mountpoints_stay_inside_a_rootfs_with_hostile_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = victim(tmp.path());
        let rootfs = tmp.path().join("rootfs");
        fs_err::create_dir_all(rootfs.join("etc")).unwrap();
        // Not reserved directories, so assembly allowed them; activation binds
        // $HOME, the working directory and host files through them.
        fs_err::os::unix::fs::symlink(&victim, rootfs.join("home")).unwrap();
        fs_err::os::unix::fs::symlink("../../../../../../../..", rootfs.join("work")).unwrap();
        fs_err::os::unix::fs::symlink(victim.join("hosts"), rootfs.join("etc/hosts")).unwrap();
        for op in [
            MountOp::EnsureDir("/home/u".into()),
            MountOp::EnsureDir("/work/proj".into()),
            MountOp::EnsureFile("/etc/hosts".into()),
            MountOp::EnsureFile("/home/u/.profile".into()),
        ] {
            apply_op(&rootfs, &op).unwrap();
        }
        assert_untouched(&victim);
        // Resolved as after chroot: `home -> /tmp/…/victim` is that path in the rootfs.
        let inner_home = rootfs.join(victim.strip_prefix("/").unwrap()).join("u");
        assert!(inner_home.join(".profile").is_file());
        assert!(rootfs.join("proj").is_dir());
    }
}
