//! Crash torture (issue 15): `glint serve` (or, in the split shape, `glint api` before a
//! `glint registry` that stays up) under a writer load — creates, uploads with and
//! without `Content-Length`, metadata updates, member changes, deletes — killed with SIGKILL at
//! a random instant, restarted over the same data directory, and checked against what the
//! clients were told, round after round:
//!
//! * every acknowledged (2xx) change is there: active images with their size, checksum and
//!   data, properties, members, deletions; the one request in flight per client when the kill
//!   came may or may not have happened, and nothing else did;
//! * no image is left `saving`, and no file is in the store but the data of active images;
//! * the registry's records, indexes and memberships agree (the full check of
//!   `Registry::check`, run on the database while no process has it open; `glint serve` only,
//!   since in the split shape the registry lives on).
//!
//! In the split shape the API process must settle its own interrupted uploads through the
//! Registry API, from its own journal, while the registry never stopped.
//!
//! `GLINT_TORTURE_ROUNDS` (default 4) and `GLINT_TORTURE_MAX_MIB` (largest upload, default 4)
//! size it; `scripts/torture.sh` runs the long version (100 rounds, uploads up to 50 MiB) and
//! prints its figures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{fresh_seed, generated_md5, ApiClient, ImageServer, Payload, Reply, Shape};

/// A small deterministic generator (xorshift), so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Tenants that members are chosen from.
const TENANTS: [&str; 3] = ["tenant-a", "tenant-b", "tenant-c"];

/// What the clients were told about one image, and what may have happened besides.
#[derive(Debug, Clone, Default)]
struct Expected {
    /// Created (acknowledged); `false` while its create is unacknowledged.
    created: bool,
    /// The data it was acknowledged with: `(len, seed)`.
    data: Option<(u64, u64)>,
    /// Acknowledged deleted.
    deleted: bool,
    /// Killed by a crash during its upload (seen after a restart).
    killed: bool,
    /// The acknowledged value of property `n`.
    property: Option<String>,
    /// Acknowledged members.
    members: BTreeSet<String>,
    /// The request in flight when the server died, if it concerned this image.
    pending: Option<Op>,
    /// Changed by a request (acknowledged or not) this round: its data is downloaded and
    /// compared; an untouched image's size and checksum are compared (and all data in the
    /// last round).
    touched: bool,
}

/// A change a client asked for.
#[derive(Debug, Clone)]
enum Op {
    /// `POST /v1/images` with `x-image-meta-id`, with data `(len, seed, chunked)` or none.
    Create(Option<(u64, u64, bool)>),
    /// `PUT /v1/images/{id}` with data to a queued image.
    Upload(u64, u64, bool),
    /// `PUT /v1/images/{id}` setting property `n`.
    SetProperty(String),
    /// `PUT /v1/images/{id}/members/{tenant}`.
    AddMember(String),
    /// `DELETE /v1/images/{id}`.
    Delete,
}

/// Counts for the summary line.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    acknowledged: u64,
    bytes_acknowledged: u64,
    refused: u64,
}

/// One client's work until the server dies: returns what it was told about its images.
fn client(
    api: ApiClient,
    seed: u64,
    max_len: u64,
    images: &mut BTreeMap<String, Expected>,
    dead: &AtomicBool,
    tally: &mut Tally,
) {
    let mut rng = Rng(seed);
    let mut serial = 0u64;
    while !dead.load(Ordering::Relaxed) {
        let live: Vec<String> = images
            .iter()
            .filter(|(_, e)| e.created && !e.deleted && !e.killed)
            .map(|(id, _)| id.clone())
            .collect();
        let queued: Vec<String> = images
            .iter()
            .filter(|(_, e)| e.created && !e.deleted && !e.killed && e.data.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let roll = rng.below(100);
        let pick =
            |rng: &mut Rng, from: &[String]| from[rng.below(from.len() as u64) as usize].clone();
        let (id, op) = if roll < 35 || live.is_empty() {
            let id = uuid::Uuid::new_v4().to_string();
            let data =
                (rng.below(3) > 0).then(|| (1 + rng.below(max_len), rng.next(), rng.below(2) == 0));
            images.insert(id.clone(), Expected::default());
            (id, Op::Create(data))
        } else if roll < 50 && !queued.is_empty() {
            let (len, seed, chunked) = (1 + rng.below(max_len), rng.next(), rng.below(2) == 0);
            (pick(&mut rng, &queued), Op::Upload(len, seed, chunked))
        } else if roll < 75 {
            serial += 1;
            (
                pick(&mut rng, &live),
                Op::SetProperty(format!("v{seed:x}-{serial}")),
            )
        } else if roll < 90 {
            let tenant = TENANTS[rng.below(TENANTS.len() as u64) as usize];
            (pick(&mut rng, &live), Op::AddMember(tenant.to_string()))
        } else {
            (pick(&mut rng, &live), Op::Delete)
        };
        let entry = images.get_mut(&id).unwrap();
        entry.pending = Some(op.clone());
        entry.touched = true;
        tally.requests += 1;
        let Ok(reply) = send(&api, &id, &op) else {
            return; // the server died: this request stays pending
        };
        let expected = images.get_mut(&id).unwrap();
        if reply.status.is_success() {
            tally.acknowledged += 1;
            tally.bytes_acknowledged += match op {
                Op::Create(Some((len, _, _))) | Op::Upload(len, _, _) => len,
                _ => 0,
            };
            expected.pending = None;
            match op {
                Op::Create(data) => {
                    expected.created = true;
                    expected.data = data.map(|(len, seed, _)| (len, seed));
                }
                Op::Upload(len, seed, _) => expected.data = Some((len, seed)),
                Op::SetProperty(v) => expected.property = Some(v),
                Op::AddMember(t) => {
                    expected.members.insert(t);
                }
                Op::Delete => expected.deleted = true,
            }
        } else if reply.status.is_server_error() {
            panic!("{op:?} of {id} answered {}: {}", reply.status, reply.text());
        } else {
            // A refused request changes nothing (4xx): e.g. a member of a deleted image.
            tally.refused += 1;
            if tally.refused <= 3 {
                eprintln!(
                    "torture: {op:?} of {id} refused: {} {}",
                    reply.status,
                    reply.text()
                );
            }
            expected.pending = None;
        }
    }
}

/// Sends `op` for `id`; `Err` when the server is gone.
fn send(api: &ApiClient, id: &str, op: &Op) -> Result<Reply, String> {
    let data = |len: u64, seed: u64, chunked: bool| Payload::Generated { len, seed, chunked };
    let raw_bare = [
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
    ];
    let path = format!("/v1/images/{id}");
    match op {
        Op::Create(payload) => {
            let mut headers = vec![("x-image-meta-id", id), ("x-image-meta-name", "torture")];
            headers.extend_from_slice(&raw_bare);
            let body = match payload {
                Some((len, seed, chunked)) => {
                    headers.push(("content-type", "application/octet-stream"));
                    data(*len, *seed, *chunked)
                }
                None => Payload::Empty,
            };
            api.try_request("POST", "/v1/images", &headers, body)
        }
        Op::Upload(len, seed, chunked) => api.try_request(
            "PUT",
            &path,
            &[("content-type", "application/octet-stream")],
            data(*len, *seed, *chunked),
        ),
        Op::SetProperty(v) => api.try_request(
            "PUT",
            &path,
            &[("x-image-meta-property-n", v.as_str())],
            Payload::Empty,
        ),
        Op::AddMember(tenant) => api.try_request(
            "PUT",
            &format!("{path}/members/{tenant}"),
            &[],
            Payload::Empty,
        ),
        Op::Delete => api.try_request("DELETE", &path, &[], Payload::Empty),
    }
}

/// Checks one image after the restart against what its client was told; returns whether its
/// data should be in the store.
#[track_caller]
fn check_image(api: &ApiClient, id: &str, e: &Expected, all_data: bool) -> bool {
    let download = all_data || e.touched;
    let head = api.head(id);
    let meta = head.meta();
    let status = meta.get("status").map(String::as_str);
    let context = format!("image {id}: expected {e:?}, got {} {meta:?}", head.status);
    assert!(
        head.status.as_u16() == 200 || head.status.as_u16() == 404,
        "{context}"
    );
    assert_ne!(status, Some("saving"), "{context}");
    let pending_delete = matches!(e.pending, Some(Op::Delete));
    if !e.created {
        // Its create was in flight: absent, queued, killed, or complete.
        let Some(Op::Create(data)) = &e.pending else {
            // Its create was refused: nothing of it may exist.
            assert_eq!(status, None, "{context}: a refused create left a record");
            return false;
        };
        match status {
            None | Some("queued") | Some("killed") => return false,
            Some("active") => {
                let (len, seed, _) = data.expect("an active image had data");
                check_data(api, id, len, seed, download, &context);
                return true;
            }
            _ => panic!("{context}"),
        }
    }
    if e.deleted {
        assert!(status.is_none() || status == Some("deleted"), "{context}");
        return false;
    }
    if e.killed {
        assert!(status == Some("killed") || pending_delete, "{context}");
        return false;
    }
    if pending_delete && (status.is_none() || status == Some("deleted")) {
        return false;
    }
    assert!(status.is_some(), "{context}: an acknowledged image is gone");
    match (e.data, &e.pending) {
        (Some((len, seed)), _) => {
            assert_eq!(status, Some("active"), "{context}");
            check_data(api, id, len, seed, download, &context);
        }
        (None, Some(Op::Upload(len, seed, _))) => match status {
            Some("queued") | Some("killed") => {}
            Some("active") => check_data(api, id, *len, *seed, download, &context),
            _ => panic!("{context}"),
        },
        (None, _) => assert_eq!(status, Some("queued"), "{context}"),
    }
    let property = meta.get("property-n");
    let pending_property = match &e.pending {
        Some(Op::SetProperty(v)) => Some(v),
        _ => None,
    };
    assert!(
        property == e.property.as_ref() || (property.is_some() && property == pending_property),
        "{context}: property n"
    );
    let members: BTreeSet<String> = api.get(&format!("/v1/images/{id}/members")).json(200)
        ["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap().to_string())
        .collect();
    let mut allowed = e.members.clone();
    if let Some(Op::AddMember(t)) = &e.pending {
        allowed.insert(t.clone());
    }
    assert!(
        e.members.is_subset(&members) && members.is_subset(&allowed),
        "{context}: members {members:?}"
    );
    status == Some("active")
}

#[track_caller]
fn check_data(api: &ApiClient, id: &str, len: u64, seed: u64, download: bool, context: &str) {
    thread_local! {
        /// MD5s of generated data already computed (every round checks every image).
        static MD5S: std::cell::RefCell<BTreeMap<(u64, u64), String>> = Default::default();
    }
    let md5 = MD5S.with(|m| {
        m.borrow_mut()
            .entry((len, seed))
            .or_insert_with(|| generated_md5(len, seed))
            .clone()
    });
    let head = api.head(id);
    let meta = head.meta();
    assert_eq!(meta.get("size"), Some(&len.to_string()), "{context}");
    assert_eq!(meta.get("checksum"), Some(&md5), "{context}");
    if !download {
        return;
    }
    let got = api.download_hashed(id, false);
    assert_eq!(got.status.as_u16(), 200, "{context}");
    assert_eq!(
        (got.len, got.md5.as_str()),
        (len, md5.as_str()),
        "{context}: data"
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sigkill_at_random_instants_under_load_loses_nothing_acknowledged() {
    torture(Shape::Serve);
}

#[test]
fn sigkill_of_glint_api_beside_a_live_registry_loses_nothing_acknowledged() {
    torture(Shape::Split);
}

/// Rounds of load, SIGKILL of the API process, restart and checks, in `shape`.
fn torture(shape: Shape) {
    let rounds = env_number("GLINT_TORTURE_ROUNDS", 4);
    let max_len = env_number("GLINT_TORTURE_MAX_MIB", 4) << 20;
    let clients = 4;
    let seed = fresh_seed();
    let mut rng = Rng(seed);
    let mut srv = ImageServer::start(shape, &[]);
    let data_dir = srv.images_dir().parent().unwrap().to_path_buf();
    let mut books: Vec<BTreeMap<String, Expected>> = vec![BTreeMap::new(); clients];
    let mut tally = Tally::default();
    let started = Instant::now();
    for round in 0..rounds {
        let dead = Arc::new(AtomicBool::new(false));
        let addr = srv.addr();
        let workers: Vec<_> = std::mem::take(&mut books)
            .into_iter()
            .enumerate()
            .map(|(i, mut book)| {
                let dead = dead.clone();
                let seed = rng.next() ^ i as u64;
                std::thread::spawn(move || {
                    let mut tally = Tally::default();
                    client(
                        ApiClient::new(addr),
                        seed,
                        max_len,
                        &mut book,
                        &dead,
                        &mut tally,
                    );
                    (book, tally)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + rng.below(1300)));
        srv.api_process().kill9();
        dead.store(true, Ordering::Relaxed);
        for worker in workers {
            let (book, t) = worker.join().expect("a client panicked");
            tally.requests += t.requests;
            tally.acknowledged += t.acknowledged;
            tally.bytes_acknowledged += t.bytes_acknowledged;
            books.push(book);
        }

        // The database as the dead process left it: records and indexes agree.
        if shape == Shape::Serve {
            let registry = glint::registry::Registry::open(&data_dir.join("registry")).unwrap();
            let report = registry.check().unwrap();
            assert!(
                report.problems.is_empty(),
                "round {round} (seed {seed}): {:?}",
                report.problems
            );
        }

        srv.restart();
        let mut with_data = BTreeSet::new();
        for book in &books {
            for (id, expected) in book {
                if check_image(&srv, id, expected, round + 1 == rounds) {
                    with_data.insert(id.clone());
                }
            }
        }
        let files: BTreeSet<String> = srv.image_files().into_iter().collect();
        assert_eq!(
            files, with_data,
            "round {round} (seed {seed}): the store holds exactly the active images' data"
        );
        // What may or may not have happened is now settled: take the server's word for it.
        for book in &mut books {
            for (id, expected) in book.iter_mut() {
                settle(&srv, id, expected);
            }
        }
    }
    let images: usize = books.iter().map(BTreeMap::len).sum();
    eprintln!(
        "torture ({shape:?}): {rounds} rounds in {:.0?}, {} requests, {} acknowledged ({} MiB of data), {images} images, lost: 0",
        started.elapsed(),
        tally.requests,
        tally.acknowledged,
        tally.bytes_acknowledged >> 20,
    );
}

/// After a round's checks, folds the request that was in flight into what is known, as the
/// server now shows it.
fn settle(api: &ApiClient, id: &str, e: &mut Expected) {
    e.touched = false;
    let Some(op) = e.pending.take() else {
        return;
    };
    let head = api.head(id);
    let meta = head.meta();
    let status = meta.get("status").cloned();
    match op {
        Op::Create(data) => match status.as_deref() {
            None => {}
            Some("active") => {
                e.created = true;
                e.data = data.map(|(len, seed, _)| (len, seed));
            }
            Some(other) => {
                e.created = true;
                e.killed = other == "killed";
            }
        },
        Op::Upload(len, seed, _) => match status.as_deref() {
            Some("active") => e.data = Some((len, seed)),
            Some("killed") => e.killed = true,
            _ => {}
        },
        Op::SetProperty(_) => e.property = meta.get("property-n").cloned(),
        Op::AddMember(t) => {
            let members = api.get(&format!("/v1/images/{id}/members")).text();
            if members.contains(&format!("\"{t}\"")) {
                e.members.insert(t);
            }
        }
        Op::Delete => {
            e.deleted = status.is_none() || status.as_deref() == Some("deleted");
        }
    }
}
