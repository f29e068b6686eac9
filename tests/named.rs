//! Named containers (`[containers.NAME]`, devenv style) and `[build]` artifacts,
//! built from the machine's real Debian archive and run under the real Docker
//! Engine: copy-to-root (with .gitignore), startup-command, exclude,
//! CAIRN_CONTAINER, and a compiled program shipped without its compiler.

use cairn_tests::images::{Engine, LoadedImage, shared_cache_dir, unique_name};
use cairn_tests::{TestContext, stdout_of};

/// A context on the real archive with a shared .deb/layer cache, or None to skip.
fn real_env(packages: &[&str], extra_manifest: &str) -> Option<(TestContext, std::path::PathBuf)> {
    let archive = cairn_tests::reachable_real_archive()?;
    if !Engine::Docker.ready() {
        return None;
    }
    let ctx = TestContext::new();
    let cache = shared_cache_dir("named");
    ctx.run_ok(&["init", "--name", &unique_name("named")]);
    ctx.set_sources(&archive.sources_toml());
    let manifest = ctx.manifest_path();
    let mut text = fs_err::read_to_string(&manifest).expect("manifest");
    text.push_str(extra_manifest);
    fs_err::write(&manifest, text).expect("write manifest");
    let mut install = ctx.cairn();
    install
        .env("CAIRN_CACHE_DIR", &cache)
        .arg("install")
        .args(packages);
    cairn_tests::context::expect_success(&mut install);
    Some((ctx, cache))
}

fn cairn_with_cache(
    ctx: &TestContext,
    cache: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = ctx.cairn();
    cmd.env("CAIRN_CACHE_DIR", cache).args(args);
    cairn_tests::context::expect_success(&mut cmd)
}

#[test]
fn named_container_copies_to_root_and_runs_its_startup_command() {
    let extra = r#"
[containers.greeter]
name = "REPLACE"
version = "1.0"
startup-command = ["hello", "-g", "hi from a named container"]
copy-to-root = ["site"]
exclude = ["coreutils"]
"#;
    let image_name = unique_name("greeter");
    let Some((ctx, cache)) = real_env(
        &["hello", "coreutils"],
        &extra.replace("REPLACE", &image_name),
    ) else {
        return;
    };
    let site = ctx.work.join("site");
    fs_err::create_dir_all(site.join("etc")).unwrap();
    fs_err::write(site.join("greeting.txt"), "hello\n").unwrap();
    fs_err::write(site.join("etc/greeter.conf"), "x=1\n").unwrap();
    fs_err::write(site.join("secret.txt"), "do not ship\n").unwrap();
    fs_err::write(site.join(".gitignore"), "secret.txt\n").unwrap();

    let out = cairn_with_cache(
        &ctx,
        &cache,
        &["container", "build", "greeter", "--runtime", "docker"],
    );
    let reference = stdout_of(&out).trim().to_owned();
    assert!(
        reference.contains(&image_name) && reference.ends_with(":1.0"),
        "{reference}"
    );
    let image = Engine::Docker.adopt(&reference);

    let run = image.run(&[]);
    assert_eq!(stdout_of(&run).trim(), "hi from a named container");

    let paths = image.exported_paths(&ctx.work);
    assert!(
        paths.iter().any(|p| p == "greeting.txt"),
        "copy-to-root file missing"
    );
    assert!(paths.iter().any(|p| p == "etc/greeter.conf"));
    assert!(
        !paths.iter().any(|p| p == "secret.txt"),
        ".gitignore'd file shipped"
    );
    assert!(paths.iter().any(|p| p == "usr/bin/hello"));
    assert!(
        !paths.iter().any(|p| p == "usr/bin/ls"),
        "excluded coreutils shipped"
    );

    let config = image.config_json();
    let env: Vec<String> = serde_json::from_value(config["Env"].clone()).unwrap();
    assert!(
        env.contains(&"CAIRN_CONTAINER=greeter".to_string()),
        "{env:?}"
    );
}

#[test]
fn build_artifact_ships_without_its_compiler() {
    let extra = r#"
[build.greet]
command = "mkdir -p $out/bin && gcc -O2 -o $out/bin/greet greet.c"
runtime-packages = ["libc6"]

[containers.slim]
name = "REPLACE"
artifacts = ["greet"]
startup-command = ["greet"]
"#;
    let image_name = unique_name("slim");
    let Some((ctx, cache)) = real_env(
        &["gcc", "libc6-dev", "coreutils"],
        &extra.replace("REPLACE", &image_name),
    ) else {
        return;
    };
    fs_err::write(
        ctx.work.join("greet.c"),
        "#include <stdio.h>\nint main(void){puts(\"built by cairn\");return 0;}\n",
    )
    .unwrap();
    cairn_with_cache(&ctx, &cache, &["build", "greet"]);
    let record = ctx.work.join(".cairn/build/greet.json");
    assert!(record.is_file(), "build record missing");

    let out = cairn_with_cache(
        &ctx,
        &cache,
        &["containerize", "--container", "slim", "--runtime", "docker"],
    );
    let image: LoadedImage = Engine::Docker.adopt(stdout_of(&out).trim());
    assert_eq!(stdout_of(&image.run(&[])).trim(), "built by cairn");
    let paths = image.exported_paths(&ctx.work);
    assert!(
        paths.iter().any(|p| p == "usr/bin/greet"),
        "artifact missing"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("usr/bin/gcc")),
        "compiler shipped"
    );
    assert!(
        paths.iter().any(|p| p.contains("libc.so.6")),
        "runtime package missing"
    );
}
