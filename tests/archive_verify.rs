//! cairn-debian against a signed local archive over HTTP: what verifies, what
//! is rejected (tampered Packages, InRelease, `.deb`, wrong key), and how the
//! resolver chooses over real `Packages` indices built by apt-ftparchive.
//!
//! These drive the library directly; the CLI's view is in `cli_env.rs`.

use cairn_debian::resolve::resolve;
use cairn_debian::{
    ArchiveClient, ArchiveError, DebToFetch, Keyring, NoReporter, PackageIndex, Relation, Request,
    ResolveError, Source,
};
use cairn_store::{Store, sha256_file};
use cairn_tests::{DebSpec, HttpServer, LocalArchive, require_tool};
use std::collections::BTreeMap;

/// A served archive and a client with its own cache, living as long as the test.
struct Fixture {
    tmp: tempfile::TempDir,
    archive: LocalArchive,
    server: HttpServer,
}

impl Fixture {
    /// Builds and serves `specs`, or `None` (after a printed reason) when the
    /// archive tools are missing outside CI.
    fn new(specs: &[DebSpec]) -> Option<Fixture> {
        let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip"];
        if !tools.iter().all(|t| require_tool(t)) {
            return None;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let archive = LocalArchive::build(&tmp.path().join("archive"), specs);
        let server = HttpServer::serve(archive.root());
        Some(Fixture {
            tmp,
            archive,
            server,
        })
    }

    fn source(&self) -> Source {
        Source {
            name: "local".to_owned(),
            url: self.server.url.clone(),
            suite: self.archive.suite().to_owned(),
            components: vec!["main".to_owned()],
            keyrings: vec![Keyring::File(self.archive.keyring())],
        }
    }

    /// A client over the fixture's cache (shared by every client of this fixture).
    fn client(&self) -> ArchiveClient {
        ArchiveClient::new(Store::open(self.tmp.path().join("cache")).expect("open store"))
    }

    fn fetch_index(&self) -> Result<PackageIndex, ArchiveError> {
        let (index, _) = self
            .client()
            .fetch_index(&[self.source()], "amd64", &NoReporter)?;
        Ok(index)
    }

    fn debs_to_fetch(&self, index: &PackageIndex, names: &[&str]) -> Vec<DebToFetch> {
        names
            .iter()
            .map(|name| {
                let record = index.versions(name)[0];
                DebToFetch {
                    name: record.name.clone(),
                    url: format!("{}/{}", self.server.url, record.filename),
                    filename: record.filename.clone(),
                    size: record.size,
                    sha256: record.sha256.clone(),
                }
            })
            .collect()
    }
}

fn hello_specs() -> Vec<DebSpec> {
    vec![
        DebSpec::with_program("hello", "1.0-1").depends("libgreet1 (>= 1.0)"),
        DebSpec::new("libgreet1", "1.0-1").multi_arch("same"),
    ]
}

#[test]
fn fetch_index_verifies_and_a_warm_run_fetches_only_inrelease() {
    let Some(fx) = Fixture::new(&hello_specs()) else {
        return;
    };
    let (index, infos) = fx
        .client()
        .fetch_index(&[fx.source()], "amd64", &NoReporter)
        .expect("a correctly signed archive verifies");
    let hello = index.versions("hello")[0];
    assert_eq!(hello.version.to_string(), "1.0-1");
    assert_eq!(hello.filename, "pool/main/h/hello/hello_1.0-1_amd64.deb");
    let pool_file = fx.archive.deb_path(&fx.archive.specs()[0]);
    assert_eq!(hello.sha256, sha256_file(&pool_file).unwrap());
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].suite, "stable");
    let inrelease = fx.archive.dists().join("InRelease");
    assert_eq!(infos[0].inrelease_sha256, sha256_file(&inrelease).unwrap());
    assert_eq!(fx.server.requests("/dists/stable/InRelease"), 1);

    let paths = fx
        .client()
        .fetch_debs(
            &fx.debs_to_fetch(&index, &["hello", "libgreet1"]),
            &NoReporter,
        )
        .expect("untampered .debs verify");
    assert_eq!(
        fs_err::read(&paths[0]).unwrap(),
        fs_err::read(&pool_file).unwrap()
    );
    assert_eq!(fx.server.deb_requests(), 2);

    fx.server.reset_counts();
    let warm = fx.fetch_index().expect("warm fetch");
    fx.client()
        .fetch_debs(
            &fx.debs_to_fetch(&warm, &["hello", "libgreet1"]),
            &NoReporter,
        )
        .expect("warm .debs");
    let hits = fx.server.hits();
    assert_eq!(
        hits.keys().collect::<Vec<_>>(),
        ["/dists/stable/InRelease"],
        "a warm run re-fetches only InRelease"
    );
}

#[test]
fn tampered_packages_index_is_rejected_naming_the_file() {
    let Some(fx) = Fixture::new(&hello_specs()) else {
        return;
    };
    fx.archive.tamper_packages();
    let err = fx
        .fetch_index()
        .expect_err("a changed Packages must not verify");
    let message = err.to_string();
    assert!(
        matches!(err, ArchiveError::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(message.contains("main/binary-amd64/Packages"), "{message}");
    assert!(message.contains("sha256"), "{message}");
}

#[test]
fn tampered_inrelease_is_rejected_naming_the_file() {
    let Some(fx) = Fixture::new(&hello_specs()) else {
        return;
    };
    fx.archive.tamper_inrelease();
    let err = fx
        .fetch_index()
        .expect_err("a changed InRelease must not verify");
    assert!(matches!(err, ArchiveError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("dists/stable/InRelease"), "{err}");
}

#[test]
fn inrelease_signed_by_another_key_is_rejected() {
    let Some(fx) = Fixture::new(&hello_specs()) else {
        return;
    };
    fx.archive.sign_with_other_key();
    let err = fx
        .fetch_index()
        .expect_err("an unknown key must not verify");
    assert!(matches!(err, ArchiveError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("dists/stable/InRelease"), "{err}");
}

#[test]
fn tampered_deb_is_rejected_and_never_stored() {
    let Some(fx) = Fixture::new(&hello_specs()) else {
        return;
    };
    let index = fx.fetch_index().expect("index verifies");
    fx.archive.tamper_deb("hello");
    let items = fx.debs_to_fetch(&index, &["hello"]);
    let client = fx.client();
    let err = client
        .fetch_debs(&items, &NoReporter)
        .expect_err("a changed .deb must not verify");
    assert!(
        matches!(err, ArchiveError::DigestMismatch { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("hello_1.0-1_amd64.deb"), "{message}");
    assert!(message.contains(&items[0].sha256), "{message}");
    let stored = client.store().deb_path(&items[0].sha256).unwrap();
    assert!(!stored.exists(), "a rejected .deb reached the store");
}

/// One archive exercising each resolver rule over indices apt-ftparchive wrote.
fn resolver_specs() -> Vec<DebSpec> {
    vec![
        // Version constraints: app needs the newer libfoo.
        DebSpec::new("libfoo", "1.0-1"),
        DebSpec::new("libfoo", "2.1-1"),
        DebSpec::new("app", "1.0-1").depends("libfoo (>= 2.0)"),
        DebSpec::new("old-app", "1.0-1").depends("libfoo (<< 2.0)"),
        // Alternatives: the first is missing, so the second is chosen.
        DebSpec::new("alt-user", "1.0-1").depends("missing-pkg | fallback"),
        DebSpec::new("fallback", "1.0-1").arch("all"),
        // Provides: a virtual name, and a versioned one.
        DebSpec::new("mailer", "1.0-1").depends("mail-transport-agent"),
        DebSpec::new("postfix-lite", "3.0-1").provides("mail-transport-agent"),
        DebSpec::new("needs-awk", "1.0-1").depends("awk-virtual (>= 2)"),
        DebSpec::new("awk-old", "1.0-1").provides("awk-virtual (= 1)"),
        DebSpec::new("awk-new", "1.0-1").provides("awk-virtual (= 3)"),
        // Multi-Arch: allowed satisfies a `:any` dependency.
        DebSpec::new("pyscript", "1.0-1")
            .arch("all")
            .depends("python3x:any (>= 3.11)"),
        DebSpec::new("python3x", "3.11.2-1").multi_arch("allowed"),
        // Conflicts force the other alternative, declared from either side.
        DebSpec::new("web", "1.0-1").depends("blocker, server-a | server-b"),
        DebSpec::new("blocker", "1.0-1").conflicts("server-a"),
        DebSpec::new("server-a", "1.0-1"),
        DebSpec::new("server-b", "1.0-1"),
        DebSpec::new("web2", "1.0-1").depends("guard, server-c | server-d"),
        DebSpec::new("guard", "1.0-1"),
        DebSpec::new("server-c", "1.0-1").breaks("guard"),
        DebSpec::new("server-d", "1.0-1"),
        // A conflict found only after the alternative was chosen: backtrack.
        DebSpec::new("web3", "1.0-1").depends("server-e | server-f, late-blocker"),
        DebSpec::new("late-blocker", "1.0-1").conflicts("server-e"),
        DebSpec::new("server-e", "1.0-1"),
        DebSpec::new("server-f", "1.0-1"),
        // Pre-Depends are followed; Essential packages are not pulled in unasked.
        DebSpec::new("installer", "1.0-1").pre_depends("fallback"),
        DebSpec::new("base-tool", "1.0-1")
            .essential()
            .priority("required"),
    ]
}

/// Resolves `requests` (relation syntax) and returns name -> version.
fn resolve_names(
    index: &PackageIndex,
    requests: &[&str],
) -> Result<BTreeMap<String, String>, ResolveError> {
    let requests: Vec<Request> = requests
        .iter()
        .map(|r| Request {
            relation: Relation::parse(r).expect("valid request"),
        })
        .collect();
    let resolution = resolve(index, &requests, "amd64")?;
    Ok(resolution
        .packages
        .iter()
        .map(|(name, chosen)| {
            let version = index.records[chosen.record].version.to_string();
            (name.clone(), version)
        })
        .collect())
}

fn resolver_index() -> Option<PackageIndex> {
    let fx = Fixture::new(&resolver_specs())?;
    Some(fx.fetch_index().expect("resolver archive verifies"))
}

fn names(resolved: &BTreeMap<String, String>) -> Vec<&str> {
    resolved.keys().map(String::as_str).collect()
}

#[test]
fn resolver_follows_version_constraints_and_alternatives() {
    let Some(index) = resolver_index() else {
        return;
    };
    let app = resolve_names(&index, &["app"]).unwrap();
    assert_eq!(app["libfoo"], "2.1-1");
    let old = resolve_names(&index, &["old-app"]).unwrap();
    assert_eq!(old["libfoo"], "1.0-1");
    let exact = resolve_names(&index, &["libfoo (= 1.0-1)"]).unwrap();
    assert_eq!(exact["libfoo"], "1.0-1");

    let alt = resolve_names(&index, &["alt-user"]).unwrap();
    assert_eq!(names(&alt), ["alt-user", "fallback"]);
}

#[test]
fn resolver_uses_virtual_and_versioned_provides() {
    let Some(index) = resolver_index() else {
        return;
    };
    let mailer = resolve_names(&index, &["mailer"]).unwrap();
    assert_eq!(names(&mailer), ["mailer", "postfix-lite"]);
    let awk = resolve_names(&index, &["needs-awk"]).unwrap();
    assert_eq!(names(&awk), ["awk-new", "needs-awk"]);
}

#[test]
fn resolver_satisfies_any_with_multi_arch_allowed() {
    let Some(index) = resolver_index() else {
        return;
    };
    let script = resolve_names(&index, &["pyscript"]).unwrap();
    assert_eq!(script["python3x"], "3.11.2-1");
}

#[test]
fn resolver_avoids_conflicts_and_breaks_through_the_other_alternative() {
    let Some(index) = resolver_index() else {
        return;
    };
    let web = resolve_names(&index, &["web"]).unwrap();
    assert_eq!(names(&web), ["blocker", "server-b", "web"]);
    let web2 = resolve_names(&index, &["web2"]).unwrap();
    assert_eq!(names(&web2), ["guard", "server-d", "web2"]);
    let web3 = resolve_names(&index, &["web3"]).unwrap();
    assert_eq!(names(&web3), ["late-blocker", "server-f", "web3"]);
}

#[test]
fn resolver_follows_pre_depends_and_leaves_essential_out() {
    let Some(index) = resolver_index() else {
        return;
    };
    let installer = resolve_names(&index, &["installer"]).unwrap();
    assert_eq!(names(&installer), ["fallback", "installer"]);
}

#[test]
fn resolver_errors_name_the_package_and_suggest() {
    let Some(index) = resolver_index() else {
        return;
    };
    let typo = resolve_names(&index, &["mailr"]).unwrap_err().to_string();
    assert!(typo.contains("'mailr' not found"), "{typo}");
    assert!(
        typo.contains("did you mean") && typo.contains("mailer"),
        "{typo}"
    );
    let version = resolve_names(&index, &["libfoo (>= 3)"])
        .unwrap_err()
        .to_string();
    assert!(
        version.contains("libfoo") && version.contains("2.1-1"),
        "{version}"
    );
}
