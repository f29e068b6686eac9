//! Published environments on the command line: `cairn publish [REF]`,
//! `cairn pull REF[@N]`, `cairn generations list|history|switch|rollback`,
//! and the cached copies that `activate -r` and `containerize -r` build from.
//!
//! These move an environment's manifest and lock (a few KB), never an image:
//! `cairn push` sends images. The protocol and the record's format are
//! `cairn_registry::environment`; this module owns the REF a local
//! environment remembers (`.cairn/published.json`), the registry options
//! (`--remote-args`, as `containerize -r` takes them, with the credentials,
//! TLS options and errors of `cairn push`), and what a user sees.

use crate::cli::{
    CopyArgsText, DirArg, GenerationsCommand, GenerationsTarget, PublishArgs, PullArgs,
};
use crate::commands::containerize::copy::{client_options, parse_registry_args};
use crate::environment::Environment;
use crate::{locking, output};
use cairn_registry::environment::{self, Action, EnvironmentRef, FetchedEnvironment, Generations};
use cairn_registry::{Reference, RegistryClient, RegistryError};
use miette::{IntoDiagnostic, Result, miette};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What a local environment remembers of where it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// `HOST[:PORT]/REPO:TAG`.
    pub reference: String,
    /// The generation the local files are.
    pub generation: u64,
    /// That generation's artifact digest: a record rewritten under it is noticed.
    pub digest: String,
}

/// `.cairn/published.json` beside `.cairn/env/` (not inside it: images carry
/// `env/`, and where the environment was published is the host's business).
fn remembered_path(env: &Environment) -> PathBuf {
    env.root.join(".cairn").join("published.json")
}

fn read_remembered(env: &Environment) -> Result<Option<Remembered>> {
    let path = remembered_path(env);
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs_err::read_to_string(&path).into_diagnostic()?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        miette!(
            help = "delete it and pass the REF explicitly",
            "{} is unreadable: {e}",
            path.display()
        )
    })
}

fn remember(env: &Environment, remembered: &Remembered) -> Result<()> {
    let text = serde_json::to_string_pretty(remembered).into_diagnostic()?;
    cairn_store::write_atomic(remembered_path(env), |f| {
        std::io::Write::write_all(f, format!("{text}\n").as_bytes())
    })
    .into_diagnostic()
}

/// A connection to the registry of `reference`, with `--remote-args`.
pub fn connect(reference: &Reference, args: Option<&CopyArgsText>) -> Result<RegistryClient> {
    let text = args.map(|a| a.0.as_str()).unwrap_or_default();
    let options = parse_registry_args("--remote-args", text)?;
    let shown = reference.to_string();
    let options = client_options(reference, &options).map_err(|e| report(e, &shown))?;
    RegistryClient::connect(reference, options).map_err(|e| report(e, &shown))
}

/// A registry error as a report naming `what` (a REF), with what to do next.
pub fn report(error: RegistryError, what: &str) -> miette::Report {
    let help = match &error {
        RegistryError::Unreachable { .. } => {
            "check the address and that the registry is running".to_owned()
        }
        RegistryError::Tls { .. } => "for a plain-HTTP registry or an unverified certificate add --remote-args=--tls-verify=false; to trust a CA, --remote-args='--cert-dir DIR'".to_owned(),
        RegistryError::Unauthorized { .. } => "check the user and password (--remote-args='--creds USER:PASS'), or log in with `podman login` / `docker login`".to_owned(),
        RegistryError::Denied { .. } => "the account cannot read or write this repository".to_owned(),
        RegistryError::InvalidReference { .. } => "write the environment as HOST[:PORT]/REPO[:TAG], and a generation as REF@N".to_owned(),
        RegistryError::EnvironmentNotFound { .. } | RegistryError::RepositoryNotFound { .. } => {
            "check the REF; `cairn publish REF` creates an environment there".to_owned()
        }
        RegistryError::NotAnEnvironment { .. } => "cairn environments are published with `cairn publish`; to rebuild an image cairn pushed, use `cairn containerize -r REF`".to_owned(),
        RegistryError::GenerationNotFound { .. } => "see the generations with `cairn generations list -r REF`".to_owned(),
        RegistryError::ConcurrentUpdate { .. } => "someone else changed it at the same time; look with `cairn generations history` and run the command again".to_owned(),
        _ => "run with -v for details".to_owned(),
    };
    // Most errors already name the REF; say it once.
    let base = what.split('@').next().unwrap_or(what);
    let message = error.to_string();
    match message.contains(base) {
        true => miette!(help = help, "{message}"),
        false => miette!(help = help, "{what}: {message}"),
    }
}

/// The current Unix time.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------- publish

/// `cairn publish [REF]`: the next generation; prints its number on stdout.
pub fn publish(args: PublishArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let manifest = env.load_manifest()?;
    let remembered = read_remembered(&env)?;
    let target = match (&args.reference, &remembered) {
        (Some(text), _) => text.clone(),
        (None, Some(r)) => r.reference.clone(),
        (None, None) => {
            return Err(miette!(
                help = "e.g. `cairn publish 127.0.0.1:5000/team/web`; later publishes remember it",
                "cairn publish needs a REF the first time"
            ));
        }
    };
    let env_ref = EnvironmentRef::parse(&target).map_err(|e| report(e, &target))?;
    if env_ref.generation.is_some() {
        return Err(miette!(
            help = "publish to HOST/REPO[:TAG]; cairn picks the next generation number",
            "{target}: a publish cannot choose its generation"
        ));
    }
    let reference = env_ref.reference;
    let shown = reference.to_string();
    let client = connect(&reference, args.options.remote_args.as_ref())?;
    // Credentials and what the tag holds are checked before anything local
    // moves: a wrong password must not leave a re-locked environment behind.
    match environment::read_published(&client, &reference) {
        Ok(_) | Err(RegistryError::EnvironmentNotFound { .. }) => {}
        Err(e) => return Err(report(e, &shown)),
    }
    // The lock that is published must be the one activate would use.
    let _lock = locking::current_lock(&env, &manifest)?;
    let manifest_toml = fs_err::read(env.manifest_path()).into_diagnostic()?;
    let lock = fs_err::read(env.lock_path()).into_diagnostic()?;
    let name = manifest.name.clone().unwrap_or_else(|| env.default_name());
    let outcome =
        environment::publish_environment(&client, &reference, &name, &manifest_toml, &lock, now())
            .map_err(|e| report(e, &shown))?;
    remember(
        &env,
        &Remembered {
            reference: shown.clone(),
            generation: outcome.generation,
            digest: outcome.digest.clone(),
        },
    )?;
    output::status(format!(
        "✓ published {} as generation {} of {shown} ({}): {}",
        name, outcome.generation, outcome.digest, outcome.change
    ));
    if args.options.json {
        output::print_json(&outcome)?;
    } else {
        println!("{}", outcome.generation);
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- pull

/// `cairn pull REF[@N] [-d DIR]`: writes the generation's manifest and lock
/// into DIR/.cairn/env, all or nothing.
pub fn pull(args: PullArgs) -> Result<ExitCode> {
    let env_ref = EnvironmentRef::parse(&args.reference).map_err(|e| report(e, &args.reference))?;
    let root = match &args.dir {
        Some(dir) => crate::environment::absolute(dir)?,
        None => std::env::current_dir().into_diagnostic()?,
    };
    let env = Environment::at(&root);
    let previous = match env.exists() {
        true => read_remembered(&env)?,
        false => None,
    };
    let same_ref = previous
        .as_ref()
        .is_some_and(|p| p.reference == env_ref.reference.to_string());
    if env.exists() && !same_ref && !args.force {
        return Err(miette!(
            help = "pull into another directory (-d DIR), or pass --force to replace it",
            "{} already holds an environment that was not pulled from {}",
            root.display(),
            env_ref.reference
        ));
    }
    let shown = env_ref.to_string();
    let client = connect(&env_ref.reference, args.options.remote_args.as_ref())?;
    let record = environment::read_generations(&client, &env_ref.reference)
        .map_err(|e| report(e, &shown))?;
    let fetched =
        environment::fetch_generation(&client, &env_ref, &record).map_err(|e| report(e, &shown))?;
    if let Some(previous) = previous.as_ref().filter(|_| same_ref)
        && previous.generation == fetched.generation
        && previous.digest != fetched.digest
    {
        return Err(miette!(
            help = "generations are immutable: someone rewrote the record; check `cairn generations history`",
            "{shown}: generation {} was {} when pulled, and is now {}",
            fetched.generation,
            previous.digest,
            fetched.digest
        ));
    }
    check_fetched(&env_ref, &fetched)?;
    install_fetched(&env, &fetched)?;
    remember(
        &env,
        &Remembered {
            reference: env_ref.reference.to_string(),
            generation: fetched.generation,
            digest: fetched.digest.clone(),
        },
    )?;
    let live = match fetched.generation == record.live {
        true => " (live)",
        false => "",
    };
    output::status(format!(
        "✓ pulled {} generation {}{live} of {} into {}",
        fetched.name,
        fetched.generation,
        env_ref.reference,
        root.display()
    ));
    if args.options.json {
        output::print_json(&serde_json::json!({
            "reference": env_ref.reference.to_string(),
            "generation": fetched.generation,
            "digest": fetched.digest,
            "directory": root,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The fetched files must be a manifest and a lock cairn can read, and the
/// name a single path component, before anything is written.
fn check_fetched(env_ref: &EnvironmentRef, fetched: &FetchedEnvironment) -> Result<()> {
    let bad = |what: String| {
        miette!(
            help = "the environment was not published by this cairn, or was altered",
            "{env_ref}: {what}"
        )
    };
    cairn_manifest::check_env_name(&fetched.name)
        .map_err(|b| bad(format!("unusable environment name: {}", b.message)))?;
    let text = std::str::from_utf8(&fetched.manifest_toml)
        .map_err(|_| bad("manifest.toml is not UTF-8".into()))?;
    cairn_manifest::Manifest::parse(Path::new("manifest.toml"), text)
        .map_err(|e| bad(format!("its manifest.toml is invalid: {e}")))?;
    let lock =
        std::str::from_utf8(&fetched.lock).map_err(|_| bad("manifest.lock is not UTF-8".into()))?;
    cairn_manifest::Lock::parse(Path::new("manifest.lock"), lock)
        .map_err(|e| bad(format!("its manifest.lock is invalid: {e}")))?;
    Ok(())
}

/// Writes the manifest and lock: a new environment appears whole (a staged
/// `.cairn` renamed into place); an existing one has each file replaced
/// atomically under its write lock.
fn install_fetched(env: &Environment, fetched: &FetchedEnvironment) -> Result<()> {
    fs_err::create_dir_all(&env.root).into_diagnostic()?;
    let dot_cairn = env.root.join(".cairn");
    if !dot_cairn.exists() {
        let staged = tempfile::Builder::new()
            .prefix(".cairn-pull")
            .tempdir_in(&env.root)
            .into_diagnostic()?;
        let env_dir = staged.path().join("env");
        fs_err::create_dir_all(&env_dir).into_diagnostic()?;
        fs_err::write(env_dir.join("manifest.toml"), &fetched.manifest_toml).into_diagnostic()?;
        fs_err::write(env_dir.join("manifest.lock"), &fetched.lock).into_diagnostic()?;
        fs_err::write(staged.path().join(".gitignore"), b"run/\n").into_diagnostic()?;
        fs_err::rename(staged.keep(), &dot_cairn).into_diagnostic()?;
        return Ok(());
    }
    let _write = env.lock_for_write()?;
    fs_err::create_dir_all(&env.env_dir).into_diagnostic()?;
    for (path, bytes) in [
        (env.manifest_path(), &fetched.manifest_toml),
        (env.lock_path(), &fetched.lock),
    ] {
        cairn_store::write_atomic(path, |f| std::io::Write::write_all(f, bytes))
            .into_diagnostic()?;
    }
    Ok(())
}

// ---------------------------------------------------------------- generations

/// `cairn generations …`.
pub fn run(command: GenerationsCommand) -> Result<ExitCode> {
    match command {
        GenerationsCommand::List(target) => {
            let (reference, client) = target_client(&target)?;
            let record = read(&client, &reference)?;
            match target.options.json {
                true => output::print_json(&record)?,
                false => print_list(&record),
            }
        }
        GenerationsCommand::History(target) => {
            let (reference, client) = target_client(&target)?;
            let record = read(&client, &reference)?;
            match target.options.json {
                true => output::print_json(&record.history)?,
                false => print_history(&record),
            }
        }
        GenerationsCommand::Switch(args) => {
            let (reference, client) = target_client(&args.target)?;
            let record = set_live(&client, &reference, Some(args.generation), Action::Switch)?;
            finish_change(&args.target, &reference, &record)?;
        }
        GenerationsCommand::Rollback(target) => {
            let (reference, client) = target_client(&target)?;
            let record = set_live(&client, &reference, None, Action::Rollback)?;
            finish_change(&target, &reference, &record)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The REF (from -r, else the local environment's) and a connection to it.
fn target_client(target: &GenerationsTarget) -> Result<(Reference, RegistryClient)> {
    let text = match &target.remote {
        Some(text) => text.clone(),
        None => {
            let env = Environment::find(&target.dir).map_err(|e| {
                miette!(
                    help = "pass -r HOST[:PORT]/REPO[:TAG], or run in an environment made by `cairn pull` or `cairn publish`",
                    "no published environment to work on: {e}"
                )
            })?;
            read_remembered(&env)?
                .ok_or_else(|| {
                    miette!(
                        help = "pass -r HOST[:PORT]/REPO[:TAG], or publish it with `cairn publish REF`",
                        "the environment at {} has not been published or pulled",
                        env.root.display()
                    )
                })?
                .reference
        }
    };
    let env_ref = EnvironmentRef::parse(&text).map_err(|e| report(e, &text))?;
    if env_ref.generation.is_some() {
        return Err(miette!(
            help =
                "generations commands take HOST[:PORT]/REPO[:TAG]; `switch N` picks a generation",
            "{text}: -r names the environment, not one generation"
        ));
    }
    let client = connect(&env_ref.reference, target.options.remote_args.as_ref())?;
    Ok((env_ref.reference, client))
}

fn read(client: &RegistryClient, reference: &Reference) -> Result<Generations> {
    environment::read_generations(client, reference).map_err(|e| report(e, &reference.to_string()))
}

/// Switches to `n`, or rolls back when `n` is `None`.
fn set_live(
    client: &RegistryClient,
    reference: &Reference,
    n: Option<u64>,
    action: Action,
) -> Result<Generations> {
    let shown = reference.to_string();
    let n = match n {
        Some(n) => n,
        None => {
            let record = read(client, reference)?;
            record.rollback_target().ok_or_else(|| {
                miette!(
                    help = "switch to a generation with `cairn generations switch N`",
                    "{shown}: no generation was live before generation {}",
                    record.live
                )
            })?
        }
    };
    environment::set_live(client, reference, n, action, now()).map_err(|e| report(e, &shown))
}

fn finish_change(
    target: &GenerationsTarget,
    reference: &Reference,
    record: &Generations,
) -> Result<()> {
    let previous = record.history.last().and_then(|e| e.previous);
    output::status(format!(
        "✓ {reference}: generation {} is live{}",
        record.live,
        previous.map(|p| format!(" (was {p})")).unwrap_or_default()
    ));
    if target.options.json {
        output::print_json(record)?;
    }
    Ok(())
}

/// `2026-12-02T20:15:03Z` as `2026-12-02 20:15:03`.
fn short_date(rfc3339: &str) -> String {
    rfc3339
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_owned()
}

fn print_list(record: &Generations) {
    println!(
        "{:<5} {:<19}  {:<5} CHANGE",
        "GEN", "PUBLISHED (UTC)", "LIVE"
    );
    for g in &record.generations {
        let live = if g.number == record.live { "*" } else { "" };
        println!(
            "{:<5} {:<19}  {:<5} {}",
            g.number,
            short_date(&g.created),
            live,
            g.change
        );
    }
}

fn print_history(record: &Generations) {
    println!("{:<19}  {:<8} GENERATION", "WHEN (UTC)", "ACTION");
    for e in &record.history {
        let from = e
            .previous
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default();
        println!(
            "{:<19}  {:<8} {}{from}",
            short_date(&e.at),
            e.action.to_string(),
            e.generation
        );
    }
}

// ---------------------------------------------------------------- cache

/// A fetched generation, kept in the store as an environment directory that
/// `activate` and `containerize` read like any other:
/// `environments-v1/<digest>/<name>/.cairn/env/`. Keyed by the artifact's
/// digest, so an entry never changes once written.
pub struct CachedEnvironment {
    pub env_ref: EnvironmentRef,
    pub fetched: FetchedEnvironment,
    /// The directory holding `.cairn/env/`.
    pub root: PathBuf,
}

/// Fetches `text` (REF or REF@N) and returns its cached environment directory,
/// writing it (whole, by rename) when this generation is new here.
pub fn cached(text: &str, remote_args: Option<&CopyArgsText>) -> Result<CachedEnvironment> {
    let env_ref = EnvironmentRef::parse(text).map_err(|e| report(e, text))?;
    let client = connect(&env_ref.reference, remote_args)?;
    let fetched = environment::fetch_environment(&client, &env_ref)
        .map_err(|e| report(e, &env_ref.to_string()))?;
    cache_fetched(env_ref, fetched)
}

/// Stores an already fetched generation in the cache.
pub fn cache_fetched(
    env_ref: EnvironmentRef,
    fetched: FetchedEnvironment,
) -> Result<CachedEnvironment> {
    check_fetched(&env_ref, &fetched)?;
    let store = locking::open_store()?;
    let bucket = store
        .bucket(cairn_store::Bucket::Environments)
        .map_err(|e| miette!("{e}"))?;
    let hex = fetched.digest.trim_start_matches("sha256:");
    let entry = bucket.join(hex);
    let root = entry.join(&fetched.name);
    if !root.join(".cairn/env/manifest.lock").is_file() {
        let staged = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&bucket)
            .into_diagnostic()?;
        let env_dir = staged.path().join(&fetched.name).join(".cairn/env");
        fs_err::create_dir_all(&env_dir).into_diagnostic()?;
        fs_err::write(env_dir.join("manifest.toml"), &fetched.manifest_toml).into_diagnostic()?;
        fs_err::write(env_dir.join("manifest.lock"), &fetched.lock).into_diagnostic()?;
        let staged = staged.keep();
        if let Err(e) = fs_err::rename(&staged, &entry) {
            // Another cairn wrote the same entry first: same digest, same bytes.
            let _ = fs_err::remove_dir_all(&staged);
            if !root.join(".cairn/env/manifest.lock").is_file() {
                return Err(miette!("cannot write {}: {e}", entry.display()));
            }
        }
    }
    Ok(CachedEnvironment {
        env_ref,
        fetched,
        root,
    })
}

/// The `-d` of a cached environment.
pub fn dir_of(cached: &CachedEnvironment) -> DirArg {
    DirArg {
        dir: Some(cached.root.clone()),
    }
}

/// Whether `-r`'s published lock is usable as it is: activation must not
/// re-lock inside the cache (the entry is named by its digest).
pub fn check_lock_fresh(cached: &CachedEnvironment) -> Result<()> {
    let env = Environment::at(&cached.root);
    let manifest = env.load_manifest()?;
    let lock = env.load_lock()?;
    if !locking::lock_is_fresh(&lock, &manifest) {
        return Err(miette!(
            help = "pull it (`cairn pull REF@N`), re-lock and publish again",
            "{}: generation {}'s lock does not match its manifest",
            cached.env_ref.reference,
            cached.fetched.generation
        ));
    }
    Ok(())
}
