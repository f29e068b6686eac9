//! Fuzzes the JSON a registry sends back: image indexes and manifests (the
//! oci-spec types `pull_manifest` reads, including the platform lookup it
//! does on an index) and token server answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageIndex, ImageManifest};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(index) = serde_json::from_slice::<ImageIndex>(bytes) {
        for m in index.manifests() {
            let _ = m.digest().to_string();
            if let Some(p) = m.platform() {
                let _ = (p.os().to_string(), p.architecture().to_string());
            }
        }
    }
    if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(bytes) {
        let _ = manifest.config().digest().to_string();
        for layer in manifest.layers() {
            let _ = (layer.digest().to_string(), layer.media_type().to_string());
        }
    }
    let _ = cairn_registry::auth::parse_token_answer(bytes);
});
