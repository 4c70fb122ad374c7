//! Full disks (issue 15), on small tmpfs filesystems the tests mount themselves: the filesystem
//! store's disk filling mid-upload answers `413 Image storage media is full` as Glance does,
//! kills the image and leaves no partial file, while the registry stays writable; the
//! registry's own disk full (below `registry_reserved_space`: sled cannot recover in-process from
//! ENOSPC, so it must never meet it) answers 503 saying so, corrupts nothing, and writes work
//! again once space is freed.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); without it the tests say `SKIPPED:` loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{id_of, test_data, ImageServer, Payload, Shape, MIB};

/// A tmpfs of `mib` MiB mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            other => {
                eprintln!("SKIPPED: full-disk tests need to mount a tmpfs (root): {other:?}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Files in `dir`.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_full_store_disk_answers_413_kills_the_upload_and_leaves_no_partial_file() {
    let Some(disk) = Tmpfs::mount(8) else { return };
    let store = disk.path().join("images");
    let store_var = store.display().to_string();
    let srv = ImageServer::start(
        Shape::Serve,
        &[("GLINT_FILESYSTEM_STORE_DATADIR", store_var.as_str())],
    );
    let small = test_data(MIB as usize, 3);
    let kept = id_of(&srv.create_with_data(&[], &small));
    for chunked in [false, true] {
        let reply = srv.upload(
            "too big",
            &[],
            Payload::Generated {
                len: 20 * MIB,
                seed: 4,
                chunked,
            },
        );
        reply.assert_error(413, "Image storage media is full");
        let image = srv
            .list(crate::support::ALL_IMAGES)
            .into_iter()
            .find(|i| i["name"] == "too big" && i["status"] != "deleted")
            .unwrap_or_else(|| panic!("no record of the refused upload"));
        assert_eq!(image["status"], "killed", "{image}");
        assert_eq!(files_in(&store), vec![kept.clone()], "chunked: {chunked}");
        srv.delete(&id_of(&image));
    }
    // The registry (on another disk) still takes writes, and the store takes what fits.
    let after = srv.create_with_data(&[("x-image-meta-name", "fits")], &small);
    assert_eq!(after["status"], "active");
    assert!(srv.download(&kept).body == small);
}

/// Fills `disk` with a file until less than `leave` bytes are free; returns the file.
fn fill(disk: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let filler = disk.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 << 10];
    loop {
        let stat = rustix::fs::statvfs(disk).unwrap();
        if stat.f_bavail * stat.f_frsize < leave {
            break;
        }
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    filler
}

#[test]
fn a_full_registry_disk_answers_5xx_corrupts_nothing_and_recovers_when_space_is_freed() {
    let Some(disk) = Tmpfs::mount(64) else { return };
    let data_dir = disk.path().join("glint");
    let data_var = data_dir.display().to_string();
    let images = tempfile::tempdir().unwrap();
    let images_var = images.path().display().to_string();
    let mut srv = ImageServer::start_with_args(
        Shape::Serve,
        &[
            ("GLINT_FILESYSTEM_STORE_DATADIR", images_var.as_str()),
            ("GLINT_REGISTRY_RESERVED_SPACE", "8388608"),
        ],
        &["--data-dir", data_var.as_str()],
    );
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let image = srv.create(&[("x-image-meta-name", &format!("before-{i}"))]);
        acknowledged.push(id_of(&image));
    }
    let filler = fill(disk.path(), 10 << 20);
    // Creates until one fails: each answer is a success or a clean 5xx, never a hang.
    let long = "p".repeat(4000);
    let mut refused = None;
    for i in 0..5000 {
        let reply = srv.post(&[
            ("x-image-meta-name", &format!("during-{i}")),
            ("x-image-meta-property-pad", long.as_str()),
        ]);
        match reply.status.as_u16() {
            201 => acknowledged.push(id_of(&reply.json(201)["image"])),
            500..=599 => {
                refused = Some(reply);
                break;
            }
            other => panic!("create answered {other}: {}", reply.text()),
        }
    }
    let refused = refused.expect("the registry never ran out of space");
    assert_eq!(refused.status.as_u16(), 503, "{}", refused.text());
    assert!(
        refused.text().contains("registry_reserved_space"),
        "{}",
        refused.text()
    );
    eprintln!(
        "registry disk full after {} creates: {} {}",
        acknowledged.len(),
        refused.status,
        refused.text()
    );
    // Reads still work.
    assert!(srv.head(&acknowledged[0]).status.is_success());
    std::fs::remove_file(&filler).unwrap();
    let written = crate::support::eventually(std::time::Duration::from_secs(10), || {
        srv.post(&[("x-image-meta-name", "after")]).status.as_u16() == 201
    });
    assert!(
        written,
        "no write succeeded after space was freed: {}",
        srv.logs()
    );
    // Nothing acknowledged is lost across a restart, and the database is consistent.
    srv.api_process().kill9();
    {
        let registry = glint::registry::Registry::open(&data_dir.join("registry")).unwrap();
        let report = registry.check().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
    srv.restart();
    for id in &acknowledged {
        assert!(srv.head(id).status.is_success(), "image {id} lost");
    }
}
