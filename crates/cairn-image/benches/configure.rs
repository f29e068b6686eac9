//! How long package configuration takes on a realistic environment: this
//! machine's CA certificates (`/usr/share/ca-certificates`, about 140) as the
//! `ca-certificates` package, plus every extracted control directory under
//! `CAIRN_POSTINST_CORPUS` (optional) as packages with their real scripts.
//! `cargo bench -p cairn-image --bench configure`. Prints the median of 20 runs.

use cairn_image::configure::{DataFile, DataKind, PackageInput, configure};
use std::path::Path;
use std::time::{Duration, Instant};

fn certificates() -> PackageInput {
    let mut files = Vec::new();
    let mut stack = vec![Path::new("/usr/share/ca-certificates").to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(DataFile {
                    path: path.to_string_lossy().into_owned(),
                    kind: DataKind::File,
                    contents: fs_err::read(&path).ok(),
                });
            }
        }
    }
    PackageInput {
        name: "ca-certificates".into(),
        files,
        ..PackageInput::default()
    }
}

fn corpus() -> Vec<PackageInput> {
    let Ok(dir) = std::env::var("CAIRN_POSTINST_CORPUS") else {
        return Vec::new();
    };
    let Ok(read) = fs_err::read_dir(&dir) else {
        return Vec::new();
    };
    let mut packages: Vec<PackageInput> = read
        .flatten()
        .map(|e| {
            let path = e.path();
            let text = |n: &str| fs_err::read_to_string(path.join(n)).ok();
            PackageInput {
                name: e.file_name().to_string_lossy().into_owned(),
                control: text("control").unwrap_or_default(),
                preinst: text("preinst"),
                postinst: text("postinst"),
                ..PackageInput::default()
            }
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

fn main() {
    let mut packages = corpus();
    packages.push(certificates());
    let certs = packages.last().map_or(0, |p| p.files.len());
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            let config = configure(&packages, &[]);
            std::hint::black_box(config);
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "configure: {} packages ({certs} CA certificate files): median {:.2} ms, max {:.2} ms",
        packages.len(),
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
}
