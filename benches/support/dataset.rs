//! A synthetic, deterministic image catalogue for the registry benchmarks and the wrk seeder.
//!
//! Row `i` of a dataset of `n` rows is a pure function of `(i, n)`, so the criterion bench and the
//! `seed_registry` example build the same catalogue and can name rows without keeping a list:
//!
//! * names are unique (`<distro>-<i>`) except every 100th row, which carries one of `n / 1000`
//!   shared names (`shared-NNNN`), so `name=shared-NNNN` matches exactly 10 rows;
//! * statuses are 99% `active`, 0.5% `saving`, 0.5% `killed`, and exactly 10 rows are `queued`
//!   (the rare status);
//! * sizes are a permutation of `0..n` (times 1 KiB, plus 512), so a size range of about ten
//!   KiB selects about ten rows; [`Dataset::size_range`] finds one that lists exactly 10;
//! * 80% of the rows are public; the shared-name and queued rows are all public, so the default
//!   (public-only) listing shows all ten of them.
//!
//! Shared by `benches/registry.rs` and `examples/seed_registry.rs` through `#[path]`, as hyper
//! shares `benches/support` between its benches and examples.

#![allow(dead_code)]

use std::collections::BTreeMap;

use glint::model::Status;
use glint::patch::ImagePatch;
use glint::registry::{Error, Registry};
use uuid::Uuid;

/// How many rows share each repeated name, and so how many rows a `name=` list returns.
pub const SHARED_NAME_ROWS: usize = 10;

/// How many rows have the rare status.
pub const RARE_STATUS_ROWS: usize = 10;

/// The rare status.
pub const RARE_STATUS: Status = Status::Queued;

/// Bytes of size per permutation slot.
const SIZE_STEP: u64 = 1024;

/// Distributions the unique names are drawn from.
const DISTROS: &[&str] = &[
    "almalinux-9",
    "centos-stream-9",
    "cirros-0.6.2",
    "debian-12",
    "fedora-40",
    "rhel-9.4",
    "rocky-9",
    "ubuntu-22.04",
    "ubuntu-24.04",
    "windows-2022",
];

/// `(disk_format, container_format)` pairs, weighted by repetition.
const FORMATS: &[(&str, &str)] = &[
    ("qcow2", "bare"),
    ("qcow2", "bare"),
    ("qcow2", "bare"),
    ("qcow2", "bare"),
    ("qcow2", "bare"),
    ("raw", "bare"),
    ("raw", "bare"),
    ("raw", "bare"),
    ("vmdk", "ovf"),
    ("iso", "bare"),
];

/// The recipe of a catalogue of `n` rows.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    /// Number of rows.
    pub n: usize,
    /// Multiplier of the size permutation `slot(i) = i * stride mod n` (coprime with `n`).
    stride: u64,
    /// Inverse of `stride` modulo `n`, to go from a size slot back to its row.
    stride_inv: u64,
}

impl Dataset {
    /// The catalogue of `n` rows (`n >= 1000`, so that every shared name has its 10 rows).
    pub fn new(n: usize) -> Dataset {
        assert!(n >= 1000, "a dataset needs at least 1000 rows");
        let m = n as u64;
        let mut stride = 1_000_003 % m;
        while gcd(stride, m) != 1 {
            stride += 1;
        }
        let stride_inv = mod_inverse(stride, m);
        Dataset {
            n,
            stride,
            stride_inv,
        }
    }

    /// The id of row `i`: a random-looking (version 4) UUID that depends only on `i`.
    pub fn id(&self, i: usize) -> Uuid {
        let hi = splitmix(i as u64 ^ 0x5151_5151_0000_0000);
        let lo = splitmix(i as u64 ^ 0xa3a3_a3a3_0000_0000);
        let bytes = (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Number of distinct shared names.
    pub fn shared_names(&self) -> usize {
        self.n / (100 * SHARED_NAME_ROWS)
    }

    /// The `g`-th shared name (`g < shared_names()`).
    pub fn shared_name(&self, g: usize) -> String {
        format!("shared-{g:04}")
    }

    /// A row in the middle of the catalogue, public and active: the marker of paging benches.
    pub fn middle_row(&self) -> usize {
        (self.n / 2..self.n)
            .find(|&i| self.is_visible(i) && self.kind(i) == Kind::Plain)
            .expect("a public plain row after the middle")
    }

    /// `(size_min, size_max)` such that a default (public, live) listing filtered on it returns
    /// exactly 10 rows, about the middle of the size range.
    pub fn size_range(&self) -> (u64, u64) {
        let first = self.n / 2;
        let mut found = 0;
        for slot in first..self.n {
            if self.is_visible(self.row_of_slot(slot)) {
                found += 1;
                if found == 10 {
                    return (slot_size(first) - 512, slot_size(slot) + 511);
                }
            }
        }
        panic!("fewer than 10 visible rows in the upper half of the sizes")
    }

    /// What the patch of row `i` creates.
    pub fn patch(&self, i: usize) -> ImagePatch {
        let h = splitmix(i as u64);
        let kind = self.kind(i);
        let distro = DISTROS[(h % DISTROS.len() as u64) as usize];
        let (disk, container) = FORMATS[((h >> 8) % FORMATS.len() as u64) as usize];
        let name = match kind {
            Kind::Shared(g) => self.shared_name(g),
            _ => format!("{distro}-{i:07}"),
        };
        let size = slot_size(self.slot(i));
        let id = self.id(i);
        let arch = if (h >> 16) % 4 == 0 {
            "aarch64"
        } else {
            "x86_64"
        };
        let properties = BTreeMap::from([
            ("architecture".to_string(), Some(arch.to_string())),
            ("os_distro".to_string(), Some(distro.to_string())),
        ]);
        ImagePatch {
            id: Some(id),
            name: Some(Some(name)),
            status: Some(self.status(i)),
            size: Some(size),
            virtual_size: Some(Some(size * 4)),
            disk_format: Some(Some(disk.to_string())),
            container_format: Some(Some(container.to_string())),
            checksum: Some(Some(format!("{:016x}{:016x}", h, splitmix(h)))),
            location: Some(Some(format!("file:///var/lib/glint/images/{id}"))),
            is_public: Some(self.is_public(i)),
            owner: Some(Some(format!(
                "{:016x}{:016x}",
                splitmix(h % 50),
                splitmix(h % 50 + 50)
            ))),
            min_disk: Some((h >> 24) % 40),
            min_ram: Some(((h >> 32) % 8) * 512),
            properties: Some(properties),
            ..Default::default()
        }
    }

    /// Creates every row in `registry` without flushing, on `threads` threads, calling
    /// `progress(rows_done)` now and then.
    pub fn load(
        &self,
        registry: &Registry,
        threads: usize,
        progress: impl Fn(usize) + Sync,
    ) -> Result<(), Error> {
        let threads = threads.max(1);
        let done = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let (done, progress) = (&done, &progress);
                    scope.spawn(move || -> Result<(), Error> {
                        for i in (t..self.n).step_by(threads) {
                            registry.create_unflushed(self.patch(i), Status::Active)?;
                            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if d % 100_000 == 0 {
                                progress(d);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("loader thread panicked"))
        })
    }

    fn kind(&self, i: usize) -> Kind {
        let groups = self.shared_names();
        if i % 100 == 0 && i / 100 < groups * SHARED_NAME_ROWS {
            return Kind::Shared((i / 100) % groups);
        }
        // Rows ≡ 7 (mod 100) are never shared; ten of them, spread out, get the rare status.
        let spacing = self.n / RARE_STATUS_ROWS;
        if i % 100 == 7 && i / spacing < RARE_STATUS_ROWS && i % spacing < 100 {
            return Kind::Rare;
        }
        Kind::Plain
    }

    fn status(&self, i: usize) -> Status {
        match self.kind(i) {
            Kind::Rare => RARE_STATUS,
            Kind::Shared(_) => Status::Active,
            Kind::Plain => match splitmix(i as u64 ^ 0x77) % 200 {
                0 => Status::Killed,
                1 => Status::Saving,
                _ => Status::Active,
            },
        }
    }

    fn is_public(&self, i: usize) -> bool {
        self.kind(i) != Kind::Plain || self.slot(i) % 5 != 3
    }

    /// Whether row `i` shows in a default listing: public, and neither killed nor deleted.
    fn is_visible(&self, i: usize) -> bool {
        self.is_public(i) && self.status(i) != Status::Killed
    }

    fn slot(&self, i: usize) -> usize {
        ((i as u128 * u128::from(self.stride)) % self.n as u128) as usize
    }

    fn row_of_slot(&self, slot: usize) -> usize {
        ((slot as u128 * u128::from(self.stride_inv)) % self.n as u128) as usize
    }
}

/// The patch of the `k`-th image an insert benchmark adds: unique name, private, and a size above
/// every dataset row, so inserted rows never show up in the other benchmarks' results.
pub fn insert_patch(k: u64) -> ImagePatch {
    ImagePatch {
        name: Some(Some(format!("bench-insert-{k:09}"))),
        size: Some((1 << 40) + k),
        disk_format: Some(Some("qcow2".into())),
        container_format: Some(Some("bare".into())),
        checksum: Some(Some(format!("{:032x}", u128::from(splitmix(k))))),
        is_public: Some(false),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Carries the shared name with this index.
    Shared(usize),
    /// Has the rare status.
    Rare,
    /// Everything else.
    Plain,
}

fn slot_size(slot: usize) -> u64 {
    slot as u64 * SIZE_STEP + 512
}

/// The splitmix64 finaliser: a cheap, well-mixed hash of a counter.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn mod_inverse(a: u64, m: u64) -> u64 {
    let (mut old_r, mut r) = (i128::from(a), i128::from(m));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    old_s.rem_euclid(i128::from(m)) as u64
}
