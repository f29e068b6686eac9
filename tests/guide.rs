//! flox's containerize guide, example by example, with `cairn` in place of
//! `flox` (the "Flox Containerization Guide" of flox's agent skills,
//! flox-plugin/skills/flox-containers/SKILL.md in flox/flox-agentic): the
//! Flask app, the Node.js app (`npm start`), the PostgreSQL database
//! container, a service container (under Podman), the custom entrypoint
//! built by `[build.entrypoint]`, and the debugging commands.
//!
//! Each example runs as a user would type it: a bash script in the project
//! directory, `cairn init`, `cairn install`, the guide's `cat >>
//! .cairn/env/manifest.toml << 'EOF'` exactly as written, then
//! `cairn containerize … | docker load` and `docker run`. What differs from
//! the guide, and why:
//! - Debian package names: `python311` → `python3` (+ `python-is-python3`,
//!   which is Debian's `python` command the guide's `cmd` calls), `flask` →
//!   `python3-flask`, `nodejs` → `nodejs npm` (Debian ships npm apart).
//! - The test points `[sources]` at the machine's Debian mirror after
//!   `cairn init`, as every real-archive test does.
//! - Host ports are `127.0.0.1:0` (read back with `docker port`), image names
//!   are unique, so tests run in parallel.
//! - PostgreSQL: Debian keeps `initdb`/`postgres` in
//!   `/usr/lib/postgresql/N/bin` (off PATH), and PostgreSQL refuses to run as
//!   root, so the service names Debian's path and the image runs as the
//!   package's `postgres` account (`user = "postgres"`).
//! - `setup_app`, the guide's placeholder for "custom initialization", is a
//!   second `[build]` here, so the entrypoint has something to run.
//!
//! Needs Debian's archive (skipped with a message locally when it does not
//! answer, a failure under CI=true), Docker and Podman.

use cairn_tests::images::{
    Container, Engine, LoadedImage, command_like, http_get_until, loaded_reference,
    shared_cache_dir, shell_quote, unique_name,
};
use cairn_tests::{RealArchive, TestContext, stderr_of, stdout_of};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// How long a container may take to answer its first request.
const DEADLINE: Duration = Duration::from_secs(120);

/// One example's project: a directory named uniquely (so is its image),
/// a `cairn` on PATH, and the `.deb`/layer cache shared by these tests.
struct Project {
    ctx: TestContext,
    dir: PathBuf,
    bin: PathBuf,
    archive: RealArchive,
}

impl Project {
    /// A new project for `example`, or None (after saying why) when Debian's
    /// archive or `engine` is missing.
    fn new(example: &str, engine: Engine) -> Option<Project> {
        let archive = cairn_tests::reachable_real_archive()?;
        if !engine.ready() {
            return None;
        }
        let ctx = TestContext::new();
        let dir = ctx
            .root
            .path()
            .join(unique_name(&format!("guide-{example}")));
        let bin = ctx.root.path().join("bin");
        fs_err::create_dir_all(&dir).expect("create project dir");
        fs_err::create_dir_all(&bin).expect("create bin dir");
        fs_err::os::unix::fs::symlink(TestContext::cairn_bin(), bin.join("cairn"))
            .expect("link cairn");
        // Containers running as a package's user read the project mounted at /app.
        set_mode(&dir, 0o755);
        Some(Project {
            ctx,
            dir,
            bin,
            archive,
        })
    }

    /// The image `cairn containerize` names after the project directory.
    fn image_name(&self) -> String {
        self.dir
            .file_name()
            .expect("project dir name")
            .to_string_lossy()
            .into_owned()
    }

    /// `bash -c SCRIPT` in the project directory, as the user's terminal
    /// would run it (`set -eo pipefail`: a failing step fails the example).
    fn sh(&self, script: &str) -> Output {
        let template = self.ctx.cairn_in(&self.dir);
        let mut cmd = command_like(&template, "bash");
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env_remove("CAIRN_ENV")
            .env("PATH", path)
            .env("CAIRN_CACHE_DIR", shared_cache_dir("guide"))
            .args(["-eo", "pipefail", "-c", script]);
        cairn_tests::context::expect_success(&mut cmd)
    }

    /// `cairn init`, then `[sources]` aimed at the machine's mirror.
    fn init(&self) {
        self.sh("cairn init");
        cairn_tests::context::set_manifest_sources(
            &TestContext::env_dir_of(&self.dir).join("manifest.toml"),
            &self.archive.sources_toml(),
        );
    }

    fn write(&self, name: &str, text: &str, mode: u32) {
        let path = self.dir.join(name);
        fs_err::write(&path, text).expect("write project file");
        set_mode(&path, mode);
    }

    /// `$(pwd):/app`, as the guide mounts it.
    fn app_volume(&self) -> String {
        format!("{}:/app", self.dir.display())
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The image a `… | docker load` step of `script` loaded, as a guard.
fn loaded(engine: Engine, out: &Output) -> LoadedImage {
    let reference = loaded_reference(&stdout_of(out)).unwrap_or_else(|| {
        panic!(
            "no image loaded\n--- stdout\n{}\n--- stderr\n{}",
            stdout_of(out),
            stderr_of(out)
        )
    });
    engine.adopt(&reference)
}

/// `GET http://HOST:PORT/` of a container's published port, or a failure
/// showing the container's logs.
fn get(container: &Container, port: &str) -> String {
    let url = format!("http://{}/", container.published(port));
    http_get_until(&url, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n--- container logs\n{}", container.logs()))
}

/// `docker exec CID ARGS…`, asserting success.
fn exec(container: &Container, args: &[&str]) -> Output {
    let mut cmd = container.engine.command(&["exec", &container.id]);
    cmd.args(args);
    cairn_tests::context::expect_success(&mut cmd)
}

/// Runs `command` on a pseudo-terminal (`script`), typing `input`: the
/// guide's `docker run -it` and `docker exec -it` need one.
fn on_a_terminal(command: &str, input: &str) -> String {
    let script = format!(
        "printf %s {} | script -qec {} /dev/null",
        shell_quote(input),
        shell_quote(command)
    );
    let out = cairn_tests::context::expect_success(Command::new("bash").args(["-c", &script]));
    stdout_of(&out)
}

const FLASK_APP: &str = r#"import os, pwd
from flask import Flask
app = Flask(__name__)

@app.route("/")
def index():
    return f"guide flask user={pwd.getpwuid(os.getuid()).pw_name} cwd={os.getcwd()}\n"
"#;

/// The guide's "Flask Web Application", then its debugging commands on
/// that image and container.
#[test]
fn flask_web_application_and_debugging_commands() {
    let Some(p) = Project::new("flask", Engine::Docker) else {
        return;
    };
    p.init();
    p.write("app.py", FLASK_APP, 0o644);
    let out = p.sh(r#"
cairn install python3 python3-flask python-is-python3

# Configure for container
cat >> .cairn/env/manifest.toml << 'EOF'
[containerize.config]
exposed-ports = ["5000/tcp"]
cmd = ["python", "-m", "flask", "run", "--host=0.0.0.0"]
working-dir = "/app"
user = "flask"
EOF

# Build and run
cairn containerize -f - | docker load
"#);
    let image = loaded(Engine::Docker, &out);
    assert_eq!(image.reference, format!("{}:latest", p.image_name()));
    let container = Container::start(
        Engine::Docker,
        &[
            "-p",
            "127.0.0.1:0:5000",
            "-v",
            &p.app_volume(),
            &image.reference,
        ],
    );
    assert_eq!(
        get(&container, "5000/tcp"),
        "guide flask user=flask cwd=/app\n"
    );

    // Debugging Container Issues: "Check environment".
    let env = stdout_of(&image.run(&["env"]));
    assert!(
        env.lines().any(|l| l.starts_with("PATH=/opt/cairn/bin:"))
            && env
                .lines()
                .any(|l| l == format!("CAIRN_ENV_NAME={}", p.image_name())),
        "{env}"
    );
    // "Check what's in the image".
    let listing = stdout_of(&image.run(&["ls", "-la", "/"]));
    for entry in ["usr", "etc", "opt", "app", "bin -> usr/bin"] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {entry}"))),
            "{entry} missing from `ls -la /`:\n{listing}"
        );
    }
    // "Run interactively": an activated bash from `--entrypoint /bin/bash`.
    let typed = "python -c 'import flask; print(\"flask\", flask.__name__)'\nexit\n";
    let shell = on_a_terminal(
        &format!(
            "docker run --rm -it --entrypoint /bin/bash {}",
            image.reference
        ),
        typed,
    );
    assert!(shell.contains("flask flask"), "{shell}");

    // "View Container Logs" and "Execute Commands in Running Container".
    let mut logs = Engine::Docker.command(&["logs", "--tail", "100", &container.id]);
    let logs = cairn_tests::context::expect_success(&mut logs);
    assert!(
        format!("{}{}", stdout_of(&logs), stderr_of(&logs)).contains("GET / HTTP"),
        "the request is in `docker logs`"
    );
    let list = stdout_of(&exec(&container, &["cairn", "list"]));
    assert!(list.contains("python3-flask"), "{list}");
    let whoami = stdout_of(&exec(&container, &["/bin/bash", "-c", "id -un; pwd"]));
    assert_eq!(whoami, "flask\n/app\n");
    let shell = on_a_terminal(
        &format!("docker exec -it {} /bin/bash", container.id),
        "echo \"in=$(id -un):$PWD\"\nexit\n",
    );
    assert!(shell.contains("in=flask:/app"), "{shell}");
}

const PACKAGE_JSON: &str = r#"{
  "name": "guide-node",
  "version": "1.0.0",
  "private": true,
  "scripts": { "start": "./server.js" }
}
"#;

const SERVER_JS: &str = r#"#!/usr/bin/env node
const http = require("http");
http.createServer((req, res) => res.end(`guide node ${process.version}\n`)).listen(3000);
console.log("listening on 3000");
"#;

/// The guide's "Node.js Application": `npm start` in the project mounted at /app.
#[test]
fn nodejs_application_runs_npm_start() {
    let Some(p) = Project::new("node", Engine::Docker) else {
        return;
    };
    p.init();
    p.write("package.json", PACKAGE_JSON, 0o644);
    p.write("server.js", SERVER_JS, 0o755);
    let tag = format!("{}:latest", p.image_name());
    let out = p.sh(&format!(
        r#"
cairn install nodejs npm

cat >> .cairn/env/manifest.toml << 'EOF'
[containerize.config]
exposed-ports = ["3000/tcp"]
cmd = ["npm", "start"]
working-dir = "/app"
EOF

cairn containerize --tag {tag} --runtime docker
"#
    ));
    let _image = Engine::Docker.adopt(&tag);
    assert!(stdout_of(&out).contains(&tag), "{}", stdout_of(&out));
    let container = Container::start(
        Engine::Docker,
        &["-p", "127.0.0.1:0:3000", "-v", &p.app_volume(), &tag],
    );
    let body = get(&container, "3000/tcp");
    assert!(body.starts_with("guide node v"), "{body}");
}

/// The guide's "Database Container": PostgreSQL as a service that starts by
/// itself (`cmd = []`), with its data in a volume.
#[test]
fn database_container_runs_postgresql_as_a_service() {
    let Some(p) = Project::new("postgres", Engine::Docker) else {
        return;
    };
    p.init();
    p.sh("cairn install postgresql");
    // Debian's server binaries live in /usr/lib/postgresql/MAJOR/bin.
    let lock = fs_err::read_to_string(TestContext::env_dir_of(&p.dir).join("manifest.lock"))
        .expect("lock");
    let major = lock
        .lines()
        .find_map(|l| l.strip_prefix("name = \"postgresql-"))
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no postgresql-N in the lock:\n{lock}"));
    let bin = format!("/usr/lib/postgresql/{major}/bin");
    let out = p.sh(&format!(
        r#"
cat >> .cairn/env/manifest.toml << 'EOF'
[services.postgres]
command = '''
  mkdir -p /data/postgres
  if [ ! -d "/data/postgres/pgdata" ]; then
    {bin}/initdb -D /data/postgres/pgdata
  fi
  exec {bin}/postgres -D /data/postgres/pgdata -h 0.0.0.0
'''
is-daemon = true

[containerize.config]
exposed-ports = ["5432/tcp"]
volumes = ["/data"]
cmd = []  # Service starts automatically
user = "postgres"
EOF

cairn containerize -f - | docker load
"#
    ));
    let image = loaded(Engine::Docker, &out);
    let volume = unique_name("guide-pgdata");
    let container = Container::start(
        Engine::Docker,
        &[
            "-p",
            "127.0.0.1:0:5432",
            "-v",
            &format!("{volume}:/data"),
            &image.reference,
        ],
    );
    let _volume = VolumeGuard(volume);
    let select = [
        "psql",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-tAc",
        "select 40 + 2",
    ];
    let answer = retry_exec(&container, &select);
    assert_eq!(answer.trim(), "42", "{}", container.logs());
    let status = stdout_of(&exec(&container, &["cairn", "services", "status"]));
    assert!(status.contains("postgres"), "{status}");
}

/// Removes a named volume when dropped.
struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = Engine::Docker
            .command(&["volume", "rm", "-f", &self.0])
            .output();
    }
}

/// `docker exec CID ARGS…` until it succeeds or [`DEADLINE`] passes.
fn retry_exec(container: &Container, args: &[&str]) -> String {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let mut cmd = container.engine.command(&["exec", &container.id]);
        let out = cairn_tests::context::run_with_timeout(cmd.args(args));
        if out.status.success() {
            return stdout_of(&out);
        }
        if std::time::Instant::now() > end {
            panic!(
                "{args:?} kept failing: {}\n--- container logs\n{}",
                stderr_of(&out),
                container.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The guide's "Service Containers" pattern, loaded into and run by Podman.
#[test]
fn service_container_starts_its_service_under_podman() {
    let Some(p) = Project::new("service", Engine::Podman) else {
        return;
    };
    p.init();
    p.write("index.html", "guide service container\n", 0o644);
    let out = p.sh(r#"
cairn install python3 python-is-python3
cat >> .cairn/env/manifest.toml << 'EOF'
[services.web]
command = "python -m http.server 8000"

[containerize.config]
exposed-ports = ["8000/tcp"]
cmd = []  # Service starts automatically
EOF
cairn containerize -f - | podman load
"#);
    let image = loaded(Engine::Podman, &out);
    let container = Container::start(
        Engine::Podman,
        &[
            "-p",
            "127.0.0.1::8000",
            "-v",
            &p.app_volume(),
            "-w",
            "/app",
            &image.reference,
        ],
    );
    assert_eq!(get(&container, "8000/tcp"), "guide service container\n");
}

/// The guide's "Custom Entrypoint with Wrapper Script": a `[build]` writes
/// `$out/bin/entrypoint.sh`, and `cmd = ["entrypoint.sh", …]` finds it in
/// the default image.
#[test]
fn custom_entrypoint_from_a_build_wraps_the_command() {
    let Some(p) = Project::new("entrypoint", Engine::Docker) else {
        return;
    };
    p.init();
    p.write("app.py", "print('guide app ran')\n", 0o644);
    let out = p.sh(r#"
cairn install python3 python-is-python3
cat >> .cairn/env/manifest.toml << 'TOML'
[build.entrypoint]
command = '''
  cat > $out/bin/entrypoint.sh << 'EOF'
#!/usr/bin/env bash
set -e

# Custom initialization
echo "Initializing application..."
setup_app

# Run whatever command was passed
exec "$@"
EOF
  chmod +x $out/bin/entrypoint.sh
'''

[build.setup-app]
command = '''
  printf '#!/bin/sh\necho "app set up"\n' > $out/bin/setup_app
  chmod +x $out/bin/setup_app
'''

[containerize.config]
cmd = ["entrypoint.sh", "python", "app.py"]
TOML
cairn containerize -f - | docker load
"#);
    let image = loaded(Engine::Docker, &out);
    let mut cmd = Engine::Docker.command(&[
        "run",
        "--rm",
        "-v",
        &p.app_volume(),
        "-w",
        "/app",
        &image.reference,
    ]);
    let out = cairn_tests::context::expect_success(&mut cmd);
    assert_eq!(
        stdout_of(&out),
        "Initializing application...\napp set up\nguide app ran\n",
        "{}",
        stderr_of(&out)
    );
}
