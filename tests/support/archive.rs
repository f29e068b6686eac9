//! A signed local Debian archive built by the test itself.
//!
//! Packages are built with `dpkg-deb`, indexed with `apt-ftparchive` and the
//! `InRelease` is clear-signed by a throwaway gpg key, so cairn reads exactly
//! the formats Debian publishes and no binary fixture is checked in. The
//! archive also knows how to break itself (tampered index, body, `.deb`, wrong
//! key) for the verification tests. It does not serve files: see
//! [`crate::server`].

use crate::tools::run_checked;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The suite every local archive publishes (also its `Suite:` field).
pub const SUITE: &str = "stable";
/// The `Codename:` of every local archive.
pub const CODENAME: &str = "cairn-test";
/// The only component.
pub const COMPONENT: &str = "main";

/// One binary package to build. Relationship fields use Debian syntax and are
/// left out of `control` when empty.
#[derive(Debug, Clone, PartialEq)]
pub struct DebSpec {
    pub name: String,
    pub version: String,
    /// `amd64` or `all`.
    pub arch: String,
    pub depends: String,
    pub pre_depends: String,
    pub provides: String,
    pub conflicts: String,
    pub breaks: String,
    /// `same`, `foreign` or `allowed`; empty for none.
    pub multi_arch: String,
    pub essential: bool,
    /// `required`, `important`, `standard`, `optional` or `extra`.
    pub priority: String,
    /// The first line of `Description:`.
    pub description: String,
    /// The lines after it, without their leading space (an empty line is
    /// written ` .`); empty for none.
    pub long_description: String,
    /// `Homepage:`; empty for none.
    pub homepage: String,
    /// `Suggests:`; empty for none.
    pub suggests: String,
    /// Maintainer scripts (`postinst`, `preinst`, ...) and their text.
    pub scripts: Vec<(String, String)>,
    /// `Source:` (`name` or `name (version)`); empty for none.
    pub source: String,
    /// `(absolute path, contents, mode)` of each file in the package.
    pub files: Vec<(String, Vec<u8>, u32)>,
}

impl DebSpec {
    /// An `amd64` package with no relations, no files and a generated description.
    pub fn new(name: &str, version: &str) -> DebSpec {
        DebSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: "amd64".to_owned(),
            depends: String::new(),
            pre_depends: String::new(),
            provides: String::new(),
            conflicts: String::new(),
            breaks: String::new(),
            multi_arch: String::new(),
            essential: false,
            priority: "optional".to_owned(),
            description: format!("cairn test package {name}"),
            long_description: String::new(),
            homepage: String::new(),
            suggests: String::new(),
            scripts: Vec::new(),
            source: String::new(),
            files: Vec::new(),
        }
    }

    /// Like [`DebSpec::new`] plus an executable `/usr/bin/<name>` that prints
    /// `<name> <version>`, so tests can run what they installed.
    pub fn with_program(name: &str, version: &str) -> DebSpec {
        let script = format!("#!/bin/sh\necho \"{name} {version}\"\n");
        DebSpec::new(name, version).file(&format!("/usr/bin/{name}"), script.as_bytes(), 0o755)
    }

    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.to_owned();
        self
    }
    pub fn depends(mut self, field: &str) -> Self {
        self.depends = field.to_owned();
        self
    }
    pub fn pre_depends(mut self, field: &str) -> Self {
        self.pre_depends = field.to_owned();
        self
    }
    pub fn provides(mut self, field: &str) -> Self {
        self.provides = field.to_owned();
        self
    }
    pub fn conflicts(mut self, field: &str) -> Self {
        self.conflicts = field.to_owned();
        self
    }
    pub fn breaks(mut self, field: &str) -> Self {
        self.breaks = field.to_owned();
        self
    }
    pub fn multi_arch(mut self, value: &str) -> Self {
        self.multi_arch = value.to_owned();
        self
    }
    pub fn essential(mut self) -> Self {
        self.essential = true;
        self
    }
    pub fn priority(mut self, value: &str) -> Self {
        self.priority = value.to_owned();
        self
    }
    pub fn description(mut self, summary: &str) -> Self {
        self.description = summary.to_owned();
        self
    }
    pub fn source(mut self, field: &str) -> Self {
        self.source = field.to_owned();
        self
    }
    pub fn long_description(mut self, text: &str) -> Self {
        self.long_description = text.to_owned();
        self
    }
    pub fn homepage(mut self, url: &str) -> Self {
        self.homepage = url.to_owned();
        self
    }
    pub fn suggests(mut self, field: &str) -> Self {
        self.suggests = field.to_owned();
        self
    }
    /// Adds a maintainer script (`postinst`, ...), made executable.
    pub fn script(mut self, name: &str, text: &str) -> Self {
        self.scripts.push((name.to_owned(), text.to_owned()));
        self
    }

    /// The `Description:` value: the summary, then the long lines as
    /// continuation lines.
    pub fn description_field(&self) -> String {
        let mut value = self.description.clone();
        for line in self.long_description.lines() {
            value.push_str(if line.trim().is_empty() {
                "\n ."
            } else {
                "\n "
            });
            value.push_str(line.trim_end());
        }
        value
    }
    /// Adds a file at absolute `path`.
    pub fn file(mut self, path: &str, contents: &[u8], mode: u32) -> Self {
        self.files.push((path.to_owned(), contents.to_vec(), mode));
        self
    }

    /// The `DEBIAN/control` text.
    pub fn control(&self) -> String {
        let mut out = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\n",
            self.name, self.version, self.arch
        );
        let description = self.description_field();
        let optional = [
            ("Source", self.source.as_str()),
            ("Multi-Arch", self.multi_arch.as_str()),
            ("Essential", if self.essential { "yes" } else { "" }),
            ("Priority", self.priority.as_str()),
            ("Section", "misc"),
            ("Maintainer", "cairn tests <test@example.invalid>"),
            ("Pre-Depends", self.pre_depends.as_str()),
            ("Depends", self.depends.as_str()),
            ("Provides", self.provides.as_str()),
            ("Conflicts", self.conflicts.as_str()),
            ("Breaks", self.breaks.as_str()),
            ("Suggests", self.suggests.as_str()),
            ("Homepage", self.homepage.as_str()),
            ("Description", description.as_str()),
        ];
        for (field, value) in optional.into_iter().filter(|(_, v)| !v.is_empty()) {
            out.push_str(&format!("{field}: {value}\n"));
        }
        out
    }

    /// `pool/main/<prefix>/<name>/<name>_<version>_<arch>.deb`, as Debian lays it
    /// out (`lib*` packages get a four-letter prefix; the epoch is not in the name).
    pub fn pool_path(&self) -> String {
        let prefix = if self.name.starts_with("lib") && self.name.len() > 3 {
            &self.name[..4]
        } else {
            &self.name[..1]
        };
        let version = self
            .version
            .split_once(':')
            .map_or(&*self.version, |(_, v)| v);
        format!(
            "pool/{COMPONENT}/{prefix}/{}/{}_{version}_{}.deb",
            self.name, self.name, self.arch
        )
    }
}

/// A Debian archive on disk, with its signing key.
#[derive(Debug)]
pub struct LocalArchive {
    root: PathBuf,
    /// Holds `gnupg/` (the signing key's home) and `keyring.gpg`; kept outside
    /// `root` so the server never exposes the secret key, and short so gpg-agent's
    /// socket path stays under the 108-byte limit.
    keys: tempfile::TempDir,
    specs: Vec<DebSpec>,
    /// Publish as Debian does: `Packages` with the summary and
    /// `Description-md5` only, the text in `main/i18n/Translation-en`.
    split_descriptions: bool,
}

impl LocalArchive {
    /// Builds every package in `specs` into `dir` (created if missing), indexes
    /// and signs the archive.
    pub fn build(dir: &Path, specs: &[DebSpec]) -> LocalArchive {
        LocalArchive::build_with(dir, specs, false)
    }

    /// Like [`LocalArchive::build`], publishing descriptions as Debian does:
    /// only summaries and `Description-md5` in `Packages`, the long texts in
    /// a signed-listed `main/i18n/Translation-en` (and `.xz`).
    pub fn build_split_descriptions(dir: &Path, specs: &[DebSpec]) -> LocalArchive {
        LocalArchive::build_with(dir, specs, true)
    }

    fn build_with(dir: &Path, specs: &[DebSpec], split_descriptions: bool) -> LocalArchive {
        fs_err::create_dir_all(dir).expect("create archive dir");
        let keys = tempfile::Builder::new()
            .prefix("cairn-keys")
            .tempdir()
            .expect("create key dir");
        let mut archive = LocalArchive {
            root: dir.to_path_buf(),
            keys,
            specs: Vec::new(),
            split_descriptions,
        };
        generate_key(&archive.gnupg_home());
        export_public_key(&archive.gnupg_home(), &archive.keyring());
        archive.publish(specs);
        archive
    }

    /// The directory to serve.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The binary OpenPGP keyring holding the public signing key.
    pub fn keyring(&self) -> PathBuf {
        self.keys.path().join("keyring.gpg")
    }

    /// The suite name to put in `[sources]`.
    pub fn suite(&self) -> &str {
        SUITE
    }

    /// Every package published so far.
    pub fn specs(&self) -> &[DebSpec] {
        &self.specs
    }

    /// `dists/<suite>`.
    pub fn dists(&self) -> PathBuf {
        self.root.join("dists").join(SUITE)
    }

    /// `dists/<suite>/main/binary-amd64`.
    pub fn binary_dir(&self) -> PathBuf {
        self.dists().join(COMPONENT).join("binary-amd64")
    }

    /// The `.deb` file of `spec` in the pool.
    pub fn deb_path(&self, spec: &DebSpec) -> PathBuf {
        self.root.join(spec.pool_path())
    }

    /// Adds packages (e.g. a newer version) and re-indexes and re-signs the archive.
    pub fn publish(&mut self, specs: &[DebSpec]) {
        for spec in specs {
            build_deb(spec, &self.deb_path(spec));
            self.specs.push(spec.clone());
        }
        self.write_packages();
        self.write_release();
        clearsign(&self.gnupg_home(), &self.dists());
    }

    /// Changes `Packages`, `Packages.gz` and `Packages.xz` after signing (a
    /// description is altered and the files recompressed, so only the digests in
    /// `InRelease` can tell).
    pub fn tamper_packages(&self) {
        let plain = self.binary_dir().join("Packages");
        let text = fs_err::read_to_string(&plain).expect("read Packages");
        let tampered = text.replacen("Description: ", "Description: tampered ", 1);
        assert_ne!(text, tampered, "Packages has no Description to tamper with");
        fs_err::write(&plain, tampered).expect("write Packages");
        compress_packages(&self.binary_dir());
    }

    /// Changes one hex digit of the first SHA256 entry in the signed body of
    /// `InRelease`, leaving the signature as it was.
    pub fn tamper_inrelease(&self) {
        let path = self.dists().join("InRelease");
        let text = fs_err::read_to_string(&path).expect("read InRelease");
        let start = text
            .find("\nSHA256:\n ")
            .expect("InRelease has a SHA256 list")
            + 10;
        let mut bytes = text.into_bytes();
        bytes[start] = if bytes[start] == b'0' { b'1' } else { b'0' };
        fs_err::write(&path, bytes).expect("write InRelease");
    }

    /// Flips one byte in the middle of every `.deb` of package `name`.
    pub fn tamper_deb(&self, name: &str) {
        let specs: Vec<_> = self.specs.iter().filter(|s| s.name == name).collect();
        assert!(!specs.is_empty(), "no package '{name}' in the archive");
        for spec in specs {
            let path = self.deb_path(spec);
            let mut bytes = fs_err::read(&path).expect("read .deb");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            fs_err::write(&path, bytes).expect("write .deb");
        }
    }

    /// Re-signs `InRelease` with a freshly generated key that is not in
    /// [`LocalArchive::keyring`].
    pub fn sign_with_other_key(&self) {
        let other = self.keys.path().join("other-gnupg");
        generate_key(&other);
        clearsign(&other, &self.dists());
    }

    fn gnupg_home(&self) -> PathBuf {
        self.keys.path().join("gnupg")
    }

    /// `dists/<suite>/main/i18n/Translation-en`, written when descriptions are split.
    pub fn translation_path(&self) -> PathBuf {
        self.dists()
            .join(COMPONENT)
            .join("i18n")
            .join("Translation-en")
    }

    fn write_packages(&self) {
        let dir = self.binary_dir();
        fs_err::create_dir_all(&dir).expect("create binary-amd64");
        let long = format!(
            "APT::FTPArchive::LongDescription={}",
            !self.split_descriptions
        );
        let output = run_checked(
            Command::new("apt-ftparchive")
                .args(["-o", &long, "packages", "pool"])
                .current_dir(&self.root),
        );
        let packages = String::from_utf8(output.stdout).expect("Packages is UTF-8");
        fs_err::write(dir.join("Packages"), &packages).expect("write Packages");
        compress_packages(&dir);
        if self.split_descriptions {
            self.write_translation(&packages);
        }
        self.write_contents();
    }

    /// One paragraph per distinct description, keyed by the md5 that
    /// apt-ftparchive wrote into `Packages`, as Debian's archive has it.
    fn write_translation(&self, packages: &str) {
        let mut text = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for paragraph in packages.split("\n\n") {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(str::to_owned)
            };
            let (Some(name), Some(md5)) = (field("Package"), field("Description-md5")) else {
                continue;
            };
            let Some(spec) = self.specs.iter().find(|s| s.name == name) else {
                continue;
            };
            if seen.insert(md5.clone()) {
                text.push_str(&format!(
                    "Package: {name}\nDescription-md5: {md5}\nDescription-en: {}\n\n",
                    spec.description_field()
                ));
            }
        }
        let path = self.translation_path();
        fs_err::create_dir_all(path.parent().expect("i18n dir")).expect("create i18n");
        fs_err::write(&path, text).expect("write Translation-en");
        let output =
            fs_err::File::create(path.with_extension("xz")).expect("create Translation-en.xz");
        let input = fs_err::File::open(&path).expect("open Translation-en");
        run_checked(
            Command::new("xz")
                .args(["-9", "-c"])
                .stdin(Stdio::from(std::fs::File::from(input)))
                .stdout(Stdio::from(std::fs::File::from(output))),
        );
    }

    /// `dists/<suite>/main/Contents-amd64.gz`, as Debian publishes it (which
    /// package ships which file), for `cairn provides` and the hints.
    fn write_contents(&self) {
        let output = run_checked(
            Command::new("apt-ftparchive")
                .args(["contents", "pool"])
                .current_dir(&self.root),
        );
        let path = self.dists().join(COMPONENT).join("Contents-amd64.gz");
        let output_file = fs_err::File::create(&path).expect("create Contents");
        let mut gzip = Command::new("gzip")
            .args(["-9n", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(std::fs::File::from(output_file)))
            .spawn()
            .expect("run gzip");
        std::io::Write::write_all(&mut gzip.stdin.take().expect("stdin"), &output.stdout)
            .expect("write to gzip");
        assert!(gzip.wait().expect("gzip").success(), "gzip failed");
    }

    fn write_release(&self) {
        let dists = self.dists();
        for stale in ["Release", "InRelease"] {
            let _ = fs_err::remove_file(dists.join(stale));
        }
        let field = |name: &str, value: &str| format!("APT::FTPArchive::Release::{name}={value}");
        let output = run_checked(
            Command::new("apt-ftparchive")
                .args(["-o", &field("Origin", "cairn-test")])
                .args(["-o", &field("Label", "cairn-test")])
                .args(["-o", &field("Suite", SUITE)])
                .args(["-o", &field("Codename", CODENAME)])
                .args(["-o", &field("Architectures", "amd64")])
                .args(["-o", &field("Components", COMPONENT)])
                .arg("release")
                .arg(&dists),
        );
        fs_err::write(dists.join("Release"), output.stdout).expect("write Release");
    }
}

impl Drop for LocalArchive {
    /// Stops the gpg-agents the key homes started, so test runs leave no daemons.
    fn drop(&mut self) {
        for home in [self.gnupg_home(), self.keys.path().join("other-gnupg")] {
            if home.exists() {
                // Bounded: on a loaded machine `gpgconf --kill` has been seen
                // to hang in gpg-connect-agent, which would hang the test run.
                let child = Command::new("gpgconf")
                    .args(["--kill", "all"])
                    .env("GNUPGHOME", &home)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
                if let Ok(mut child) = child {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    while matches!(child.try_wait(), Ok(None))
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

/// Builds `spec` into `out` with `dpkg-deb --build --root-owner-group`.
fn build_deb(spec: &DebSpec, out: &Path) {
    let staging = tempfile::tempdir().expect("create staging dir");
    let tree = staging.path().join("root");
    let debian = tree.join("DEBIAN");
    fs_err::create_dir_all(&debian).expect("create DEBIAN");
    fs_err::write(debian.join("control"), spec.control()).expect("write control");
    for (name, text) in &spec.scripts {
        write_file_with_mode(&tree, &format!("/DEBIAN/{name}"), text.as_bytes(), 0o755);
    }
    for (path, contents, mode) in &spec.files {
        write_file_with_mode(&tree, path, contents, *mode);
    }
    normalise_dir_modes(&tree);
    fs_err::create_dir_all(out.parent().expect("pool path has a parent")).expect("create pool dir");
    run_checked(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&tree)
            .arg(out)
            .stdout(Stdio::null()),
    );
}

fn write_file_with_mode(tree: &Path, path: &str, contents: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let relative = path.trim_start_matches('/');
    assert!(
        !relative.is_empty() && !relative.split('/').any(|s| s == ".."),
        "bad file path in DebSpec: {path}"
    );
    let target = tree.join(relative);
    fs_err::create_dir_all(target.parent().expect("file has a parent")).expect("create dirs");
    fs_err::write(&target, contents).expect("write package file");
    fs_err::set_permissions(&target, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// dpkg-deb rejects a `DEBIAN` directory with group/world-writable modes, and a
/// restrictive umask would leak into the package; pin every directory to 0755.
fn normalise_dir_modes(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    for entry in fs_err::read_dir(dir).expect("read staging dir") {
        let entry = entry.expect("read staging entry");
        if entry.file_type().expect("file type").is_dir() {
            normalise_dir_modes(&entry.path());
        }
    }
}

/// Writes `Packages.gz` and `Packages.xz` next to `Packages`.
fn compress_packages(dir: &Path) {
    // gzip -n keeps the name and mtime out of the header, so rebuilds are identical.
    for (tool, args, ext) in [("gzip", ["-9n", "-c"], "gz"), ("xz", ["-9", "-c"], "xz")] {
        let input = fs_err::File::open(dir.join("Packages")).expect("open Packages");
        let output =
            fs_err::File::create(dir.join(format!("Packages.{ext}"))).expect("create compressed");
        run_checked(
            Command::new(tool)
                .args(args)
                .stdin(Stdio::from(std::fs::File::from(input)))
                .stdout(Stdio::from(std::fs::File::from(output))),
        );
    }
}

fn gpg(home: &Path) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home)
        .args(["--batch", "--yes", "--quiet", "--no-tty"])
        .args(["--pinentry-mode", "loopback", "--passphrase", ""]);
    cmd
}

/// Creates a GNUPGHOME at `home` holding a new signing-only key.
fn generate_key(home: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::create_dir_all(home).expect("create GNUPGHOME");
    fs_err::set_permissions(home, std::fs::Permissions::from_mode(0o700)).expect("chmod GNUPGHOME");
    run_checked(gpg(home).args([
        "--quick-gen-key",
        "cairn test <test@example.invalid>",
        "rsa3072",
        "sign",
        "never",
    ]));
}

fn export_public_key(home: &Path, keyring: &Path) {
    let output = run_checked(gpg(home).arg("--export"));
    assert!(!output.stdout.is_empty(), "gpg exported no key");
    fs_err::write(keyring, output.stdout).expect("write keyring.gpg");
}

/// `dists/<suite>/Release` -> `dists/<suite>/InRelease`.
fn clearsign(home: &Path, dists: &Path) {
    run_checked(
        gpg(home)
            .args(["--digest-algo", "SHA256", "--clearsign", "-o"])
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_paths_follow_debian_layout() {
        assert_eq!(
            DebSpec::new("hello", "1:2.10-3").pool_path(),
            "pool/main/h/hello/hello_2.10-3_amd64.deb"
        );
        assert_eq!(
            DebSpec::new("libgreet1", "1.0").arch("all").pool_path(),
            "pool/main/libg/libgreet1/libgreet1_1.0_all.deb"
        );
    }

    fn gpgv_accepts(archive: &LocalArchive) -> bool {
        Command::new("gpgv")
            .arg("--keyring")
            .arg(archive.keyring())
            .arg(archive.dists().join("InRelease"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// The fixture itself must be a valid archive by Debian's own tools, or the
    /// cairn tests built on it prove nothing.
    #[test]
    fn builds_a_signed_archive_that_gpgv_and_tampering_agree_on() {
        let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "gpgv", "xz"];
        if !tools.iter().all(|t| crate::require_tool(t)) {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = LocalArchive::build(
            &tmp.path().join("a"),
            &[
                DebSpec::with_program("hello", "1.0-1").depends("libgreet1 (>= 1.0)"),
                DebSpec::new("libgreet1", "1.0-1").multi_arch("same"),
            ],
        );
        let packages = fs_err::read_to_string(archive.binary_dir().join("Packages")).unwrap();
        assert!(packages.contains("Package: hello\n"), "{packages}");
        assert!(packages.contains("Filename: pool/main/h/hello/hello_1.0-1_amd64.deb"));
        assert!(packages.contains("Depends: libgreet1 (>= 1.0)"));
        let release = fs_err::read_to_string(archive.dists().join("Release")).unwrap();
        assert!(release.contains("Suite: stable\n") && release.contains("Codename: cairn-test\n"));
        assert!(
            release.contains(" main/binary-amd64/Packages.xz\n"),
            "{release}"
        );
        assert!(gpgv_accepts(&archive));

        let listing = run_checked(
            Command::new("dpkg-deb")
                .arg("-c")
                .arg(archive.deb_path(&archive.specs()[0])),
        );
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.contains("-rwxr-xr-x root/root") && listing.contains("./usr/bin/hello"));

        archive.publish(&[DebSpec::with_program("hello", "1.1-1")]);
        assert!(gpgv_accepts(&archive));
        archive.tamper_inrelease();
        assert!(!gpgv_accepts(&archive));
        archive.publish(&[]);
        archive.sign_with_other_key();
        assert!(!gpgv_accepts(&archive));
    }

    #[test]
    fn control_omits_empty_fields() {
        let control = DebSpec::new("a", "1.0-1")
            .depends("b | c (>= 2)")
            .multi_arch("allowed")
            .control();
        assert!(control.starts_with("Package: a\nVersion: 1.0-1\nArchitecture: amd64\n"));
        assert!(control.contains("\nMulti-Arch: allowed\n"));
        assert!(control.contains("\nDepends: b | c (>= 2)\n"));
        assert!(!control.contains("Provides"));
        assert!(!control.contains("Essential"));
    }
}
