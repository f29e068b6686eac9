//! Published environments with generations, end to end: `cairn publish`,
//! `cairn pull REF[@N]`, `cairn generations list|history|switch|rollback`,
//! `activate -r REF[@N]` and `containerize -r REF[@N]`, against Debian's real
//! `docker-registry` on 127.0.0.1 (plain HTTP, and htpasswd over TLS).
//!
//! What a user sees is what is checked: the generation number publish prints,
//! `--json` records, the change each generation made, which one is live, the
//! files a pull writes, and failures that name the REF, print no secret and
//! leave the local environment as it was.
//!
//! Generations are made from a signed local archive (fast, no network); the
//! tests that run programs inside an activation or an image use real Debian
//! `hello` (skipped locally when the mirror does not answer).

use cairn_tests::images::{Engine, shared_cache_dir};
use cairn_tests::registry::{Registry, RegistryAuth, TestCa};
use cairn_tests::{
    DebSpec, HttpServer, LocalArchive, TestContext, require_tool, stderr_of, stdout_of,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSECURE: &str = "--remote-args=--tls-verify=false";
const USER: &str = "alice";
const PASSWORD: &str = "correct-horse-battery";

/// An environment resolved against a local archive, and its archive server.
struct LocalEnv {
    ctx: TestContext,
    archive: LocalArchive,
    _server: HttpServer,
}

impl LocalEnv {
    /// `greet 1.0-1` installed; `tool 1.0-1` available.
    fn new() -> Option<LocalEnv> {
        let tools = ["dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip"];
        if !tools.iter().all(|t| require_tool(t)) || !Registry::tools_ready() {
            return None;
        }
        let ctx = TestContext::new();
        let manifest = ctx.manifest_path();
        fs_err::create_dir_all(manifest.parent().expect("env dir")).expect("create env dir");
        fs_err::write(
            &manifest,
            "version = 1\nname = \"web\"\n\n[install]\ngreet.pkg = \"greet\"\n",
        )
        .expect("write manifest.toml");
        let (archive, server) = ctx.serve_archive(&[
            DebSpec::with_program("greet", "1.0-1"),
            DebSpec::with_program("tool", "1.0-1"),
        ]);
        ctx.write_manifest_sources(&server, &archive);
        ctx.run_ok(&["upgrade"]);
        Some(LocalEnv {
            ctx,
            archive,
            _server: server,
        })
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.ctx.run_ok(args)
    }

    fn err(&self, args: &[&str]) -> Output {
        self.ctx.run_err(args)
    }

    /// `cairn publish ARGS...`: the generation number it printed.
    fn publish(&self, args: &[&str]) -> u64 {
        let mut all = vec!["publish"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        stdout_of(&out).trim().parse().unwrap_or_else(|_| {
            panic!(
                "publish printed no number\n{}\n{}",
                stdout_of(&out),
                stderr_of(&out)
            )
        })
    }
}

/// `cairn generations list --json ARGS...`, parsed.
fn list_json(ctx: &TestContext, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["generations", "list", "--json"];
    all.extend_from_slice(args);
    json_of(&ctx.run_ok(&all))
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}\n{}", stdout_of(out), stderr_of(out)))
}

/// `(name, version)` of the requested packages in DIR's lock.
fn requested(dir: &Path) -> Vec<(String, String)> {
    let path = TestContext::env_dir_of(dir).join("manifest.lock");
    let text = fs_err::read_to_string(&path).expect("read pulled lock");
    let doc: toml_edit::DocumentMut = text.parse().expect("lock is TOML");
    let mut found: Vec<(String, String)> = doc["packages"]
        .as_array_of_tables()
        .expect("[[packages]]")
        .iter()
        .filter(|p| p.get("requested").and_then(|r| r.as_bool()) == Some(true))
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Every file below `dir`, with its bytes: "nothing local changed" is this, equal.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = fs_err::read(&path).unwrap_or_default();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

fn assert_secret_free(out: &Output, secrets: &[&str]) {
    let text = format!("{}{}", stdout_of(out), stderr_of(out));
    for secret in secrets {
        assert!(!text.contains(secret), "output shows a secret: {text}");
    }
}

#[test]
fn publish_three_generations_then_list_pin_switch_roll_back_and_pull() {
    let Some(mut env) = LocalEnv::new() else {
        return;
    };
    let root = env.ctx.root.path().to_path_buf();
    let registry = Registry::start(&root.join("registry"), &RegistryAuth::Anonymous, None);
    let reference = format!("{}/team/web", registry.host);
    let full = format!("{reference}:latest");

    // 1: greet. 2: + tool (the REF is remembered). 3: greet upgraded.
    assert_eq!(env.publish(&[&reference, INSECURE]), 1);
    env.ok(&["install", "tool"]);
    assert_eq!(env.publish(&[INSECURE]), 2);
    env.archive
        .publish(&[DebSpec::with_program("greet", "1.1-1")]);
    env.ok(&["upgrade"]);
    assert_eq!(env.publish(&[INSECURE]), 3);

    let record = list_json(&env.ctx, &["-r", &reference, INSECURE]);
    assert_eq!(record["name"], "web");
    assert_eq!(record["live"], 3);
    let generations = record["generations"].as_array().expect("generations");
    assert_eq!(generations.len(), 3, "{record}");
    assert_eq!(
        generations[1]["change"]["added"],
        serde_json::json!([{"name": "tool", "version": "1.0-1"}])
    );
    assert_eq!(
        generations[2]["change"]["upgraded"],
        serde_json::json!([{"name": "greet", "from": "1.0-1", "to": "1.1-1"}])
    );
    let first_digest = generations[0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert!(first_digest.starts_with("sha256:"), "{record}");

    // The human list: number, date, change, and the live marker.
    let out = env.ok(&["generations", "list", INSECURE]);
    let text = stdout_of(&out);
    let line3 = text.lines().find(|l| l.starts_with('3')).expect("row 3");
    assert!(
        line3.contains('*') && line3.contains("upgraded greet 1.0-1 → 1.1-1"),
        "{text}"
    );
    assert!(text.contains("added tool 1.0-1"), "{text}");

    // Pinned @1 against the live one.
    let work = root.join("pulls");
    let pinned = work.join("pinned");
    let live = work.join("live");
    env.ok(&[
        "pull",
        &format!("{reference}@1"),
        "-d",
        &pinned.to_string_lossy(),
        INSECURE,
    ]);
    env.ok(&["pull", &reference, "-d", &live.to_string_lossy(), INSECURE]);
    assert_eq!(requested(&pinned), pairs(&[("greet", "1.0-1")]));
    assert_eq!(
        requested(&live),
        pairs(&[("greet", "1.1-1"), ("tool", "1.0-1")])
    );
    let remembered: serde_json::Value = serde_json::from_slice(
        &fs_err::read(pinned.join(".cairn/published.json")).expect("published.json"),
    )
    .expect("published.json is JSON");
    assert_eq!(remembered["reference"], full.as_str());
    assert_eq!(remembered["generation"], 1);

    // Switch to 1: the live pull follows; @3 still gives 3.
    let out = env.ok(&["generations", "switch", "1", "-r", &reference, INSECURE]);
    assert!(
        stderr_of(&out).contains("generation 1 is live (was 3)"),
        "{}",
        stderr_of(&out)
    );
    let switched = work.join("switched");
    env.ok(&[
        "pull",
        &reference,
        "-d",
        &switched.to_string_lossy(),
        INSECURE,
    ]);
    assert_eq!(requested(&switched), pairs(&[("greet", "1.0-1")]));
    let three = work.join("three");
    env.ok(&[
        "pull",
        &format!("{reference}@3"),
        "-d",
        &three.to_string_lossy(),
        INSECURE,
    ]);
    assert_eq!(requested(&three), requested(&live));

    // Rollback goes back to what was live before: 3. The pulled directory
    // knows its REF, so `generations` needs no -r there.
    let mut rollback = env.ctx.cairn_in(&pinned);
    rollback.args(["generations", "rollback", INSECURE]);
    cairn_tests::context::expect_success(&mut rollback);
    let record = list_json(&env.ctx, &["-r", &reference, INSECURE]);
    assert_eq!(record["live"], 3);
    let actions: Vec<(String, u64)> = record["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["generation"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        ("publish", 1),
        ("publish", 2),
        ("publish", 3),
        ("switch", 1),
        ("rollback", 3),
    ];
    assert_eq!(
        actions,
        expected
            .iter()
            .map(|(a, n)| ((*a).to_owned(), *n))
            .collect::<Vec<_>>()
    );
    let out = env.ok(&["generations", "history", INSECURE]);
    assert!(stdout_of(&out).contains("rollback"), "{}", stdout_of(&out));

    // Generation 1 is still the same artifact; a publish cannot pick its number.
    assert_eq!(record["generations"][0]["digest"], first_digest.as_str());
    let out = env.err(&["publish", &format!("{reference}@1"), INSECURE]);
    assert!(
        stderr_of(&out).contains("cannot choose its generation"),
        "{}",
        stderr_of(&out)
    );

    // Pulling its own REF again updates a directory; one that holds another
    // environment is refused.
    env.ok(&[
        "pull",
        &reference,
        "-d",
        &env.ctx.work.to_string_lossy(),
        INSECURE,
    ]);
    let foreign = work.join("foreign");
    let foreign_env = TestContext::env_dir_of(&foreign);
    fs_err::create_dir_all(&foreign_env).expect("mkdir foreign env");
    fs_err::write(foreign_env.join("manifest.toml"), "version = 1\n").expect("write manifest");
    let out = env.err(&[
        "pull",
        &reference,
        "-d",
        &foreign.to_string_lossy(),
        INSECURE,
    ]);
    assert!(
        stderr_of(&out).contains("already holds an environment"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn failures_name_the_ref_and_change_nothing_local() {
    let Some(env) = LocalEnv::new() else {
        return;
    };
    let root = env.ctx.root.path().to_path_buf();
    let registry = Registry::start(&root.join("registry"), &RegistryAuth::Anonymous, None);
    let reference = format!("{}/team/web", registry.host);
    env.publish(&[&reference, INSECURE]);
    let image = format!("{}/team/image:latest", registry.host);
    env.ok(&[
        "containerize",
        "-f",
        &root.join("image.tar").to_string_lossy(),
    ]);
    env.ok(&["push", &image, "--copy-args=--dest-tls-verify=false"]);
    let before = tree(&env.ctx.work);
    let target = root.join("target");
    fs_err::create_dir_all(&target).expect("mkdir target");

    // A generation that does not exist.
    let missing = format!("{reference}@9");
    let out = env.err(&["pull", &missing, "-d", &target.to_string_lossy(), INSECURE]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&reference)
            && stderr.contains("no generation 9")
            && stderr.contains("latest is 1"),
        "{stderr}"
    );
    let out = env.err(&["activate", "-r", &missing, INSECURE, "--", "true"]);
    assert!(
        stderr_of(&out).contains("no generation 9"),
        "{}",
        stderr_of(&out)
    );
    let out = env.err(&["generations", "switch", "9", "-r", &reference, INSECURE]);
    assert!(
        stderr_of(&out).contains("no generation 9"),
        "{}",
        stderr_of(&out)
    );

    // A REF that is an ordinary image (cairn pushed it): not an environment,
    // and publish does not overwrite its tag.
    for args in [
        vec![
            "pull",
            image.as_str(),
            "-d",
            target.to_str().unwrap_or_default(),
            INSECURE,
        ],
        vec!["generations", "list", "-r", image.as_str(), INSECURE],
        vec!["publish", image.as_str(), INSECURE],
    ] {
        let out = env.err(&args);
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains(&image) && stderr.contains("is not a cairn environment"),
            "{args:?}: {stderr}"
        );
    }
    // ... while `containerize -r` still builds it, as before.
    let rebuilt = root.join("rebuilt.tar");
    let out = env.ok(&[
        "containerize",
        "-r",
        &image,
        INSECURE,
        "-f",
        &rebuilt.to_string_lossy(),
    ]);
    assert!(
        stderr_of(&out).contains("✓ reproduced"),
        "{}",
        stderr_of(&out)
    );

    // Nothing at all.
    let nothing = format!("{}/team/nothing", registry.host);
    let out = env.err(&["pull", &nothing, "-d", &target.to_string_lossy(), INSECURE]);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&nothing) && stderr.contains("no cairn environment is published there"),
        "{stderr}"
    );
    let out = env.err(&["activate", "-r", &nothing, INSECURE, "--", "true"]);
    assert!(stderr_of(&out).contains(&nothing), "{}", stderr_of(&out));

    // A registry that is not there.
    let down = format!("127.0.0.1:{}/team/web", cairn_tests::registry::free_port());
    let out = env.err(&["pull", &down, "-d", &target.to_string_lossy(), INSECURE]);
    assert!(
        stderr_of(&out).contains("cannot reach"),
        "{}",
        stderr_of(&out)
    );

    assert_eq!(
        tree(&env.ctx.work),
        before,
        "a failure changed the environment"
    );
    assert!(
        tree(&target).is_empty(),
        "a failed pull wrote into {}",
        target.display()
    );
}

#[test]
fn htpasswd_over_tls_with_creds_and_a_ca_and_a_wrong_password() {
    let Some(env) = LocalEnv::new() else {
        return;
    };
    let root = env.ctx.root.path().to_path_buf();
    let ca = TestCa::generate(&root.join("certs"));
    let auth = RegistryAuth::Htpasswd {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let registry = Registry::start(&root.join("registry"), &auth, Some(&ca));
    let reference = format!("{}/private/web", registry.host);
    let cert_dir = ca.cert_dir(&root.join("cert-dir"));
    let good = format!(
        "--remote-args=--creds {USER}:{PASSWORD} --cert-dir {}",
        cert_dir.display()
    );
    let out = env.ok(&["publish", &reference, &good]);
    assert_eq!(stdout_of(&out).trim(), "1");
    assert_secret_free(&out, &[PASSWORD]);
    let record = list_json(&env.ctx, &["-r", &reference, &good]);
    assert_eq!(record["live"], 1);

    let target = root.join("pulled");
    env.ok(&["pull", &reference, "-d", &target.to_string_lossy(), &good]);
    assert_eq!(requested(&target), pairs(&[("greet", "1.0-1")]));

    // An edit that needs a re-lock: a publish refused for its password must
    // not leave the environment re-locked either.
    let manifest = env.ctx.read_manifest().replace(
        "greet.pkg = \"greet\"\n",
        "greet.pkg = \"greet\"\ntool.pkg = \"tool\"\n",
    );
    assert!(manifest.contains("tool.pkg"), "{manifest}");
    fs_err::write(env.ctx.manifest_path(), manifest).expect("edit manifest");
    let before = tree(&env.ctx.work);
    let elsewhere = root.join("elsewhere");
    let wrong = format!(
        "--remote-args=--creds {USER}:wrong-pass-123 --cert-dir {}",
        cert_dir.display()
    );
    for args in [
        vec![
            "pull",
            reference.as_str(),
            "-d",
            elsewhere.to_str().unwrap_or_default(),
            wrong.as_str(),
        ],
        vec![
            "generations",
            "list",
            "-r",
            reference.as_str(),
            wrong.as_str(),
        ],
        vec!["publish", wrong.as_str()],
    ] {
        let out = env.err(&args);
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains(&registry.host)
                && stderr.contains("private/web")
                && stderr.contains("rejected the credentials")
                && stderr.contains("--creds"),
            "{args:?}: {stderr}"
        );
        assert_secret_free(&out, &["wrong-pass-123", PASSWORD]);
    }
    // Without a CA, TLS fails with the hint of `cairn push`.
    let out = env.err(&[
        "generations",
        "list",
        "-r",
        &reference,
        &format!("--remote-args=--creds {USER}:{PASSWORD}"),
    ]);
    assert!(
        stderr_of(&out).contains("TLS") && stderr_of(&out).contains("--tls-verify=false"),
        "{}",
        stderr_of(&out)
    );
    assert_secret_free(&out, &[PASSWORD]);
    assert_eq!(
        tree(&env.ctx.work),
        before,
        "a failure changed the environment"
    );
    assert!(
        !elsewhere.exists(),
        "a failed pull created {}",
        elsewhere.display()
    );
}

/// Real Debian `hello` with `GREETING`, published twice (one, then two).
struct RealEnv {
    ctx: TestContext,
    registry: Registry,
}

impl RealEnv {
    fn new() -> Option<RealEnv> {
        if !Registry::tools_ready() {
            return None;
        }
        let archive = cairn_tests::reachable_real_archive()?;
        let ctx = TestContext::new();
        let manifest = ctx.manifest_path();
        fs_err::create_dir_all(manifest.parent().expect("env dir")).expect("create env dir");
        fs_err::write(&manifest, real_manifest("one")).expect("write manifest.toml");
        ctx.set_sources(&archive.sources_toml());
        let env = RealEnv {
            registry: Registry::start(
                &ctx.root.path().join("registry"),
                &RegistryAuth::Anonymous,
                None,
            ),
            ctx,
        };
        env.ok(&["upgrade"]);
        Some(env)
    }

    fn cairn(&self) -> Command {
        let mut cmd = self.ctx.cairn();
        cmd.env("CAIRN_CACHE_DIR", shared_cache_dir("generations"));
        cmd
    }

    fn ok(&self, args: &[&str]) -> Output {
        cairn_tests::context::expect_success(self.cairn().args(args))
    }
}

fn real_manifest(greeting: &str) -> String {
    format!(
        "version = 1\nname = \"greeter\"\n\n[install]\nhello.pkg = \"hello\"\n\n[vars]\nGREETING = \"{greeting}\"\n"
    )
}

const SHOW: &str = "echo \"$GREETING\"; hello";

#[test]
fn activate_and_containerize_a_published_generation_without_a_local_directory() {
    let Some(env) = RealEnv::new() else {
        return;
    };
    let reference = format!("{}/team/greeter", env.registry.host);
    env.ok(&["publish", &reference, INSECURE]);
    let text = env.ctx.read_manifest().replace("\"one\"", "\"two\"");
    let with_sources = text;
    fs_err::write(env.ctx.manifest_path(), with_sources).expect("edit manifest");
    env.ok(&["publish", INSECURE]);
    let record = json_of(&env.ok(&["generations", "list", "--json", INSECURE]));
    assert_eq!(
        record["generations"][1]["change"]["manifest_edited"], true,
        "{record}"
    );

    // From anywhere: no environment directory, only the REF.
    let elsewhere = env.ctx.root.path().join("elsewhere");
    fs_err::create_dir_all(&elsewhere).expect("mkdir");
    let activate = |target: &str| {
        let mut cmd = env.cairn();
        cmd.env_remove("CAIRN_ENV")
            .current_dir(&elsewhere)
            .args(["activate", "-r", target, INSECURE, "--", "sh", "-c", SHOW]);
        cairn_tests::context::expect_success(&mut cmd)
    };
    assert_eq!(
        stdout_of(&activate(&format!("{reference}@1"))),
        "one\nHello, world!\n"
    );
    assert_eq!(stdout_of(&activate(&reference)), "two\nHello, world!\n");
    assert!(
        fs_err::read_dir(&elsewhere)
            .expect("read dir")
            .next()
            .is_none(),
        "activate -r wrote into the current directory"
    );

    // Pulled into a directory, it activates like any environment.
    let pulled = env.ctx.root.path().join("pulled");
    env.ok(&[
        "pull",
        &format!("{reference}@1"),
        "-d",
        &pulled.to_string_lossy(),
        INSECURE,
    ]);
    let mut cmd = env.cairn();
    cmd.env_remove("CAIRN_ENV").args([
        "activate",
        "-d",
        &pulled.to_string_lossy(),
        "--",
        "sh",
        "-c",
        SHOW,
    ]);
    let out = cairn_tests::context::expect_success(&mut cmd);
    assert_eq!(stdout_of(&out), "one\nHello, world!\n");

    // containerize -r REF@1 builds generation 1's image, and Docker runs it.
    if !Engine::Docker.ready() {
        return;
    }
    let archive = env.ctx.root.path().join("gen1.tar");
    let mut cmd = env.cairn();
    cmd.env_remove("CAIRN_ENV").current_dir(&elsewhere).args([
        "containerize",
        "-r",
        &format!("{reference}@1"),
        INSECURE,
        "--tag",
        &cairn_tests::images::unique_name("gen"),
        "-f",
        &archive.to_string_lossy(),
    ]);
    cairn_tests::context::expect_success(&mut cmd);
    let image = Engine::Docker.load_file(&archive);
    let out = image.run(&["sh", "-c", SHOW]);
    assert_eq!(
        stdout_of(&out),
        "one\nHello, world!\n",
        "{}",
        stderr_of(&out)
    );
}
