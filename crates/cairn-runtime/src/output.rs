//! Where a service's output goes: prefixed lines on the container's stdout
//! (`HH:MM:SS name | line`, like devenv's process container), or a rotated log
//! file on the host. It owns the copying threads, not the processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::logs::RotatingLog;

/// A destination for service output.
#[derive(Clone)]
pub(crate) enum OutputSink {
    /// Every line prefixed with time and service name, names padded to `width`.
    Prefixed {
        out: Arc<Mutex<dyn Write + Send>>,
        width: usize,
    },
    /// `<dir>/<name>.log`, rotated by size.
    LogDir {
        dir: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputSink::Prefixed { width, .. } => write!(f, "Prefixed({width})"),
            OutputSink::LogDir { dir, .. } => write!(f, "LogDir({})", dir.display()),
        }
    }
}

/// `HH:MM:SS name  | line\n`; a missing final newline is added so that
/// interleaved services never share a line.
pub(crate) fn prefix_line(
    clock: (u32, u32, u32),
    name: &str,
    width: usize,
    line: &[u8],
) -> Vec<u8> {
    let (h, m, s) = clock;
    let mut out = format!("{h:02}:{m:02}:{s:02} {name:<width$} | ").into_bytes();
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// Local wall-clock time as (hours, minutes, seconds). Containers usually have
/// no /etc/localtime, so this is UTC there, matching `docker logs`.
pub(crate) fn local_clock() -> (u32, u32, u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let t = now as nix::libc::time_t;
    // SAFETY: localtime_r only writes into the zeroed `tm` we own.
    let tm = unsafe {
        let mut tm: nix::libc::tm = std::mem::zeroed();
        if nix::libc::localtime_r(&t, &mut tm).is_null() {
            let day = now % 86_400;
            return (
                (day / 3600) as u32,
                (day / 60 % 60) as u32,
                (day % 60) as u32,
            );
        }
        tm
    };
    (tm.tm_hour as u32, tm.tm_min as u32, tm.tm_sec as u32)
}

/// Copies `reader` to `sink` for service `name` on a thread, until EOF.
pub(crate) fn copy_output(
    name: &str,
    reader: impl Read + Send + 'static,
    sink: &OutputSink,
) -> std::io::Result<JoinHandle<()>> {
    let name = name.to_string();
    let sink = sink.clone();
    std::thread::Builder::new()
        .name(format!("out-{name}"))
        .spawn(move || {
            if let Err(e) = copy_lines(&name, reader, &sink) {
                tracing::warn!("output of service '{name}' lost: {e}");
            }
        })
}

fn copy_lines(name: &str, reader: impl Read, sink: &OutputSink) -> std::io::Result<()> {
    let mut reader = BufReader::new(reader);
    let mut log = match sink {
        OutputSink::LogDir {
            dir,
            max_bytes,
            keep,
        } => Some(RotatingLog::open(
            dir.join(format!("{name}.log")),
            *max_bytes,
            *keep,
        )?),
        OutputSink::Prefixed { .. } => None,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        match (&mut log, sink) {
            (Some(log), _) => log.write_line(&line)?,
            (None, OutputSink::Prefixed { out, width }) => {
                let bytes = prefix_line(local_clock(), name, *width, &line);
                // A poisoned lock only means another copier panicked mid-line.
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                out.write_all(&bytes)?;
                out.flush()?;
            }
            (None, OutputSink::LogDir { .. }) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_and_padded() {
        assert_eq!(
            prefix_line((9, 5, 3), "db", 5, b"ready\n"),
            b"09:05:03 db    | ready\n"
        );
        assert_eq!(
            prefix_line((23, 59, 59), "web", 2, b"no newline"),
            b"23:59:59 web | no newline\n"
        );
    }

    #[test]
    fn clock_is_in_range() {
        let (h, m, s) = local_clock();
        assert!(h < 24 && m < 60 && s < 61);
    }

    #[test]
    fn copier_prefixes_every_line() {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
        let sink = OutputSink::Prefixed {
            out: buf.clone(),
            width: 3,
        };
        copy_output("db", &b"one\ntwo"[..], &sink)
            .unwrap()
            .join()
            .unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<_> = text.lines().map(|l| &l[9..]).collect();
        assert_eq!(lines, ["db  | one", "db  | two"]);
    }
}
