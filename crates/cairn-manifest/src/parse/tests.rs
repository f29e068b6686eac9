//! Manifest parsing end to end: valid manifests, and the message, help and
//! location of each kind of error.

use crate::{Located, Manifest, ManifestError};
use std::path::Path;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("manifest.toml"), text)
}

fn error(text: &str) -> Box<Located> {
    match parse(text) {
        Ok(m) => panic!("expected an error, parsed {m:?}"),
        Err(ManifestError::Invalid(located) | ManifestError::Syntax(located)) => located,
        Err(e) => panic!("expected a located error, got {e:?}"),
    }
}

/// Asserts the message, a piece of the help, the text under the caret,
/// and where that text starts.
#[track_caller]
fn assert_error(text: &str, message: &str, help: &str, snippet: &str, line_col: (usize, usize)) {
    let err = error(text);
    assert_eq!(err.message, message);
    let got_help = err.help.clone().unwrap_or_default();
    assert!(got_help.contains(help), "help {got_help:?} lacks {help:?}");
    assert_eq!(err.snippet(), snippet, "span of {message}");
    assert_eq!(err.line_col(), line_col, "position of {message}");
}

#[test]
fn bad_port_protocol() {
    assert_error(
        "version = 1\n[containerize.config]\nexposed-ports = [\"8080\", \"80/sctp\"]\n",
        "containerize.config.exposed-ports: '80/sctp' is not tcp or udp",
        r#"use "80/tcp" or "80/udp""#,
        "\"80/sctp\"",
        (3, 26),
    );
}

#[test]
fn bad_port_number() {
    assert_error(
        "version = 1\n[containerize.config]\nexposed-ports = [\"0\"]\n",
        "containerize.config.exposed-ports: '0' does not start with a port number from 1 to 65535",
        "8080/tcp",
        "\"0\"",
        (3, 18),
    );
}

#[test]
fn relative_volume() {
    assert_error(
        "version = 1\n[containerize.config]\nvolumes = [\"/ok\", \"data\"]\n",
        "containerize.config.volumes: 'data' is not an absolute path",
        "\"/data\"",
        "\"data\"",
        (3, 19),
    );
}

#[test]
fn unknown_signal() {
    assert_error(
        "version = 1\n\n[containerize.config]\nstop-signal = \"SIGFOO\"\n",
        "containerize.config.stop-signal: 'SIGFOO' is not a signal name or number",
        "SIGTERM",
        "\"SIGFOO\"",
        (4, 15),
    );
}

#[test]
fn bad_user() {
    assert_error(
        "version = 1\n[containerize.config]\nuser = \"App User\"\n",
        "containerize.config.user: 'App User' is not a user, uid, user:group or uid:gid",
        "app:app",
        "\"App User\"",
        (3, 8),
    );
}

#[test]
fn unknown_root_key_suggests() {
    assert_error(
        "version = 1\n[instal]\npython3.pkg = \"python3\"\n",
        "unknown key 'instal' in manifest",
        "did you mean 'install'?",
        "instal",
        (2, 2),
    );
}

#[test]
fn unknown_nested_key_suggests() {
    assert_error(
        "version = 1\n[containerize]\ntag = \"x\"\nmax-layer = 5\n",
        "unknown key 'max-layer' in [containerize]",
        "did you mean 'max-layers'?",
        "max-layer",
        (4, 1),
    );
    assert_error(
        "version = 1\n[install]\nhello.pkg = \"hello\"\nhello.systms = []\n",
        "unknown key 'systms' in [install.hello]",
        "did you mean 'systems'?",
        "systms",
        (4, 7),
    );
    assert_error(
        "version = 1\n[services.web]\ncommand = \"x\"\nfoo = 1\n",
        "unknown key 'foo' in [services.web]",
        "expected one of: command, vars, is-daemon, shutdown",
        "foo",
        (4, 1),
    );
}

#[test]
fn wrong_type() {
    assert_error(
        "version = 1\n[install]\npython3.pkg = 3\n",
        "install.python3.pkg: expected a string, found integer",
        "pkg = \"...\"",
        "3",
        (3, 15),
    );
    assert_error(
        "version = 1\n[vars]\nGREETING = true\n",
        "vars.GREETING: expected a string, found boolean",
        "GREETING = \"...\"",
        "true",
        (3, 12),
    );
    assert_error(
        "version = 1\n[install]\npython3 = \"python3\"\n",
        "install.python3: expected a table, found string",
        "python3.pkg = \"<debian package>\"",
        "\"python3\"",
        (3, 11),
    );
}

#[test]
fn bad_version_constraint() {
    assert_error(
        "version = 1\n[install]\npython3.pkg = \"python3\"\npython3.version = \"3.11 beta\"\n",
        "install.python3.version: '3.11 beta' is not a Debian version constraint",
        ">= 3.11",
        "\"3.11 beta\"",
        (4, 19),
    );
    assert_error(
        "version = 1\n[install]\npython3 = { pkg = \"python3\", version = \"> 3\" }\n",
        "install.python3.version: '> 3': Debian has no '<' or '>' operator",
        "\">>\"",
        "\"> 3\"",
        (3, 40),
    );
}

#[test]
fn max_layers_out_of_range() {
    assert_error(
        "version = 1\n[containerize]\nmax-layers = 200\n",
        "containerize.max-layers: 200 is out of range",
        "from 4 to 125",
        "200",
        (3, 14),
    );
    assert!(parse("version = 1\n[containerize]\nmax-layers = 125\n").is_ok());
    assert!(parse("version = 1\n[containers.a]\nmax-layers = 3\n").is_err());
    assert!(parse("version = 1\n[containers.a]\nmax-layers = 4\n").is_ok());
}

#[test]
fn bad_system() {
    assert_error(
        "version = 1\n[options]\nsystems = [\"x86_64-darwin\"]\n",
        "options.systems: 'x86_64-darwin' is not a supported system",
        "\"aarch64-linux\"",
        "\"x86_64-darwin\"",
        (3, 12),
    );
    assert_error(
        "version = 1\n[options]\nsystems = [\"x86_64-linux\"]\n[install]\nx.pkg = \"hello\"\nx.systems = [\"aarch64-linux\"]\n",
        "install.x.systems: 'aarch64-linux' is not in options.systems",
        "add it to options.systems",
        "\"aarch64-linux\"",
        (6, 14),
    );
}

#[test]
fn duplicate_pkg_only_for_disjoint_systems() {
    assert_error(
        "version = 1\n[install]\na.pkg = \"hello\"\nb.pkg = \"hello\"\n",
        "install.b: package 'hello' is already installed as 'a'",
        "disjoint 'systems'",
        "\"hello\"",
        (4, 9),
    );
    let disjoint = "version = 1\n[install]\na.pkg = \"hello\"\na.systems = [\"x86_64-linux\"]\nb.pkg = \"hello\"\nb.systems = [\"aarch64-linux\"]\n";
    assert!(parse(disjoint).is_ok());
}

#[test]
fn version_must_be_one() {
    assert_error(
        "version = 2\n",
        "version: manifest version 2 is not supported",
        "version = 1",
        "2",
        (1, 11),
    );
    assert_error(
        "[install]\n",
        "the manifest has no 'version' key",
        "add `version = 1`",
        "",
        (1, 1),
    );
}

#[test]
fn missing_required_key_points_at_the_table() {
    assert_error(
        "version = 1\n[install]\npython3.version = \"3.11\"\n",
        "install.python3: missing 'pkg'",
        "add pkg = ",
        "python3",
        (3, 1),
    );
    assert_error(
        "version = 1\n[sources.mirror]\nsuites = [\"bookworm\"]\n",
        "sources.mirror: missing 'url'",
        "add url = ",
        "mirror",
        (2, 10),
    );
}

#[test]
fn bad_names_and_references() {
    assert_error(
        "version = 1\n[services.\"my web\"]\ncommand = \"x\"\n",
        "services.my web: 'my web' is not a valid name",
        "letters, digits",
        "\"my web\"",
        (2, 11),
    );
    assert_error(
        "version = 1\n[install]\ngcc.pkg = \"gcc\"\n[containers.api]\nexclude = [\"gc\"]\n",
        "containers.api.exclude: 'gc' is not an [install] id",
        "did you mean 'gcc'?",
        "\"gc\"",
        (5, 12),
    );
    assert_error(
        "version = 1\n[containers.api]\ncopy-to-root = \"build:app\"\n",
        "containers.api.copy-to-root: 'app' is not a [build] name",
        "none is defined yet",
        "\"build:app\"",
        (3, 16),
    );
    assert_error(
        "version = 1\n[containerize]\ncopy-to-root = [\"./root\", \"build:app\"]\n",
        "containerize.copy-to-root: 'app' is not a [build] name",
        "none is defined yet",
        "\"build:app\"",
        (3, 27),
    );
    assert_error(
        "version = 1\n[containerize]\nname = \"MyImage\"\n",
        "containerize.name: 'MyImage' is not a valid image name",
        "lowercase",
        "\"MyImage\"",
        (3, 8),
    );
}

#[test]
fn syntax_errors_are_located() {
    let err = match parse("version = 1\n[install\npython3.pkg = \"python3\"\n") {
        Err(ManifestError::Syntax(located)) => located,
        other => panic!("expected a syntax error, got {other:?}"),
    };
    assert!(err.message.starts_with("invalid TOML: "), "{}", err.message);
    assert_eq!(err.line_col().0, 2, "{err:?}");
    let dup = error("version = 1\nversion = 1\n");
    assert_eq!(dup.line_col().0, 2, "{dup:?}");
}

#[test]
fn io_errors_name_the_path() {
    let err = Manifest::load(Path::new("/nonexistent/manifest.toml"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("cannot read the manifest /nonexistent/manifest.toml")
    );
}

const FULL: &str = r#"
version = 1
name = "demo"

[install]
python3.pkg = "python3"
python3.version = ">= 3.11"
flask.pkg = "python3-flask"
flask.systems = ["x86_64-linux"]
gcc = { pkg = "gcc", version = "4:12.2.0-3" }

[sources.debian]
url = "http://deb.debian.org/debian/"
suites = ["bookworm", "bookworm-updates"]
components = ["main", "contrib"]
architectures = ["amd64"]
keyring = "keys/debian.gpg"

[vars]
GREETING = "hi"

[hook]
on-activate = '''echo hello'''

[profile]
common = "c"
bash = "b"
zsh = "z"
fish = "f"

[services.web]
command = "python3 -m http.server 8000"
vars = { PORT = "8000" }
is-daemon = false
shutdown.command = "kill it"

[options]
systems = ["x86_64-linux", "aarch64-linux"]
activate.mode = "run"

[containerize]
name = "team/myimage"
tag = "latest"
max-layers = 100
compression = "zstd"

[containerize.config]
user = "app:app"
exposed-ports = ["8080", "8080/tcp", "53/udp"]
cmd = []
volumes = ["/data"]
working-dir = "/app"
labels = { "org.opencontainers.image.title" = "x" }
stop-signal = "TERM"

[containers.api]
name = "api"
version = "1.0"
startup-command = ["python3", "app.py"]
copy-to-root = ["./app", "build:app"]
working-dir = "/app"
max-layers = 50
exclude = ["gcc"]
registry = "docker://localhost:5000/team/"
default-copy-args = "--dest-tls-verify=false"
artifacts = ["app"]

[build.app]
command = "cc -O2 -o $out/bin/hello hello.c"
runtime-packages = ["libc6"]
description = "says hello"
"#;

#[test]
fn full_manifest_parses() {
    use crate::*;
    let m = parse(FULL).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(m.install.len(), 3);
    assert_eq!(
        m.install["python3"]
            .version
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(">= 3.11")
    );
    assert_eq!(
        m.install["gcc"]
            .version
            .as_ref()
            .map(|v| v.version.as_str()),
        Some("4:12.2.0-3")
    );
    assert!(!m.install["flask"].applies_to("aarch64-linux"));
    let debian = &m.sources_or_default()["debian"];
    assert_eq!(debian.url, "http://deb.debian.org/debian");
    assert_eq!(debian.keyring.as_deref(), Some("keys/debian.gpg"));
    assert!(debian.serves_arch("amd64") && !debian.serves_arch("arm64"));
    assert_eq!(m.vars["GREETING"], "hi");
    assert_eq!(m.hook.on_activate.as_deref(), Some("echo hello"));
    assert_eq!(m.profile.fish.as_deref(), Some("f"));
    let web = &m.services["web"];
    assert_eq!(web.vars["PORT"], "8000");
    assert_eq!(
        web.shutdown.as_ref().map(|s| s.command.as_str()),
        Some("kill it")
    );
    assert_eq!(m.options.activate_mode, ActivateMode::Run);
    assert_eq!(m.systems_or_host(), ["x86_64-linux", "aarch64-linux"]);
    let c = &m.containerize;
    assert_eq!(
        (c.name.as_deref(), c.tag.as_deref(), c.max_layers),
        (Some("team/myimage"), Some("latest"), 100)
    );
    assert_eq!(c.compression, Compression::Zstd);
    let ports: Vec<String> = c
        .config
        .exposed_ports
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ports, ["8080/tcp", "8080/tcp", "53/udp"]);
    assert_eq!(
        c.config.user.as_ref().map(ToString::to_string).as_deref(),
        Some("app:app")
    );
    assert_eq!(c.config.cmd, Some(vec![]));
    assert_eq!(
        c.config
            .stop_signal
            .as_ref()
            .map(|s| (s.name.as_str(), s.number)),
        Some(("SIGTERM", 15))
    );
    assert_eq!(c.config.labels["org.opencontainers.image.title"], "x");
    let api = &m.containers["api"];
    assert_eq!(
        api.startup_command,
        Some(StartupCommand::Exec(vec![
            "python3".into(),
            "app.py".into()
        ]))
    );
    assert_eq!(
        api.copy_to_root,
        [
            CopySource::Path("./app".into()),
            CopySource::Build("app".into())
        ]
    );
    assert_eq!(m.max_layers_for(Some("api")), 50);
    assert_eq!(m.max_layers_for(None), 100);
    assert_eq!(m.build["app"].runtime_packages, ["libc6"]);
}

#[test]
fn variable_names_and_empty_sources() {
    assert_error(
        "version = 1\n[services.web]\ncommand = \"x\"\nvars = { \"MY-PORT\" = \"1\" }\n",
        "services.web.vars.MY-PORT: 'MY-PORT' is not a valid environment variable name",
        "letters, digits and _",
        "\"MY-PORT\"",
        (4, 10),
    );
    assert_error(
        "version = 1\n[sources]\n",
        "sources: no archives are listed",
        "remove [sources]",
        "sources",
        (2, 2),
    );
}

/// The error renders as a miette report: message, caret line, help.
#[test]
fn renders_as_a_miette_report() {
    let text = "version = 1\n[containerize.config]\nexposed-ports = [\"80/sctp\"]\n";
    let err = parse(text).err().unwrap_or_else(|| panic!("should fail"));
    let mut out = String::new();
    miette::NarratableReportHandler::new()
        .render_report(&mut out, &err)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("'80/sctp' is not tcp or udp"), "{out}");
    assert!(
        out.contains("label at line 3, columns 18 to 26: invalid value"),
        "{out}"
    );
    assert!(out.contains("use \"80/tcp\" or \"80/udp\""), "{out}");
}

/// `cat >> manifest.toml` of a table the file already has: both places.
#[test]
fn duplicate_table_points_at_both_declarations() {
    let text = "version = 1\n[install]\n[vars]\nA = \"1\"\n\n[vars]\nB = \"2\"\n";
    let err = error(text);
    assert!(
        err.message.contains("[vars] is declared twice"),
        "{}",
        err.message
    );
    assert!(
        err.help.as_deref().unwrap_or_default().contains("line 3"),
        "{:?}",
        err.help
    );
    assert_eq!(err.line_col().0, 6);
    let first = err.first.expect("the first declaration is labelled");
    assert_eq!(
        &text[first.offset()..first.offset() + first.len()],
        "[vars]"
    );
}

#[test]
fn healthcheck_reads_command_and_timings() {
    let manifest = parse(
        "version = 1\n[containerize.config]\nhealthcheck = { command = [\"redis-cli\", \"ping\"], interval = \"1m30s\", timeout = \"500ms\", retries = 5, start-period = \"0s\" }\n",
    )
    .unwrap();
    let check = manifest.containerize.config.healthcheck.unwrap();
    assert_eq!(
        check.command,
        crate::StartupCommand::Exec(vec!["redis-cli".into(), "ping".into()])
    );
    assert_eq!(check.interval.unwrap().as_nanos(), 90_000_000_000);
    assert_eq!(check.timeout.unwrap().as_nanos(), 500_000_000);
    assert_eq!(check.retries, Some(5));
    assert_eq!(check.start_period.unwrap().as_nanos(), 0);
    assert!(!check.from_label);
}

#[test]
fn healthcheck_label_is_converted() {
    let manifest = parse(
        "version = 1\n[containerize.config]\nlabels = { healthcheck = \"curl -f http://localhost/\", other = \"x\" }\n",
    )
    .unwrap();
    let config = manifest.containerize.config;
    let check = config.healthcheck.unwrap();
    assert!(check.from_label);
    assert_eq!(
        check.command,
        crate::StartupCommand::Shell("curl -f http://localhost/".into())
    );
    assert_eq!(config.labels.keys().collect::<Vec<_>>(), ["other"]);
}

#[test]
fn healthcheck_label_and_table_conflict() {
    assert_error(
        "version = 1\n[containerize.config]\nlabels = { healthcheck = \"true\" }\nhealthcheck = { command = \"true\" }\n",
        "containerize.config.labels.healthcheck: the health check is also set as healthcheck = { ... }",
        "remove the label",
        "healthcheck",
        (3, 12),
    );
}

#[test]
fn healthcheck_bad_duration() {
    assert_error(
        "version = 1\n[containerize.config]\nhealthcheck = { command = \"true\", interval = \"30 seconds\" }\n",
        "containerize.config.healthcheck.interval: '30 seconds' is not a duration",
        "\"1m30s\"",
        "\"30 seconds\"",
        (3, 46),
    );
}

#[test]
fn healthcheck_zero_timeout() {
    assert_error(
        "version = 1\n[containerize.config]\nhealthcheck = { command = \"true\", timeout = \"0s\" }\n",
        "containerize.config.healthcheck.timeout: a zero duration here means the engine's default",
        "leave timeout out",
        "\"0s\"",
        (3, 45),
    );
}

#[test]
fn healthcheck_needs_a_command() {
    let err = error("version = 1\n[containerize.config]\nhealthcheck = { interval = \"5s\" }\n");
    assert!(err.message.contains("command"), "{}", err.message);
    assert_error(
        "version = 1\n[containerize.config]\nhealthcheck = { command = [] }\n",
        "containerize.config.healthcheck.command: the command is an empty list",
        "redis-cli",
        "[]",
        (3, 27),
    );
    assert_error(
        "version = 1\n[containerize.config]\nhealthcheck = { command = \"true\", retries = 0 }\n",
        "containerize.config.healthcheck.retries: retries = 0 is out of range",
        "1 to 1000",
        "0",
        (3, 45),
    );
}

#[test]
fn the_default_image_takes_copy_to_root() {
    let m = parse("version = 1\n[containerize]\ncopy-to-root = \"./root\"\n").unwrap();
    assert_eq!(
        m.containerize.copy_to_root,
        vec![crate::CopySource::Path("./root".into())]
    );
    let e = error("version = 1\n[containerize]\ncopy-to-root = [\"/etc\"]\n");
    assert!(e.to_string().contains("containerize.copy-to-root"), "{e}");
}
