//! Sending a built image somewhere: `containerize --copy --registry DEST` and
//! `cairn push`. DEST is a registry prefix (`docker://HOST[:PORT]/PATH/`) or a
//! local engine (`docker-daemon:`, `podman:`), as in skopeo.
//!
//! Owns the skopeo-style `--copy-args`, recording the last built image for
//! `cairn push`, the push progress display, and turning registry errors into
//! hinted reports. The protocol itself is `cairn_registry`.

use crate::cli::ContainerizeArgs;
use crate::diagnostic::Diagnose;
use crate::environment::Environment;
use crate::output;
use cairn_image::{BuildPlan, BuiltImage};
use cairn_registry::{
    BlobOutcome, ClientOptions, Credentials, KnownBlobs, PushImage, PushOptions, PushReporter,
    PushSummary, Reference, RegistryClient, RegistryError,
};
use cairn_store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use miette::{Result, miette};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where `--registry` sends the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `docker://HOST[:PORT]/PATH/`: a prefix for `NAME:TAG`.
    Registry(String),
    /// `docker-daemon:`: `docker load`.
    DockerDaemon,
    /// `podman:` (or `containers-storage:`): `podman load`.
    Podman,
}

/// Parses a `--registry` value.
pub fn parse_destination(text: &str) -> Result<Destination> {
    match text {
        "docker-daemon:" | "docker-daemon" => Ok(Destination::DockerDaemon),
        "podman:" | "podman" | "containers-storage:" => Ok(Destination::Podman),
        t if t.starts_with("docker://") => Ok(Destination::Registry(t.to_owned())),
        other => Err(miette!(
            help = "use docker://HOST[:PORT]/PATH/ for a registry, or docker-daemon: / podman: for a local engine",
            "unknown copy destination '{other}'"
        )),
    }
}

/// The `--copy-args` cairn understands (skopeo's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `--dest-creds USER:PASS`.
    pub credentials: Option<Credentials>,
    /// `--dest-tls-verify[=BOOL]`; false also allows plain HTTP.
    pub tls_verify: Option<bool>,
    /// `--dest-cert-dir DIR`: trust the `*.crt` CAs in DIR.
    pub cert_dir: Option<PathBuf>,
    /// `--retry-times N`.
    pub retry_times: Option<u32>,
}

/// `--copy-args` as given, else the container's `default-copy-args`: given
/// ones replace the defaults rather than adding to them, as in devenv.
pub fn copy_args_for(
    given: Option<&crate::cli::CopyArgsText>,
    named: Option<&cairn_manifest::NamedContainer>,
) -> String {
    given
        .map(|a| a.0.clone())
        .or_else(|| named.and_then(|c| c.default_copy_args.clone()))
        .unwrap_or_default()
}

/// Parses `--copy-args` (one shell-words string). Unknown arguments are an
/// error naming them; values (which may be passwords) are never echoed.
pub fn parse_copy_args(text: &str) -> Result<CopyOptions> {
    parse_registry_args("--copy-args", text)
}

/// Like [`parse_copy_args`] for another option (`--remote-args`), named in errors.
pub fn parse_registry_args(option: &str, text: &str) -> Result<CopyOptions> {
    let words =
        shell_words::split(text).map_err(|e| miette!("{option} is not valid shell words: {e}"))?;
    let mut options = CopyOptions::default();
    let mut unknown = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (word.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| miette!("{option}: {flag} needs {what}"))
        };
        match flag.as_str() {
            "--dest-creds" | "--creds" => {
                let text = value("USER:PASS")?;
                options.credentials = Some(Credentials::from_arg(&text, &flag).map_err(|e| {
                    miette!("{option}: {e}: --dest-creds takes USER:PASS or @FILE")
                })?);
            }
            "--dest-tls-verify" | "--tls-verify" => {
                options.tls_verify = Some(match inline.as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(_) => return Err(miette!("{option}: {flag} takes true or false")),
                });
            }
            "--dest-cert-dir" | "--cert-dir" => {
                options.cert_dir = Some(value("a directory")?.into())
            }
            "--retry-times" => {
                let n = value("a number")?;
                options.retry_times =
                    Some(n.parse().map_err(|_| {
                        miette!("{option}: --retry-times takes a number, not '{n}'")
                    })?);
            }
            _ => unknown.push(flag),
        }
    }
    if !unknown.is_empty() {
        return Err(miette!(
            help = "cairn understands --dest-creds USER:PASS, --dest-tls-verify=BOOL, --dest-cert-dir DIR (or --creds, --tls-verify, --cert-dir) and --retry-times N",
            "unknown {option}: {}",
            unknown.join(", ")
        ));
    }
    Ok(options)
}

/// The store key of the last image built for an environment (and container).
pub fn image_key(env: &Environment, container: Option<&str>) -> String {
    let mut id = env.root.as_os_str().as_bytes().to_vec();
    if let Some(name) = container {
        id.push(0);
        id.extend_from_slice(name.as_bytes());
    }
    cairn_store::sha256_hex(&id)
}

/// Whether an image name starts with a registry host (`HOST.DOMAIN/…`,
/// `HOST:PORT/…`, `localhost/…`), as docker decides.
fn has_registry_domain(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// What a registry push sends of `image`.
pub fn push_record(image: &BuiltImage) -> Result<PushImage> {
    match image {
        BuiltImage::Single(image) => PushImage::from_image(image),
        BuiltImage::Multi(multi) => PushImage::from_multi(multi),
    }
    .diagnose()
}

/// Remembers `image` as the last one built here, for `cairn push`. A failure
/// only costs `cairn push` its input, so it warns instead of failing the build.
pub fn record_image(store: &Store, env: &Environment, plan: &BuildPlan, image: &BuiltImage) {
    let key = image_key(env, plan.container.as_deref());
    let saved = push_record(image).and_then(|record| record.save(store, &key).diagnose());
    if let Err(e) = saved {
        tracing::warn!("cannot record the image for `cairn push`: {e}");
    }
}

/// `containerize --copy`: sends the built image to `--registry` (or the
/// container's `registry`), with `--copy-args` (or its `default-copy-args`).
/// Returns the registry reference and options it pushed with (none for a
/// local engine), for what goes up beside the image (its SBOM).
pub fn run(
    store: &Store,
    image: &BuiltImage,
    plan: &BuildPlan,
    args: &ContainerizeArgs,
) -> Result<Option<(Reference, CopyOptions)>> {
    let named = plan
        .container
        .as_deref()
        .and_then(|n| plan.manifest.containers.get(n));
    let destination = args
        .registry
        .clone()
        .or_else(|| named.and_then(|c| c.registry.clone()));
    let copy_args = copy_args_for(args.copy_args.as_ref(), named);
    // `--tag registry.example.com/team/app:1.0 --copy`: the reference is the destination.
    let Some(destination) = destination else {
        let full = format!("{}:{}", plan.name, plan.tag);
        if !has_registry_domain(&plan.name) {
            return Err(miette!(
                help = "pass --registry docker://HOST[:PORT]/PATH/, set registry in [containers.NAME], or tag with a full reference (--tag HOST/PATH/NAME:TAG)",
                "--copy needs a destination"
            ));
        }
        let options = parse_copy_args(&copy_args)?;
        let record = push_record(image)?;
        let reference = Reference::parse(&full).map_err(|e| registry_report(e, &full))?;
        push(store, &record, &reference, &options)?;
        return Ok(Some((reference, options)));
    };
    match parse_destination(&destination)? {
        Destination::DockerDaemon => {
            load(image.primary(), cairn_oci::ContainerRuntime::Docker, plan).map(|_| None)
        }
        Destination::Podman => {
            load(image.primary(), cairn_oci::ContainerRuntime::Podman, plan).map(|_| None)
        }
        Destination::Registry(prefix) => {
            let options = parse_copy_args(&copy_args)?;
            let record = push_record(image)?;
            let reference = Reference::with_prefix(&prefix, &record.name_and_tag())
                .map_err(|e| registry_report(e, &prefix))?;
            push(store, &record, &reference, &options)?;
            Ok(Some((reference, options)))
        }
    }
}

fn load(
    image: &cairn_oci::Image,
    runtime: cairn_oci::ContainerRuntime,
    plan: &BuildPlan,
) -> Result<()> {
    let program = runtime.program();
    let format = super::load_format(runtime, plan);
    let loaded =
        cairn_oci::load_into(runtime, |w| cairn_oci::write_archive(image, format, w)).diagnose()?;
    output::status(format!("✓ loaded into {program}: {loaded}"));
    Ok(())
}

/// Pushes `image` to `reference` and prints the summary line on stderr.
pub fn push(
    store: &Store,
    image: &PushImage,
    reference: &Reference,
    options: &CopyOptions,
) -> Result<PushSummary> {
    let shown = reference.to_string();
    let report = |e: RegistryError| registry_report(e, &shown);
    let client_options = client_options(reference, options).map_err(report)?;
    let client = RegistryClient::connect(reference, client_options).map_err(report)?;
    let known = Mutex::new(KnownBlobs::load(store, &reference.registry).map_err(report)?);
    let progress = PushProgress::new(&shown);
    let pushed = cairn_registry::push_image(
        &client,
        reference,
        image,
        &known,
        &push_options()?,
        &progress,
    );
    progress.finish();
    // What reached the registry is worth remembering even if the push failed.
    if let Ok(known) = known.into_inner()
        && let Err(e) = known.save(store)
    {
        tracing::warn!("cannot remember pushed blobs: {e}");
    }
    let summary = pushed.map_err(report)?;
    output::status(&summary);
    Ok(summary)
}

/// `CAIRN_PUSH_CHUNK_SIZE` (bytes): blobs larger than this go up in chunks
/// of this size (default 16 MiB), for registries or proxies that limit the
/// size of one request.
fn push_options() -> Result<PushOptions> {
    let mut options = PushOptions::default();
    if let Some(text) = std::env::var("CAIRN_PUSH_CHUNK_SIZE")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let size: u64 = text.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            miette!("CAIRN_PUSH_CHUNK_SIZE='{text}' is not a positive number of bytes")
        })?;
        options.chunk_threshold = size;
        options.chunk_size = size;
    }
    Ok(options)
}

pub fn client_options(
    reference: &Reference,
    options: &CopyOptions,
) -> Result<ClientOptions, RegistryError> {
    let credentials = match &options.credentials {
        Some(creds) => Some(creds.clone()),
        None => cairn_registry::find_credentials(&reference.registry, &reference.repository)?,
    };
    let mut defaults = ClientOptions::default();
    // registries.conf `insecure = true`: plain HTTP and unverified TLS are
    // allowed for that registry, as podman and skopeo allow them.
    let insecure = registries_conf_insecure(&reference.registry);
    if insecure {
        defaults
            .insecure_registries
            .push(reference.registry.clone());
    }
    let cert_dirs = match &options.cert_dir {
        Some(dir) => vec![dir.clone()],
        None => engine_cert_dirs(&reference.registry),
    };
    Ok(ClientOptions {
        credentials,
        tls_verify: options.tls_verify.unwrap_or(!insecure),
        ca_certs: match &options.cert_dir {
            Some(dir) => ca_files(dir)?,
            None => engine_trusted_cas(&reference.registry),
        },
        client_cert: cert_dirs.iter().find_map(|dir| client_cert_in(dir)),
        retry_times: options.retry_times.unwrap_or(defaults.retry_times),
        ..defaults
    })
}

/// The certs.d directories docker, podman and skopeo read for `registry`
/// (`HOST[:PORT]`), those that exist, in that order.
fn engine_cert_dirs(registry: &str) -> Vec<PathBuf> {
    // A registry name is a host and port; never let it climb out of certs.d.
    if registry.contains('/') || registry.starts_with('.') {
        return Vec::new();
    }
    let mut roots = vec![
        PathBuf::from("/etc/docker/certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
    ];
    roots.extend(config_home().map(|c| c.join("containers/certs.d")));
    roots
        .into_iter()
        .map(|root| root.join(registry))
        .filter(|dir| dir.is_dir())
        .collect()
}

fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
}

/// docker's client certificate convention: `NAME.cert` with `NAME.key`
/// beside it (`client.cert` and `client.key`); the first pair by name.
fn client_cert_in(dir: &std::path::Path) -> Option<(PathBuf, PathBuf)> {
    let mut certs: Vec<PathBuf> = fs_err::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cert"))
        .collect();
    certs.sort();
    certs.into_iter().find_map(|cert| {
        let key = cert.with_extension("key");
        key.is_file().then_some((cert, key))
    })
}

/// Whether containers-registries.conf(5) marks `registry` `insecure = true`
/// (`$XDG_CONFIG_HOME/containers/registries.conf` wins over
/// `/etc/containers/registries.conf`, as in containers/image).
fn registries_conf_insecure(registry: &str) -> bool {
    let files = config_home()
        .map(|c| c.join("containers/registries.conf"))
        .into_iter()
        .chain([PathBuf::from("/etc/containers/registries.conf")]);
    for file in files {
        let Ok(text) = fs_err::read_to_string(&file) else {
            continue;
        };
        return match text.parse::<toml_edit::DocumentMut>() {
            Ok(doc) => insecure_in(&doc, registry),
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", file.display());
                false
            }
        };
    }
    false
}

/// `[[registry]]` entries whose `location` (or `prefix`) is `registry`.
fn insecure_in(doc: &toml_edit::DocumentMut, registry: &str) -> bool {
    let Some(entries) = doc.get("registry").and_then(|r| r.as_array_of_tables()) else {
        return false;
    };
    entries.iter().any(|entry| {
        let names = ["location", "prefix"].map(|k| entry.get(k).and_then(|v| v.as_str()));
        names.iter().flatten().any(|n| *n == registry)
            && entry.get("insecure").and_then(|v| v.as_bool()) == Some(true)
    })
}

/// The CAs docker, podman and skopeo trust for `registry` (`HOST[:PORT]`)
/// without flags: `*.crt` in `/etc/docker/certs.d/HOST:PORT/`,
/// `/etc/containers/certs.d/HOST:PORT/` and
/// `$XDG_CONFIG_HOME/containers/certs.d/HOST:PORT/` (default `~/.config`), so
/// a registry that `docker push` works with works with cairn too.
fn engine_trusted_cas(registry: &str) -> Vec<PathBuf> {
    engine_cert_dirs(registry)
        .iter()
        .flat_map(|dir| ca_files(dir).unwrap_or_default())
        .collect()
}

/// The `*.crt` files of a skopeo-style certificate directory.
fn ca_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, RegistryError> {
    let mut files: Vec<PathBuf> = fs_err::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "crt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(RegistryError::CaCertificates {
            path: dir.to_path_buf(),
            reason: "no *.crt file in the directory".into(),
        });
    }
    Ok(files)
}

/// A registry error as a report that names the destination and says what to do.
pub fn registry_report(error: RegistryError, destination: &str) -> miette::Report {
    let help = match &error {
        RegistryError::Unreachable { .. } => "check the address and that the registry is running",
        RegistryError::Tls { .. } => {
            "for a plain-HTTP registry or an unverified certificate add --copy-args=--dest-tls-verify=false; to trust a CA, --copy-args='--dest-cert-dir DIR'"
        }
        RegistryError::Unauthorized { .. } => {
            "check the user and password (--copy-args='--dest-creds USER:PASS'), or log in with `podman login` / `docker login`"
        }
        RegistryError::Denied { .. } => {
            "the account may push elsewhere, but not to this repository"
        }
        RegistryError::RepositoryNotFound { .. } => {
            "check the repository path; some registries need the repository or project created first"
        }
        RegistryError::InvalidReference { .. } => {
            "write the destination as docker://HOST[:PORT]/PATH/ or HOST[:PORT]/PATH/NAME[:TAG]"
        }
        RegistryError::BlobSizeMismatch { .. } | RegistryError::CorruptRecord { .. } => {
            "run `cairn containerize` again to rebuild the image"
        }
        _ => "run with -v for details",
    };
    miette!(help = help, "cannot push to {destination}: {error}")
}

/// Push progress: one byte-counting bar on a terminal, a line per blob otherwise.
struct PushProgress {
    bar: Option<ProgressBar>,
}

impl PushProgress {
    fn new(reference: &str) -> PushProgress {
        let bar = output::progress_enabled().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix("Pushing");
            bar.set_message(reference.to_owned());
            bar
        });
        PushProgress { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => output::status(text),
        }
    }
}

impl PushReporter for PushProgress {
    fn on_push_start(&self, _blobs: usize, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    fn on_blob_progress(&self, _digest: &str, delta: i64) {
        if let Some(bar) = &self.bar {
            match u64::try_from(delta) {
                Ok(n) => bar.inc(n),
                Err(_) => bar.set_position(bar.position().saturating_sub(delta.unsigned_abs())),
            }
        }
    }

    fn on_blob_done(&self, digest: &str, size: u64, outcome: &BlobOutcome) {
        let short = short_digest(digest);
        if let Some(bar) = &self.bar {
            // Skipped and mounted blobs count as done without sending a byte.
            if *outcome != BlobOutcome::Uploaded {
                bar.inc(size);
            }
            return;
        }
        let size = indicatif::HumanBytes(size);
        match outcome {
            BlobOutcome::Uploaded => output::status(format!("  uploaded {short} ({size})")),
            BlobOutcome::Skipped => output::status(format!("  exists   {short} ({size})")),
            BlobOutcome::Mounted { from } => {
                output::status(format!("  mounted  {short} ({size}) from {from}"))
            }
        }
    }

    fn on_retry(&self, what: &str, attempt: u32, error: &RegistryError) {
        self.line(format!(
            "  retry {attempt} for {}: {error}",
            short_digest(what)
        ));
    }
}

fn short_digest(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    digest.get(..end).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skopeo_style_copy_args() {
        let o = parse_copy_args("--dest-creds alice:pa:ss --dest-tls-verify=false --retry-times 5")
            .unwrap();
        let creds = o.credentials.unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("alice", "pa:ss")
        );
        assert_eq!(o.tls_verify, Some(false));
        assert_eq!(o.retry_times, Some(5));
        let o =
            parse_copy_args("--dest-creds='bob:x y' --dest-tls-verify --retry-times=0").unwrap();
        assert_eq!(o.credentials.unwrap().password, "x y");
        assert_eq!((o.tls_verify, o.retry_times), (Some(true), Some(0)));
        assert_eq!(parse_copy_args("").unwrap(), CopyOptions::default());
    }

    #[test]
    fn unknown_copy_args_are_named_and_secrets_are_not() {
        let err =
            parse_copy_args("--dest-creds u:hunter2 --frobnicate --src-creds=a:b").unwrap_err();
        let shown = format!("{err:?}");
        assert!(
            shown.contains("--frobnicate") && shown.contains("--src-creds"),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("a:b"),
            "{shown}"
        );
        assert!(parse_copy_args("--retry-times").is_err());
        assert!(parse_copy_args("--retry-times lots").is_err());
        assert!(parse_copy_args("--dest-tls-verify=maybe").is_err());
        assert!(parse_copy_args("--dest-creds nocolon").is_err());
        assert!(parse_copy_args("'unterminated").is_err());
    }

    #[test]
    fn registries_conf_marks_a_registry_insecure() {
        let doc: toml_edit::DocumentMut = r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "registry.lan:5000"
insecure = true
[[registry]]
location = "secure.lan"
"#
        .parse()
        .unwrap();
        assert!(insecure_in(&doc, "registry.lan:5000"));
        assert!(!insecure_in(&doc, "secure.lan"));
        assert!(!insecure_in(&doc, "other:5000"));
    }

    #[test]
    fn client_certificates_pair_cert_and_key() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("ca.crt"), "").unwrap();
        fs_err::write(dir.path().join("client.cert"), "").unwrap();
        assert_eq!(client_cert_in(dir.path()), None, "a cert without its key");
        fs_err::write(dir.path().join("client.key"), "").unwrap();
        assert_eq!(
            client_cert_in(dir.path()),
            Some((
                dir.path().join("client.cert"),
                dir.path().join("client.key")
            ))
        );
    }

    #[test]
    fn destinations() {
        assert_eq!(
            parse_destination("docker-daemon:").unwrap(),
            Destination::DockerDaemon
        );
        assert_eq!(parse_destination("podman:").unwrap(), Destination::Podman);
        assert_eq!(
            parse_destination("docker://h:5000/team/").unwrap(),
            Destination::Registry("docker://h:5000/team/".into())
        );
        assert!(parse_destination("oci:/tmp/x").is_err());
    }

    #[test]
    fn image_keys_differ_per_environment_and_container() {
        let a = Environment::at("/a");
        let b = Environment::at("/b");
        assert_ne!(image_key(&a, None), image_key(&b, None));
        assert_ne!(image_key(&a, None), image_key(&a, Some("api")));
        assert_eq!(image_key(&a, Some("api")), image_key(&a, Some("api")));
    }
}
