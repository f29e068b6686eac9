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
    let text = cairn_manifest::init_template(&name);
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

fn write_gitignore(env: &Environment) -> Result<()> {
    let path = env.root.join(".cairn").join(".gitignore");
    cairn_store::write_atomic(path, |f| std::io::Write::write_all(f, b"run/\n")).into_diagnostic()
}
