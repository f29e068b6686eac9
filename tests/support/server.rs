//! A static file server on 127.0.0.1 for test archives, counting requests per
//! path so tests can assert what cairn fetched (e.g. a warm run fetches no
//! `.deb`).
//!
//! It serves files only: no directory listings, no paths outside the root, no
//! ranges. It stops when dropped and never serves more than [`MAX_REQUESTS`].

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A runaway client loop ends here instead of spinning forever.
pub const MAX_REQUESTS: usize = 100_000;
/// cairn downloads `.deb`s in parallel; a few workers keep one slow response
/// from stalling the others.
const WORKERS: usize = 4;

/// A running server; `url` is `http://127.0.0.1:PORT` with no trailing slash.
pub struct HttpServer {
    pub url: String,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    workers: Vec<JoinHandle<()>>,
}

/// State shared by the worker threads.
#[derive(Clone)]
struct Shared {
    root: PathBuf,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl HttpServer {
    /// Serves the files under `dir` on an ephemeral port of 127.0.0.1.
    pub fn serve(dir: impl Into<PathBuf>) -> HttpServer {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let port = server
            .server_addr()
            .to_ip()
            .expect("tiny_http listens on TCP")
            .port();
        let shared = Shared {
            root: dir.into(),
            server: Arc::new(server),
            stop: Arc::new(AtomicBool::new(false)),
            served: Arc::new(AtomicUsize::new(0)),
            hits: Arc::new(Mutex::new(BTreeMap::new())),
        };
        let workers = (0..WORKERS)
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || serve_loop(&shared))
            })
            .collect();
        HttpServer {
            url: format!("http://127.0.0.1:{port}"),
            server: shared.server,
            stop: shared.stop,
            hits: shared.hits,
            workers,
        }
    }

    /// How many requests asked for `path` (e.g. `/dists/stable/InRelease`).
    pub fn requests(&self, path: &str) -> usize {
        self.hits().get(path).copied().unwrap_or(0)
    }

    /// How many requests asked for a path matching `pred`.
    pub fn requests_where(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.hits()
            .iter()
            .filter(|(path, _)| pred(path))
            .map(|(_, n)| n)
            .sum()
    }

    /// How many `.deb` files were requested.
    pub fn deb_requests(&self) -> usize {
        self.requests_where(|p| p.ends_with(".deb"))
    }

    /// Every requested path with its count.
    pub fn hits(&self) -> BTreeMap<String, usize> {
        self.hits.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Forgets the counts so far (e.g. between a cold and a warm run).
    pub fn reset_counts(&self) {
        if let Ok(mut hits) = self.hits.lock() {
            hits.clear();
        }
    }
}

impl std::fmt::Debug for HttpServer {
    // tiny_http's Server is not Debug; the URL is what identifies a server in a failure.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("url", &self.url)
            .finish()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A `http://127.0.0.1:PORT` URL where nothing listens: the port was bound and
/// released, so a connection is refused rather than timing out.
pub fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn serve_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) && shared.served.load(Ordering::SeqCst) < MAX_REQUESTS
    {
        let request = match shared.server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(_) => break,
        };
        shared.served.fetch_add(1, Ordering::SeqCst);
        let path = request_path(request.url());
        if let Ok(mut hits) = shared.hits.lock() {
            *hits.entry(path.clone()).or_default() += 1;
        }
        // A client that hung up is its own problem; keep serving the others.
        let _ = respond(&shared.root, &path, request);
    }
}

fn respond(root: &Path, path: &str, request: tiny_http::Request) -> std::io::Result<()> {
    let not_found = || tiny_http::Response::from_string("not found\n").with_status_code(404);
    let Some(file) = resolve_path(root, path) else {
        return request.respond(not_found());
    };
    match std::fs::File::open(&file) {
        Ok(f) => request.respond(tiny_http::Response::from_file(f)),
        Err(_) => request.respond(not_found()),
    }
}

/// The decoded path of a request URL, without query string.
fn request_path(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    percent_decode(path)
}

/// The file under `root` that `path` names, or `None` if it would escape the
/// root or is not a regular file.
fn resolve_path(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative.as_os_str().is_empty()
        || path.contains('\0')
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let full = root.join(relative);
    full.is_file().then_some(full)
}

/// Decodes `%XX` escapes. Hand-written because clients may escape `+` or `~`
/// in Debian file names, and a URL crate would be a dependency for ten lines.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(url: &str, path: &str) -> String {
        let addr = url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_files_counts_requests_and_refuses_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs_err::create_dir_all(root.join("pool")).unwrap();
        fs_err::write(root.join("pool/a+b~1.deb"), "deb bytes").unwrap();
        fs_err::write(tmp.path().join("secret"), "secret").unwrap();
        let server = HttpServer::serve(&root);

        let ok = get(&server.url, "/pool/a%2Bb~1.deb");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("deb bytes"));
        assert!(get(&server.url, "/missing").starts_with("HTTP/1.1 404"));
        assert!(get(&server.url, "/pool").starts_with("HTTP/1.1 404"));
        assert!(get(&server.url, "/../secret").starts_with("HTTP/1.1 404"));
        assert!(get(&server.url, "/pool/%2E%2E/%2E%2E/secret").starts_with("HTTP/1.1 404"));

        assert_eq!(server.requests("/pool/a+b~1.deb"), 1);
        assert_eq!(server.deb_requests(), 1);
        server.reset_counts();
        assert_eq!(server.deb_requests(), 0);
    }

    #[test]
    fn unreachable_url_refuses_connections() {
        let url = unreachable_url();
        assert!(TcpStream::connect(url.trim_start_matches("http://")).is_err());
    }

    #[test]
    fn percent_decode_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%2Bb%zz%4"), "a+b%zz%4");
    }
}
