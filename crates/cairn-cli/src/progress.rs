//! Download and layer progress: indicatif bars on a terminal, plain lines
//! otherwise. Implements the libraries' reporter traits.

use crate::output;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// Reports downloads as one byte-counting bar, or as one line per finished file.
pub struct DownloadProgress {
    bar: Option<ProgressBar>,
    done: Mutex<usize>,
}

impl DownloadProgress {
    /// A reporter for `total_bytes` across all files (0 when unknown).
    pub fn new(label: &str, total_bytes: u64) -> DownloadProgress {
        let bar = output::progress_enabled().then(|| {
            let bar = ProgressBar::new(total_bytes);
            let style = ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar
        });
        DownloadProgress {
            bar,
            done: Mutex::new(0),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl cairn_debian::Reporter for DownloadProgress {
    fn on_download_start(&self, name: &str, _size: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(name.to_string());
        }
    }
    fn on_download_progress(&self, _name: &str, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }
    fn on_download_done(&self, name: &str) {
        if let Ok(mut done) = self.done.lock() {
            *done += 1;
        }
        if self.bar.is_none() {
            tracing::info!("fetched {name}");
        }
    }
}
