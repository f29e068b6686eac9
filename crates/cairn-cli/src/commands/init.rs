//! `cairn init`: create `.cairn/env/manifest.toml` from the starter template.

use crate::cli::InitArgs;
use crate::environment::{Environment, absolute};
use crate::output;
use miette::{IntoDiagnostic, Result, miette};
use std::process::ExitCode;

pub fn run(args: InitArgs) -> Result<ExitCode> {
    let root = match &args.dir.dir {
        Some(dir) => absolute(dir)?,
        None => std::env::current_dir().into_diagnostic()?,
    };
    let env = Environment::at(&root);
    if env.exists() {
        return Err(miette!(
            help = "edit it with `cairn edit`, or remove .cairn/ to start over",
            "an environment already exists at {}",
            env.manifest_path().display()
        ));
    }
    let name = args.name.unwrap_or_else(|| env.default_name());
    let release = match args.release {
        Some(release) => {
            cairn_manifest::release::check_release(&release).map_err(|b| {
                miette!(
                    help = b.help.unwrap_or_default(),
                    "--release {release}: {}",
                    b.message
                )
            })?;
            release
        }
        None => current_stable()?,
    };
    let text = cairn_manifest::init_template(&name, &release);
    // The template must be valid before it is written: fail loudly, write nothing.
    cairn_manifest::Manifest::parse(&env.manifest_path(), &text).map_err(miette::Report::new)?;
    fs_err::create_dir_all(&env.env_dir).into_diagnostic()?;
    write_gitignore(&env)?;
    cairn_store::write_atomic(env.manifest_path(), |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })
    .into_diagnostic()?;
    output::status(format!(
        "✓ Created environment '{name}' in {}\n\nNext:\n  cairn search <package>   find a package\n  cairn install <package>  add it to the environment\n  cairn activate           enter the environment",
        root.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Today's stable codename, from Debian's signed `stable` InRelease (verified
/// like every index), so the manifest names a release that does not move.
/// Offline, the newest stable cairn knows, with a warning.
fn current_stable() -> Result<String> {
    const KNOWN_STABLE: &str = "trixie";
    let store = crate::locking::open_store()?;
    let client = cairn_debian::ArchiveClient::new(store);
    let source = cairn_debian::Source {
        name: "debian".into(),
        url: cairn_manifest::release::DEBIAN_URL.into(),
        suite: "stable".into(),
        components: vec!["main".into()],
        keyrings: vec![cairn_debian::Keyring::DebianArchive],
    };
    match client.fetch_release(&source) {
        Ok(release) if cairn_manifest::release::check_release(&release.codename).is_ok() => {
            Ok(release.codename)
        }
        Ok(release) => Err(miette!(
            help = "pass --release CODENAME",
            "Debian's stable InRelease names codename '{}', which is not a release codename",
            release.codename
        )),
        Err(e) => {
            output::status(format!(
                "warning: cannot read today's stable release from {} ({e}); using {KNOWN_STABLE} (pass --release to choose)",
                cairn_manifest::release::DEBIAN_URL
            ));
            Ok(KNOWN_STABLE.to_string())
        }
    }
}

fn write_gitignore(env: &Environment) -> Result<()> {
    let path = env.root.join(".cairn").join(".gitignore");
    cairn_store::write_atomic(path, |f| std::io::Write::write_all(f, b"run/\n")).into_diagnostic()
}
