//! `cairn provides CMD`: the packages that ship a command, with those already
//! in the environment marked; and the hint a missing command gets inside a
//! host activation ([`HintSource`], used by the host-spawn server).
//!
//! The answer comes from the archive's `Contents` indices, reduced to a
//! command table and cached per release by cairn-debian
//! ([`cairn_debian::contents`]). It is built lazily, the first time a hint is
//! needed or asked for, never during `install`: bookworm's `Contents` files
//! are a 45 MB download.

use crate::cli::{DirArg, ProvidesArgs};
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::locking;
use crate::output;
use cairn_debian::{ArchiveClient, CommandTable, NoReporter, Reporter, Source};
use cairn_manifest::Manifest;
use miette::{Result, miette};
use serde::Serialize;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where to look a command up: the environment's sources and architecture,
/// and which packages it already has.
pub struct CommandLookup {
    client: ArchiveClient,
    sources: Vec<Source>,
    arch: String,
    installed: BTreeSet<String>,
}

impl CommandLookup {
    /// The lookup for the environment at `dir`, or for the default sources
    /// when there is none (as `search` and `show` work anywhere).
    pub fn for_dir(dir: &DirArg) -> Result<CommandLookup> {
        let (manifest, env) = match Environment::find(dir) {
            Ok(env) => (env.load_manifest()?, Some(env)),
            Err(e) if dir.dir.is_some() => return Err(e),
            Err(_) => (Manifest::default(), None),
        };
        let manifest_dir = env
            .as_ref()
            .map(|e| e.env_dir.clone())
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
        let system = manifest
            .systems_or_host()
            .into_iter()
            .next()
            .ok_or_else(|| miette!("no system configured in [options] systems"))?;
        let arch = cairn_manifest::debian_arch(&system)
            .ok_or_else(|| miette!("unsupported system '{system}'"))?
            .to_string();
        // The lock as it is: a hint must not re-lock (or reach the network
        // for it); a missing or stale lock only means fewer marks.
        let installed = env
            .as_ref()
            .filter(|e| e.lock_path().is_file())
            .and_then(|e| e.load_lock().ok())
            .map(|lock| lock.packages_for(&system).map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        Ok(CommandLookup {
            client: ArchiveClient::new(locking::open_store()?),
            sources: locking::sources_for(&manifest, &manifest_dir),
            arch,
            installed,
        })
    }

    /// The merged table of every source that has one cached, without the
    /// network; `None` when some source has none yet.
    pub fn cached(&self) -> Option<CommandTable> {
        let mut table = CommandTable::default();
        for source in &self.sources {
            match self.client.cached_commands(source, &self.arch) {
                Ok(Some(part)) => table.merge(part),
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!("no cached command table for {}: {e}", source.suite);
                    return None;
                }
            }
        }
        Some(table)
    }

    /// The merged table of every source: cached ones as they are (unless
    /// `refresh`), the others built from the archive. A source that lists no
    /// `Contents` (a small `-updates` suite may not) is skipped; an error is
    /// returned only when no source gave a table.
    pub fn fetch(&self, refresh: bool, reporter: &dyn Reporter) -> Result<CommandTable> {
        let mut table = CommandTable::default();
        let mut first_error = None;
        let mut found = 0;
        for source in &self.sources {
            let cached = match refresh {
                true => None,
                false => self
                    .client
                    .cached_commands(source, &self.arch)
                    .ok()
                    .flatten(),
            };
            let part = match cached {
                Some(part) => Ok(part),
                None => self.client.fetch_commands(source, &self.arch, reporter),
            };
            match part {
                Ok(part) => {
                    found += 1;
                    table.merge(part);
                }
                Err(e) => {
                    tracing::debug!("no command table for {}: {e}", source.suite);
                    first_error.get_or_insert(e);
                }
            }
        }
        match (found, first_error) {
            (0, Some(e)) => Err(e).diagnose(),
            (_, Some(e)) => {
                // Debug only: this also runs in the host-spawn server, whose
                // warnings land in the user's shell.
                tracing::debug!("some sources gave no command table: {e}");
                Ok(table)
            }
            _ => Ok(table),
        }
    }

    /// The packages of `table` that ship `command`, each with whether the
    /// environment has it.
    pub fn providers<'t>(&self, table: &'t CommandTable, command: &str) -> Vec<Provider<'t>> {
        table
            .packages(command)
            .into_iter()
            .map(|package| Provider {
                package,
                installed: self.installed.contains(package),
            })
            .collect()
    }
}

/// One package that ships the command.
#[derive(Debug, Serialize)]
pub struct Provider<'t> {
    pub package: &'t str,
    /// Whether the environment's lock has it.
    pub installed: bool,
}

#[derive(Serialize)]
struct Answer<'t> {
    command: &'t str,
    packages: Vec<Provider<'t>>,
}

pub fn run(args: ProvidesArgs) -> Result<ExitCode> {
    if args.command.contains('/') || args.command.is_empty() {
        return Err(miette!(
            help = "give the command's name as you would type it, e.g. `cairn provides awk`",
            "'{}' is not a command name",
            args.command
        ));
    }
    let lookup = CommandLookup::for_dir(&args.dir)?;
    let progress = crate::progress::DownloadProgress::new("Contents", 0);
    let table = lookup.fetch(args.refresh, &progress);
    progress.finish();
    let table = table?;
    let packages = lookup.providers(&table, &args.command);
    if args.json {
        output::print_json(&Answer {
            command: &args.command,
            packages,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if packages.is_empty() {
        output::status(format!(
            "no package ships a command named '{}' (alternatives such as `awk` or `editor` \
             are named by the packages' own commands: `mawk`, `nano`)",
            args.command
        ));
        return Ok(ExitCode::FAILURE);
    }
    for p in &packages {
        match p.installed {
            true => println!("{}  (in the environment)", p.package),
            false => println!("{}", p.package),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The hint for a command found nowhere, as lines to print after the
/// shell's `command not found`: Ubuntu's command-not-found, with cairn's
/// install command. Empty when no package outside the environment ships it.
pub fn hint_lines(command: &str, providers: &[Provider<'_>]) -> Vec<String> {
    let missing: Vec<&str> = providers
        .iter()
        .filter(|p| !p.installed)
        .map(|p| p.package)
        .collect();
    match missing[..] {
        [] => Vec::new(),
        [one] => vec![format!(
            "cairn: {command} is in package {one}: cairn install {one}"
        )],
        _ => {
            let mut lines = vec![format!("cairn: {command} is in these packages:")];
            lines.extend(missing.iter().map(|p| format!("  cairn install {p}")));
            lines
        }
    }
}

/// How long a `command not found` waits for a table that is not cached yet.
/// Building one needs the network; offline, or on a slow link, the shell
/// must not hang: after this the plain message is printed and the build
/// goes on in the background for the next miss.
pub const HINT_WAIT: Duration = Duration::from_millis(900);

/// How long after a failed build (offline, say) a miss tries again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Hints for the host-spawn server: the environment's command table, loaded
/// (or built, in the background) on the first miss and kept for the
/// activation's lifetime.
pub struct HintSource {
    dir: DirArg,
    state: Arc<(Mutex<HintState>, Condvar)>,
}

#[derive(Default)]
struct HintState {
    /// A build is under way.
    building: bool,
    /// When the last build failed (offline, say): the next ones wait a
    /// while, so every miss does not cost [`HINT_WAIT`] for nothing.
    failed_at: Option<Instant>,
    ready: Option<Arc<(CommandLookup, CommandTable)>>,
}

impl HintSource {
    /// Hints for the environment at `dir`; nothing is read until the first miss.
    pub fn new(dir: DirArg) -> HintSource {
        HintSource {
            dir,
            state: Arc::default(),
        }
    }

    /// The hint lines for `command`, within about [`HINT_WAIT`].
    pub fn hint(&self, command: &str) -> Vec<String> {
        let Some(ready) = self.table_within(HINT_WAIT) else {
            return Vec::new();
        };
        let (lookup, table) = &*ready;
        hint_lines(command, &lookup.providers(table, command))
    }

    fn table_within(&self, wait: Duration) -> Option<Arc<(CommandLookup, CommandTable)>> {
        let (lock, ready) = &*self.state;
        let mut state = lock.lock().ok()?;
        let resting = state.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER);
        if state.ready.is_none() && !state.building && resting {
            return None;
        }
        if state.ready.is_none() && !state.building {
            state.building = true;
            let shared = self.state.clone();
            let dir = DirArg {
                dir: self.dir.dir.clone(),
            };
            std::thread::spawn(move || {
                let built = build_table(&dir);
                let (lock, ready) = &*shared;
                if let Ok(mut state) = lock.lock() {
                    state.building = false;
                    state.failed_at = built.is_none().then(Instant::now);
                    state.ready = built.map(Arc::new);
                    ready.notify_all();
                }
            });
        }
        let (state, _) = ready
            .wait_timeout_while(state, wait, |s| s.ready.is_none() && s.building)
            .ok()?;
        state.ready.clone()
    }
}

/// The cached table, else one built from the archive; `None` (logged) when
/// neither is possible, e.g. offline with nothing cached. Errors are not
/// the user's to see here: the shell already said `command not found`.
fn build_table(dir: &DirArg) -> Option<(CommandLookup, CommandTable)> {
    let lookup = match CommandLookup::for_dir(dir) {
        Ok(lookup) => lookup,
        Err(e) => {
            tracing::debug!("no command hints: {e}");
            return None;
        }
    };
    if let Some(table) = lookup.cached() {
        return Some((lookup, table));
    }
    match lookup.fetch(false, &NoReporter) {
        Ok(table) => Some((lookup, table)),
        Err(e) => {
            tracing::debug!("no command hints: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_missing_packages_only() {
        let p = |package, installed| Provider { package, installed };
        assert_eq!(
            hint_lines("hello", &[p("hello", false)]),
            ["cairn: hello is in package hello: cairn install hello"]
        );
        assert_eq!(
            hint_lines(
                "awk",
                &[p("gawk", false), p("mawk", true), p("original-awk", false)]
            ),
            [
                "cairn: awk is in these packages:",
                "  cairn install gawk",
                "  cairn install original-awk"
            ]
        );
        assert!(hint_lines("ls", &[p("coreutils", true)]).is_empty());
        assert!(hint_lines("nothing", &[]).is_empty());
    }
}
