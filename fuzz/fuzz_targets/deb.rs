//! Fuzzes the `.deb` readers: the ar container, the compressed control and
//! data tar members, and path normalisation of their entries. The readers take
//! a path (they stream from disk), so each input is written to one scratch file
//! per process; seeds are real packages built by `.ci/fuzz` with dpkg-deb.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static SCRATCH: LazyLock<PathBuf> = LazyLock::new(|| {
    // tmpfs when there is one: the file is rewritten for every input.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("cairn-fuzz-{}.deb", std::process::id()))
});

fuzz_target!(|bytes: &[u8]| {
    std::fs::write(&*SCRATCH, bytes).expect("the scratch file is writable");
    let _ = cairn_debian::read_control(&SCRATCH);
    let _ = cairn_debian::visit_data(&SCRATCH, |_, reader| {
        // Read every entry to the end, as the unpacker and layer writer do.
        std::io::copy(reader, &mut std::io::sink())
            .map(|_| ())
            .map_err(|e| cairn_debian::deb::read_error(&SCRATCH, e))
    });
});
