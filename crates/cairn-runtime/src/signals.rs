//! Signals for the supervisors, turned into channel messages.
//!
//! signal-hook installs handlers that only write to a self-pipe, and one
//! thread turns them into messages for the supervisor's loop, so no logic runs
//! in signal context. Handlers (unlike a blocked mask, which
//! `std::process::Command` children would inherit) are reset by exec, so
//! services start with default signal behaviour. As PID 1, a signal without
//! a handler is ignored by the kernel; these handlers make `docker stop` work.

use std::sync::mpsc::Sender;

use nix::sys::signal::Signal;
use signal_hook::iterator::Signals;

/// The signals the supervisors react to.
pub(crate) const HANDLED: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGCHLD,
];

/// Starts a thread that sends each [`HANDLED`] signal, wrapped by `wrap`, to `tx`.
pub(crate) fn route_signals<E: Send + 'static>(
    tx: Sender<E>,
    wrap: fn(Signal) -> E,
) -> std::io::Result<()> {
    let mut signals = Signals::new(HANDLED.map(|s| s as i32))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for raw in signals.forever() {
                let Ok(signal) = Signal::try_from(raw) else {
                    continue;
                };
                if tx.send(wrap(signal)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}
