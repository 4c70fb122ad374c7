//! Registry operations at 10 000, 100 000 and 1 000 000 records: insert, get by id, lists
//! filtered by name, by a rare status and by a size range (10 hits each), a page sorted by
//! name after a marker, and the lists of a non-admin caller (§13): its default page, and its own
//! 10 private images among all the others.
//!
//! Each dataset (see `support/dataset.rs`) is loaded once per size, into a temporary sled
//! database. `GLINT_BENCH_SIZES=10000,100000` picks sizes; without it `cargo bench` runs all three
//! and `cargo test --benches` only the smallest. Inserts run last for each size, because they
//! grow the dataset.

#![allow(clippy::unwrap_used)]

#[path = "support/dataset.rs"]
mod dataset;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use glint::model::Status;
use glint::registry::{Limits, ListQuery, Registry, SortDir, SortKey};

use dataset::{Dataset, RARE_STATUS, RARE_STATUS_ROWS, SHARED_NAME_ROWS};

/// The owner of the 10 private images of the viewer benches.
const SMALL_PROJECT: &str = "bench-small-project";

/// Sizes when `GLINT_BENCH_SIZES` is unset.
const DEFAULT_SIZES: &[usize] = &[10_000, 100_000, 1_000_000];

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for n in sizes() {
        bench_size(&mut c, n);
    }
    c.final_summary();
}

/// The dataset sizes to run: `GLINT_BENCH_SIZES`, else all under `cargo bench` and the smallest
/// under `cargo test` (which does not pass `--bench`).
fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("GLINT_BENCH_SIZES") {
        return list
            .split(',')
            .map(|s| s.trim().replace('_', ""))
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("GLINT_BENCH_SIZES: bad size {s:?}"))
            })
            .collect();
    }
    if std::env::args().any(|a| a == "--bench") {
        DEFAULT_SIZES.to_vec()
    } else {
        DEFAULT_SIZES[..1].to_vec()
    }
}

fn bench_size(c: &mut Criterion, n: usize) {
    let data = Dataset::new(n);
    let reg = Registry::temporary().unwrap();
    let started = Instant::now();
    data.load(&reg, 2, |done| eprintln!("  loaded {done} of {n}"))
        .unwrap();
    eprintln!(
        "registry bench: loaded {n} images in {:.1?}",
        started.elapsed()
    );

    let name_queries: Vec<ListQuery> = (0..data.shared_names())
        .map(|g| {
            let name = data.shared_name(g);
            ListQuery::from_params([("name", name.as_str())], Limits::default()).unwrap()
        })
        .collect();
    let status_query =
        ListQuery::from_params([("status", RARE_STATUS.as_str())], Limits::default()).unwrap();
    let (size_min, size_max) = data.size_range();
    let size_query = ListQuery {
        filters: glint::registry::query::Filters {
            size_min: Some(size_min),
            size_max: Some(size_max),
            ..Default::default()
        },
        ..ListQuery::new(Limits::default())
    };
    let marker = data.id(data.middle_row());
    let page_query = ListQuery {
        limit: 25,
        marker: Some(marker),
        sort_key: SortKey::Name,
        sort_dir: SortDir::Asc,
        ..ListQuery::new(Limits::default())
    };

    // A small project: 10 private images among the n others, none shared.
    for i in 0..10u64 {
        let mut patch = dataset::insert_patch(1_000_000_000 + i);
        patch.owner = Some(Some(SMALL_PROJECT.into()));
        reg.create_unflushed(patch, Status::Active).unwrap();
    }
    let viewer = || {
        Some(glint::registry::query::Viewer {
            owner: Some(SMALL_PROJECT.into()),
            member_status: None,
        })
    };
    // What v1 lists for that project by default (public, own and shared) and with
    // `is_public=False` (its own private images).
    let mut viewer_page =
        ListQuery::from_params([("is_public", "None")], Limits::default()).unwrap();
    viewer_page.filters.viewer = viewer();
    let mut viewer_own =
        ListQuery::from_params([("is_public", "False")], Limits::default()).unwrap();
    viewer_own.filters.viewer = viewer();

    // Check the workload before timing it, and show how much each query reads. Every query but
    // the viewer's has the default visibility (public only), as a Registry API request without
    // `is_public` would.
    for (what, query, want) in [
        ("name", &name_queries[0], SHARED_NAME_ROWS),
        ("status", &status_query, RARE_STATUS_ROWS),
        ("size range", &size_query, 10),
        ("sorted page", &page_query, 25),
        ("viewer default page", &viewer_page, 25),
        ("viewer's own private", &viewer_own, 10),
    ] {
        let before = reg.read_stats();
        let rows = reg.list(query).unwrap();
        let after = reg.read_stats();
        assert_eq!(rows.len(), want, "{what} list at {n}");
        assert!(rows.iter().all(
            |r| (r.is_public || r.owner.as_deref() == Some(SMALL_PROJECT))
                && r.status != Status::Killed
        ));
        eprintln!(
            "registry bench: {what} list at {n}: {} rows, {} index entries and {} records read",
            rows.len(),
            after.index_entries_read - before.index_entries_read,
            after.records_read - before.records_read,
        );
    }

    // Walk the rows in a scattered order so that lookups are not all cache hits.
    let mut k = 0usize;
    c.benchmark_group("get_by_id")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                k = k.wrapping_add(1);
                let id = data.id(k.wrapping_mul(7919) % n);
                black_box(reg.get(&id).unwrap())
            })
        });
    c.benchmark_group("list_name")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                k = k.wrapping_add(1);
                black_box(reg.list(&name_queries[k % name_queries.len()]).unwrap())
            })
        });
    c.benchmark_group("list_status")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(reg.list(&status_query).unwrap()))
        });
    c.benchmark_group("list_size_range")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(reg.list(&size_query).unwrap()))
        });
    c.benchmark_group("sorted_page_marker")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(reg.list(&page_query).unwrap()))
        });
    c.benchmark_group("viewer_default_page")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(reg.list(&viewer_page).unwrap()))
        });
    c.benchmark_group("viewer_own_private")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(reg.list(&viewer_own).unwrap()))
        });
    // Counts across samples (criterion calls the closure once per sample), so every name is new.
    let mut inserted = 0u64;
    c.benchmark_group("insert")
        .bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                inserted += 1;
                black_box(
                    reg.create_unflushed(dataset::insert_patch(inserted), Status::Active)
                        .unwrap(),
                )
            })
        });
}
