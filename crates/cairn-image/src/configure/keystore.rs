//! The Java trust store: `/etc/ssl/certs/java/cacerts` as
//! `ca-certificates-java` builds it, so the JREs Debian ships (whose
//! `lib/security/cacerts` links there) trust the same CAs as OpenSSL clients.
//!
//! Owns the JKS encoding of trusted-certificate entries and the aliases
//! Debian gives them. It does not decide which certificates are in
//! `/etc/ssl/certs` ([`super::certificates`] hands them over), and writes no
//! private-key entries and no PKCS#12.
//!
//! What Debian does (ca-certificates-java 20230710~deb12u1, bookworm): the
//! `update.d/jks-keystore` hook only queues `+/etc/ssl/certs/NAME.pem` lines
//! and triggers the package. On a first install its postinst queues every
//! `/etc/ssl/certs/*.pem` link into `/usr/share/ca-certificates` or
//! `/usr/local/share/ca-certificates` (`find | sort`), and its jar loads a
//! `JKS` keystore, adds each file's first certificate as a trusted entry
//! under `debian:NAME.pem` (JKS lowercases aliases, so a later name that
//! lowercases the same replaces an earlier one), and stores it with the
//! password `changeit` (`/etc/default/cacerts` can change it; the shipped
//! one does not). Here the same entries are written, with two differences:
//!
//! * The postinst skips the keystore while no `java` is on PATH, and the
//!   JRE's postinst triggers it later; in a configured environment both have
//!   run, and the keystore needs no JRE to build, so it is written whenever
//!   ca-certificates-java is installed.
//! * Every entry is dated 0 (1970-01-01) and entries are sorted by alias,
//!   where Java writes the time of the run in hash-table order: the
//!   configuration is a function of the packages alone (its cache key, and
//!   host activation, carry no build date), and the same packages must give
//!   the same bytes. Java reads the date of a trusted entry only to show it.
//!
//! Given the same `.pem` links, the package's own jar (run by hand on this
//! module's input) writes the same entries byte for byte: the same aliases,
//! tags and certificates, and a file of the same length; only the dates and
//! the order differ.
//!
//! No crate is used for the format: the one on crates.io (`jks`) is young,
//! has one maintainer, and brings rand, getrandom and a PKCS#12 stack for what
//! is, for trusted certificates alone, the 70 lines below. The format is
//! fixed (version 2 of `sun.security.provider.JavaKeyStore`), and the tests
//! check the result with keytool.

use super::{Entry, Note};
use sha1::{Digest as _, Sha1};
use std::collections::BTreeMap;

/// The keystore Debian's JREs read (`lib/security/cacerts` links here).
pub const JAVA_CACERTS: &str = "/etc/ssl/certs/java/cacerts";
/// Its directory (shipped by ca-certificates-java too).
pub const JAVA_CERTS_DIR: &str = "/etc/ssl/certs/java";
/// ca-certificates-java's default store password.
pub const STORE_PASSWORD: &str = "changeit";

const JKS_MAGIC: u32 = 0xFEED_FEED;
const JKS_VERSION: u32 = 2;
const TRUSTED_CERT_TAG: u32 = 2;
/// The entries' creation date, in ms since the epoch (see the module doc).
const CREATED_MS: u64 = 0;
/// The certificate type, `X.509`, as `writeUTF` writes it.
const CERT_TYPE: &[u8] = b"\0\x05X.509";
/// What `JavaKeyStore` hashes after the password, before the contents.
const INTEGRITY_SALT: &[u8] = b"Mighty Aphrodite";

/// Why a certificate is left out of the keystore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoreError {
    #[error("alias '{0}' is longer than the 65535 bytes JKS allows")]
    AliasTooLong(String),
    #[error("the certificate of '{0}' is larger than the 4 GiB JKS allows")]
    CertificateTooLarge(String),
}

/// The alias ca-certificates-java gives `/etc/ssl/certs/NAME.pem`, as JKS
/// stores it: `debian:name.pem` (lowercased like Java's
/// `toLowerCase(Locale.ENGLISH)`, which is Unicode's default mapping).
pub fn alias(pem_name: &str) -> String {
    format!("debian:{pem_name}").to_lowercase()
}

/// A JKS keystore holding one trusted-certificate entry per `(alias, DER)`,
/// protected by `password`. Aliases are lowercased as JKS does; of two that
/// then agree the later wins, as `KeyStore.setCertificateEntry` replaces.
/// Entries JKS cannot encode are left out and returned as errors.
pub fn jks_trust_store<'a>(
    certificates: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    password: &str,
) -> (Vec<u8>, Vec<KeystoreError>) {
    let by_alias: BTreeMap<String, &[u8]> = certificates
        .into_iter()
        .map(|(alias, der)| (alias.to_lowercase(), der))
        .collect();
    let mut errors = Vec::new();
    let encoded: Vec<Vec<u8>> = by_alias
        .iter()
        .filter_map(|(alias, der)| trusted_entry(alias, der).map_err(|e| errors.push(e)).ok())
        .collect();
    let mut out = Vec::new();
    out.extend(JKS_MAGIC.to_be_bytes());
    out.extend(JKS_VERSION.to_be_bytes());
    // At most one entry per certificate file: far below u32::MAX.
    out.extend((encoded.len() as u32).to_be_bytes());
    for entry in encoded {
        out.extend(entry);
    }
    let digest = integrity_digest(password, &out);
    out.extend(digest);
    (out, errors)
}

/// One trusted-certificate entry: tag, alias, date, type, length, DER.
fn trusted_entry(alias: &str, der: &[u8]) -> Result<Vec<u8>, KeystoreError> {
    let mut out = TRUSTED_CERT_TAG.to_be_bytes().to_vec();
    write_java_utf(&mut out, alias).ok_or_else(|| KeystoreError::AliasTooLong(alias.into()))?;
    out.extend(CREATED_MS.to_be_bytes());
    out.extend(CERT_TYPE);
    let len =
        u32::try_from(der.len()).map_err(|_| KeystoreError::CertificateTooLarge(alias.into()))?;
    out.extend(len.to_be_bytes());
    out.extend_from_slice(der);
    Ok(out)
}

/// The trailer: SHA-1 over the password (UTF-16BE, as Java's `char`s),
/// [`INTEGRITY_SALT`], then everything before it.
fn integrity_digest(password: &str, contents: &[u8]) -> [u8; 20] {
    let mut hash = Sha1::new();
    for unit in password.encode_utf16() {
        hash.update(unit.to_be_bytes());
    }
    hash.update(INTEGRITY_SALT);
    hash.update(contents);
    hash.finalize().into()
}

/// Appends `text` as Java's `DataOutput.writeUTF` does: a big-endian u16
/// byte count, then "modified UTF-8" (NUL as two bytes, characters outside
/// the BMP as two three-byte surrogates). `None` when it exceeds 65535 bytes.
fn write_java_utf(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let mut bytes = Vec::with_capacity(text.len());
    for unit in text.encode_utf16() {
        let [hi, lo] = unit.to_be_bytes();
        match unit {
            0x0001..=0x007f => bytes.push(lo),
            0x0000 | 0x0080..=0x07ff => {
                bytes.push(0xc0 | (hi << 2) | (lo >> 6));
                bytes.push(0x80 | (lo & 0x3f));
            }
            _ => {
                bytes.push(0xe0 | (hi >> 4));
                bytes.push(0x80 | ((hi & 0x0f) << 2) | (lo >> 6));
                bytes.push(0x80 | (lo & 0x3f));
            }
        }
    }
    let len = u16::try_from(bytes.len()).ok()?;
    out.extend(len.to_be_bytes());
    out.extend(bytes);
    Some(())
}

/// The entries of the Java trust store for the certificates in
/// `/etc/ssl/certs` (`NAME.pem` -> DER, in name order).
pub(crate) fn java_trust_store(
    pems: &BTreeMap<String, Vec<u8>>,
    notes: &mut Vec<Note>,
) -> Vec<Entry> {
    let aliases: Vec<(String, &[u8])> = pems
        .iter()
        .map(|(name, der)| (alias(name), der.as_slice()))
        .collect();
    let (keystore, errors) = jks_trust_store(
        aliases.iter().map(|(a, der)| (a.as_str(), *der)),
        STORE_PASSWORD,
    );
    notes.extend(errors.into_iter().map(|e| Note {
        package: "ca-certificates-java".into(),
        message: format!("left out of {JAVA_CACERTS}: {e}"),
    }));
    vec![
        Entry::dir(JAVA_CERTS_DIR, 0o755, 0, 0),
        Entry::file(JAVA_CACERTS, 0o644, keystore),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java_utf(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_java_utf(&mut out, text).unwrap_or_else(|| panic!("too long"));
        out
    }

    #[test]
    fn modified_utf8_matches_java_write_utf() {
        assert_eq!(java_utf("X.509"), b"\x00\x05X.509");
        assert_eq!(java_utf(""), b"\x00\x00");
        assert_eq!(java_utf("\0"), b"\x00\x02\xc0\x80");
        assert_eq!(java_utf("é"), b"\x00\x02\xc3\xa9");
        assert_eq!(java_utf("\u{7ff}"), b"\x00\x02\xdf\xbf");
        assert_eq!(java_utf("€"), b"\x00\x03\xe2\x82\xac");
        // U+1F600 is the surrogates D83D DE00, three bytes each.
        assert_eq!(java_utf("😀"), b"\x00\x06\xed\xa0\xbd\xed\xb8\x80");
        assert!(write_java_utf(&mut Vec::new(), &"a".repeat(65_535)).is_some());
        assert!(write_java_utf(&mut Vec::new(), &"a".repeat(65_536)).is_none());
        assert!(write_java_utf(&mut Vec::new(), &"é".repeat(32_768)).is_none());
    }

    #[test]
    fn aliases_are_debian_names_lowercased() {
        assert_eq!(alias("ISRG_Root_X1.pem"), "debian:isrg_root_x1.pem");
        assert_eq!(
            alias("NetLock_Arany_=Class_Gold=_Főtanúsítvány.pem"),
            "debian:netlock_arany_=class_gold=_főtanúsítvány.pem"
        );
    }

    #[test]
    fn layout_and_digest_follow_java_key_store() {
        let (bytes, errors) = jks_trust_store([("B", &b"\x30\x00"[..]), ("a", b"\x30")], "pw");
        assert!(errors.is_empty());
        let body = &bytes[..bytes.len() - 20];
        let mut expected = b"\xfe\xed\xfe\xed\0\0\0\x02\0\0\0\x02".to_vec();
        for (alias, der) in [("a", &b"\x30"[..]), ("b", b"\x30\x00")] {
            expected.extend(b"\0\0\0\x02\0\x01");
            expected.extend(alias.as_bytes());
            expected.extend([0; 8]);
            expected.extend(b"\0\x05X.509");
            expected.extend((der.len() as u32).to_be_bytes());
            expected.extend(der);
        }
        assert_eq!(body, expected);
        let mut hash = Sha1::new();
        hash.update(b"\0p\0w");
        hash.update(b"Mighty Aphrodite");
        hash.update(body);
        assert_eq!(bytes[body.len()..], hash.finalize()[..]);
    }

    #[test]
    fn a_later_alias_that_lowercases_the_same_wins() {
        let (bytes, _) = jks_trust_store([("X.pem", &b"\x01"[..]), ("x.pem", b"\x02")], "p");
        let (expected, _) = jks_trust_store([("x.pem", &b"\x02"[..])], "p");
        assert_eq!(bytes, expected);
    }
}
