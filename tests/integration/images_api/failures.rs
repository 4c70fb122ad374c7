//! Uploads that die half-way (§5.5.1, §12.6): a client that goes away leaves a `killed` image and
//! no file; `kill -9` of the API process mid-upload, then a restart over the same data
//! directory, leaves the image `killed`, no partial file, every acknowledged image intact and
//! other servers' `saving` records alone (in both shapes); an interrupted v2 stage is `queued`
//! again. Also the size cap read from a Glance-style config file.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{fixed_id, RAW_BARE};
use crate::support::{id_of, test_data, ImageServer, Payload, RegistryClient, Shape};

acceptance! {
    client_disconnect_mid_upload_kills_the_image_and_leaves_no_file,
    image_deleted_during_its_upload_answers_412_and_keeps_no_data,
}

/// How long a state change that follows a disconnect or restart may take to show.
const SETTLE: Duration = Duration::from_secs(10);

fn client_disconnect_mid_upload_kills_the_image_and_leaves_no_file(srv: &ImageServer) {
    let id = fixed_id(30);
    let stream = srv.start_upload(&id, &[], 1 << 20, 100 << 10);
    stream.shutdown(Shutdown::Both).unwrap();
    drop(stream);
    assert_eq!(
        srv.wait_status(&id, "killed", SETTLE),
        "killed",
        "image not killed after the client went away: {:?}",
        srv.head(&id).meta()
    );
    srv.assert_no_data_for(&id);
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
    srv.download(&id).assert_error(404, "not active");
    // The server is fine afterwards.
    let image = srv.create_with_data(&[], b"after the disconnect");
    assert_eq!(image["status"], "active");
}

fn image_deleted_during_its_upload_answers_412_and_keeps_no_data(srv: &ImageServer) {
    let id = fixed_id(32);
    let total = 256 << 10;
    let mut stream = srv.start_upload(&id, &[], total as u64, 100 << 10);
    assert_eq!(
        srv.wait_status(&id, "saving", SETTLE),
        "saving",
        "{}",
        srv.logs()
    );
    // §6: a saving image can be deleted; the upload then finds it gone.
    assert_eq!(srv.delete(&id).status.as_u16(), 200);
    stream
        .write_all(&test_data(total - (100 << 10), 8))
        .unwrap();
    stream.flush().unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 412 "), "{response}");
    assert!(
        response.contains("could not be found after upload"),
        "{response}"
    );
    assert_eq!(srv.status_of(&id), "deleted");
    srv.assert_no_data_for(&id);
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
}

/// Waits until a `.partial` file exists in the store: the upload is really writing.
fn wait_for_partial_file(srv: &ImageServer) -> bool {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if srv.image_files().iter().any(|f| f.ends_with(".partial")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn restart_after_kill_9_mid_upload_kills_the_image_and_keeps_acknowledged_images() {
    for shape in [Shape::Serve, Shape::Split] {
        kill_9_mid_upload_then_restart(shape);
    }
}

/// `kill -9` of the API process mid-upload, then a restart over the same data directory: the
/// upload it ran is killed and its partial file gone, every acknowledged image is intact, and a
/// record that another API server moved to `saving` through the Registry API is still `saving`
/// (this process's journal never named it).
fn kill_9_mid_upload_then_restart(shape: Shape) {
    let mut srv = ImageServer::start(shape, &[]);
    let kept: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            let data = test_data(200_000 + i * 1000, 80 + i as u64);
            let image = srv.create_with_data(&[("x-image-meta-property-n", &i.to_string())], &data);
            (id_of(&image), data)
        })
        .collect();
    let reserved = id_of(&srv.create(&[("x-image-meta-name", "reserved")]));
    let registry = RegistryClient::new(srv.registry_addr());
    let foreign = registry.create(json!({
        "name": "another API server's upload",
        "status": "saving",
        "disk_format": "raw",
        "container_format": "bare",
    }));
    let foreign = foreign["id"].as_str().unwrap().to_string();

    let id = fixed_id(31);
    let mut stream = srv.start_upload(&id, &[], 1 << 20, 300 << 10);
    assert_eq!(
        srv.wait_status(&id, "saving", SETTLE),
        "saving",
        "upload did not start: {}",
        srv.logs()
    );
    assert!(wait_for_partial_file(&srv), "{:?}", srv.image_files());
    srv.api_process().kill9();
    // The client's socket is dead now; what it writes goes nowhere.
    let _ = stream.write_all(&[0; 1024]);
    drop(stream);

    srv.restart();
    assert_eq!(srv.status_of(&id), "killed", "{shape:?}: {}", srv.logs());
    assert!(
        srv.logs()
            .contains(&format!("image {id} was saving when its upload stopped")),
        "{}",
        srv.logs()
    );
    srv.assert_no_data_for(&id);
    assert_eq!(
        srv.status_of(&foreign),
        "saving",
        "{shape:?}: the restart killed an upload this process did not run"
    );
    let mut want_files: Vec<String> = kept.iter().map(|(id, _)| id.clone()).collect();
    want_files.sort();
    assert_eq!(srv.image_files(), want_files);
    for (i, (kept_id, data)) in kept.iter().enumerate() {
        let download = srv.download(kept_id);
        assert_eq!(download.status.as_u16(), 200, "{download:?}");
        assert!(
            download.body == *data,
            "image {i} changed across the restart"
        );
        assert_eq!(
            download.header("x-image-meta-property-n"),
            Some(i.to_string().as_str())
        );
    }
    assert_eq!(srv.status_of(&reserved), "queued");
    // The restarted server takes uploads again, including to the reserved image.
    let data = test_data(1234, 90);
    let reply = srv.put_data(&reserved, &[RAW_BARE[0], RAW_BARE[1]], &data);
    assert_eq!(reply.json(200)["image"]["status"], "active");
    assert!(srv.download(&reserved).body == data);
    // The journal is empty again: a second restart changes nothing.
    srv.restart();
    assert_eq!(srv.status_of(&foreign), "saving");
    assert_eq!(srv.status_of(&reserved), "active");
    assert!(
        !srv.logs().contains("when its upload stopped"),
        "{}",
        srv.logs()
    );
}

#[test]
fn restart_after_kill_9_mid_stage_queues_the_image_again_without_staged_bytes() {
    let mut srv = ImageServer::start(Shape::Serve, &[]);
    let id = id_of(&srv.create(&RAW_BARE));
    let stream = srv.start_stage(&id, 4 << 20, 1 << 20);
    assert_eq!(
        srv.wait_status(&id, "uploading", SETTLE),
        "uploading",
        "{}",
        srv.logs()
    );
    let images = srv.images_dir();
    let staging = images.with_file_name("images-staging");
    let staged_files = || -> Vec<String> {
        std::fs::read_dir(&staging)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let writing = crate::support::eventually(SETTLE, || !staged_files().is_empty());
    assert!(writing, "nothing staged yet: {}", srv.logs());
    srv.api_process().kill9();
    drop(stream);

    srv.restart();
    assert_eq!(srv.status_of(&id), "queued", "{}", srv.logs());
    assert!(staged_files().is_empty(), "{:?}", staged_files());
    // It can be staged again, and imported.
    let data = test_data(300_000, 12);
    let reply = srv.request(
        "PUT",
        &format!("/v2/images/{id}/stage"),
        &[("content-type", "application/octet-stream")],
        Payload::Sized(data.clone().into()),
    );
    assert_eq!(reply.status.as_u16(), 204, "{reply:?}");
    assert_eq!(srv.status_of(&id), "uploading");
}

#[test]
fn size_cap_from_a_glance_config_file_applies_in_both_shapes() {
    for shape in [Shape::Serve, Shape::Split] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("glance-api.conf");
        std::fs::write(
            &file,
            "[DEFAULT]\nverbose = False\n\n[app:glance-api]\nimage_size_cap = 1000\n",
        )
        .unwrap();
        let srv =
            ImageServer::start_with_args(shape, &[], &["--config-file", file.to_str().unwrap()]);
        srv.post(&[("x-image-meta-size", "1001")]).assert_error(
            400,
            "Denying attempt to upload image larger than 1000 bytes.",
        );
        let image = srv.create_with_data(&[], &test_data(1000, 91));
        assert_eq!(image["size"], 1000, "{shape:?}");
        assert_eq!(srv.shape(), shape);
    }
}

#[test]
fn a_delete_cut_between_the_record_and_the_data_removes_the_data_at_restart() {
    let mut srv = ImageServer::start(Shape::Serve, &[]);
    let image = srv.create_with_data(&[], &test_data(50_000, 5));
    let id = id_of(&image);
    let kept = id_of(&srv.create_with_data(&[], &test_data(40_000, 6)));
    let location = format!("file://{}", srv.images_dir().join(&id).display());
    srv.api_process().kill9();
    // What a process killed half-way through DELETE leaves: its journal entry, the record
    // deleted, the data still in the store.
    let data_dir = srv.images_dir().parent().unwrap().to_path_buf();
    let entry = json!({"image": id, "work": "delete", "store": "file", "location": location});
    std::fs::write(
        data_dir.join("in-flight").join(format!("{id}.delete")),
        entry.to_string(),
    )
    .unwrap();
    {
        let registry = glint::registry::Registry::open(&data_dir.join("registry")).unwrap();
        let uuid: uuid::Uuid = id.parse().unwrap();
        crate::support::http::runtime()
            .block_on(registry.delete(&uuid))
            .unwrap();
    }
    assert!(srv.image_files().contains(&id));
    srv.restart();
    assert_eq!(srv.image_files(), vec![kept.clone()], "{}", srv.logs());
    assert!(srv.download(&kept).status.is_success());
    assert!(
        std::fs::read_dir(data_dir.join("in-flight"))
            .unwrap()
            .next()
            .is_none(),
        "the journal is empty once the delete is settled"
    );
}

/// A qcow2 overlay with a backing file, made by the real qemu-img in `dir`.
fn qcow2_with_backing_file(dir: &std::path::Path) -> Vec<u8> {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("qemu-img")
            .current_dir(dir)
            .args(args)
            .status()
            .expect("qemu-img (scripts/test.sh installs qemu-utils)");
        assert!(status.success(), "qemu-img {args:?}");
    };
    run(&["create", "-q", "-f", "raw", "base.raw", "1M"]);
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.raw",
        "-F",
        "raw",
        "overlay.qcow2",
        "1G",
    ]);
    std::fs::read(dir.join("overlay.qcow2")).unwrap()
}

#[test]
fn a_qcow2_with_a_backing_file_is_refused_as_soon_as_its_head_has_streamed() {
    let srv = ImageServer::start(Shape::Serve, &[]);
    let dir = tempfile::tempdir().unwrap();
    let overlay = qcow2_with_backing_file(dir.path());
    let id = uuid::Uuid::new_v4().to_string();
    // 64 MiB announced; only the overlay and enough after it to fill the inspector's head are
    // sent, then the client waits: the answer must come without the rest.
    let mut stream = TcpStream::connect(srv.addr()).unwrap();
    write!(
        stream,
        "POST /v1/images HTTP/1.1\r\nHost: glint\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\
         x-image-meta-id: {id}\r\nx-image-meta-disk_format: qcow2\r\n\
         x-image-meta-container_format: bare\r\n\r\n",
        64 << 20
    )
    .unwrap();
    stream.write_all(&overlay).unwrap();
    stream.write_all(&vec![0u8; 2 << 20]).unwrap();
    stream.set_read_timeout(Some(SETTLE)).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert!(answer.contains("backing file"), "{answer}");
    assert_eq!(srv.status_of(&id), "killed");
    srv.assert_no_data_for(&id);
}
