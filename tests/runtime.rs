//! cairn's runtime end to end, with real Debian packages and real engines: the
//! image entrypoint (an interactive shell with the prompt and hook, commands
//! with clean stdout and their exit codes, `docker exec cairn list`), services
//! as PID 1 (PostgreSQL with a volume, redis + an HTTP server, `docker stop`
//! forwarding SIGTERM, reverse-order shutdown with `shutdown.command`), host
//! activation through user namespaces (as root and as an unprivileged user),
//! the host supervisor (`services start|status|logs|stop`, a `kill -9`ed
//! service reported as failed), and bad input failing with a clear message.
//!
//! Tests needing Debian's archive skip with a message when it does not answer;
//! tests needing docker, psql, redis-cli or script skip locally and fail on CI
//! when they are missing. `.deb`s and layers go to one cache shared by these
//! tests; every test uses its own environment, image and volume names and
//! removes what it created.

use cairn_tests::context::run_with_timeout;
use cairn_tests::images::{Container, Engine, LoadedImage, http_get_until, shell_quote};
use cairn_tests::runtime_env::{
    RuntimeEnv, ServicesGuard, Volume, free_port, is_root, terminal_session, unprivileged_user,
    wait_for,
};
use cairn_tests::{TestContext, require_tool, stderr_of, stdout_of};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `docker stop` gives the container this long before SIGKILL; a clean stop
/// must finish well inside it.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a service may take to answer its first request (initdb included).
const SERVICE_DEADLINE: Duration = Duration::from_secs(120);

/// Whether docker answers; a skip message otherwise (a failure on CI).
fn docker_ready() -> bool {
    Engine::Docker.ready()
}

fn docker(args: &[&str]) -> Output {
    run_with_timeout(&mut Engine::Docker.command(args))
}

/// Output of a command in one string, for failure messages.
fn shown(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    )
}

/// `docker stop ID`, returning how long it took; asserts it succeeded.
fn timed_docker_stop(container: &Container) -> Duration {
    let start = Instant::now();
    let out = docker(&["stop", &container.id]);
    let took = start.elapsed();
    assert!(out.status.success(), "docker stop: {}", shown(&out));
    took
}

fn exit_code_of(container: &Container) -> String {
    let out = docker(&["inspect", "-f", "{{.State.ExitCode}}", &container.id]);
    stdout_of(&out).trim().to_owned()
}

// 1. The image entrypoint: shell, commands, exit codes, clean stdout, exec.

const HOOK: &str = r#"
[hook]
on-activate = '''
  echo "hook-ran"
  export FROM_HOOK=yes
'''
"#;

#[test]
fn container_shell_commands_and_exec() {
    if !docker_ready() || !require_tool("script") {
        return;
    }
    let Some(env) = RuntimeEnv::real("shell", &["hello", "bash", "coreutils"], HOOK) else {
        return;
    };
    let image = env.load_into_docker();
    let img = image.reference.as_str();

    // An interactive session: the prompt names the environment, the hook ran
    // and its exports reach the shell.
    let screen = terminal_session(
        &format!("docker run --rm -it {img}"),
        "echo \"marker-$FROM_HOOK\"\nexit\n",
        Duration::from_secs(60),
    );
    for expected in [
        format!("[{}]", env.name),
        "hook-ran".into(),
        "marker-yes".into(),
    ] {
        assert!(
            screen.contains(&expected),
            "`{expected}` not on the terminal of `docker run -it`:\n{screen}"
        );
    }

    // A command: its stdout alone on stdout, the hook's output on stderr.
    let out = docker(&["run", "--rm", img, "hello"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(stdout_of(&out), "Hello, world!\n", "{}", shown(&out));
    assert!(stderr_of(&out).contains("hook-ran"), "{}", shown(&out));

    // The command's exit code is the container's.
    let out = docker(&["run", "--rm", img, "bash", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let out = docker(&["run", "--rm", img, "no-such-cmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", shown(&out));
    assert!(
        stderr_of(&out).contains("command not found: no-such-cmd"),
        "{}",
        shown(&out)
    );

    // cairn inside a running container, with and without activation.
    let container = Container::start(Engine::Docker, &[img, "sleep", "300"]);
    let listed = docker(&["exec", &container.id, "cairn", "list"]);
    assert!(
        listed.status.success() && stdout_of(&listed).contains("hello"),
        "docker exec cairn list: {}",
        shown(&listed)
    );
    let out = docker(&["run", "--rm", img, "bash", "-c", "cairn list"]);
    assert!(
        out.status.success() && stdout_of(&out).contains("hello"),
        "cairn list in an activated container: {}",
        shown(&out)
    );
    // A host project mounted over the working directory (as flox's guide
    // mounts $(pwd) at /app) does not replace the environment the image carries.
    let host_project = tempfile::tempdir().expect("tempdir");
    let host_env = host_project.path().join(".cairn/env");
    fs_err::create_dir_all(&host_env).unwrap();
    fs_err::write(
        host_env.join("manifest.toml"),
        "version = 1\n[install]\nzzz.pkg = \"zzz-host-only\"\n",
    )
    .unwrap();
    let mount = format!("{}:/app", host_project.path().display());
    let out = docker(&[
        "run", "--rm", "-v", &mount, "-w", "/app", img, "cairn", "list",
    ]);
    assert!(
        out.status.success()
            && stdout_of(&out).contains("hello")
            && !stdout_of(&out).contains("zzz"),
        "cairn list with a host project mounted at the working dir: {}",
        shown(&out)
    );
    // `docker exec` skips the entrypoint; `cairn activate --` runs the hook.
    let out = docker(&[
        "exec",
        &container.id,
        "cairn",
        "activate",
        "--",
        "bash",
        "-c",
        "echo \"got-$FROM_HOOK\"",
    ]);
    assert!(
        out.status.success() && stdout_of(&out) == "got-yes\n",
        "cairn activate in a running container: {}",
        shown(&out)
    );
    // The in-image cairn is the small one; host commands say where they belong.
    let out = docker(&["exec", &container.id, "cairn", "install", "hello"]);
    assert!(
        !out.status.success() && stderr_of(&out).contains("not available inside an image"),
        "{}",
        shown(&out)
    );

    // Debian always has /bin/sh (dash is Essential, so nothing depends on it):
    // an image with bash must still run `sh -c`, as `docker exec CID sh`,
    // Kubernetes probes and popen() expect.
    let out = docker(&["run", "--rm", img, "sh", "-c", "echo sh-works"]);
    assert!(
        stdout_of(&out).contains("sh-works"),
        "an image with bash but without dash has no /bin/sh \
         (containerize's top layer should link usr/bin/sh -> bash): {}",
        shown(&out)
    );
}

// 2. PostgreSQL as the image's service, data in a volume (flox's guide).

/// initdb on first start (trusting connections, as the guide does for a
/// local database), then postgres in the foreground. `dash` is installed for
/// initdb's `popen`, which needs `/bin/sh`.
const POSTGRES: &str = r#"
[services.postgres]
command = '''
set -e
PGBIN=/usr/lib/postgresql/15/bin
if [ ! -s /data/pg/PG_VERSION ]; then
  "$PGBIN/initdb" -D /data/pg --auth=trust --username=postgres
  echo "host all all 0.0.0.0/0 trust" >> /data/pg/pg_hba.conf
fi
exec "$PGBIN/postgres" -D /data/pg -k /tmp -c listen_addresses='*'
'''

[containerize.config]
user = "postgres"
cmd = []
volumes = ["/data"]
exposed-ports = ["5432/tcp"]
"#;

/// `psql -h 127.0.0.1 -p PORT -U postgres -Atc SQL`.
fn psql(port: &str, sql: &str) -> Output {
    run_with_timeout(
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", port, "-U", "postgres", "-Atc", sql])
            .env("PGCONNECT_TIMEOUT", "5"),
    )
}

/// Starts the postgres image on `volume` and waits until psql connects;
/// returns the container and its host port.
fn start_postgres(image: &LoadedImage, volume: &Volume) -> (Container, String) {
    let mount = format!("{}:/data", volume.name);
    let container = Container::start(
        Engine::Docker,
        &["-p", "127.0.0.1::5432", "-v", &mount, &image.reference],
    );
    let address = container.published("5432/tcp");
    let port = address.rsplit(':').next().unwrap_or_default().to_owned();
    wait_for(
        "postgres to accept connections",
        SERVICE_DEADLINE,
        || psql(&port, "select 1").status.success().then_some(()),
        || container.logs(),
    );
    (container, port)
}

#[test]
fn postgres_keeps_its_data_in_a_volume_and_stops_quickly() {
    if !docker_ready() || !require_tool("psql") {
        return;
    }
    let packages = ["postgresql", "bash", "coreutils", "dash"];
    let Some(env) = RuntimeEnv::real("pg", &packages, POSTGRES) else {
        return;
    };
    let image = env.load_into_docker();
    let volume = Volume::create("cairn-rt-pgdata");

    let (first, port) = start_postgres(&image, &volume);
    let created = psql(
        &port,
        "create table cairn_t (x int); insert into cairn_t values (42);",
    );
    assert!(created.status.success(), "{}", shown(&created));
    let took = timed_docker_stop(&first);
    let logs = first.logs();
    assert!(
        took < DOCKER_STOP_TIMEOUT - Duration::from_secs(2),
        "docker stop took {took:?}: SIGTERM was not forwarded\n{logs}"
    );
    assert!(
        logs.contains("received smart shutdown request")
            && logs.contains("database system is shut down"),
        "postgres did not get SIGTERM and shut down cleanly:\n{logs}"
    );
    assert_eq!(exit_code_of(&first), "0", "{logs}");
    drop(first);

    let (second, port) = start_postgres(&image, &volume);
    let row = psql(&port, "select x from cairn_t");
    assert_eq!(
        stdout_of(&row).trim(),
        "42",
        "the row did not survive in the volume: {}\n{}",
        shown(&row),
        second.logs()
    );
}

// 3. Two services in one container; docker stop stops them in reverse order.

/// `cache` (redis) is declared first and stopped last, by its
/// `shutdown.command`; `web` reports the SIGTERM it gets.
const TWO_SERVICES: &str = r#"
[services.cache]
command = "redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save ''"
shutdown.command = "sleep 0.3; echo cache-shutdown-command; redis-cli -p 6379 shutdown nosave"

[services.web]
command = '''
trap 'echo web-got-sigterm; exit 0' TERM
python3 -m http.server 8000 &
wait
'''

[containerize.config]
cmd = []
exposed-ports = ["6379/tcp", "8000/tcp"]
"#;

fn redis_ping(port: &str) -> Output {
    run_with_timeout(Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", port, "ping"]))
}

#[test]
fn redis_and_http_answer_and_stop_in_reverse_order() {
    if !docker_ready() || !require_tool("redis-cli") {
        return;
    }
    let packages = ["redis-server", "python3", "bash", "coreutils"];
    let Some(env) = RuntimeEnv::real("two", &packages, TWO_SERVICES) else {
        return;
    };
    let image = env.load_into_docker();
    let container = Container::start(
        Engine::Docker,
        &[
            "-p",
            "127.0.0.1::6379",
            "-p",
            "127.0.0.1::8000",
            &image.reference,
        ],
    );
    let redis = container.published("6379/tcp");
    let redis_port = redis.rsplit(':').next().unwrap_or_default().to_owned();
    wait_for(
        "redis to answer PONG",
        SERVICE_DEADLINE,
        || {
            stdout_of(&redis_ping(&redis_port))
                .contains("PONG")
                .then_some(())
        },
        || container.logs(),
    );
    let web = container.published("8000/tcp");
    let body = http_get_until(&format!("http://{web}/"), SERVICE_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\n{}", container.logs()));
    assert!(body.contains("Directory listing"), "{body}");

    // `cmd = []` starts the services with a terminal attached too
    // (`docker run -it IMAGE`), not a shell.
    let with_tty = Container::start(
        Engine::Docker,
        &["-i", "-t", "-p", "127.0.0.1::6379", &image.reference],
    );
    let tty_redis = with_tty.published("6379/tcp");
    let tty_port = tty_redis.rsplit(':').next().unwrap_or_default().to_owned();
    wait_for(
        "redis to answer PONG in a container with a terminal",
        SERVICE_DEADLINE,
        || {
            stdout_of(&redis_ping(&tty_port))
                .contains("PONG")
                .then_some(())
        },
        || with_tty.logs(),
    );
    drop(with_tty);

    // `docker exec … cairn services` reaches the supervisor that is PID 1.
    let states = |container: &Container| -> Vec<(String, String, Option<u64>)> {
        let out = docker(&[
            "exec",
            &container.id,
            "cairn",
            "services",
            "status",
            "--json",
        ]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json in the container: {e}\n{}", shown(&out)));
        let rows = rows.as_array().cloned().unwrap_or_default();
        rows.iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (s("name"), s("state"), r["pid"].as_u64())
            })
            .collect()
    };
    let before = states(&container);
    let names: Vec<(&str, &str)> = before
        .iter()
        .map(|(n, s, _)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        names,
        [("cache", "running"), ("web", "running")],
        "{before:?}"
    );
    let restart = docker(&["exec", &container.id, "cairn", "services", "restart", "web"]);
    assert!(restart.status.success(), "{}", shown(&restart));
    let after = states(&container);
    assert_eq!(after[0].2, before[0].2, "cache kept its process: {after:?}");
    assert!(
        after[1].1 == "running" && after[1].2 != before[1].2,
        "web restarted: {after:?}"
    );
    http_get_until(&format!("http://{web}/"), SERVICE_DEADLINE)
        .unwrap_or_else(|e| panic!("web after restart: {e}\n{}", container.logs()));
    let logs = docker(&["exec", &container.id, "cairn", "services", "logs", "web"]);
    assert!(
        !logs.status.success() && stderr_of(&logs).contains("docker logs"),
        "{}",
        shown(&logs)
    );

    let took = timed_docker_stop(&container);
    let logs = container.logs();
    assert!(
        took < DOCKER_STOP_TIMEOUT - Duration::from_secs(2),
        "docker stop took {took:?}\n{logs}"
    );
    assert_eq!(exit_code_of(&container), "0", "{logs}");
    let web_stopped = logs.find("web-got-sigterm");
    let cache_stopped = logs.find("cache-shutdown-command");
    assert!(
        matches!((web_stopped, cache_stopped), (Some(w), Some(c)) if w < c),
        "web (declared last) must get SIGTERM before cache's shutdown.command runs:\n{logs}"
    );
    assert!(
        logs.contains("ready to exit"),
        "redis was not shut down by its shutdown.command:\n{logs}"
    );
}

// 4. The host: activation through namespaces, and the detached supervisor.

/// The `web` service's state and pid from `cairn services status --json`.
fn web_status(env: &RuntimeEnv) -> (String, Option<u64>, Option<i64>) {
    let out = env.cairn_ok(&["services", "status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON: {e}\n{}", shown(&out)));
    let web = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "web"))
        .unwrap_or_else(|| panic!("no 'web' in status --json: {rows}"));
    (
        web["state"].as_str().unwrap_or_default().to_owned(),
        web["pid"].as_u64(),
        web["exit_code"].as_i64(),
    )
}

#[test]
fn host_activation_and_services() {
    let port = free_port();
    let services =
        format!("[services.web]\ncommand = \"python3 -m http.server {port} --bind 127.0.0.1\"\n");
    let packages = ["python3", "python3-flask", "bash"];
    let Some(env) = RuntimeEnv::real("host", &packages, &services) else {
        return;
    };

    // flask comes from the environment's Debian packages, not the host.
    let out = env.cairn_ok(&[
        "activate",
        "--",
        "python3",
        "-c",
        "import flask, sys; print(sys.executable, flask.__file__)",
    ]);
    assert_eq!(
        stdout_of(&out).trim(),
        "/usr/bin/python3 /usr/lib/python3/dist-packages/flask/__init__.py",
        "{}",
        shown(&out)
    );

    // cairn inside the activation finds the same environment from elsewhere.
    let mut nested = env.cairn();
    nested
        .env_remove("CAIRN_ENV")
        .current_dir(&env.ctx.home)
        .arg("activate")
        .arg("-d")
        .arg(env.dir())
        .args(["--", "bash", "-c", "cairn list"]);
    let out = run_with_timeout(&mut nested);
    assert!(
        out.status.success() && stdout_of(&out).contains("python3-flask"),
        "cairn list inside `cairn activate`: {}",
        shown(&out)
    );

    let _guard = ServicesGuard { env: &env };
    env.cairn_ok(&["services", "start"]);
    let (state, pid, _) = web_status(&env);
    assert_eq!(state, "running");
    let pid = pid.expect("a running service has a pid");
    let cmdline = fs_err::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("http.server"),
        "pid {pid} is not the http.server: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let url = format!("http://127.0.0.1:{port}/");
    http_get_until(&url, SERVICE_DEADLINE).unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the request in `services logs web`",
        Duration::from_secs(10),
        || {
            let out = env.cairn_ok(&["services", "logs", "web"]);
            stdout_of(&out).contains("\"GET / HTTP").then_some(())
        },
        || stdout_of(&env.cairn_run(&["services", "logs", "web"])),
    );

    // A service killed behind the supervisor's back is reported as failed.
    let killed = run_with_timeout(Command::new("kill").args(["-9", &pid.to_string()]));
    assert!(killed.status.success(), "{}", shown(&killed));
    let (state, _, code) = wait_for(
        "the killed service to be reported",
        Duration::from_secs(10),
        || Some(web_status(&env)).filter(|(state, _, _)| state != "running"),
        String::new,
    );
    assert_eq!(
        (state.as_str(), code),
        ("failed", Some(137)),
        "kill -9 is exit 137"
    );

    // Started again, then stopped: nothing answers any more.
    env.cairn_ok(&["services", "start", "web"]);
    assert_eq!(web_status(&env).0, "running");
    http_get_until(&url, SERVICE_DEADLINE).unwrap_or_else(|e| panic!("{e}"));
    env.cairn_ok(&["services", "stop"]);
    let (state, pid, _) = web_status(&env);
    assert_eq!((state.as_str(), pid), ("stopped", None));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the http server still answers after `services stop`"
    );
}

#[test]
fn host_activation_as_unprivileged_user() {
    const USER: &str = "cairn-test";
    if !is_root() {
        eprintln!("skipping: only root can switch to {USER}");
        return;
    }
    let Some(uid) = unprivileged_user(USER) else {
        return;
    };
    let Some(env) = RuntimeEnv::real("user", &["hello", "bash", "coreutils"], HOOK) else {
        return;
    };
    // The user's own directory, cache and copy of cairn: the test context's
    // temp dirs (and a checkout under /root) are private to root.
    let home = tempfile::Builder::new()
        .prefix("cairn-user")
        .tempdir()
        .expect("create user dir");
    let root = home.path();
    let env_dir = TestContext::env_dir_of(&root.join("env"));
    fs_err::create_dir_all(&env_dir).expect("create env dir");
    for file in ["manifest.toml", "manifest.lock"] {
        fs_err::copy(
            TestContext::env_dir_of(env.dir()).join(file),
            env_dir.join(file),
        )
        .expect("copy env file");
    }
    fs_err::create_dir_all(root.join("cache")).expect("create cache");
    fs_err::copy(TestContext::cairn_bin(), root.join("cairn")).expect("copy cairn");
    let chown = run_with_timeout(Command::new("chown").args(["-R", USER]).arg(root));
    assert!(chown.status.success(), "{}", shown(&chown));
    let chmod = run_with_timeout(Command::new("chmod").arg("0755").arg(root));
    assert!(chmod.status.success(), "{}", shown(&chmod));

    let script = format!(
        "cd {dir} && CAIRN_CACHE_DIR={cache} CAIRN_NO_PROGRESS=1 {cairn} activate -- \
         bash -c 'hello; id -u; echo $FROM_HOOK; touch /usr/x 2>/dev/null || echo read-only'",
        dir = shell_quote(&root.join("env").to_string_lossy()),
        cache = shell_quote(&root.join("cache").to_string_lossy()),
        cairn = shell_quote(&root.join("cairn").to_string_lossy()),
    );
    let out = run_with_timeout(
        Command::new("su")
            .args([USER, "-s", "/bin/sh", "-c", &script])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(
        stdout_of(&out),
        format!("Hello, world!\n{uid}\nyes\nread-only\n"),
        "{}",
        shown(&out)
    );
    assert!(stderr_of(&out).contains("hook-ran"), "{}", shown(&out));
}

// 5. Bad input: a clear message and a non-zero exit.

#[test]
fn bad_input_fails_with_a_clear_message() {
    let tables = "[services.web]\ncommand = \"exec bash -c 'read'\"\n";
    let Some(env) = RuntimeEnv::real("bad", &["bash"], tables) else {
        return;
    };
    let out = env.cairn_err(&["services", "start", "nope"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("unknown service 'nope'") && err.contains("web"),
        "{}",
        shown(&out)
    );

    let out = env.cairn_run(&["activate", "--", "no-such-cmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", shown(&out));
    assert!(
        stderr_of(&out).contains("command not found: no-such-cmd"),
        "{}",
        shown(&out)
    );

    let failing = "[hook]\non-activate = '''\n  echo about-to-fail\n  exit 5\n'''\n";
    let Some(env) = RuntimeEnv::real("hookfail", &["bash"], failing) else {
        return;
    };
    let out = env.cairn_err(&["activate", "--", "true"]);
    let err = stderr_of(&out);
    assert!(
        err.contains("about-to-fail")
            && err.contains(&format!("on-activate hook of '{}'", env.name))
            && err.contains("exit code 5"),
        "{}",
        shown(&out)
    );
}
