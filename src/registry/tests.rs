//! Registry tests: random operation sequences checked against a plain in-memory model, and proof
//! that filtered lists read only what their filters name.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use uuid::Uuid;

use super::query::{Filters, Visibility};
use super::*;

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const NAMES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("a"),
    Some("b"),
    Some("a\0"),
    Some("cirros"),
];
const DISK: &[Option<&str>] = &[None, Some("raw"), Some("qcow2"), Some("iso")];
const CONTAINER: &[Option<&str>] = &[None, Some("bare"), Some("ovf")];
const SIZES: &[u64] = &[0, 1, 10, 500, 1 << 40];
const PROP_KEYS: &[&str] = &["os", "arch", "k\0"];
const PROP_VALUES: &[Option<&str>] = &[None, Some("linux"), Some("x86"), Some("")];

fn random_patch(rng: &mut Rng) -> ImagePatch {
    let mut p = ImagePatch::default();
    let owned = |s: Option<&str>| s.map(str::to_string);
    if rng.chance(70) {
        p.name = Some(owned(rng.pick(NAMES)));
    }
    if rng.chance(50) {
        p.status = Some(rng.pick(&Status::SETTABLE));
    }
    if rng.chance(50) {
        p.disk_format = Some(owned(rng.pick(DISK)));
    }
    if rng.chance(50) {
        p.container_format = Some(owned(rng.pick(CONTAINER)));
    }
    if rng.chance(60) {
        p.size = Some(rng.pick(SIZES));
    }
    if rng.chance(60) {
        p.is_public = Some(rng.chance(60));
    }
    if rng.chance(30) {
        p.protected = Some(rng.chance(50));
    }
    if rng.chance(30) {
        p.min_ram = Some(rng.below(3));
    }
    if rng.chance(50) {
        let mut props = BTreeMap::new();
        for _ in 0..rng.below(3) {
            props.insert(
                rng.pick(PROP_KEYS).to_string(),
                owned(rng.pick(PROP_VALUES)),
            );
        }
        p.properties = Some(props);
    }
    p
}

fn random_query(rng: &mut Rng, model: &BTreeMap<Uuid, Image>) -> ListQuery {
    let mut q = ListQuery::new(Limits::default());
    let f = &mut q.filters;
    let owned = |s: Option<&str>| s.map(str::to_string);
    if rng.chance(30) {
        f.name = owned(rng.pick(NAMES));
    }
    if rng.chance(25) {
        f.status = Some(rng.pick(&Status::ALL).as_str().to_string());
    }
    if rng.chance(20) {
        f.disk_format = owned(rng.pick(DISK));
    }
    if rng.chance(20) {
        f.container_format = owned(rng.pick(CONTAINER));
    }
    if rng.chance(20) {
        f.size_min = Some(rng.pick(SIZES));
    }
    if rng.chance(20) {
        f.size_max = Some(rng.pick(SIZES));
    }
    if rng.chance(20) {
        let v = rng.pick(&PROP_VALUES[1..]).unwrap_or_default();
        f.properties
            .push((rng.pick(PROP_KEYS).to_string(), v.to_string()));
    }
    if rng.chance(15) {
        f.min_ram = Some(rng.below(3));
    }
    if rng.chance(15) {
        f.protected = Some(rng.chance(50));
    }
    f.visibility = rng.pick(&[Visibility::Public, Visibility::Private, Visibility::All]);
    if rng.chance(15) {
        f.deleted = Some(rng.chance(50));
    }
    if rng.chance(15) {
        let times: Vec<_> = model.values().map(|i| i.updated_at).collect();
        if !times.is_empty() {
            f.changes_since = Some(rng.pick(&times));
        }
    }
    q.sort_key = rng.pick(&[
        SortKey::Id,
        SortKey::Name,
        SortKey::Status,
        SortKey::DiskFormat,
        SortKey::ContainerFormat,
        SortKey::Size,
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
    ]);
    q.sort_dir = if rng.chance(50) {
        SortDir::Asc
    } else {
        SortDir::Desc
    };
    q.limit = rng.pick(&[0, 1, 3, 25, 1000]);
    if rng.chance(40) && !model.is_empty() {
        let ids: Vec<_> = model.keys().copied().collect();
        q.marker = Some(rng.pick(&ids));
    }
    q
}

/// The order of §8, written independently of the key encodings.
fn model_cmp(a: &Image, b: &Image, key: SortKey) -> Ordering {
    let primary = match key {
        SortKey::Id => a.id.cmp(&b.id),
        SortKey::Name => a.name.cmp(&b.name),
        SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
        SortKey::DiskFormat => a.disk_format.cmp(&b.disk_format),
        SortKey::ContainerFormat => a.container_format.cmp(&b.container_format),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::CreatedAt => Ordering::Equal,
        SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
    };
    primary
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

/// What a list must return, computed by brute force over the model.
fn model_list(model: &BTreeMap<Uuid, Image>, q: &ListQuery) -> Result<Vec<Uuid>, String> {
    let marker = match q.marker {
        None => None,
        Some(id) => match model.get(&id) {
            Some(m) if !m.deleted || q.shows_deleted() => Some(m),
            _ => return Err("Invalid marker. Image could not be found.".into()),
        },
    };
    let mut rows: Vec<&Image> = model.values().filter(|i| q.filters.matches(i)).collect();
    rows.sort_by(|a, b| model_cmp(a, b, q.sort_key));
    if q.sort_dir == SortDir::Desc {
        rows.reverse();
    }
    let rows = rows.into_iter().filter(|i| match marker {
        None => true,
        Some(m) => {
            let ord = model_cmp(i, m, q.sort_key);
            match q.sort_dir {
                SortDir::Asc => ord == Ordering::Greater,
                SortDir::Desc => ord == Ordering::Less,
            }
        }
    });
    Ok(rows.take(q.limit).map(|i| i.id).collect())
}

fn run_model_sequence(seed: u64, steps: usize, small_source: usize) {
    let mut reg = Registry::temporary().unwrap();
    reg.small_source = small_source;
    let mut model: BTreeMap<Uuid, Image> = BTreeMap::new();
    let mut rng = Rng(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for step in 0..steps {
        let ids: Vec<Uuid> = model.keys().copied().collect();
        match rng.below(10) {
            0..=3 => {
                let patch = random_patch(&mut rng);
                match rt.block_on(reg.create(patch.clone(), Status::Active)) {
                    Ok(image) => {
                        let mut expected = patch.into_new_image(Status::Active, image.created_at);
                        expected.id = image.id;
                        assert_eq!(image, expected, "seed {seed} step {step}: created record");
                        assert!(model.insert(image.id, image).is_none());
                    }
                    Err(Error::Invalid(_)) => {
                        let img = patch.into_new_image(Status::Active, Timestamp::now());
                        assert!(
                            img.validate().is_err(),
                            "seed {seed} step {step}: refused a valid image"
                        );
                    }
                    Err(e) => panic!("seed {seed} step {step}: create failed: {e}"),
                }
            }
            4..=5 if !ids.is_empty() => {
                let id = rng.pick(&ids);
                let patch = random_patch(&mut rng);
                let purge_props = rng.chance(50);
                let from_state = rng.chance(20).then(|| rng.pick(&Status::SETTABLE));
                let options = UpdateOptions {
                    purge_props,
                    from_state,
                };
                let before = model[&id].clone();
                let result = rt.block_on(reg.update(&id, patch.clone(), options));
                let mut expected = before.clone();
                patch.apply_mutable(&mut expected, purge_props);
                match result {
                    Ok(image) => {
                        assert!(!before.deleted);
                        assert!(from_state.is_none_or(|s| s == before.status));
                        assert!(image.updated_at >= before.updated_at);
                        expected.updated_at = image.updated_at;
                        // The first write that makes it active notes the time; later ones keep it.
                        expected.note_activation();
                        assert_eq!(image, expected, "seed {seed} step {step}: updated record");
                        model.insert(id, image);
                    }
                    Err(Error::Forbidden(_)) => assert!(before.deleted),
                    Err(Error::Conflict(_)) => assert_ne!(from_state, Some(before.status)),
                    Err(Error::Invalid(_)) => assert!(expected.validate().is_err()),
                    Err(e) => panic!("seed {seed} step {step}: update failed: {e}"),
                }
            }
            6 if !ids.is_empty() => {
                let id = rng.pick(&ids);
                match rt.block_on(reg.delete(&id)) {
                    Ok(image) => {
                        assert!(!model[&id].deleted);
                        assert!(image.deleted && image.status == Status::Deleted);
                        model.insert(id, image);
                    }
                    Err(Error::NotFound(_)) => assert!(model[&id].deleted),
                    Err(e) => panic!("seed {seed} step {step}: delete failed: {e}"),
                }
            }
            _ => {
                let q = random_query(&mut rng, &model);
                let got = reg
                    .list(&q)
                    .map(|v| v.into_iter().map(|i| i.id).collect::<Vec<_>>())
                    .map_err(|e| e.to_string());
                assert_eq!(
                    got,
                    model_list(&model, &q),
                    "seed {seed} step {step}: {q:?}"
                );
            }
        }
    }
    for (id, image) in &model {
        assert_eq!(&reg.get(id).unwrap(), image, "seed {seed}: final state");
    }
    let report = reg.check().unwrap();
    assert!(
        report.problems.is_empty(),
        "seed {seed}: {:?}",
        report.problems
    );
    assert_eq!(report.records, model.len() as u64);
}

#[test]
fn the_consistency_check_finds_a_lost_and_a_stray_index_entry_and_a_half_membership() {
    let reg = Registry::temporary().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let a = rt
        .block_on(reg.create(
            ImagePatch {
                name: Some(Some("a".into())),
                ..Default::default()
            },
            Status::Active,
        ))
        .unwrap();
    rt.block_on(reg.add_member(&a.id, "tenant-1", Some(false)))
        .unwrap();
    let clean = reg.check().unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert!(clean.index_entries > 0 && clean.member_entries == 2);

    let name_key = keys::index_keys(&a)
        .into_iter()
        .find(|k| k[0] == keys::TAG_NAME)
        .unwrap();
    reg.db.index.remove(&name_key).unwrap();
    let mut stray = name_key.clone();
    let len = stray.len();
    stray[len - keys::ID_LEN..].copy_from_slice(Uuid::new_v4().as_bytes());
    reg.db.index.insert(stray, &[]).unwrap();
    reg.db.shared.clear().unwrap();
    let report = reg.check().unwrap();
    let text = report.problems.join("\n");
    assert!(text.contains("lacks the index entry"), "{text}");
    assert!(text.contains("names a missing image"), "{text}");
    assert!(text.contains("not mirrored"), "{text}");
    assert_eq!(report.problems.len(), 3, "{text}");
}

#[test]
fn random_operations_agree_with_the_model() {
    for seed in 1..=12u64 {
        let seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Both plans: filter ranges sorted in memory, and walked in index order.
        run_model_sequence(seed, 400, index::SMALL_SOURCE);
        run_model_sequence(seed, 400, 0);
        run_model_sequence(seed, 400, 3);
    }
}

/// Loads `n` images: names `img-<i>` except every 10 000th block of ten sharing a name, one in
/// 10 000 `killed`, sizes equal to the index, half of them public.
fn load(reg: &Registry, n: u64) {
    for i in 0..n {
        let rare = i % 10_000 < 10;
        let patch = ImagePatch {
            name: Some(Some(if rare {
                "shared".into()
            } else {
                format!("img-{i}")
            })),
            status: Some(if i % 10_000 == 5 {
                Status::Queued
            } else {
                Status::Active
            }),
            size: Some(i),
            is_public: Some(i % 2 == 0),
            properties: Some(
                [("seq".to_string(), Some((i % 50_000).to_string()))]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        reg.create_unflushed(patch, Status::Active).unwrap();
    }
}

fn reads_of(reg: &Registry, params: &[(&str, &str)]) -> (usize, ReadStats) {
    let q = ListQuery::from_params(params.iter().copied(), Limits::default()).unwrap();
    let before = reg.read_stats();
    let n = reg.list(&q).unwrap().len();
    let after = reg.read_stats();
    (
        n,
        ReadStats {
            records_read: after.records_read - before.records_read,
            index_entries_read: after.index_entries_read - before.index_entries_read,
        },
    )
}

#[test]
fn filtered_lists_read_only_their_index_range_at_100k_images() {
    let reg = Registry::temporary().unwrap();
    load(&reg, 100_000);
    /// Query parameters, expected rows, most records read, most index entries read.
    type Case<'a> = (&'a [(&'a str, &'a str)], usize, u64, u64);
    let cases: &[Case<'_>] = &[
        // params, expected rows, max records read, max index entries read
        (
            &[("name", "shared"), ("is_public", "None"), ("limit", "1000")],
            100,
            100,
            250,
        ),
        (&[("name", "img-12345"), ("is_public", "None")], 1, 1, 5),
        (&[("status", "queued"), ("is_public", "None")], 10, 10, 25),
        (
            &[
                ("size_min", "5000"),
                ("size_max", "5009"),
                ("is_public", "None"),
            ],
            10,
            10,
            25,
        ),
        (&[("property-seq", "777"), ("is_public", "None")], 2, 2, 10),
        (
            &[
                ("name", "shared"),
                ("status", "queued"),
                ("is_public", "None"),
            ],
            10,
            10,
            40,
        ),
        // Large ranges walk an index in list order and stop when the page is full.
        (&[], 25, 25, 8300),
        (&[("sort_key", "name"), ("sort_dir", "asc")], 25, 60, 8300),
        (
            &[("size_min", "10"), ("sort_key", "size"), ("limit", "7")],
            7,
            14,
            8300,
        ),
        (
            &[("status", "active"), ("sort_key", "status"), ("limit", "7")],
            7,
            14,
            8300,
        ),
    ];
    for (params, rows, max_records, max_entries) in cases {
        let (n, stats) = reads_of(&reg, params);
        assert_eq!(n, *rows, "{params:?}");
        assert!(
            stats.records_read <= *max_records && stats.index_entries_read <= *max_entries,
            "{params:?} read {stats:?}"
        );
    }
    // Paging with a marker costs the same as the first page.
    let first = reg
        .list(
            &ListQuery::from_params([("sort_key", "name"), ("limit", "25")], Limits::default())
                .unwrap(),
        )
        .unwrap();
    let marker = first.last().unwrap().id.to_string();
    let (n, stats) = reads_of(
        &reg,
        &[("sort_key", "name"), ("limit", "25"), ("marker", &marker)],
    );
    assert_eq!(n, 25);
    assert!(stats.records_read <= 61, "{stats:?}");
}

#[test]
fn default_filters_hide_private_deleted_and_killed() {
    let f = Filters::default();
    assert_eq!(f.visibility, Visibility::Public);
    assert_eq!(f.deleted, None);
}

/// Many concurrent durable writes (create, update, delete, each waiting for its flush) all
/// complete. sled 0.34's `flush_async` parks its fsync waiters on sled's own thread pool, which
/// also writes the log buffers: under 64 concurrent creates the pool filled with waiters, the
/// buffer a flush waited for was never written, and the server hung (found by the API benchmark).
#[test]
fn concurrent_durable_writes_all_complete() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let reg = std::sync::Arc::new(Registry::open(dir.path()).unwrap());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker_reg = reg;
    // The runtime lives on its own thread so that a deadlock fails the test instead of hanging it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        let written = rt.block_on(async move {
            let mut tasks = Vec::new();
            for t in 0..TASKS {
                let reg = worker_reg.clone();
                tasks.push(tokio::spawn(async move {
                    for r in 0..ROUNDS {
                        let patch = ImagePatch {
                            name: Some(Some(format!("c-{t}-{r}"))),
                            ..ImagePatch::default()
                        };
                        let image = reg.create(patch, Status::Queued).await.unwrap();
                        let rename = ImagePatch {
                            name: Some(Some(format!("u-{t}-{r}"))),
                            ..ImagePatch::default()
                        };
                        reg.update(&image.id, rename, UpdateOptions::default())
                            .await
                            .unwrap();
                        if r % 2 == 0 {
                            reg.delete(&image.id).await.unwrap();
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            TASKS * ROUNDS
        });
        let _ = done_tx.send(written);
    });
    let written = done_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("concurrent durable writes did not complete within 120 s: deadlock");
    assert_eq!(written, TASKS * ROUNDS);
}

#[test]
fn a_viewers_list_reads_only_public_own_and_shared_rows_at_20k_images() {
    use super::query::Viewer;
    let reg = Registry::temporary().unwrap();
    // 2 000 projects with 10 private images each; five public images.
    for i in 0..20_000u64 {
        let patch = ImagePatch {
            owner: Some(Some(format!("proj-{}", i % 2_000))),
            is_public: Some(i % 4_000 == 7),
            ..Default::default()
        };
        reg.create_unflushed(patch, Status::Active).unwrap();
    }
    // One image of project 99 is shared with project 42.
    let mut of_99 = ListQuery::from_params([("is_public", "None")], Limits::default()).unwrap();
    of_99.filters.owner = Some("proj-99".into());
    let shared = reg
        .list(&of_99)
        .unwrap()
        .into_iter()
        .find(|i| i.owner.as_deref() == Some("proj-99") && !i.is_public)
        .unwrap();
    block_on(reg.add_member(&shared.id, "proj-42", None)).unwrap();
    let mut q =
        ListQuery::from_params([("is_public", "None"), ("limit", "100")], Limits::default())
            .unwrap();
    q.filters.viewer = Some(Viewer {
        owner: Some("proj-42".into()),
        member_status: None,
    });
    let before = reg.read_stats();
    let rows = reg.list(&q).unwrap();
    let after = reg.read_stats();
    let own = rows
        .iter()
        .filter(|i| i.owner.as_deref() == Some("proj-42"))
        .count();
    let public = rows.iter().filter(|i| i.is_public).count();
    assert_eq!(
        (own, public, rows.len()),
        (10, 5, 16),
        "own, public, and the shared one"
    );
    assert!(rows.iter().any(|i| i.id == shared.id));
    let read = after.records_read - before.records_read;
    assert!(read <= 20, "read {read} records for 16 rows");
    // Pending or not, v2 asks by status: an accepted-only viewer does not list it.
    q.filters.viewer = Some(Viewer {
        owner: Some("proj-42".into()),
        member_status: Some(crate::model::MemberStatus::Accepted),
    });
    assert_eq!(reg.list(&q).unwrap().len(), 15);
}

/// Runs a future to completion on a fresh current-thread runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
