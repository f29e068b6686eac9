//! Health checks end to end: `[containerize.config] healthcheck` becomes the
//! image config's `Healthcheck`, which the real Docker Engine and Podman run
//! inside cairn's activation. A service container (Python's http.server
//! supervised by cairn as PID 1) goes healthy, and unhealthy once its service
//! is stopped.
//!
//! The check reads the port from a variable that only the on-activate hook
//! exports, so a healthy container also proves the command ran activated.
//! Needs Debian's archive (skips with a message when it does not answer),
//! docker and podman (skip locally, fail on CI when missing). Podman gets the
//! image through `--runtime podman`, which hands it a Docker-format archive.

use cairn_tests::images::{Container, Engine, LoadedImage};
use cairn_tests::runtime_env::{RuntimeEnv, wait_for};
use cairn_tests::{stderr_of, stdout_of};
use std::process::Output;
use std::time::Duration;

/// How long the first check may take to pass (the image's first start).
const HEALTHY_DEADLINE: Duration = Duration::from_secs(90);
/// How long `retries` failures a second apart may take to count.
const UNHEALTHY_DEADLINE: Duration = Duration::from_secs(60);

const SERVICE: &str = r#"
[hook]
on-activate = '''
  export HEALTH_PORT=8000
'''

[services.web]
command = "exec python3 -m http.server 8000"
[services.keeper]
command = "exec sleep infinity"

[containerize.config]
cmd = []
exposed-ports = ["8000/tcp"]
healthcheck = { command = "exec python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:$HEALTH_PORT/', timeout=2)\"", interval = "1s", timeout = "10s", retries = 2, start-period = "5s" }
"#;

fn shown(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    )
}

/// The container's health status as the engine reports it (`starting`,
/// `healthy`, `unhealthy`). Podman 4.3 keeps it under `Healthcheck`, newer
/// Podman and Docker under `Health`.
fn health_status(container: &Container) -> String {
    let out = cairn_tests::context::run_with_timeout(&mut container.engine.command(&[
        "inspect",
        "--format",
        "{{json .State}}",
        &container.id,
    ]));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let health = if state["Health"].is_object() {
        &state["Health"]
    } else {
        &state["Healthcheck"]
    };
    health["Status"].as_str().unwrap_or_default().to_owned()
}

/// Builds the service image into an archive.
fn build_service_image() -> Option<(RuntimeEnv, std::path::PathBuf)> {
    let env = RuntimeEnv::real("health", &["python3", "coreutils"], SERVICE)?;
    let archive = env.ctx.root.path().join("health.tar");
    let archive_arg = archive.to_string_lossy().into_owned();
    env.cairn_ok(&["containerize", "-f", &archive_arg]);
    Some((env, archive))
}

/// The image config carries Docker's field, the command wrapped in cairn's
/// activation, times in nanoseconds.
fn assert_config(image: &LoadedImage) {
    // Docker shows it in the config; Podman beside it, as `HealthCheck`.
    let check: serde_json::Value = match image.engine {
        Engine::Docker => image.config_json()["Healthcheck"].clone(),
        Engine::Podman => {
            serde_json::from_str(&image.inspect("{{json .HealthCheck}}")).unwrap_or_default()
        }
    };
    let check = &check;
    let test: Vec<&str> = check["Test"]
        .as_array()
        .unwrap_or_else(|| panic!("no health check in {} ({check})", image.reference))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        test[..6],
        ["CMD", "/opt/cairn/bin/cairn", "activate", "--", "sh", "-c"],
        "{check}"
    );
    assert!(test[6].contains("$HEALTH_PORT"), "{check}");
    assert_eq!(check["Interval"], 1_000_000_000u64, "{check}");
    assert_eq!(check["Timeout"], 10_000_000_000u64, "{check}");
    assert_eq!(check["StartPeriod"], 5_000_000_000u64, "{check}");
    assert_eq!(check["Retries"], 2, "{check}");
}

/// Stops the web service through the supervisor that is PID 1; the keeper
/// service keeps the container running.
fn stop_web(container: &Container) {
    let out = cairn_tests::context::run_with_timeout(&mut container.engine.command(&[
        "exec",
        &container.id,
        "cairn",
        "services",
        "stop",
        "web",
    ]));
    assert!(out.status.success(), "services stop web: {}", shown(&out));
}

#[test]
fn docker_runs_the_healthcheck_inside_the_activation() {
    if !Engine::Docker.ready() {
        return;
    }
    let Some((_env, archive)) = build_service_image() else {
        return;
    };
    let image = Engine::Docker.load_file(&archive);
    assert_config(&image);
    let container = Container::start(Engine::Docker, &[&image.reference]);
    wait_for(
        "docker to report the container healthy",
        HEALTHY_DEADLINE,
        || (health_status(&container) == "healthy").then_some(()),
        || format!("status {}\n{}", health_status(&container), container.logs()),
    );
    stop_web(&container);
    wait_for(
        "docker to report the container unhealthy",
        UNHEALTHY_DEADLINE,
        || (health_status(&container) == "unhealthy").then_some(()),
        || format!("status {}\n{}", health_status(&container), container.logs()),
    );
}

#[test]
fn podman_runs_the_healthcheck_inside_the_activation() {
    if !Engine::Podman.ready() {
        return;
    }
    let Some(env) = RuntimeEnv::real("health-podman", &["python3", "coreutils"], SERVICE) else {
        return;
    };
    // Podman reads a health check only from Docker-format images; cairn
    // loads those into it (from the hybrid archive it would take the OCI
    // layout and drop the check).
    let out = env.cairn_ok(&["containerize", "--runtime", "podman"]);
    let image = Engine::Podman.adopt(stdout_of(&out).trim());
    assert_config(&image);
    let container = Container::start(Engine::Podman, &[&image.reference]);
    // Podman schedules checks with systemd timers; CI has no systemd, so the
    // test runs each check itself, as the timer would.
    let check = || {
        cairn_tests::context::run_with_timeout(&mut Engine::Podman.command(&[
            "healthcheck",
            "run",
            &container.id,
        ]))
    };
    wait_for(
        "podman's healthcheck to pass",
        HEALTHY_DEADLINE,
        || {
            std::thread::sleep(Duration::from_millis(500));
            check().status.success().then_some(())
        },
        || format!("{}\n{}", shown(&check()), container.logs()),
    );
    assert_eq!(health_status(&container), "healthy");
    stop_web(&container);
    wait_for(
        "podman to report the container unhealthy",
        UNHEALTHY_DEADLINE,
        || {
            let out = check();
            (!out.status.success() && health_status(&container) == "unhealthy").then_some(())
        },
        || format!("status {}\n{}", health_status(&container), container.logs()),
    );
}
