//! A blob from the store is hashed while it is uploaded, and a corrupt one is
//! never committed: a fake registry on 127.0.0.1 records how much of each
//! PUT body it received. The monolithic PUT `?digest=` commits on its last
//! byte, so a mismatching blob must leave it short.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cairn_registry::client::{Method, Payload, Request, SentCheck};
use cairn_registry::{ClientOptions, Reference, RegistryClient, RegistryError};
use cairn_store::{RunningSha256, StoreError};

/// A PUT body as the fake registry received it: its declared length and
/// the bytes that arrived before the connection ended.
#[derive(Debug, Clone)]
struct Body {
    declared: usize,
    received: Vec<u8>,
}

/// Answers every request after reading its body (as far as it comes), and
/// logs the bodies of PUTs.
fn fake_registry() -> (u16, Arc<Mutex<Vec<Body>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut declared = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim_end().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    declared = value.trim().parse().unwrap_or(0);
                }
            }
            let mut received = Vec::new();
            let _ = (&mut reader)
                .take(declared as u64)
                .read_to_end(&mut received);
            // The ping (GET /v2/) wants 200; a blob PUT answers 201.
            let answer: &[u8] = if line.starts_with("PUT") {
                sink.lock().unwrap().push(Body { declared, received });
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            };
            let _ = stream.write_all(answer);
        }
    });
    (port, log)
}

fn client(port: u16) -> RegistryClient {
    let reference = Reference::parse(&format!("127.0.0.1:{port}/team/app:v1")).unwrap();
    let options = ClientOptions {
        tls_verify: false,
        retry_times: 0,
        ..ClientOptions::default()
    };
    RegistryClient::connect(&reference, options).unwrap()
}

fn put_blob(
    client: &RegistryClient,
    port: u16,
    path: &std::path::Path,
    digest: &str,
    len: u64,
) -> Result<u16, RegistryError> {
    let running = Mutex::new(RunningSha256::default());
    let progress = |_: i64| {};
    let request = Request {
        method: Method::Put,
        url: format!("http://127.0.0.1:{port}/v2/team/app/blobs/uploads/x?digest={digest}"),
        repository: "team/app",
        scopes: vec!["repository:team/app:pull,push".into()],
        headers: Vec::new(),
        body: Payload::File {
            path,
            offset: 0,
            len,
            progress: &progress,
            check: Some(SentCheck {
                running: &running,
                expected: Some(digest),
            }),
        },
    };
    client.send(&request).map(|reply| reply.status)
}

#[test]
fn a_matching_blob_is_sent_whole_and_a_corrupt_one_never_completes() {
    let (port, log) = fake_registry();
    let client = client(port);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("blob");
    // Larger than any read buffer, so most of it flows before the end.
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{}", cairn_store::sha256_hex(&layer));
    fs_err::write(&path, &layer).unwrap();
    let len = layer.len() as u64;

    assert_eq!(put_blob(&client, port, &path, &digest, len).unwrap(), 201);
    let whole = log.lock().unwrap().pop().unwrap();
    assert_eq!(whole.received, layer, "the good blob arrives whole");

    let mut flipped = layer.clone();
    flipped[123_456] ^= 1;
    fs_err::write(&path, &flipped).unwrap();
    let err = put_blob(&client, port, &path, &digest, len).unwrap_err();
    assert!(
        matches!(&err, RegistryError::Store(StoreError::DigestMismatch { path: p, evicted: true, .. }) if p == &path),
        "{err}"
    );
    assert!(!err.is_transient(), "a corrupt blob is not retried");
    assert!(!path.exists(), "the corrupt blob is evicted for a rebuild");
    // The server answers one connection after another, so once a third
    // upload is through, the cut one is in the log.
    fs_err::write(&path, &layer).unwrap();
    assert_eq!(put_blob(&client, port, &path, &digest, len).unwrap(), 201);
    let log = log.lock().unwrap();
    let cut = &log[log.len() - 2];
    assert!(
        cut.received.len() < cut.declared,
        "a corrupt blob's PUT body arrived whole ({} bytes): the registry would commit it",
        cut.received.len()
    );
    assert_eq!(log[log.len() - 1].received, layer);
}
