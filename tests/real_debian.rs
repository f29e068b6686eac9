//! cairn against the machine's real Debian mirror (from apt's sources): resolve
//! and fetch `hello` and `python3` through the CLI, verified with the Debian
//! archive keys built into cairn, and `show` a package as `apt show` does.
//!
//! Skipped, with a message, only when the mirror does not answer.

use cairn_tests::{TestContext, real_archive, real_archive_reachable, stdout_of};

#[test]
fn installs_hello_and_python3_from_debian() {
    let archive = real_archive();
    if !real_archive_reachable(&archive) {
        eprintln!(
            "skipping: Debian mirror unreachable ({})",
            archive.inrelease_url()
        );
        return;
    }
    let ctx = TestContext::new();
    ctx.run_ok(&["init"]);
    ctx.set_sources(&archive.sources_toml());
    ctx.run_ok(&["install", "hello", "python3"]);

    let rows = ctx.list_json();
    let find = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in `cairn list --json`: {rows:?}"))
    };
    assert_eq!(find("python3")["requested"], true);
    assert_eq!(find("hello")["requested"], true);
    assert_eq!(find("libc6")["requested"], false, "libc6 is a dependency");
    assert_eq!(find("libc6")["architecture"], "amd64");
    assert!(
        find("python3")["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{rows:?}"
    );

    let lock = ctx.read_lock();
    let packages = lock["packages"].as_array_of_tables().expect("[[packages]]");
    assert_eq!(packages.len(), rows.len());
    for package in packages {
        let name = package["name"].as_str().expect("name");
        let sha256 = package["sha256"].as_str().expect("sha256");
        assert!(
            sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: '{sha256}' is not a sha256"
        );
        let filename = package["filename"].as_str().expect("filename");
        assert!(filename.starts_with("pool/main/"), "{name}: {filename}");
    }
}

/// `show` with the long description from Debian's signed Translation-en
/// (bookworm's `Packages` carry only the summary) and the effects of a real
/// postinst.
#[test]
fn shows_a_package_as_apt_show_does() {
    let archive = real_archive();
    if !real_archive_reachable(&archive) {
        eprintln!(
            "skipping: Debian mirror unreachable ({})",
            archive.inrelease_url()
        );
        return;
    }
    let ctx = TestContext::new();
    ctx.run_ok(&["init"]);
    ctx.set_sources(&archive.sources_toml());
    let show = stdout_of(&ctx.run_ok(&["show", "hello"]));
    for line in [
        "Package: hello\n",
        "Section: devel\n",
        "Maintainer: ",
        "Homepage: https://www.gnu.org/software/hello/\n",
        "Depends: libc6 ",
        "Description: example package based on GNU hello\n The GNU hello program produces a familiar, friendly greeting.",
    ] {
        assert!(show.contains(line), "missing {line:?} in:\n{show}");
    }
    let vim = stdout_of(&ctx.run_ok(&["show", "vim-tiny"]));
    assert!(
        vim.contains("  applied: alternative vi: /usr/bin/vi -> /usr/bin/vim.tiny"),
        "{vim}"
    );
}
