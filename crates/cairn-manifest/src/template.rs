//! The starter manifest `cairn init` writes: `version = 1`, the name and
//! the Debian release, an empty `[install]`, and a commented example of every
//! other table, like flox's. Only `[install]` is a live table, so appending
//! any other table by hand (`cat >> manifest.toml`, as flox's guides do) never
//! declares a table twice.

/// A commented starter manifest for the environment `name` on the Debian
/// `release` (a codename); it parses as a valid, empty manifest.
pub fn init_template(name: &str, release: &str) -> String {
    // `Value`'s Display quotes and escapes the strings as TOML.
    let name = toml_edit::Value::from(name.trim()).to_string();
    let release_value = toml_edit::Value::from(release).to_string();
    TEMPLATE
        .replace("@NAME@", &name)
        .replace("@RELEASE_VALUE@", &release_value)
        .replace("@RELEASE@", release)
}

const TEMPLATE: &str = r#"## cairn manifest: the packages, variables and services of this environment.
## Edit it by hand or with `cairn install`/`cairn uninstall`; lines starting
## with `#` are examples to uncomment.
version = 1
name = @NAME@
## The Debian release the packages come from (a codename, never "stable").
## Move to another one with `cairn upgrade --release CODENAME`.
release = @RELEASE_VALUE@

## Debian packages: `id.pkg = "debian-package"`, optionally with a version
## constraint ("3.11.2-1", ">= 3.11", "<< 4") and the systems it applies to.
[install]
# python3.pkg = "python3"
# python3.version = ">= 3.11"
# gcc.pkg = "gcc"
# gcc.systems = ["x86_64-linux"]

## Debian archives to resolve from. Without [sources]: Debian @RELEASE@,
## @RELEASE@-updates and @RELEASE@-security (main), checked with Debian's keys.
# [sources.debian]
# url = "http://deb.debian.org/debian"
# suites = ["@RELEASE@", "@RELEASE@-updates"]
# components = ["main"]
# architectures = ["amd64"]
# keyring = "debian"

## Environment variables set on activation (strings only).
# [vars]
# GREETING = "hello"

## A script run by bash on every activation.
# [hook]
# on-activate = '''
#   mkdir -p "$HOME/.cache/my-app"
# '''

## Snippets sourced by interactive shells.
# [profile]
# common = '''
#   echo "$GREETING from cairn"
# '''
# bash = "..."
# zsh = "..."
# fish = "..."

## Long-running processes: `cairn services start`.
# [services]
# web.command = "python3 -m http.server $PORT"
# web.vars = { PORT = "8000" }
# web.is-daemon = false
# web.shutdown.command = "..."

## Systems to lock and build for (default: this machine's), and how
## `cairn activate` behaves ("dev" or "run").
# [options]
# systems = ["x86_64-linux", "aarch64-linux"]
# activate.mode = "dev"

## The image `cairn containerize` builds: one layer per package, reproducible.
# [containerize]
# name = "my-app"
# tag = "latest"
# max-layers = 100
# compression = "gzip"
## Project paths copied to the image root (a private CA as
## ./root/usr/local/share/ca-certificates/corp.crt joins the CA bundle).
# copy-to-root = ["./root"]

## Its OCI config.
# [containerize.config]
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
        let text = init_template("demo", "trixie");
        let manifest = Manifest::parse(Path::new("manifest.toml"), &text)
            .unwrap_or_else(|e| panic!("template does not parse: {e:?}"));
        assert_eq!(manifest.name.as_deref(), Some("demo"));
        assert!(manifest.install.is_empty());
        assert_eq!(
            manifest,
            Manifest {
                name: Some("demo".into()),
                release: Some("trixie".into()),
                ..Manifest::default()
            }
        );
    }

    #[test]
    fn template_escapes_the_name() {
        let text = init_template("my \"env\"", "trixie");
        let manifest = Manifest::parse(Path::new("manifest.toml"), &text)
            .unwrap_or_else(|e| panic!("template does not parse: {e:?}"));
        assert_eq!(manifest.name.as_deref(), Some("my \"env\""));
    }

    /// Every commented example, uncommented, must also be a valid manifest.
    #[test]
    fn uncommented_examples_parse() {
        let text: String = init_template("demo", "trixie")
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

    /// flox's guides append tables with `cat >> manifest.toml`: every table
    /// the template mentions can be appended once without a duplicate.
    #[test]
    fn every_table_can_be_appended_by_hand() {
        let tables = [
            "[vars]\nA = \"1\"\n",
            "[hook]\non-activate = \"true\"\n",
            "[profile]\ncommon = \"true\"\n",
            "[services.web]\ncommand = \"true\"\n",
            "[services]\nweb.command = \"true\"\n",
            "[options]\nsystems = [\"x86_64-linux\"]\n",
            "[containerize]\nname = \"x\"\n",
            "[containerize.config]\nexposed-ports = [\"5000/tcp\"]\n",
            "[containers.api]\nstartup-command = \"true\"\n",
            "[sources.debian]\nurl = \"http://deb.debian.org/debian\"\nsuites = [\"trixie\"]\n",
        ];
        for table in tables {
            let text = format!("{}\n{table}", init_template("demo", "trixie"));
            Manifest::parse(Path::new("manifest.toml"), &text)
                .unwrap_or_else(|e| panic!("appending {table:?} fails: {e:?}"));
        }
    }
}
