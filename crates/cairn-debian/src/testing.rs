//! Test fixtures: throwaway OpenPGP keys and signed files made with gpg, and a
//! tiny archive tree, so no binary fixture is checked in.

use cairn_store::sha256_hex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `CI=true` (or `CI=1`) is set: missing tools then fail the test.
pub fn in_ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("TRUE") | Ok("True")
    )
}

/// Says that the calling test skips for want of gpg, or panics in CI.
fn skip_without_gpg(in_ci: bool) {
    if in_ci {
        panic!("gpg is not installed, but CI=true requires it (install gnupg in .ci/run)");
    }
    eprintln!("skipping: gpg is not installed");
}

/// A gpg home in a temp dir holding one fresh signing key.
pub struct TestKey {
    pub home: tempfile::TempDir,
    pub uid: String,
}

impl TestKey {
    /// Generates a key, or returns `None` (after saying why) when gpg is
    /// missing. With `CI=true` a missing gpg panics instead: a signature test
    /// that silently skips in CI proves nothing (as `require_tool` in the
    /// end-to-end support does).
    pub fn generate(uid: &str) -> Option<TestKey> {
        if Command::new("gpg").arg("--version").output().is_err() {
            skip_without_gpg(in_ci());
            return None;
        }
        let home = tempfile::tempdir().expect("tempdir");
        let key = TestKey {
            home,
            uid: uid.to_string(),
        };
        key.gpg(&["--quick-gen-key", uid, "rsa2048", "sign", "never"]);
        Some(key)
    }

    /// Runs gpg in this home, panicking with its stderr on failure.
    pub fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The public key, binary (`armor == false`) or ASCII-armored.
    pub fn export(&self, armor: bool) -> Vec<u8> {
        let mut args = vec!["--export"];
        if armor {
            args.push("--armor");
        }
        args.push(&self.uid);
        self.gpg(&args)
    }

    /// `text` cleartext-signed by this key, and by `extra` keys when given.
    pub fn clearsign(&self, text: &str, extra: &[&TestKey]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("Release");
        std::fs::write(&input, text).expect("write");
        let output = dir.path().join("InRelease");
        // A second signer's secret key must live in the same home for one gpg
        // call to emit several signatures, as Debian's InRelease files have.
        for other in extra {
            let secret = other.gpg(&["--export-secret-keys", &other.uid]);
            let path = dir.path().join("secret.gpg");
            std::fs::write(&path, secret).expect("write");
            self.gpg(&["--import", path.to_str().expect("utf-8 path")]);
        }
        let mut args = vec!["--digest-algo", "SHA512", "--clearsign", "-u", &self.uid];
        for other in extra {
            args.extend(["-u", other.uid.as_str()]);
        }
        let out = output.to_str().expect("utf-8 path");
        args.extend(["-o", out, input.to_str().expect("utf-8 path")]);
        self.gpg(&args);
        std::fs::read(&output).expect("read InRelease")
    }
}

/// A `.deb` stand-in: the client checks digests, not the archive format.
pub struct FakeDeb {
    pub name: &'static str,
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl FakeDeb {
    pub fn new(name: &'static str, version: &str) -> FakeDeb {
        FakeDeb {
            name,
            filename: format!("pool/main/{}/{name}/{name}_{version}_amd64.deb", &name[..1]),
            bytes: format!("!<arch>\nfake {name} {version}\n")
                .repeat(100)
                .into_bytes(),
        }
    }
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// Writes a signed one-suite archive under `root`: `dists/bookworm/InRelease`
/// listing `main/binary-amd64/Packages.xz`, with a paragraph per deb (each
/// depending on the previous one) and the debs themselves in `pool/`.
/// Returns the Packages text.
pub fn write_archive(root: &Path, key: &TestKey, debs: &[FakeDeb]) -> String {
    let mut packages = String::new();
    for (i, deb) in debs.iter().enumerate() {
        let path = root.join(&deb.filename);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &deb.bytes).expect("write deb");
        let depends = match i {
            0 => String::new(),
            _ => format!("Depends: {} (>= 1.0)\n", debs[i - 1].name),
        };
        packages += &format!(
            "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n{depends}\
Filename: {file}\nSize: {size}\nSHA256: {sha}\nDescription: the {name} tool\n long text\n\n",
            name = deb.name,
            file = deb.filename,
            size = deb.bytes.len(),
            sha = deb.sha256(),
        );
    }
    let dists = root.join("dists/bookworm");
    let index_dir = dists.join("main/binary-amd64");
    std::fs::create_dir_all(&index_dir).expect("mkdir");
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(packages.as_bytes()).expect("xz");
    let xz = xz.finish().expect("xz");
    std::fs::write(index_dir.join("Packages.xz"), &xz).expect("write");
    let mut listed = format!(
        " {} {} main/binary-amd64/Packages.xz\n",
        sha256_hex(&xz),
        xz.len()
    );
    // What `Contents` lists for the packages' commands (in the format of
    // Debian's `main/Contents-ARCH.gz`), one per package plus one shared.
    for (file, text) in CONTENTS {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).expect("gzip");
        let gz = gz.finish().expect("gzip");
        std::fs::write(dists.join(file), &gz).expect("write");
        listed += &format!(" {} {} {file}\n", sha256_hex(&gz), gz.len());
    }
    let release = format!(
        "Origin: Test\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 Aug 2024 09:13:17 UTC\n\
Architectures: amd64\nComponents: main\nSHA256:\n{listed}"
    );
    std::fs::write(dists.join("InRelease"), key.clearsign(&release, &[])).expect("write");
    packages
}

/// The `Contents` files [`write_archive`] publishes, relative to `dists/bookworm`.
pub const CONTENTS: [(&str, &str); 2] = [
    (
        "main/Contents-amd64.gz",
        "usr/bin/hello                     devel/hello\n\
         usr/share/doc/hello/copyright     devel/hello\n\
         usr/bin/greet                     devel/hello,libs/libhello\n",
    ),
    (
        "main/Contents-all.gz",
        "usr/sbin/hello-admin tool         admin/libhello\n",
    ),
];

/// The `file://` URL of a local directory.
pub fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// The binary public key of `key`, written to `dir/key.gpg`.
pub fn keyring_file(dir: &Path, key: &TestKey) -> PathBuf {
    let path = dir.join("key.gpg");
    std::fs::write(&path, key.export(false)).expect("write keyring");
    path
}

/// Writes a `.deb` at `path` from raw `control.tar` and `data.tar` bytes, by
/// hand: dpkg-deb refuses to build the hostile archives tests need.
pub fn write_raw_deb(path: &Path, control: Vec<u8>, data: Vec<u8>) {
    write_deb_members(path, [("control.tar", control), ("data.tar", data)]);
}

/// A tar of `(path, contents)` regular files, mode 0644: a control.tar or a
/// plain data.tar for hand-built `.deb`s.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, *body).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Writes a `.deb` at `path`: `debian-binary`, then `members` (name, bytes)
/// as they are, e.g. an already compressed `data.tar.xz`.
pub fn write_deb_members<const N: usize>(path: &Path, members: [(&str, Vec<u8>); N]) {
    let mut ar = ar::Builder::new(fs_err::File::create(path).unwrap());
    let members = std::iter::once(("debian-binary", b"2.0\n".to_vec())).chain(members);
    for (name, body) in members {
        let header = ar::Header::new(name.as_bytes().to_vec(), body.len() as u64);
        ar.append(&header, body.as_slice()).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_gpg_skips_locally() {
        skip_without_gpg(false);
    }

    #[test]
    #[should_panic(expected = "CI=true requires it")]
    fn missing_gpg_fails_in_ci() {
        skip_without_gpg(true);
    }
}
