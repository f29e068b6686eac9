//! OpenPGP keyrings that may sign an archive: Debian's archive keys shipped
//! inside cairn, and keyring files named by the manifest.
//!
//! Owns loading keys only; checking signatures with them is [`crate::release`].
//!
//! A keyring path comes from the manifest, so it is read only if it is a
//! regular file of at most [`MAX_KEYRING_BYTES`]: `keyring = "/dev/zero"` used
//! to grow until the OOM killer stopped it.

use crate::error::{ArchiveError, Result};
use pgp::composed::{Deserializable, SignedPublicKey};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest keyring file cairn reads. Archive keyrings are a few KiB to a
/// few hundred KiB; even Debian's full developer keyring is well below this.
pub const MAX_KEYRING_BYTES: u64 = 16 * 1024 * 1024;

/// Where the OpenPGP keys that may sign an archive's InRelease come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyring {
    /// The Debian archive keys shipped inside cairn (bookworm and trixie).
    DebianArchive,
    /// A keyring file (binary or ASCII-armored).
    File(PathBuf),
}

/// Debian's archive keyrings (binary OpenPGP), embedded so a fresh machine can
/// verify deb.debian.org without any setup. Names are for error messages.
const DEBIAN_ARCHIVE_KEYRINGS: &[(&str, &[u8])] = &[
    (
        "debian-archive-bookworm-automatic.gpg",
        include_bytes!("../../../data/keyrings/debian-archive-bookworm-automatic.gpg"),
    ),
    (
        "debian-archive-bookworm-security-automatic.gpg",
        include_bytes!("../../../data/keyrings/debian-archive-bookworm-security-automatic.gpg"),
    ),
    (
        "debian-archive-bookworm-stable.gpg",
        include_bytes!("../../../data/keyrings/debian-archive-bookworm-stable.gpg"),
    ),
    (
        "debian-archive-trixie-automatic.gpg",
        include_bytes!("../../../data/keyrings/debian-archive-trixie-automatic.gpg"),
    ),
    (
        "debian-archive-trixie-security-automatic.gpg",
        include_bytes!("../../../data/keyrings/debian-archive-trixie-security-automatic.gpg"),
    ),
    (
        "debian-archive-trixie-stable.gpg",
        include_bytes!("../../../data/keyrings/debian-archive-trixie-stable.gpg"),
    ),
];

impl Keyring {
    /// Loads this keyring's public keys.
    pub fn load(&self) -> Result<Vec<SignedPublicKey>> {
        match self {
            Keyring::DebianArchive => {
                let mut keys = Vec::new();
                for (name, bytes) in DEBIAN_ARCHIVE_KEYRINGS {
                    keys.extend(parse_keys(bytes, &format!("<built-in {name}>"))?);
                }
                Ok(keys)
            }
            Keyring::File(path) => {
                let bytes = read_keyring_file(path)?;
                parse_keys(&bytes, &path.display().to_string())
            }
        }
    }
}

/// The bytes of a keyring file: a regular file, at most [`MAX_KEYRING_BYTES`].
fn read_keyring_file(path: &Path) -> Result<Vec<u8>> {
    let error = |reason: String| ArchiveError::Keyring {
        path: path.display().to_string(),
        reason,
    };
    let not_a_file =
        || error("not a regular file (a device, FIFO or directory cannot be a keyring)".into());
    // Checked before opening, since opening a FIFO blocks, and after, in case
    // the path was swapped in between.
    if !fs_err::metadata(path)?.is_file() {
        return Err(not_a_file());
    }
    let file = fs_err::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_a_file());
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEYRING_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEYRING_BYTES {
        return Err(error(format!(
            "larger than {} MiB, which no archive keyring is; check the path",
            MAX_KEYRING_BYTES / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// Loads the keys of every keyring in `keyrings`.
pub fn load_all(keyrings: &[Keyring]) -> Result<Vec<SignedPublicKey>> {
    let mut keys = Vec::new();
    for keyring in keyrings {
        keys.extend(keyring.load()?);
    }
    Ok(keys)
}

/// Parses a binary or ASCII-armored keyring holding one or more public keys.
/// `name` identifies the keyring in errors.
pub fn parse_keys(bytes: &[u8], name: &str) -> Result<Vec<SignedPublicKey>> {
    let error = |reason: String| ArchiveError::Keyring {
        path: name.to_string(),
        reason,
    };
    let keys: Vec<SignedPublicKey> = if is_armored(bytes) {
        let (keys, _headers) = SignedPublicKey::from_armor_many(bytes)
            .map_err(|e| error(format!("invalid armored keyring: {e}")))?;
        keys.collect::<Result<_, _>>()
            .map_err(|e| error(format!("invalid key: {e}")))?
    } else {
        SignedPublicKey::from_bytes_many(bytes)
            .map_err(|e| error(format!("invalid keyring: {e}")))?
            .collect::<Result<_, _>>()
            .map_err(|e| error(format!("invalid key: {e}")))?
    };
    if keys.is_empty() {
        return Err(error("no OpenPGP public keys found".to_string()));
    }
    Ok(keys)
}

fn is_armored(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN PGP")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::types::KeyDetails;

    /// The shipped archive keys (bookworm's and trixie's) must not have
    /// expired: an expired key would fail every verification. Read with gpg,
    /// the reference implementation, so this checks the data as Debian sees it.
    #[test]
    fn shipped_archive_keys_have_not_expired() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/keyrings");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("data/keyrings") {
            let path = entry.expect("entry").path();
            let out = match std::process::Command::new("gpg")
                .args(["--show-keys", "--with-colons"])
                .arg(&path)
                .output()
            {
                Ok(out) => out,
                Err(_) if std::env::var("CI").as_deref() != Ok("true") => {
                    eprintln!("skipping: gpg is not installed");
                    return;
                }
                Err(e) => panic!("gpg is needed in CI: {e}"),
            };
            let text = String::from_utf8_lossy(&out.stdout);
            for line in text.lines().filter(|l| l.starts_with("pub:")) {
                let fields: Vec<&str> = line.split(':').collect();
                if let Some(expires) = fields.get(6).and_then(|f| f.parse::<u64>().ok()) {
                    assert!(
                        expires > now,
                        "{}: key {} expired",
                        path.display(),
                        fields[4]
                    );
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 6,
            "only {checked} keys found in {}",
            dir.display()
        );
    }

    #[test]
    fn embedded_debian_keys_parse() {
        let keys = Keyring::DebianArchive.load().unwrap();
        assert!(keys.len() >= 6, "only {} keys", keys.len());
        // The bookworm automatic archive key, as listed on ftp-master.debian.org/keys.html.
        let fingerprints: Vec<String> = keys
            .iter()
            .map(|k| hex::encode_upper(k.fingerprint().as_bytes()))
            .collect();
        assert!(
            fingerprints.contains(&"B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8".to_string()),
            "{fingerprints:?}"
        );
    }

    #[test]
    fn rejects_garbage_and_empty_keyrings() {
        let err = parse_keys(b"not a key", "junk.gpg").unwrap_err();
        assert!(err.to_string().contains("junk.gpg"), "{err}");
        let err = parse_keys(b"", "empty.gpg").unwrap_err();
        assert!(err.to_string().contains("no OpenPGP public keys"), "{err}");
    }

    #[test]
    fn missing_keyring_file_names_the_path() {
        let err = Keyring::File("/nonexistent/k.gpg".into())
            .load()
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/k.gpg"), "{err}");
    }

    #[test]
    fn special_and_oversized_keyring_files_are_refused() {
        for special in ["/dev/zero", "/dev/urandom", "/"] {
            let err = Keyring::File(special.into()).load().unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(special) && text.contains("not a regular file"),
                "{text}"
            );
        }
        let tmp = tempfile::tempdir().unwrap();
        let big = tmp.path().join("big.gpg");
        let file = std::fs::File::create(&big).unwrap();
        // Sparse: costs no disk, but reads as MAX + 1 bytes.
        file.set_len(MAX_KEYRING_BYTES + 1).unwrap();
        let err = Keyring::File(big).load().unwrap_err();
        assert!(err.to_string().contains("larger than 16 MiB"), "{err}");
    }
}
