//! Builds an image from .deb files by hand, to try the archives in real engines:
//!
//!     cargo run -p cairn-oci --example containerize -- OUT.tar NAME:TAG [gzip|zstd] A.deb B.deb...
//!
//! With `docker` or `podman` in place of `OUT.tar`, the archive is piped into
//! that engine's `load` instead.
//!
//! One layer per package, plus a top layer with the merged-/usr symlinks;
//! `CMD` is `/usr/bin/hello`. Uses a throwaway cache under the system temp dir.

use std::path::PathBuf;

use cairn_oci::{
    ArchiveFormat, Compression, ContainerRuntime, ImageSpec, LayerInput, LayerOptions,
    RuntimeConfig, build_custom_layer, build_image, build_layers, load_into, merged_usr_symlinks,
    write_archive,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, reference, compression, debs @ ..] = args.as_slice() else {
        return Err("usage: containerize OUT.tar NAME:TAG gzip|zstd A.deb...".into());
    };
    let (name, tag) = reference.split_once(':').ok_or("NAME:TAG")?;
    let compression = match compression.as_str() {
        "zstd" => Compression::Zstd,
        _ => Compression::Gzip,
    };
    let store = cairn_store::Store::open(std::env::temp_dir().join("cairn-oci-example-cache"))?;
    let opts = LayerOptions {
        compression,
        mtime_clamp: Some(1_700_000_000),
    };
    let inputs = debs
        .iter()
        .map(|deb| {
            let deb_path = PathBuf::from(deb);
            let file = deb_path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let mut parts = file.split('_');
            Ok(vec![LayerInput {
                name: parts.next().unwrap_or_default().to_owned(),
                version: parts.next().unwrap_or_default().to_owned(),
                deb_sha256: cairn_store::sha256_file(&deb_path)?,
                deb_path,
            }])
        })
        .collect::<Result<Vec<_>, std::io::Error>>()?;
    let started = std::time::Instant::now();
    let mut layers = build_layers(&store, &inputs, &opts, |i, l| {
        eprintln!(
            "layer {i}: {} {} cached={}",
            l.created_by, l.digest, l.from_cache
        );
    })?;
    layers.push(build_custom_layer(&store, merged_usr_symlinks(), &opts)?);
    eprintln!("layers built in {:?}", started.elapsed());
    let spec = ImageSpec {
        name: name.to_owned(),
        tag: tag.to_owned(),
        architecture: "amd64".into(),
        os: "linux".into(),
        created_epoch: 1_700_000_000,
        config: RuntimeConfig {
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            cmd: Some(vec!["/usr/bin/hello".into()]),
            ..RuntimeConfig::default()
        },
    };
    let image = build_image(&spec, &layers)?;
    if let Ok(runtime) = out.parse::<ContainerRuntime>() {
        let loaded = load_into(runtime, |w| write_archive(&image, ArchiveFormat::Hybrid, w))?;
        eprintln!("{runtime:?} loaded {loaded}");
        return Ok(());
    }
    let mut file = cairn_store::AtomicFile::create(out)?;
    write_archive(&image, ArchiveFormat::Hybrid, &mut file)?;
    file.commit()?;
    eprintln!("wrote {out}: manifest {}", image.manifest_digest);
    Ok(())
}
