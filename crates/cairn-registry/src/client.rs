//! HTTP to one registry: which scheme it speaks, how to authenticate each
//! request, retries with backoff, and resolving the `Location`s it returns.
//!
//! A client pings `GET /v2/` once to learn the scheme and the challenge. Each
//! request then carries the scopes it needs; with a Bearer challenge the
//! client fetches (and caches) a token per set of scopes, and on a 401 it
//! re-reads the challenge, fetches a fresh token and tries once more. A
//! second 401 is a credentials error. The client is `Sync`: parallel uploads
//! share it and its token cache.
//!
//! Logs show methods, URLs and statuses, never headers: `Authorization`
//! values and tokens stay in memory. What to send is `push.rs`.
//!
//! Where secrets may go follows docker/distribution: credentials and tokens
//! only to the origin that was pinged, and credentials to the token realm its
//! challenge names; a `Location` on another host gets no `Authorization`,
//! and its challenges are not believed (or it could name its own realm and
//! collect the password). An HTTPS registry is never left for plain HTTP
//! (realm, `Location`, redirects): the agent is HTTPS-only. Turning TLS
//! verification off accepts a bad certificate; falling back to plain HTTP
//! also needs the registry to be insecure-allowed, which loopback hosts are
//! (as in docker) and others are through [`ClientOptions::insecure_registries`].

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_store::RunningSha256;
use ureq::http;

use crate::auth::{self, Challenge, Token};
use crate::credentials::Credentials;
use crate::reference::Reference;
use crate::{RegistryError, Result};

/// Registry error bodies are small JSON; this bounds a misbehaving server.
const MAX_REPLY_BYTES: u64 = 1 << 20;
/// GETs read manifests and the small blobs `pull` needs (config, cairn's
/// environment layer), never package layers.
const MAX_GET_BYTES: u64 = 64 << 20;

/// How to reach and authenticate to a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// User and password; `None` goes anonymous unless the registry asks.
    pub credentials: Option<Credentials>,
    /// Verify TLS certificates. When false, a bad certificate is accepted,
    /// and plain HTTP is tried if HTTPS fails, but only for an
    /// insecure-allowed registry (see [`ClientOptions::insecure_registries`]).
    pub tls_verify: bool,
    /// `host[:port]`s that may be reached over plain HTTP when `tls_verify`
    /// is false, besides loopback hosts (`localhost`, `127.0.0.0/8`, `::1`),
    /// which docker also allows. Defaults to the comma-separated
    /// `CAIRN_INSECURE_REGISTRIES`, like docker's `insecure-registries`.
    pub insecure_registries: Vec<String>,
    /// PEM files of CAs to trust instead of the built-in web roots.
    pub ca_certs: Vec<PathBuf>,
    /// A client certificate (PEM chain) and its key (PEM), for registries
    /// that authenticate clients by TLS, as docker's `client.cert`/`client.key`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// How often to retry after a connection error or a 5xx/429 answer.
    pub retry_times: u32,
    /// First pause before a retry; doubles each time, up to 10 s.
    pub retry_delay: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: None,
            tls_verify: true,
            insecure_registries: std::env::var("CAIRN_INSECURE_REGISTRIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            ca_certs: Vec::new(),
            client_cert: None,
            retry_times: 3,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// HTTP methods the distribution API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// What a request sends. Files are reopened on every attempt, so a retried or
/// re-authenticated request sends the same bytes again.
pub enum Payload<'a> {
    /// No body (`Content-Length: 0` for methods that take one).
    Empty,
    /// Bytes in memory (config, manifest).
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`; `progress` hears each chunk sent,
    /// and a negative count when an attempt fails and its bytes will be resent.
    /// With `check`, the bytes are hashed as they are sent (see [`SentCheck`]).
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        progress: &'a (dyn Fn(i64) + Sync),
        check: Option<SentCheck<'a>>,
    },
}

/// Hashing a blob file while it is uploaded, so its bytes are read once and
/// what is checked is what is sent. One payload may be the whole blob (a
/// monolithic PUT) or one piece of it (a chunked PATCH).
pub struct SentCheck<'a> {
    /// The hash of the blob's bytes before this payload. An attempt that
    /// sends the whole payload advances it; a failed or resent one does not,
    /// so no byte is counted twice.
    pub running: &'a Mutex<RunningSha256>,
    /// On the payload that ends the blob and commits it (a monolithic PUT
    /// with `?digest=`): the blob's digest. The payload's last bytes are only
    /// released when the whole blob matches, so a corrupt blob leaves the
    /// request short and the registry commits nothing; the cache entry is
    /// then evicted and the request fails with
    /// [`cairn_store::StoreError::DigestMismatch`].
    pub expected: Option<&'a str>,
}

/// One request to the registry.
pub struct Request<'a> {
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// The repository it concerns, for error messages.
    pub repository: &'a str,
    /// Token scopes it needs, e.g. `repository:team/app:pull,push`.
    pub scopes: Vec<String>,
    /// Extra headers (never `Authorization`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Payload<'a>,
}

/// A registry's answer, read whole (push answers are small).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The registry's own error text: `CODE: message` of each `errors` entry,
    /// else the start of the body.
    pub fn detail(&self) -> String {
        error_detail(&self.body)
    }

    /// Whether the body's errors include `code` (e.g. `NAME_UNKNOWN`).
    pub fn has_error_code(&self, code: &str) -> bool {
        error_codes(&self.body).iter().any(|c| c == code)
    }
}

/// A connection to one registry; see the module docs.
pub struct RegistryClient {
    agent: ureq::Agent,
    registry: String,
    base: String,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
    retry_times: u32,
    retry_delay: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Connects to the registry of `reference`: pings `/v2/` over HTTPS (and,
    /// without TLS verification, plain HTTP when HTTPS fails), retrying
    /// connection errors.
    pub fn connect(reference: &Reference, options: ClientOptions) -> Result<RegistryClient> {
        let plain_http = plain_http_allowed(reference, &options);
        // Until the ping decides, the agent may speak HTTP only if allowed.
        let agent = build_agent(&options, None, !plain_http)?;
        let probe = match plain_http {
            false => None,
            true => Some(build_agent(&options, Some(HTTPS_PROBE_TIMEOUT), false)?),
        };
        let mut client = RegistryClient {
            agent,
            registry: reference.registry.clone(),
            base: format!("https://{}", reference.api_host()),
            credentials: options.credentials.clone(),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            retry_times: options.retry_times,
            retry_delay: options.retry_delay,
        };
        let https = match probe {
            None => client.retrying(|| client.ping(), |_, _| {}),
            Some(probe) => {
                // Plain HTTP is allowed, so HTTPS is only a probe: once, and
                // briefly, since some HTTP servers never answer a TLS hello.
                let agent = std::mem::replace(&mut client.agent, probe);
                let reply = client.ping();
                client.agent = agent;
                reply
            }
        };
        let reply = match https {
            Ok(reply) => {
                if plain_http {
                    // HTTPS it is: from now on, nothing may go over HTTP.
                    client.agent = build_agent(&options, None, true)?;
                }
                reply
            }
            Err(e) if !plain_http => return Err(e),
            Err(https_error) => {
                tracing::debug!(
                    "HTTPS to {} failed ({https_error}); trying HTTP",
                    client.registry
                );
                client.base = format!("http://{}", reference.api_host());
                client.retrying(|| client.ping(), |_, _| {})?
            }
        };
        client.learn_challenge(&reply);
        Ok(client)
    }

    /// `host[:port]` as the user wrote it.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `scheme://host[:port]` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run
    /// out; `on_retry(attempt, error)` hears each retry.
    pub fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T>,
        on_retry: impl Fn(u32, &RegistryError),
    ) -> Result<T> {
        let mut delay = self.retry_delay;
        let mut tries = 0;
        loop {
            match attempt() {
                Err(e) if e.is_transient() && tries < self.retry_times => {
                    tries += 1;
                    tracing::debug!("{e}; retry {tries}/{} in {delay:?}", self.retry_times);
                    on_retry(tries, &e);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }

    fn ping(&self) -> Result<Reply> {
        let reply = self.send_once(
            &Request {
                method: Method::Get,
                url: self.url("/v2/"),
                repository: "",
                scopes: Vec::new(),
                headers: Vec::new(),
                body: Payload::Empty,
            },
            None,
        )?;
        match reply.status {
            200 | 401 => Ok(reply),
            s if s >= 500 => Err(status_error(Method::Get, &self.url("/v2/"), &reply)),
            status => Err(RegistryError::NotARegistry {
                registry: self.registry.clone(),
                status,
            }),
        }
    }

    fn learn_challenge(&self, reply: &Reply) {
        let challenge = reply
            .header("www-authenticate")
            .and_then(auth::parse_challenge);
        if (reply.status == 401 || challenge.is_some())
            && let Ok(mut slot) = self.challenge.lock()
        {
            *slot = challenge;
        }
    }

    /// Sends `request` with the authorization its scopes need; on a 401,
    /// refreshes it once. A second 401 is [`RegistryError::Unauthorized`].
    pub fn send(&self, request: &Request<'_>) -> Result<Reply> {
        self.refuse_downgrade(&request.url)?;
        if !self.is_registry_origin(&request.url) {
            // Another host (an upload `Location` on a CDN, say) gets neither
            // credentials nor tokens, and its challenges are not believed.
            tracing::debug!(
                "{} is not on {}: sending without credentials",
                strip_query(&request.url),
                self.base
            );
            let reply = self.send_once(request, None)?;
            if reply.status == 401 {
                return Err(self.unauthorized(request.repository, reply.detail()));
            }
            return Ok(reply);
        }
        let authorization = self.authorization(request, &request.scopes, false)?;
        let reply = self.send_once(request, authorization.as_deref())?;
        if reply.status != 401 {
            return Ok(reply);
        }
        self.learn_challenge(&reply);
        let mut scopes = request.scopes.clone();
        if let Some(Challenge::Bearer {
            scope: Some(wanted),
            ..
        }) = self.current_challenge()
        {
            scopes.extend(wanted.split(' ').map(str::to_owned));
        }
        let authorization = self.authorization(request, &scopes, true)?;
        let reply = self.send_once(request, authorization.as_deref())?;
        if reply.status == 401 {
            return Err(self.unauthorized(request.repository, reply.detail()));
        }
        Ok(reply)
    }

    /// Whether `url` is on the scheme, host and port that was pinged.
    fn is_registry_origin(&self, url: &str) -> bool {
        url.strip_prefix(&self.base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }

    /// Refuses a plain-HTTP `url` when the registry speaks HTTPS.
    fn refuse_downgrade(&self, url: &str) -> Result<()> {
        if self.base.starts_with("https://") && !url.starts_with("https://") {
            return Err(RegistryError::Downgrade {
                registry: self.registry.clone(),
                url: strip_query(url).to_owned(),
            });
        }
        Ok(())
    }

    fn current_challenge(&self) -> Option<Challenge> {
        self.challenge.lock().ok().and_then(|c| c.clone())
    }

    /// The `Authorization` value for `scopes`, fetching a token if needed.
    fn authorization(
        &self,
        request: &Request<'_>,
        scopes: &[String],
        refresh: bool,
    ) -> Result<Option<String>> {
        match self.current_challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => match &self.credentials {
                Some(creds) => Ok(Some(creds.basic_header())),
                None if refresh => Err(self.unauthorized(
                    request.repository,
                    "the registry requires a user name and password".into(),
                )),
                None => Ok(None),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = auth::scope_key(scopes);
                let cached = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned());
                let token = match cached {
                    Some(token) if !refresh => token,
                    _ => {
                        let token =
                            self.fetch_token(&realm, service.as_deref(), scopes, request)?;
                        if let Ok(mut tokens) = self.tokens.lock() {
                            tokens.insert(key, token.clone());
                        }
                        token
                    }
                };
                Ok(Some(format!("Bearer {}", token.0)))
            }
        }
    }

    /// Asks the token server for `scopes`, with Basic credentials if we have them.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        request: &Request<'_>,
    ) -> Result<Token> {
        // The realm comes from the registry's challenge: credentials may go
        // there, but never in clear text when the registry itself is HTTPS.
        self.refuse_downgrade(realm)?;
        let url = auth::token_url(realm, service, scopes);
        tracing::trace!("GET {realm} (token for {})", auth::scope_key(scopes));
        let mut builder = http::Request::builder().method("GET").uri(&url);
        if let Some(creds) = &self.credentials {
            builder = builder.header("authorization", creds.basic_header());
        }
        let failed = |reason: String| RegistryError::Token {
            realm: realm.to_owned(),
            reason,
        };
        let http_request = builder
            .body(ureq::SendBody::none())
            .map_err(|e| failed(e.to_string()))?;
        let mut response = self
            .agent
            .run(http_request)
            .map_err(|e| transport_error(&host_of(realm), e))?;
        let status = response.status().as_u16();
        let body = read_limited(response.body_mut(), MAX_REPLY_BYTES).unwrap_or_default();
        match status {
            200 => auth::parse_token_answer(&body)
                .ok_or_else(|| failed("the answer has no token".into())),
            401 | 403 => Err(self.unauthorized(request.repository, error_detail(&body))),
            s if s >= 500 => Err(RegistryError::Unreachable {
                registry: host_of(realm),
                reason: format!("token server answered HTTP {s}"),
            }),
            s => Err(failed(format!("HTTP {s}: {}", error_detail(&body)))),
        }
    }

    fn unauthorized(&self, repository: &str, detail: String) -> RegistryError {
        let user = match &self.credentials {
            Some(c) => format!(" of user '{}'", c.username),
            None => " (none given: pass --dest-creds USER:PASS or log in)".to_owned(),
        };
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            repository: repository.to_owned(),
            user,
            detail,
        }
    }

    /// One HTTP exchange, no auth logic. Transport failures become
    /// [`RegistryError::Unreachable`] (retried by [`RegistryClient::retrying`]).
    fn send_once(&self, request: &Request<'_>, authorization: Option<&str>) -> Result<Reply> {
        let method = request.method.as_str();
        tracing::trace!("{method} {}", request.url);
        let mut builder = http::Request::builder().method(method).uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        let mut sent = 0i64;
        let result = match &request.body {
            Payload::Empty => {
                let body: &[u8] = &[];
                self.run(builder, request, body)
            }
            Payload::Bytes(bytes) => {
                let len = bytes.len();
                builder = builder.header("content-length", len.to_string());
                self.run(builder, request, bytes)
            }
            Payload::File {
                path,
                offset,
                len,
                progress,
                check,
            } => {
                builder = builder.header("content-length", len.to_string());
                let file = open_at(path, *offset)?;
                let mut counted = CountingReader {
                    inner: CheckingReader::new(file.take(*len), *len, check.as_ref()),
                    progress: *progress,
                    sent: &mut sent,
                };
                let result = self.run_reader(builder, request, &mut counted);
                // Only a payload the registry took advances the blob's hash: a
                // 401 answered after the body is resent, and counts once.
                let taken = result
                    .as_ref()
                    .is_ok_and(|reply| (200..300).contains(&reply.status));
                counted.inner.finish(path, check.as_ref(), taken)?;
                result
            }
        };
        if let (Err(_), Payload::File { progress, .. }) = (&result, &request.body) {
            progress(-sent);
        }
        let reply = result?;
        tracing::trace!("{method} {} -> {}", request.url, reply.status);
        Ok(reply)
    }

    fn run(
        &self,
        builder: http::request::Builder,
        request: &Request<'_>,
        bytes: &[u8],
    ) -> Result<Reply> {
        // Methods with a body always say how long it is, even when empty:
        // some registries reject a POST or PUT without Content-Length.
        let builder = match request.method {
            Method::Get | Method::Head => builder,
            _ if bytes.is_empty() => builder.header("content-length", "0"),
            _ => builder,
        };
        let mut reader = bytes;
        match request.method {
            Method::Get | Method::Head => self.exchange(builder, request, ureq::SendBody::none()),
            _ => self.exchange(builder, request, ureq::SendBody::from_reader(&mut reader)),
        }
    }

    fn run_reader(
        &self,
        builder: http::request::Builder,
        request: &Request<'_>,
        mut reader: impl Read,
    ) -> Result<Reply> {
        let body = ureq::SendBody::from_reader(&mut reader);
        self.exchange(builder, request, body)
    }

    fn exchange(
        &self,
        builder: http::request::Builder,
        request: &Request<'_>,
        body: ureq::SendBody<'_>,
    ) -> Result<Reply> {
        let protocol = |reason: String| RegistryError::Protocol {
            method: request.method.as_str(),
            url: request.url.clone(),
            reason,
        };
        let http_request = builder.body(body).map_err(|e| protocol(e.to_string()))?;
        let mut response = self
            .agent
            .run(http_request)
            .map_err(|e| transport_error(&self.registry, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let limit = match request.method {
            Method::Get => MAX_GET_BYTES,
            _ => MAX_REPLY_BYTES,
        };
        let body = if request.method == Method::Head {
            Vec::new()
        } else {
            read_limited(response.body_mut(), limit)
                .map_err(|e| transport_error(&self.registry, e))?
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// How long the HTTPS probe of a registry that may be plain HTTP may take.
const HTTPS_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether plain HTTP may be tried: TLS verification is off and the registry
/// is loopback or listed as insecure (docker's rule).
fn plain_http_allowed(reference: &Reference, options: &ClientOptions) -> bool {
    if options.tls_verify {
        return false;
    }
    let registry = reference.api_host();
    options.insecure_registries.iter().any(|r| r == registry) || is_loopback(registry)
}

/// `localhost`, `127.0.0.0/8` or `::1`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let host = if registry.parse::<std::net::IpAddr>().is_ok() {
        registry
    } else if let Some(v6) = registry.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An agent; `https_only` makes it refuse any plain-HTTP request, redirects
/// included (which never carry `Authorization` either: ureq drops it).
fn build_agent(
    options: &ClientOptions,
    overall: Option<Duration>,
    https_only: bool,
) -> Result<ureq::Agent> {
    let mut tls = ureq::tls::TlsConfig::builder().disable_verification(!options.tls_verify);
    if !options.ca_certs.is_empty() {
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(load_ca_certs(
            &options.ca_certs,
        )?)));
    }
    if let Some((cert, key)) = &options.client_cert {
        tls = tls.client_cert(Some(load_client_cert(cert, key)?));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_connect(Some(Duration::from_secs(15)))
        // A registry may hash a large blob before answering the final PUT.
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_global(overall)
        .https_only(https_only)
        .accept_encoding("identity")
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.into())
}

/// The certificate chain in `cert` and the first private key in `key`.
fn load_client_cert(cert: &Path, key: &Path) -> Result<ureq::tls::ClientCert> {
    let chain = load_ca_certs(&[cert.to_path_buf()])?;
    let pem = fs_err::read(key)?;
    let key_item = ureq::tls::parse_pem(&pem).find_map(|item| match item {
        Ok(ureq::tls::PemItem::PrivateKey(key)) => Some(key),
        _ => None,
    });
    // The key's bytes are a secret: the error names the file only.
    let key_item = key_item.ok_or_else(|| RegistryError::CaCertificates {
        path: key.to_path_buf(),
        reason: "no PEM private key found".into(),
    })?;
    Ok(ureq::tls::ClientCert::new_with_certs(&chain, key_item))
}

fn load_ca_certs(paths: &[PathBuf]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut certs = Vec::new();
    for path in paths {
        let bad = |reason: String| RegistryError::CaCertificates {
            path: path.clone(),
            reason,
        };
        let pem = fs_err::read(path)?;
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(cert) = item.map_err(|e| bad(e.to_string()))? {
                certs.push(cert);
            }
        }
    }
    if certs.is_empty() {
        let path = paths.first().cloned().unwrap_or_default();
        return Err(RegistryError::CaCertificates {
            path,
            reason: "no PEM certificate found".into(),
        });
    }
    Ok(certs)
}

fn open_at(path: &Path, offset: u64) -> Result<fs_err::File> {
    use std::io::{Seek, SeekFrom};
    let mut file = fs_err::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(file)
}

/// Hashes a file payload as ureq pulls it (see [`SentCheck`]); without a
/// check it only passes bytes through.
struct CheckingReader<R> {
    inner: R,
    /// `Some` when checking: the blob's hash up to what this attempt sent.
    state: Option<RunningSha256>,
    expected: Option<String>,
    remaining: u64,
    /// The blob's actual digest, once it is known not to match.
    mismatch: Option<String>,
}

impl<R: Read> CheckingReader<R> {
    fn new(inner: R, len: u64, check: Option<&SentCheck<'_>>) -> Self {
        let state = check.map(|c| c.running.lock().map(|r| r.clone()).unwrap_or_default());
        CheckingReader {
            inner,
            state,
            expected: check
                .and_then(|c| c.expected)
                .map(|e| e.strip_prefix("sha256:").unwrap_or(e).to_ascii_lowercase()),
            remaining: len,
            mismatch: None,
        }
    }

    /// After the exchange: a mismatch becomes the request's error (the
    /// corrupt entry evicted); a whole payload the registry took advances the
    /// running hash.
    fn finish(self, path: &Path, check: Option<&SentCheck<'_>>, taken: bool) -> Result<()> {
        if let Some(actual) = self.mismatch {
            let evicted = cairn_store::evict(path);
            return Err(cairn_store::StoreError::DigestMismatch {
                path: path.to_path_buf(),
                expected: self.expected.unwrap_or_default(),
                actual,
                evicted,
            }
            .into());
        }
        if let (Some(check), Some(state), true) = (check, self.state, taken && self.remaining == 0)
            && let Ok(mut running) = check.running.lock()
        {
            *running = state;
        }
        Ok(())
    }
}

impl<R: Read> Read for CheckingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some(state) = &mut self.state else {
            return Ok(n);
        };
        state.update(&buf[..n]);
        self.remaining = self.remaining.saturating_sub(n as u64);
        let short = n == 0 && self.remaining > 0;
        let ends = self.remaining == 0 && n > 0;
        if let Some(expected) = &self.expected
            && (short || ends)
            && state.hex() != *expected
        {
            // Withheld: the registry never gets the last bytes, so it cannot
            // commit the blob under a digest its bytes do not have.
            self.mismatch = Some(state.hex());
            return Err(std::io::Error::other("blob does not match its digest"));
        }
        Ok(n)
    }
}

/// Reports bytes as ureq pulls them from the file.
struct CountingReader<'a, R> {
    inner: R,
    progress: &'a (dyn Fn(i64) + Sync),
    sent: &'a mut i64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = i64::try_from(n).unwrap_or(i64::MAX);
        *self.sent += n64;
        (self.progress)(n64);
        Ok(n)
    }
}

fn read_limited(body: &mut ureq::Body, limit: u64) -> Result<Vec<u8>, ureq::Error> {
    body.with_config().limit(limit).read_to_vec()
}

/// Connection trouble is worth retrying; a failed TLS handshake (a plain
/// HTTP server, an untrusted certificate) is not.
fn transport_error(registry: &str, error: ureq::Error) -> RegistryError {
    use std::io::ErrorKind;
    let registry = registry.to_owned();
    let reason = error.to_string();
    let tls = match &error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(e) => e.kind() == ErrorKind::InvalidData,
        _ => false,
    };
    if tls {
        RegistryError::Tls { registry, reason }
    } else {
        RegistryError::Unreachable { registry, reason }
    }
}

/// `host[:port]` of a URL, for messages.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}

/// The error for an unexpected answer, by status and the registry's error codes.
pub fn status_error(method: Method, url: &str, reply: &Reply) -> RegistryError {
    RegistryError::Status {
        method: method.as_str(),
        url: strip_query(url).to_owned(),
        status: reply.status,
        detail: reply.detail(),
    }
}

/// Upload URLs carry opaque state in their query; messages do not need it.
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn error_codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors.into_iter().map(|e| e.code).collect())
        .unwrap_or_default()
}

fn error_detail(body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
        && !parsed.errors.is_empty()
    {
        let parts: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect();
        return parts.join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no details)".to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

/// Resolves a `Location` header against the URL of the request that
/// returned it: absolute URLs stay, `/path` keeps the scheme and host, and
/// a bare relative path replaces the last segment.
pub fn resolve_location(request_url: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = request_url
        .split_once("://")
        .unwrap_or(("https", request_url));
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if let Some(net_path) = location.strip_prefix("//") {
        return format!("{scheme}://{net_path}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{host}{location}");
    }
    let path = strip_query(request_url);
    let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
    format!("{dir}/{location}")
}

/// Adds `key=value` to `url`, keeping its existing query (upload URLs carry
/// state such as `_state=…` that the registry needs back).
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let separator = match url.split_once('?') {
        None => "?",
        Some((_, "")) => "",
        Some(_) => "&",
    };
    format!("{url}{separator}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_absolute_and_relative_locations() {
        let req = "http://127.0.0.1:5000/v2/team/app/blobs/uploads/";
        assert_eq!(
            resolve_location(req, "/v2/team/app/blobs/uploads/abc?_state=x"),
            "http://127.0.0.1:5000/v2/team/app/blobs/uploads/abc?_state=x"
        );
        assert_eq!(
            resolve_location(req, "https://storage.example/u/1?sig=2"),
            "https://storage.example/u/1?sig=2"
        );
        assert_eq!(resolve_location(req, "//other:1/p"), "http://other:1/p");
        assert_eq!(
            resolve_location("http://h/v2/a/blobs/uploads/x?q=1", "y?s=2"),
            "http://h/v2/a/blobs/uploads/y?s=2"
        );
    }

    #[test]
    fn adds_query_parameters_keeping_existing_ones() {
        assert_eq!(
            with_query("http://h/u", "digest", "d"),
            "http://h/u?digest=d"
        );
        assert_eq!(
            with_query("http://h/u?_state=abc", "digest", "d"),
            "http://h/u?_state=abc&digest=d"
        );
        assert_eq!(
            with_query("http://h/u?", "digest", "d"),
            "http://h/u?digest=d"
        );
    }

    #[test]
    fn error_details_come_from_the_registry_json() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{}}]}"#;
        assert_eq!(
            error_detail(body),
            "NAME_UNKNOWN: repository name not known to registry"
        );
        assert_eq!(error_codes(body), ["NAME_UNKNOWN"]);
        assert_eq!(error_detail(b""), "(no details)");
        assert_eq!(error_detail(b"  oops "), "oops");
        assert_eq!(host_of("https://auth.io:8443/token?x=1"), "auth.io:8443");
    }

    #[test]
    fn only_transport_and_server_errors_are_retried() {
        let status = |s: u16| RegistryError::Status {
            method: "PUT",
            url: "u".into(),
            status: s,
            detail: String::new(),
        };
        assert!(status(503).is_transient() && status(429).is_transient());
        assert!(!status(400).is_transient());
        let unreachable = RegistryError::Unreachable {
            registry: "r".into(),
            reason: "refused".into(),
        };
        assert!(unreachable.is_transient());
    }

    /// A client that believes it pinged `base` and got `challenge`, without
    /// any network: the checks below fail before anything is sent.
    fn pinged(base: &str, challenge: Challenge) -> RegistryClient {
        let options = ClientOptions {
            credentials: Some(Credentials {
                username: "alice".into(),
                password: "s3cret".into(),
            }),
            ..ClientOptions::default()
        };
        RegistryClient {
            agent: build_agent(&options, None, true).unwrap(),
            registry: host_of(base),
            base: base.to_owned(),
            credentials: options.credentials,
            challenge: Mutex::new(Some(challenge)),
            tokens: Mutex::new(HashMap::new()),
            retry_times: 0,
            retry_delay: Duration::ZERO,
        }
    }

    fn get(url: &str) -> Request<'static> {
        Request {
            method: Method::Get,
            url: url.to_owned(),
            repository: "team/app",
            scopes: vec!["repository:team/app:pull".into()],
            headers: Vec::new(),
            body: Payload::Empty,
        }
    }

    #[test]
    fn an_https_registry_is_never_left_for_plain_http() {
        let bearer = Challenge::Bearer {
            realm: "http://auth.example.invalid/token".into(),
            service: None,
            scope: None,
        };
        let client = pinged("https://registry.example.invalid", bearer);
        // The token realm over HTTP would carry the password in clear text.
        let err = client
            .send(&get(
                "https://registry.example.invalid/v2/team/app/tags/list",
            ))
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::Downgrade { url, .. } if url.starts_with("http://auth")),
            "{err}"
        );
        // So would an upload `Location` over HTTP, on any host.
        let client = pinged("https://registry.example.invalid", Challenge::Basic);
        for location in [
            "http://registry.example.invalid/v2/upload?x=1",
            "http://cdn.example.invalid/upload",
        ] {
            let err = client.send(&get(location)).unwrap_err();
            assert!(
                matches!(err, RegistryError::Downgrade { .. }),
                "{location}: {err}"
            );
            assert!(!err.to_string().contains("x=1") && !err.to_string().contains("s3cret"));
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let client = pinged("https://reg.example.invalid:5000", Challenge::Basic);
        assert!(client.is_registry_origin("https://reg.example.invalid:5000/v2/"));
        assert!(client.is_registry_origin("https://reg.example.invalid:5000"));
        for other in [
            "https://reg.example.invalid:50001/v2/",
            "https://reg.example.invalid:5000.evil.invalid/v2/",
            "https://reg.example.invalid/v2/",
            "http://reg.example.invalid:5000/v2/",
            "https://cdn.example.invalid/v2/",
        ] {
            assert!(!client.is_registry_origin(other), "{other}");
        }
    }

    #[test]
    fn plain_http_needs_tls_off_and_a_loopback_or_insecure_registry() {
        let allowed = |registry: &str, tls_verify: bool, insecure: &[&str]| {
            let reference = Reference::parse(&format!("{registry}/team/app")).unwrap();
            let options = ClientOptions {
                tls_verify,
                insecure_registries: insecure.iter().map(|r| r.to_string()).collect(),
                ..ClientOptions::default()
            };
            plain_http_allowed(&reference, &options)
        };
        for loopback in ["127.0.0.1:5000", "localhost:5000", "127.1.2.3"] {
            assert!(allowed(loopback, false, &[]), "{loopback}");
            assert!(
                !allowed(loopback, true, &[]),
                "{loopback} with TLS verification"
            );
        }
        assert!(is_loopback("[::1]:5000") && is_loopback("::1"));
        assert!(!allowed("registry.example.com", false, &[]));
        assert!(!allowed("10.0.0.5:5000", false, &[]));
        assert!(allowed("10.0.0.5:5000", false, &["10.0.0.5:5000"]));
        assert!(!allowed("10.0.0.5:5000", true, &["10.0.0.5:5000"]));
    }
}
