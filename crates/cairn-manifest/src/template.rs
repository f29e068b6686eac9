//! The starter manifest `cairn init` writes: `version = 1`, an empty
//! `[install]`, and a commented example of every table, like flox's.

/// A commented starter manifest for the environment `name`; it parses as a
/// valid, empty manifest.
pub fn init_template(name: &str) -> String {
    // `Value`'s Display quotes and escapes the name as a TOML string.
    let name = toml_edit::Value::from(name.trim()).to_string();
    TEMPLATE.replace("@NAME@", &name)
}

const TEMPLATE: &str = r#"## cairn manifest: the packages, variables and services of this environment.
## Edit it by hand or with `cairn install`/`cairn uninstall`; lines starting
## with `#` are examples to uncomment.
version = 1
name = @NAME@

## Debian packages: `id.pkg = "debian-package"`, optionally with a version
## constraint ("3.11.2-1", ">= 3.11", "<< 4") and the systems it applies to.
[install]
# python3.pkg = "python3"
# python3.version = ">= 3.11"
# gcc.pkg = "gcc"
# gcc.systems = ["x86_64-linux"]

## Debian archives to resolve from. Without [sources]: Debian bookworm,
## bookworm-updates and bookworm-security (main), checked with Debian's keys.
# [sources.debian]
# url = "http://deb.debian.org/debian"
# suites = ["bookworm", "bookworm-updates"]
# components = ["main"]
# architectures = ["amd64"]
# keyring = "debian"

## Environment variables set on activation (strings only).
[vars]
# GREETING = "hello"

## A script run by bash on every activation.
[hook]
# on-activate = '''
#   mkdir -p "$HOME/.cache/my-app"
# '''

## Snippets sourced by interactive shells.
[profile]
# common = '''
#   echo "$GREETING from cairn"
# '''
# bash = "..."
# zsh = "..."
# fish = "..."

## Long-running processes: `cairn services start`.
[services]
# web.command = "python3 -m http.server $PORT"
# web.vars = { PORT = "8000" }
# web.is-daemon = false
# web.shutdown.command = "..."

## Systems to lock and build for (default: this machine's), and how
## `cairn activate` behaves ("dev" or "run").
[options]
# systems = ["x86_64-linux", "aarch64-linux"]
# activate.mode = "dev"

## The image `cairn containerize` builds: one layer per package, reproducible.
[containerize]
# name = "my-app"
# tag = "latest"
# max-layers = 100
# compression = "gzip"

## Its OCI config.
[containerize.config]
# user = "app:app"
# exposed-ports = ["8000/tcp"]
# cmd = ["python3", "-m", "http.server"]
# volumes = ["/data"]
# working-dir = "/app"
# labels = { "org.opencontainers.image.title" = "my-app" }
# stop-signal = "SIGTERM"

## More images, each with its own command and contents.
# [containers.api]
# startup-command = "python3 app.py"
# copy-to-root = ["./app"]
# working-dir = "/app"
# exclude = ["gcc"]
# registry = "docker://localhost:5000/team/"

## Artifacts built inside the environment, copied into images with
## `copy-to-root = ["build:hello"]` or `artifacts = ["hello"]`.
# [build.hello]
# command = "mkdir -p $out/bin && cc -O2 -o $out/bin/hello hello.c"
# runtime-packages = ["libc6"]
# description = "says hello"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;
    use std::path::Path;

    #[test]
    fn template_parses_as_an_empty_manifest() {
        let text = init_template("demo");
        let manifest = Manifest::parse(Path::new("manifest.toml"), &text)
            .unwrap_or_else(|e| panic!("template does not parse: {e:?}"));
        assert_eq!(manifest.name.as_deref(), Some("demo"));
        assert!(manifest.install.is_empty());
        assert_eq!(
            manifest,
            Manifest {
                name: Some("demo".into()),
                ..Manifest::default()
            }
        );
    }

    #[test]
    fn template_escapes_the_name() {
        let text = init_template("my \"env\"");
        let manifest = Manifest::parse(Path::new("manifest.toml"), &text)
            .unwrap_or_else(|e| panic!("template does not parse: {e:?}"));
        assert_eq!(manifest.name.as_deref(), Some("my \"env\""));
    }

    /// Every commented example, uncommented, must also be a valid manifest.
    #[test]
    fn uncommented_examples_parse() {
        let text: String = init_template("demo")
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .filter(|line| *line != "#")
            .collect::<Vec<_>>()
            .join("\n");
        let manifest = Manifest::parse(Path::new("manifest.toml"), &text)
            .unwrap_or_else(|e| panic!("examples do not parse: {e:?}\n{text}"));
        assert_eq!(manifest.install.len(), 2);
        assert_eq!(manifest.services["web"].vars["PORT"], "8000");
        assert_eq!(manifest.containers["api"].exclude, ["gcc"]);
    }
}
