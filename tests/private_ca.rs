//! A private CA added the way Debian documents it (a `.crt` under
//! `/usr/local/share/ca-certificates/`, then the bundle rebuilt) is trusted
//! by curl and python inside the environment, and a certificate from an
//! unknown CA is still refused: in an image (the CA comes from
//! `[containerize] copy-to-root`) and under host activation (the host's own
//! `/usr/local/share/ca-certificates`, as the host's bundle has it).
//!
//! No internet: two `openssl s_server`s on 127.0.0.1, one with a
//! certificate from the private CA, one from a CA nobody trusts. Needs
//! Debian's archive (skipped with a message locally when it does not answer,
//! a failure under CI=true), Docker and openssl.

use cairn_tests::images::{Engine, command_like, shared_cache_dir, unique_name};
use cairn_tests::{RealArchive, TestContext, stderr_of, stdout_of};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A CA and a server certificate for `localhost`/127.0.0.1 that it signed.
struct Pki {
    ca_crt: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    cairn_tests::context::expect_success(Command::new("openssl").current_dir(dir).args(args));
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    fs_err::create_dir_all(dir).expect("pki dir");
    let ca_key = format!("{name}-ca.key");
    let ca_crt = format!("{name}-ca.crt");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &ca_key,
            "-out",
            &ca_crt,
            "-subj",
            &format!("/CN=cairn test {name} CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let key = format!("{name}-server.key");
    let csr = format!("{name}-server.csr");
    let crt = format!("{name}-server.crt");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
    );
    fs_err::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            "ext.cnf",
        ],
    );
    Pki {
        ca_crt: dir.join(ca_crt),
        server_crt: dir.join(crt),
        server_key: dir.join(key),
    }
}

/// `openssl s_server -www` on a free loopback port; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(pki: &Pki) -> TlsServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&pki.server_crt)
            .arg("-key")
            .arg(&pki.server_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s_server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer { child, port }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PYTHON_GET: &str = "import sys, urllib.request\n\
try:\n    print(urllib.request.urlopen(sys.argv[1], timeout=20).status)\n\
except Exception as e:\n    print(repr(e)); sys.exit(3)\n";

/// The checks, as `sh -c` text run inside the environment: curl and python
/// reach `trusted` and refuse `unknown`, printing one tagged line each.
fn checks(trusted: &TlsServer, unknown: &TlsServer) -> String {
    let py = cairn_tests::images::shell_quote(PYTHON_GET);
    format!(
        "curl -sS -o /dev/null {t}; echo curl-trusted=$?; \
         curl -sS -o /dev/null {u}; echo curl-unknown=$?; \
         python3 -c {py} {t}; echo python-trusted=$?; \
         python3 -c {py} {u}; echo python-unknown=$?",
        t = trusted.url(),
        u = unknown.url(),
    )
}

/// Asserts what [`checks`] printed: both clients trust the private CA, curl
/// refuses the unknown one with exit 60, python with CERTIFICATE_VERIFY_FAILED.
fn assert_checks(where_: &str, out: &Output) {
    let text = format!("{}{}", stdout_of(out), stderr_of(out));
    for expected in [
        "curl-trusted=0",
        "curl-unknown=60",
        "python-trusted=0",
        "python-unknown=3",
        "CERTIFICATE_VERIFY_FAILED",
    ] {
        assert!(
            text.contains(expected),
            "{where_}: no '{expected}' in\n{text}"
        );
    }
    assert!(
        stdout_of(out).lines().any(|l| l == "200"),
        "{where_}: python got no 200\n{text}"
    );
}

struct Project {
    ctx: TestContext,
    dir: PathBuf,
    archive: RealArchive,
}

impl Project {
    fn new() -> Option<Project> {
        let archive = cairn_tests::reachable_real_archive()?;
        if !Engine::Docker.ready() || !cairn_tests::tools::require_tool("openssl") {
            return None;
        }
        let ctx = TestContext::new();
        let dir = ctx.root.path().join(unique_name("private-ca"));
        fs_err::create_dir_all(&dir).expect("project dir");
        Some(Project { ctx, dir, archive })
    }

    fn cairn(&self, args: &[&str]) -> Output {
        let mut cmd = self.ctx.cairn_in(&self.dir);
        cmd.env_remove("CAIRN_ENV")
            .env("CAIRN_CACHE_DIR", shared_cache_dir("guide"))
            .args(args);
        cairn_tests::context::expect_success(&mut cmd)
    }
}

#[test]
fn a_private_ca_is_trusted_in_images_and_host_activation_and_an_unknown_one_is_not() {
    let Some(p) = Project::new() else {
        return;
    };
    let pki_dir = p.ctx.root.path().join("pki");
    let private = make_pki(&pki_dir, "private");
    let stranger = make_pki(&pki_dir, "stranger");
    let trusted = TlsServer::start(&private);
    let unknown = TlsServer::start(&stranger);

    p.cairn(&["init"]);
    let manifest = TestContext::env_dir_of(&p.dir).join("manifest.toml");
    cairn_tests::context::set_manifest_sources(&manifest, &p.archive.sources_toml());
    p.cairn(&["install", "ca-certificates", "curl", "python3"]);

    // The image: the CA as Debian documents it, from copy-to-root.
    let certs = p.dir.join("root/usr/local/share/ca-certificates");
    fs_err::create_dir_all(&certs).expect("certs dir");
    fs_err::copy(&private.ca_crt, certs.join("corp.crt")).expect("copy CA");
    let mut text = fs_err::read_to_string(&manifest).expect("manifest");
    text.push_str("\n[containerize]\ncopy-to-root = [\"./root\"]\n");
    fs_err::write(&manifest, text).expect("manifest");
    let image = unique_name("private-ca");
    let loaded = Engine::Docker.load_file(&archive_of(&p, &image));
    let script = checks(&trusted, &unknown);
    let out = Engine::Docker
        .command(&[
            "run",
            "--rm",
            "--network",
            "host",
            &loaded.reference,
            "sh",
            "-c",
            &script,
        ])
        .output()
        .expect("docker run");
    assert_checks("image", &out);
    // The bundle holds the private CA exactly once, and `corp.pem` links to
    // it, as update-ca-certificates makes them.
    let ca_pem = fs_err::read_to_string(&private.ca_crt).expect("CA");
    let first_line = ca_pem.lines().nth(1).expect("PEM body");
    let bundle = loaded.run(&[
        "sh",
        "-c",
        &format!(
            "grep -c -x -F '{first_line}' /etc/ssl/certs/ca-certificates.crt; \
             readlink /etc/ssl/certs/corp.pem"
        ),
    ]);
    assert_eq!(
        stdout_of(&bundle),
        "1\n/usr/local/share/ca-certificates/corp.crt\n"
    );

    // Host activation: the host's own local CA (bound over the host's
    // /usr/local/share/ca-certificates in a private mount namespace, so the
    // machine is untouched), in run mode and dev mode.
    let host_certs = p.ctx.root.path().join("host-ca");
    fs_err::create_dir_all(&host_certs).expect("host CA dir");
    fs_err::copy(&private.ca_crt, host_certs.join("corp.crt")).expect("copy CA");
    for mode in ["run", "dev"] {
        let inner = format!(
            "mkdir -p /usr/local/share/ca-certificates && \
             mount --bind {} /usr/local/share/ca-certificates && \
             exec \"$CAIRN\" activate --mode {mode} -- sh -c {}",
            host_certs.display(),
            cairn_tests::images::shell_quote(&script),
        );
        let template = p.ctx.cairn_in(&p.dir);
        let mut cmd = command_like(&template, "unshare");
        cmd.env_remove("CAIRN_ENV")
            .env("CAIRN_CACHE_DIR", shared_cache_dir("guide"))
            .env("CAIRN", TestContext::cairn_bin())
            .args(["--mount", "--propagation", "private", "sh", "-c", &inner]);
        let out = cmd.output().expect("unshare");
        assert_checks(&format!("host activation ({mode})"), &out);
    }
}

/// Builds `image` into an archive file and returns its path.
fn archive_of(p: &Project, image: &str) -> PathBuf {
    let path = p.ctx.root.path().join(format!("{image}.tar"));
    p.cairn(&[
        "containerize",
        "--tag",
        &format!("{image}:test"),
        "-f",
        path.to_str().expect("utf-8 path"),
    ]);
    path
}
