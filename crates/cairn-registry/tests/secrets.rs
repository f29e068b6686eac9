//! Where the registry client sends secrets, observed by logging fake servers
//! on 127.0.0.1: credentials and tokens go only to the pinged registry and to
//! the token realm of its challenge, never to an upload `Location` on another
//! host, and a challenge from that other host is not believed.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cairn_registry::client::{Method, Payload, Request};
use cairn_registry::{ClientOptions, Credentials, Reference, RegistryClient, RegistryError};

/// One request as a fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// `(status, extra headers)` for a request; the body is always empty.
type Route = dyn Fn(&Seen) -> (u16, Vec<(String, String)>) + Send + Sync;

/// A one-request-per-connection HTTP server that logs what it receives.
struct Fake {
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(route: Box<Route>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(seen) = read_request(&mut stream) else {
                    continue;
                };
                sink.lock().unwrap().push(seen.clone());
                let (status, headers) = route(&seen);
                let mut answer =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n");
                for (name, value) in headers {
                    answer.push_str(&format!("{name}: {value}\r\n"));
                }
                answer.push_str("\r\n");
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Fake { port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let (mut authorization, mut length) = (None, 0usize);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        authorization,
    })
}

fn options() -> ClientOptions {
    ClientOptions {
        credentials: Some(Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
        // Loopback: plain HTTP is allowed, as docker allows it.
        tls_verify: false,
        retry_times: 0,
        ..ClientOptions::default()
    }
}

fn request(method: Method, url: String) -> Request<'static> {
    Request {
        method,
        url,
        repository: "team/app",
        scopes: vec!["repository:team/app:pull,push".into()],
        headers: Vec::new(),
        body: Payload::Bytes(b"blob"),
    }
}

#[test]
fn basic_credentials_never_reach_an_upload_location_on_another_host() {
    let elsewhere = Fake::start(Box::new(|_| (201, Vec::new())));
    let upload = elsewhere.url("/upload?state=x");
    let registry = Fake::start(Box::new(move |seen| match seen.authorization {
        None => (
            401,
            vec![("WWW-Authenticate".into(), "Basic realm=\"r\"".into())],
        ),
        Some(_) if seen.method == "POST" => (202, vec![("Location".into(), upload.clone())]),
        Some(_) => (200, Vec::new()),
    }));
    let reference = Reference::parse(&format!("127.0.0.1:{}/team/app:v1", registry.port)).unwrap();
    let client = RegistryClient::connect(&reference, options()).unwrap();
    let started = client
        .send(&request(
            Method::Post,
            registry.url("/v2/team/app/blobs/uploads/"),
        ))
        .unwrap();
    assert_eq!(started.status, 202);
    let location = started.header("location").unwrap().to_owned();
    let done = client.send(&request(Method::Put, location)).unwrap();
    assert_eq!(done.status, 201);

    let on_registry = registry.seen();
    assert!(
        on_registry.iter().any(|s| s.method == "POST"
            && s.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))),
        "{on_registry:?}"
    );
    let on_other_host = elsewhere.seen();
    assert_eq!(on_other_host.len(), 1, "{on_other_host:?}");
    assert_eq!(on_other_host[0].method, "PUT");
    assert_eq!(on_other_host[0].path, "/upload?state=x");
    assert_eq!(
        on_other_host[0].authorization, None,
        "credentials leaked to another host"
    );
}

#[test]
fn a_challenge_from_another_host_cannot_collect_credentials() {
    let thief = Fake::start(Box::new(|_| (200, Vec::new())));
    let evil_realm = thief.url("/token");
    let elsewhere = Fake::start(Box::new(move |_| {
        let challenge = format!("Bearer realm=\"{evil_realm}\",service=\"x\"");
        (401, vec![("WWW-Authenticate".into(), challenge)])
    }));
    let tokens = Fake::start(Box::new(|_| (200, Vec::new())));
    let realm = tokens.url("/token");
    let registry = Fake::start(Box::new(move |seen| match seen.authorization {
        None => {
            let challenge = format!("Bearer realm=\"{realm}\",service=\"reg\"");
            (401, vec![("WWW-Authenticate".into(), challenge)])
        }
        Some(_) => (200, Vec::new()),
    }));
    let reference = Reference::parse(&format!("127.0.0.1:{}/team/app:v1", registry.port)).unwrap();
    let client = RegistryClient::connect(&reference, options()).unwrap();
    let err = client
        .send(&request(Method::Put, elsewhere.url("/upload")))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(thief.seen().is_empty(), "{:?}", thief.seen());
    assert!(
        tokens.seen().is_empty(),
        "a token was fetched for another host"
    );
    assert!(elsewhere.seen().iter().all(|s| s.authorization.is_none()));
}
