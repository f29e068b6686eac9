//! Writing an archive while its image is still being built.
//!
//! On a cold build the archive used to start only once every layer, the
//! configuration and the image config existed: copying (and verifying) tens
//! of MB of blobs was then a tail on one core after the build. Here the
//! build hands each layer of the first image to a [`LayerFeed`] as soon as it
//! is in the store, and a writer thread puts it into the archive the moment
//! every layer below it is there too: layers go out strictly bottom first,
//! so the bytes are those [`super::write_archive`] writes for the finished
//! image, however the build's threads happened to finish. The metadata
//! (configs, manifests, `index.json`, `manifest.json`) comes last, when the
//! build returns.
//!
//! A failed build stops the stream where it is: a file output is discarded
//! by its caller (`AtomicFile`), and a pipe into `docker load` ends in a
//! truncated archive with no `manifest.json`, which loads nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::mpsc::{Receiver, Sender, channel};

use super::{ArchiveFormat, Archived, LayerBlob, LayoutFile, stream};
use crate::layer::BuiltLayer;
use crate::{OciError, Result};

/// What the build sends the writer.
enum Fed {
    /// Layer `position` (bottom first) of the first image is in the store.
    Layer(usize, LayerBlob),
    /// The build is done: every file of the archive, in order.
    Done(Vec<LayoutFile>),
}

/// Where a build hands over the first image's layers as each is ready.
/// Shared by the build's threads.
pub struct LayerFeed {
    sender: Sender<Fed>,
}

impl LayerFeed {
    /// Layer `position` (bottom first) of the first image is final and in
    /// the store. Positions may come in any order and from any thread; a
    /// layer the image does not end up with at that position is a bug the
    /// writer reports at the end.
    pub fn ready(&self, position: usize, layer: &BuiltLayer) {
        // A writer that stopped (a failed write) reports why at the end.
        let _ = self.sender.send(Fed::Layer(position, LayerBlob::of(layer)));
    }
}

/// Runs `build`, writing the archive of what it returns ([`super::write_archive`]'s
/// bytes, via `archived`) to `out` as it goes: each layer handed to the
/// [`LayerFeed`] is written once the layers below it are. The build's error
/// wins over the writer's, which follows from it.
pub fn write_archive_while<T, E: From<OciError>>(
    format: ArchiveFormat,
    mut out: impl Write + Send,
    build: impl FnOnce(&LayerFeed) -> std::result::Result<T, E>,
    archived: impl for<'a> FnOnce(&'a T) -> Archived<'a>,
) -> std::result::Result<T, E> {
    std::thread::scope(|scope| {
        let (sender, receiver) = channel();
        let writer = scope.spawn(move || {
            stream::stream(&mut out, |chunks| write_fed(chunks, receiver))?;
            out.flush()?;
            Ok::<_, OciError>(())
        });
        let feed = LayerFeed { sender };
        let built = build(&feed).and_then(|t| {
            let files = super::layout_files(archived(&t), format)?;
            // Fails only if the writer stopped; its error is below.
            let _ = feed.sender.send(Fed::Done(files));
            Ok(t)
        });
        // Without `Done`, the writer sees the feed close and stops.
        drop(feed);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let built = built?;
        written?;
        Ok(built)
    })
}

/// The writer's side: directories, then layers in order as they arrive,
/// then whatever `Done` lists that is not out yet.
fn write_fed(out: &mut stream::Chunks, fed: Receiver<Fed>) -> Result<()> {
    super::append_dirs(out)?;
    let mut early: BTreeMap<usize, LayerBlob> = BTreeMap::new();
    let mut next = 0;
    // Digests written, in order; a digest is written once however many
    // layers have it (as `layout_files` dedupes).
    let mut streamed: Vec<String> = Vec::new();
    loop {
        match fed.recv() {
            Ok(Fed::Layer(position, blob)) => {
                early.insert(position, blob);
                while let Some(blob) = early.remove(&next) {
                    next += 1;
                    if !streamed.contains(&blob.digest) {
                        super::append_blob(out, &blob)?;
                        streamed.push(blob.digest);
                    }
                }
            }
            Ok(Fed::Done(files)) => return write_rest(out, &streamed, &files),
            Err(_) => return Err(OciError::ArchiveAbandoned),
        }
    }
}

/// Writes the files of `files` not streamed yet, after checking that what
/// was streamed is where `files` puts it: the first layer blobs, in order.
fn write_rest(out: &mut stream::Chunks, streamed: &[String], files: &[LayoutFile]) -> Result<()> {
    let layers: Vec<&str> = files
        .iter()
        .filter_map(|f| match f {
            LayoutFile::Blob(blob) => Some(blob.digest.as_str()),
            LayoutFile::Bytes(..) => None,
        })
        .collect();
    if layers.len() < streamed.len() || layers[..streamed.len()] != *streamed {
        return Err(OciError::ArchiveOutOfOrder {
            streamed: streamed.len(),
        });
    }
    let done: BTreeSet<&str> = streamed.iter().map(String::as_str).collect();
    for file in files {
        if let LayoutFile::Blob(blob) = file
            && done.contains(blob.digest.as_str())
        {
            continue;
        }
        super::append_file(out, file)?;
    }
    super::append_end(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Image, ImageSpec, RuntimeConfig, build_image};
    use crate::layer::{CustomEntry, FileContent, LayerOptions, build_custom_layer};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// Bytes no compressor shrinks, so a layer of them spans several of the
    /// stream's buffers.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        // xorshift64: cheap, and as incompressible as gzip can tell.
        let mut state = 0x9E37_79B9_7F4A_7C15 ^ seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    /// An image of five layers, the second one large and the last a repeat
    /// of the first (written once).
    fn image(store: &cairn_store::Store) -> Image {
        let opts = LayerOptions::default();
        let layer = |name: &str, body: Vec<u8>| {
            let entry = CustomEntry::file(name, 0o644, FileContent::Bytes(body));
            build_custom_layer(store, vec![entry], &opts).unwrap()
        };
        let a = layer("a", b"a".to_vec());
        let big = layer("big", noise(3 << 20, 1));
        let c = layer("c", noise(70_001, 2));
        let d = layer("d", b"d".to_vec());
        let spec = ImageSpec {
            name: "fed".into(),
            tag: "v1".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            created_epoch: 0,
            config: RuntimeConfig::default(),
        };
        build_image(&spec, &[a.clone(), big, c, d, a]).unwrap()
    }

    fn archive_of(image: &Image, format: ArchiveFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        super::super::write_archive(image, format, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn layers_fed_in_any_order_from_any_thread_give_write_archives_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cairn_store::Store::open(tmp.path()).unwrap();
        let image = image(&store);
        for format in [
            ArchiveFormat::Hybrid,
            ArchiveFormat::Oci,
            ArchiveFormat::Docker,
        ] {
            for order in [[4, 3, 2, 1, 0], [1, 0, 3, 2, 4], [0, 1, 2, 3, 4]] {
                let mut bytes = Vec::new();
                let built = write_archive_while::<_, OciError>(
                    format,
                    &mut bytes,
                    |feed| {
                        std::thread::scope(|scope| {
                            for position in order {
                                let layer = &image.layers[position];
                                scope.spawn(move || feed.ready(position, layer));
                            }
                        });
                        Ok(image.clone())
                    },
                    |image| image.into(),
                )
                .unwrap();
                assert_eq!(built, image);
                assert!(bytes == archive_of(&image, format), "{format:?} {order:?}");
            }
        }
        // Nothing fed at all: still the same archive.
        let mut bytes = Vec::new();
        let hybrid = ArchiveFormat::Hybrid;
        let built = |_: &LayerFeed| Ok(image.clone());
        write_archive_while::<_, OciError>(hybrid, &mut bytes, built, |i| i.into()).unwrap();
        assert!(bytes == archive_of(&image, hybrid));
    }

    /// A writer that shares what it has taken, so a test can watch the
    /// archive grow while the build is still running.
    #[derive(Clone, Default)]
    struct Watched(Arc<Mutex<Vec<u8>>>);

    impl Write for Watched {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_layer_is_written_while_the_build_goes_on_once_those_below_it_are() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cairn_store::Store::open(tmp.path()).unwrap();
        let image = image(&store);
        let out = Watched::default();
        let seen = out.clone();
        let written = || seen.0.lock().unwrap().len() as u64;
        let wait_for = |bytes: u64| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while written() < bytes && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            written()
        };
        write_archive_while::<_, OciError>(
            ArchiveFormat::Hybrid,
            out.clone(),
            |feed| {
                // The large layer alone waits for the one below it.
                feed.ready(1, &image.layers[1]);
                std::thread::sleep(Duration::from_millis(100));
                assert_eq!(written(), 0, "layer 1 waits for layer 0");
                feed.ready(0, &image.layers[0]);
                // Most of the large blob is out before the build returns.
                let big = image.layers[1].size;
                let out = wait_for(big / 2);
                assert!(out >= big / 2, "streamed while building: {out} of {big}");
                Ok(image.clone())
            },
            |image| image.into(),
        )
        .unwrap();
        assert!(*out.0.lock().unwrap() == archive_of(&image, ArchiveFormat::Hybrid));
    }

    #[test]
    fn a_failed_build_reports_its_own_error_and_the_archive_stays_unfinished() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cairn_store::Store::open(tmp.path()).unwrap();
        let image = image(&store);
        let mut bytes = Vec::new();
        let err = write_archive_while::<Image, OciError>(
            ArchiveFormat::Hybrid,
            &mut bytes,
            |feed| {
                feed.ready(0, &image.layers[0]);
                Err(OciError::InvalidCustomEntry {
                    path: "x".into(),
                    reason: "the build's own error".into(),
                })
            },
            |image| image.into(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("the build's own error"), "{err}");
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(bytes.as_slice());
        if let Ok(entries) = archive.entries() {
            for entry in entries.flatten() {
                names.push(entry.path().unwrap().to_string_lossy().into_owned());
            }
        }
        assert!(
            !names
                .iter()
                .any(|n| n == "manifest.json" || n == "index.json"),
            "nothing names an image: {names:?}"
        );
    }

    #[test]
    fn a_layer_fed_at_the_wrong_position_is_an_error_not_a_shuffled_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cairn_store::Store::open(tmp.path()).unwrap();
        let image = image(&store);
        let err = write_archive_while::<_, OciError>(
            ArchiveFormat::Hybrid,
            std::io::sink(),
            |feed| {
                feed.ready(0, &image.layers[2]);
                Ok(image.clone())
            },
            |image| image.into(),
        )
        .unwrap_err();
        assert!(
            matches!(err, OciError::ArchiveOutOfOrder { streamed: 1 }),
            "{err}"
        );
    }

    #[test]
    fn a_failing_output_is_reported_once_the_build_is_done() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let store = cairn_store::Store::open(tmp.path()).unwrap();
        let image = image(&store);
        let err = write_archive_while::<_, OciError>(
            ArchiveFormat::Hybrid,
            Full,
            |feed| {
                for (position, layer) in image.layers.iter().enumerate() {
                    feed.ready(position, layer);
                }
                Ok(image.clone())
            },
            |image| image.into(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
