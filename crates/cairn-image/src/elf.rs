//! The little of ELF that containerize needs to check the binaries it puts in
//! images: the machine and whether a dynamic loader is required. Only the
//! headers are read, never a whole binary. Hand-written: two fields of a
//! fixed-layout header do not justify an ELF-parsing crate.

use std::io::Read;
use std::path::Path;

/// The ELF header and, in practice, the program headers that follow it.
const HEAD: u64 = 4096;

/// `e_machine` (62 x86-64, 183 aarch64), or `None` for a file that is not ELF.
pub fn machine(path: &Path) -> std::io::Result<Option<u16>> {
    let head = read_head(path)?;
    Ok(head
        .get(0x12..0x14)
        .filter(|_| head.starts_with(b"\x7fELF"))
        .map(|m| u16::from_le_bytes([m[0], m[1]])))
}

/// Whether the ELF64 file at `path` has a PT_INTERP program header, i.e.
/// needs a dynamic loader (and a libc) to run.
pub fn is_dynamic(path: &Path) -> std::io::Result<bool> {
    Ok(has_interpreter(&read_head(path)?))
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD as usize);
    fs_err::File::open(path)?
        .take(HEAD)
        .read_to_end(&mut head)?;
    Ok(head)
}

fn has_interpreter(elf: &[u8]) -> bool {
    let read = |off: usize, len: usize| elf.get(off..off + len);
    let (Some(phoff), Some(entsize), Some(num)) = (read(0x20, 8), read(0x36, 2), read(0x38, 2))
    else {
        return false;
    };
    let phoff = u64::from_le_bytes(phoff.try_into().unwrap_or_default()) as usize;
    let entsize = u16::from_le_bytes(entsize.try_into().unwrap_or_default()) as usize;
    let num = u16::from_le_bytes(num.try_into().unwrap_or_default()) as usize;
    (0..num).any(|i| {
        read(phoff + i * entsize, 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap_or_default()) == 3)
    })
}
