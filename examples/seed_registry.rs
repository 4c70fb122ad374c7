//! Fills a registry data directory with N synthetic images for the wrk benchmark.
//!
//! ```text
//! cargo run --release --example seed_registry -- --data-dir DIR [--count N] [--ids-file FILE]
//! ```
//!
//! Writes the catalogue of `benches/support/dataset.rs` into `DIR/registry` (where
//! `glint registry --data-dir DIR` looks) without a flush per image, flushes once at the end, and
//! prints `id=<uuid>` (a public image), `name=<name>` (a name 10 images share) and
//! `size_range=<min>,<max>` (10 hits). With `--ids-file`, also writes 10 000 ids scattered over the
//! catalogue, one a line, for `benches/wrk/ids.lua`.

#![allow(clippy::unwrap_used)]

#[path = "../benches/support/dataset.rs"]
mod dataset;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use glint::registry::Registry;

use dataset::Dataset;

/// How many ids `--ids-file` lists.
const IDS_IN_FILE: usize = 10_000;

fn main() -> ExitCode {
    let mut data_dir: Option<PathBuf> = None;
    let mut count = 1_000_000usize;
    let mut ids_file: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--data-dir" => data_dir = Some(value().into()),
            "--count" => {
                let v = value().replace('_', "");
                count = v
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("bad --count {v:?}")));
            }
            "--ids-file" => ids_file = Some(value().into()),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let Some(data_dir) = data_dir else {
        usage("--data-dir is required")
    };
    if count < 1000 {
        usage("--count must be at least 1000");
    }
    let registry_dir = data_dir.join("registry");
    if registry_dir.exists() {
        eprintln!(
            "seed_registry: {} already exists; seed into an empty data dir",
            registry_dir.display()
        );
        return ExitCode::FAILURE;
    }
    std::fs::create_dir_all(&data_dir).unwrap();

    let data = Dataset::new(count);
    let registry = Registry::open(&registry_dir).unwrap();
    let started = Instant::now();
    data.load(&registry, 2, |done| {
        eprintln!("seed_registry: {done} of {count} images")
    })
    .unwrap();
    let loaded = started.elapsed();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(registry.flush())
        .unwrap();
    eprintln!(
        "seed_registry: {count} images in {:.1?} (+ {:.1?} flush) into {}",
        loaded,
        started.elapsed() - loaded,
        registry_dir.display()
    );

    if let Some(path) = ids_file {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for k in 0..IDS_IN_FILE {
            let i = (dataset::splitmix(k as u64) % count as u64) as usize;
            writeln!(out, "{}", data.id(i)).unwrap();
        }
        out.flush().unwrap();
    }
    let (size_min, size_max) = data.size_range();
    println!("id={}", data.id(data.middle_row()));
    println!("name={}", data.shared_name(data.shared_names() / 2));
    println!("size_range={size_min},{size_max}");
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "seed_registry: {problem}\n\
         usage: seed_registry --data-dir DIR [--count N] [--ids-file FILE]"
    );
    std::process::exit(2)
}
