//! `cairn edit`: change the manifest in $EDITOR (or from a file) and apply it
//! only when it is valid and resolves.

use crate::cli::EditArgs;
use crate::environment::Environment;
use crate::output;
use cairn_manifest::Manifest;
use miette::{IntoDiagnostic, Result, miette};
use std::io::IsTerminal;
use std::process::ExitCode;

pub fn run(args: EditArgs) -> Result<ExitCode> {
    let env = Environment::find(&args.dir)?;
    let text = match &args.file {
        Some(file) if file.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).into_diagnostic()?
        }
        Some(file) => fs_err::read_to_string(file).into_diagnostic()?,
        None => edit_interactively(&env)?,
    };
    let manifest = Manifest::parse(&env.manifest_path(), &text).map_err(miette::Report::new)?;
    // Taken after the (possibly long) editor session, so an open editor does
    // not block other commands; the new text replaces the manifest as a whole.
    let _write = env.lock_for_write()?;
    let fresh = env
        .load_lock()
        .map(|l| crate::locking::lock_is_fresh(&l, &manifest))
        .unwrap_or(false);
    if fresh || manifest.install.is_empty() && !env.lock_path().exists() {
        cairn_store::write_atomic(env.manifest_path(), |f| {
            std::io::Write::write_all(f, text.as_bytes())
        })
        .into_diagnostic()?;
    } else {
        let lock = super::install::lock_and_fetch(&env, &manifest, false)?;
        env.save(Some(&text), &lock)?;
    }
    output::status("✓ environment updated");
    Ok(ExitCode::SUCCESS)
}

/// Opens a copy of the manifest in $VISUAL/$EDITOR; re-opens it while the result
/// is invalid and the user wants to keep editing.
fn edit_interactively(env: &Environment) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "use `cairn edit -f FILE` (or `-f -` for stdin) in scripts",
            "cairn edit needs a terminal"
        ));
    }
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let original = fs_err::read_to_string(env.manifest_path()).into_diagnostic()?;
    let tmp = tempfile::Builder::new()
        .prefix("manifest.")
        .suffix(".toml")
        .tempfile()
        .into_diagnostic()?;
    fs_err::write(tmp.path(), &original).into_diagnostic()?;
    loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(tmp.path())
            .status()
            .into_diagnostic()?;
        if !status.success() {
            return Err(miette!(
                "editor '{editor}' exited with {status}; nothing changed"
            ));
        }
        let text = fs_err::read_to_string(tmp.path()).into_diagnostic()?;
        match Manifest::parse(&env.manifest_path(), &text) {
            Ok(_) => return Ok(text),
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                if !ask("Continue editing?")? {
                    return Err(miette!("manifest left unchanged"));
                }
            }
        }
    }
}

fn ask(question: &str) -> Result<bool> {
    eprint!("{question} [Y/n] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).into_diagnostic()?;
    Ok(!line.trim().eq_ignore_ascii_case("n"))
}
