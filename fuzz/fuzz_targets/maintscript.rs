//! Fuzzes the maintainer-script reader: a `.deb`'s postinst (and a file it
//! sources with `.`) is parsed and evaluated as text. Any text must give a
//! list of commands within the reader's budgets, never a panic, a stack
//! overflow or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = cairn_image::configure::read_script_for_fuzzing(text);
});
