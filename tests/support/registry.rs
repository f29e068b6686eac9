//! Real registries for the push tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 with a temp storage directory, plain,
//! with htpasswd Basic auth over TLS, or trusting a token server the test runs.
//!
//! Certificates come from the `openssl` CLI (a throwaway CA, a server
//! certificate for 127.0.0.1, a token-signing key), htpasswd lines from the
//! `bcrypt` crate (the registry only accepts bcrypt), and tokens are RS256 JWTs
//! signed with `openssl dgst`. A [`CutProxy`] between cairn and a registry
//! drops connections mid-upload, like a registry that goes away. Everything
//! listens on 127.0.0.1 and is stopped on drop.

use crate::tools::{require_tool, run_checked};
use base64::Engine;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a registry may take to answer its first `/v2/`.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// `service` and `issuer` the token server and the registry agree on.
pub const TOKEN_SERVICE: &str = "cairn-test-registry";
const TOKEN_ISSUER: &str = "cairn-test-issuer";

/// How the registry checks who pushes.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// Anyone may push.
    Anonymous,
    /// htpasswd Basic auth for one user (the registry needs TLS for it).
    Htpasswd { user: String, password: String },
    /// Bearer tokens from `realm`, signed by the key whose certificate is `cert`.
    Token { realm: String, cert: PathBuf },
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate (PEM); put it in a `--dest-cert-dir` as `ca.crt`.
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// A fresh RSA key and a self-signed certificate for `subject`, valid two days.
fn self_signed(key: &Path, cert: &Path, subject: &str) {
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        subject,
        "-keyout",
        &s(key),
        "-out",
        &s(cert),
    ]);
}

impl TestCa {
    /// Generates the CA and server certificate into `dir` with openssl.
    pub fn generate(dir: &Path) -> TestCa {
        fs_err::create_dir_all(dir).expect("create cert dir");
        let p = |name: &str| dir.join(name);
        self_signed(&p("ca.key"), &p("ca.crt"), "/CN=cairn test CA");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &s(&p("server.key")),
            "-out",
            &s(&p("server.csr")),
        ]);
        fs_err::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &s(&p("server.csr")),
            "-CA",
            &s(&p("ca.crt")),
            "-CAkey",
            &s(&p("ca.key")),
            "-CAcreateserial",
            "-extfile",
            &s(&p("server.ext")),
            "-out",
            &s(&p("server.crt")),
        ]);
        TestCa {
            ca_cert: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
        }
    }

    /// A directory holding only `ca.crt`, for `--dest-cert-dir`.
    pub fn cert_dir(&self, dir: &Path) -> PathBuf {
        fs_err::create_dir_all(dir).expect("create cert dir");
        fs_err::copy(&self.ca_cert, dir.join("ca.crt")).expect("copy ca.crt");
        dir.to_path_buf()
    }
}

/// A running `docker-registry`.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Where it keeps blobs.
    pub storage: PathBuf,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl Registry {
    /// Whether the tools these tests need are installed (skips locally, fails on CI).
    pub fn tools_ready() -> bool {
        ["docker-registry", "openssl", "skopeo"]
            .iter()
            .all(|t| require_tool(t))
    }

    /// Starts a registry in `dir` with `auth`, serving TLS when `tls` is given.
    pub fn start(dir: &Path, auth: &RegistryAuth, tls: Option<&TestCa>) -> Registry {
        fs_err::create_dir_all(dir).expect("create registry dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let storage = dir.join("storage");
        let config = dir.join("config.yml");
        fs_err::write(&config, config_yaml(dir, &host, &storage, auth, tls))
            .expect("write registry config");
        let log = dir.join("registry.log");
        let log_file = fs_err::File::create(&log).expect("create registry log");
        let err_file = log_file.file().try_clone().expect("clone log handle");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.into_file()))
            .stderr(Stdio::from(err_file))
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry {
            child,
            host,
            storage,
            log,
        };
        registry.wait_until_listening();
        registry
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", self.log_text());
            }
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {} within {START_DEADLINE:?}:\n{}",
            self.host,
            self.log_text()
        );
    }

    /// The registry's log so far.
    pub fn log_text(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// `docker://127.0.0.1:PORT/PATH/`.
    pub fn prefix(&self, path: &str) -> String {
        format!("docker://{}/{path}/", self.host)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The registry this test started, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(
    dir: &Path,
    host: &str,
    storage: &Path,
    auth: &RegistryAuth,
    tls: Option<&TestCa>,
) -> String {
    let mut yaml = format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {host}\n  secret: cairn-test-secret\n",
        storage.display()
    );
    if let Some(ca) = tls {
        yaml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            ca.server_cert.display(),
            ca.server_key.display()
        );
    }
    match auth {
        RegistryAuth::Anonymous => {}
        RegistryAuth::Htpasswd { user, password } => {
            let hash = bcrypt::hash(password, 5).expect("bcrypt");
            let path = dir.join("htpasswd");
            fs_err::write(&path, format!("{user}:{hash}\n")).expect("write htpasswd");
            yaml += &format!(
                "auth:\n  htpasswd:\n    realm: cairn-test\n    path: {}\n",
                path.display()
            );
        }
        RegistryAuth::Token { realm, cert } => {
            yaml += &format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            );
        }
    }
    yaml
}

/// A port nothing listens on right now (bind 127.0.0.1:0, read it, release it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A token server: checks one user's Basic credentials and hands out RS256
/// JWTs granting whatever scopes are asked for, which it records.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The certificate the registry must trust (`rootcertbundle`).
    pub cert: PathBuf,
    scopes: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    /// Generates a signing key and certificate in `dir` and starts serving.
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        fs_err::create_dir_all(dir).expect("create token dir");
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        self_signed(&key, &cert, "/CN=cairn test token signer");
        let der = run_checked(Command::new("openssl").args([
            "x509",
            "-in",
            &s(&cert),
            "-outform",
            "DER",
        ]))
        .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind token server"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let signer = Signer { key, x5c };
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let thread = {
            let (server, scopes) = (server.clone(), scopes.clone());
            std::thread::spawn(move || serve_tokens(&server, &signer, &expected, &scopes))
        };
        TokenServer {
            realm: format!("http://127.0.0.1:{port}/token"),
            cert,
            scopes,
            server,
            thread: Some(thread),
        }
    }

    /// Every scope asked for so far.
    pub fn scopes(&self) -> Vec<String> {
        self.scopes.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Signer {
    key: PathBuf,
    x5c: String,
}

fn serve_tokens(
    server: &tiny_http::Server,
    signer: &Signer,
    expected_auth: &str,
    scopes: &Mutex<Vec<String>>,
) {
    for request in server.incoming_requests() {
        let authorized = request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str() == expected_auth);
        if !authorized {
            let _ = request.respond(tiny_http::Response::from_string("{}").with_status_code(401));
            continue;
        }
        let asked = query_values(request.url(), "scope");
        if let Ok(mut all) = scopes.lock() {
            all.extend(asked.iter().cloned());
        }
        let token = signer.sign(&asked);
        let body = format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#);
        let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
            .expect("content-type header");
        let _ = request.respond(tiny_http::Response::from_string(body).with_header(header));
    }
}

impl Signer {
    /// An RS256 JWT the registry accepts: `x5c` names the signing certificate,
    /// which the registry trusts through `rootcertbundle`.
    fn sign(&self, scopes: &[String]) -> String {
        let b64url = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()
                }))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": "cairn", "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", scopes.len()), "access": access,
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run openssl dgst");
        child
            .stdin
            .take()
            .expect("openssl stdin")
            .write_all(input.as_bytes())
            .expect("feed openssl");
        let out = child.wait_with_output().expect("openssl dgst output");
        assert!(out.status.success(), "openssl dgst failed");
        format!("{input}.{}", b64url(&out.stdout))
    }
}

/// Every value of `key` in a URL's query, percent-decoded.
fn query_values(url: &str, key: &str) -> Vec<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A TCP proxy to a registry that drops every connection once `cut_after`
/// bytes have gone upstream, like a registry that dies mid-push. With
/// `heal`, connections made after the cut go through again (a blip);
/// without, they are refused until the proxy is dropped (an outage).
pub struct CutProxy {
    /// `127.0.0.1:PORT` to push to instead of the registry.
    pub host: String,
    /// Whether the cut has happened.
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    /// Starts forwarding to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, cut_after: u64, heal: bool) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let host = listener.local_addr().expect("proxy addr").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let (cut2, stop2) = (cut.clone(), stop.clone());
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                if cut2.load(Ordering::SeqCst) && !heal {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let budget = if cut2.load(Ordering::SeqCst) {
                    u64::MAX
                } else {
                    cut_after
                };
                spawn_pipes(client, server, budget, &sent, &cut2, &open);
            }
        });
        CutProxy { host, cut, stop }
    }

    /// Whether connections were dropped.
    pub fn has_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn spawn_pipes(
    client: TcpStream,
    server: TcpStream,
    budget: u64,
    sent: &Arc<AtomicU64>,
    cut: &Arc<AtomicBool>,
    open: &Arc<Mutex<Vec<TcpStream>>>,
) {
    if let (Ok(c), Ok(s), Ok(mut all)) = (client.try_clone(), server.try_clone(), open.lock()) {
        all.push(c);
        all.push(s);
    }
    let (client2, server2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => return,
    };
    let (sent, cut, open) = (sent.clone(), cut.clone(), open.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut from, mut to) = (client, server);
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total > budget && !cut.swap(true, Ordering::SeqCst) {
                // Drop every connection open right now, mid-request.
                if let Ok(all) = open.lock() {
                    for stream in all.iter() {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                }
                break;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let (mut from, mut to) = (server2, client2);
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

fn openssl(args: &[&str]) {
    run_checked(Command::new("openssl").args(args).stdin(Stdio::null()));
}

fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_values() {
        assert_eq!(
            query_values(
                "/token?service=r&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=x",
                "scope"
            ),
            ["repository:a/b:pull,push", "x"]
        );
        assert!(query_values("/token", "scope").is_empty());
    }
}
