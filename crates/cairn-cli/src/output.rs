//! Logging and human output. Messages go to stderr so stdout stays clean for
//! data (`--json`) and archives (`containerize -f -`).

use crate::cli::{ColorChoice, GlobalArgs};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy)]
struct Settings {
    quiet: bool,
    progress: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets up tracing (`-v` debug, `-vv` trace) and remembers -q / progress choices.
pub fn init(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // `Targets` (`cairn_oci=trace,warn`) rather than `EnvFilter`: the same
    // directives cairn needs, without the regex engine in the in-image binary.
    let filter = std::env::var("CAIRN_LOG")
        .ok()
        .and_then(|text| text.parse::<Targets>().ok())
        .unwrap_or_else(|| level.parse().unwrap_or_default());
    let ansi = match global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stderr().is_terminal(),
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .with_target(global.verbose > 1)
        // The builder stops at INFO by default; `filter` decides.
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .finish()
        .with(filter)
        .try_init();
    // Off a terminal, reports are read by scripts and logs: one line per
    // message, never re-wrapped mid-sentence.
    let wrap = std::io::stderr().is_terminal();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(ansi)
                .wrap_lines(wrap)
                .build(),
        )
    }));
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let progress =
        !global.quiet && !global.no_progress && !in_ci && std::io::stderr().is_terminal();
    let _ = SETTINGS.set(Settings {
        quiet: global.quiet,
        progress,
    });
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings {
        quiet: false,
        progress: false,
    })
}

/// Whether progress bars may be drawn.
pub fn progress_enabled() -> bool {
    settings().progress
}

/// Prints a status line to stderr unless -q.
pub fn status(message: impl std::fmt::Display) {
    if !settings().quiet {
        eprintln!("{message}");
    }
}

/// Prints data to stdout as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> miette::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| miette::miette!("cannot encode JSON output: {e}"))?;
    println!("{text}");
    Ok(())
}
