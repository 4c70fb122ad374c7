//! The disk image inspector's cost per byte of upload (issue 13: at most 3 % more CPU-s per GiB
//! than an upload without it). Every upload chunk passes `Inspector::feed`; the bench feeds 64 MiB
//! in the 256 KiB chunks an upload arrives in and, beside it, the MD5 and SHA-512 every upload
//! computes over the same bytes, so the ratio is printed by the same run.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use glint::inspect::Inspector;
use md5::{Digest, Md5};
use sha2::Sha512;

/// Bytes fed per iteration.
const TOTAL: usize = 64 << 20;
/// Bytes per chunk, as hyper hands an upload over.
const CHUNK: usize = 256 << 10;

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let mut group = c.benchmark_group("upload_pass_64MiB");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("inspector", |b| {
        b.iter(|| {
            let mut inspector = Inspector::new();
            for _ in 0..TOTAL / CHUNK {
                inspector.feed(black_box(&chunk));
            }
            black_box(inspector.finish())
        })
    });
    group.bench_function("md5", |b| {
        b.iter(|| {
            let mut md5 = Md5::new();
            for _ in 0..TOTAL / CHUNK {
                md5.update(black_box(&chunk));
            }
            black_box(md5.finalize())
        })
    });
    group.bench_function("sha512", |b| {
        b.iter(|| {
            let mut sha = Sha512::new();
            for _ in 0..TOTAL / CHUNK {
                sha.update(black_box(&chunk));
            }
            black_box(sha.finalize())
        })
    });
    group.finish();
    c.final_summary();
}
