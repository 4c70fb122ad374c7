//! The tests of every object store, written once over [`RealStore`]; `s3` and `swift`
//! instantiate them with [`store_tests!`]. Every test has its own bucket or container (created
//! by glint on the first upload, removed with its contents when the test ends) and its own
//! `glint serve`.

use std::time::Duration;

use bytes::Bytes;

use super::{
    assert_clear_error, assert_download, assert_no_secret, assert_uploaded, register,
    status_in_detail, RealStore, LARGE_MB, PIECE_MB,
};
use crate::support::services::{set_var, unique_name};
use crate::support::{
    close, eventually, generated_md5, md5_hex, test_data, ImageServer, Payload, ALL_IMAGES, MIB,
};

/// A wrong secret that a test puts in glint's configuration or a location.
const WRONG_SECRET: &str = "wrong-secret-k3y-for-glint-tests";

/// A test's world: glint over a fresh bucket or container, and a direct client of it.
pub struct World<S: RealStore> {
    /// The service; dropped (killed) first.
    pub glint: ImageServer,
    /// The bucket or container as the server sees it; removes it on drop.
    pub direct: S,
    /// The server's variables.
    pub env: S::Env,
    /// The bucket's or container's name.
    pub container: String,
    /// Released last, after the container is gone.
    _hold: S::Hold,
}

/// glint (with `-d` when `debug`) over a fresh bucket or container in pieces of `piece_mb` MiB,
/// holding `hold`, or `None` when the server is not configured (outside CI).
pub fn world_holding<S: RealStore>(debug: bool, piece_mb: u64, hold: S::Hold) -> Option<World<S>> {
    let env = S::env()?;
    let container = unique_name();
    let direct = S::direct(&env, &container);
    let glint = ImageServer::serve(&S::config(&env, &container, piece_mb), debug);
    Some(World {
        glint,
        direct,
        env,
        container,
        _hold: hold,
    })
}

/// [`world_holding`] with what every test of the store holds, pieces of [`PIECE_MB`].
pub fn world<S: RealStore>(debug: bool) -> Option<World<S>> {
    world_holding(debug, PIECE_MB, S::hold())
}

/// `headers` followed by the store's [`RealStore::DEFAULT_HEADERS`].
fn with_default<'a, S: RealStore>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = headers.to_vec();
    all.extend_from_slice(S::DEFAULT_HEADERS);
    all
}

/// Downloads `id` (`len` bytes of MD5 `md5`, and exactly `data` when given), deletes it, and
/// asserts that the server holds nothing for it any more.
#[track_caller]
fn assert_reads_back_then_delete<S: RealStore>(
    w: &World<S>,
    id: &str,
    len: u64,
    md5: &str,
    data: Option<&[u8]>,
) {
    let got = assert_download(&w.glint, id, len, md5, data.is_some());
    assert!(
        got.as_deref() == data,
        "downloaded bytes differ from the uploaded ones"
    );
    let deleted = w.glint.delete(id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    w.direct.assert_nothing_for(id);
}

/// An upload with a Content-Length is one object, reads back identical, and delete removes it.
pub fn upload_with_content_length_is_one_object_reads_back_identical_and_delete_removes_it<
    S: RealStore,
>() {
    let Some(w) = world::<S>(false) else { return };
    let data = test_data((3 * MIB + 12_345) as usize, S::SEED + 1);
    let md5 = md5_hex(&data);
    let reply = w.glint.upload(
        &format!("{}-sized", S::NAME),
        &[("x-image-meta-store", S::NAME)],
        Payload::Sized(Bytes::from(data.clone())),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);

    // One plain object named by the id, whose ETag is its MD5.
    w.direct.assert_one_object(&id, &md5);
    assert_reads_back_then_delete(&w, &id, data.len() as u64, &md5, Some(&data));
    assert_eq!(w.glint.download_hashed(&id, false).status.as_u16(), 404);
}

/// A chunked upload smaller than a piece reads back identical; delete removes all of it.
pub fn chunked_upload_smaller_than_a_piece_reads_back_identical_and_delete_removes_all<
    S: RealStore,
>() {
    let Some(w) = world::<S>(false) else { return };
    let data = test_data((2 * MIB + 4_321) as usize, S::SEED + 2);
    let md5 = md5_hex(&data);
    // Uneven chunks, one of a single byte.
    let cuts = [0, 1, 65_536, 65_537, 1_048_576 + 3, data.len()];
    let chunks: Vec<Bytes> = cuts
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect();
    let reply = w.glint.upload(
        &format!("{}-chunked", S::NAME),
        &[("x-image-meta-store", S::NAME)],
        Payload::Chunked(chunks),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);
    w.direct.assert_small_chunked(&id);
    assert_reads_back_then_delete(&w, &id, data.len() as u64, &md5, Some(&data));
}

/// A chunked upload larger than a piece goes in pieces (8 + 8 + 4 MiB) and reads back identical.
pub fn chunked_upload_larger_than_a_piece_goes_in_pieces_and_reads_back_identical<S: RealStore>() {
    let Some(w) = world::<S>(false) else { return };
    let len = 20 * MIB;
    let seed = S::SEED + 3;
    let md5 = generated_md5(len, seed);
    let payload = Payload::Generated {
        len,
        seed,
        chunked: true,
    };
    let name = format!("{}-chunked-large", S::NAME);
    let reply = w.glint.upload(&name, S::DEFAULT_HEADERS, payload);
    let id = assert_uploaded(&reply, len, &md5);
    w.direct.assert_pieces(&id, 3);
    assert_reads_back_then_delete(&w, &id, len, &md5, None);
}

/// Ranged downloads (v1 and v2) of an image stored in pieces are read from the store as
/// ranges: each answer is exactly the bytes asked for, across a piece boundary too, and glint
/// reads no more from the store than it sends (its `store_bytes_total` out grows by the
/// ranges' lengths only, never by the prefix).
pub fn ranged_downloads_read_only_the_range_from_the_store_across_pieces<S: RealStore>() {
    let Some(w) = world::<S>(false) else { return };
    let len = 20 * MIB;
    let seed = S::SEED + 11;
    let data = test_data(len as usize, seed);
    let payload = Payload::Generated {
        len,
        seed,
        chunked: true,
    };
    let reply = w.glint.upload("ranged", S::DEFAULT_HEADERS, payload);
    let id = assert_uploaded(&reply, len, &md5_hex(&data));
    w.direct.assert_pieces(&id, 3);
    let piece = (PIECE_MB * MIB) as usize;
    let out = format!(
        "glint_store_bytes_total{{store=\"{}\",direction=\"out\"}}",
        S::STORE_METRIC
    );
    let before = w.glint.metric(&out);
    let mut sent = 0usize;
    let size = data.len();
    for (path, range, first, last) in [
        (format!("/v1/images/{id}"), "bytes=0-9".to_string(), 0, 9),
        (
            format!("/v1/images/{id}"),
            format!("bytes={}-{}", piece - 5, piece + 4),
            piece - 5,
            piece + 4,
        ),
        (
            format!("/v2/images/{id}/file"),
            "bytes=-1000".to_string(),
            size - 1000,
            size - 1,
        ),
        (
            format!("/v2/images/{id}/file"),
            format!("bytes={}-", size - MIB as usize),
            size - MIB as usize,
            size - 1,
        ),
    ] {
        let reply = w.glint.get_with(&path, &[("range", &range)]);
        assert_eq!(reply.status.as_u16(), 206, "{path} {range}: {reply:?}");
        assert_eq!(
            reply.header("content-range"),
            Some(format!("bytes {first}-{last}/{size}").as_str())
        );
        assert!(
            reply.body.as_ref() == &data[first..=last],
            "{path} {range}: wrong bytes"
        );
        sent += last - first + 1;
    }
    let read = w.glint.metric(&out) - before;
    assert_eq!(
        read as usize, sent,
        "bytes glint read from the store for the ranges"
    );
    assert_reads_back_then_delete(&w, &id, len, &md5_hex(&data), None);
}

/// 300 MiB uploads stream their 100 MiB pieces in flat memory, read back, and delete removes
/// them.
pub fn upload_of_300_mib_streams_its_100_mib_pieces_in_flat_memory_and_reads_back<S: RealStore>() {
    // Pieces far larger than the memory glint may use: they must be streamed (or, for S3 parts
    // of an upload of unknown size, spooled to disk), not buffered. Each upload in a process of
    // its own, so that each peak is that upload's alone.
    let piece_mb = 100;
    let len = 300 * MIB;
    for &(seed, chunked) in S::BIG_UPLOADS {
        let Some(w) = world_holding::<S>(false, piece_mb, S::hold()) else {
            return;
        };
        let how = if chunked { "chunked" } else { "sized" };
        let md5 = generated_md5(len, seed);
        let started = std::time::Instant::now();
        let payload = Payload::Generated { len, seed, chunked };
        let name = format!("{}-300", S::NAME);
        let reply = w
            .glint
            .upload(&name, &[("x-image-meta-store", S::NAME)], payload);
        let id = assert_uploaded(&reply, len, &md5);
        let upload = started.elapsed();

        // 300 MiB in 100 MiB pieces: exactly 3 (no empty fourth), nothing left open.
        w.direct.assert_pieces(&id, 3);
        let started = std::time::Instant::now();
        assert_reads_back_then_delete(&w, &id, len, &md5, None);

        // Memory stayed flat: not the image, and not even one piece.
        let peak = w.glint.peak_rss();
        eprintln!(
            "{} 300 MiB {how}: upload {upload:?}, download and delete {:?}, glint's peak RSS {} MiB",
            S::NAME,
            started.elapsed(),
            peak / MIB
        );
        assert!(
            peak < 64 * MIB,
            "glint's peak RSS was {} MiB for a {how} 300 MiB image in {piece_mb} MiB pieces",
            peak / MIB
        );
    }
}

/// An upload to a missing bucket or container (not created on put) is refused with 503 naming
/// it and the option, and kills the image.
pub fn upload_to_a_missing_container_is_refused_with_503_naming_it_and_kills_the_image<
    S: RealStore,
>() {
    let _hold = S::hold();
    let Some(env) = S::env() else { return };
    let container = unique_name();
    let direct = S::direct(&env, &container);
    let mut config = S::config(&env, &container, PIECE_MB);
    let option = format!("GLINT_{}", S::CREATE_OPTION.to_uppercase());
    set_var(&mut config, &option, "false");
    let glint = ImageServer::serve(&config, false);
    let secret = S::secret(&env);
    let name = format!("{}-no-container", S::NAME);
    for (what, size) in [("one object", 256 << 10), ("in pieces", 20 * MIB)] {
        let id = uuid::Uuid::new_v4().to_string();
        let headers = with_default::<S>(&[("x-image-meta-id", &id), ("x-image-meta-name", &name)]);
        let reply = glint.upload_answered_early(&headers, size, S::SEED + 7);
        assert_clear_error(
            &reply,
            503,
            &[&container, "does not exist", S::CREATE_OPTION],
            &[&secret],
        );
        assert_eq!(glint.status_of(&id), "killed", "{what}");
    }
    assert!(!direct.container_exists(), "the container was created");
}

/// A client that goes away mid-upload kills the image, and nothing is left in the server.
pub fn client_disconnect_mid_upload_kills_the_image_and_leaves_nothing<S: RealStore>() {
    let Some(w) = world::<S>(false) else { return };
    // In pieces (the upload in the server is removed), then one streamed object.
    for (total, sent) in [(40 * MIB, 20 * MIB), (12 * MIB, 6 * MIB)] {
        let id = uuid::Uuid::new_v4().to_string();
        let upload = w
            .glint
            .start_upload(&id, &[("x-image-meta-store", S::NAME)], total, sent);
        assert_eq!(
            w.glint.wait_status(&id, "saving", Duration::from_secs(30)),
            "saving"
        );
        if total >= LARGE_MB * MIB {
            // The upload in pieces is under way in the server when the client goes away.
            let under_way = eventually(Duration::from_secs(30), || w.direct.upload_under_way(&id));
            assert!(
                under_way,
                "no upload of {id} under way in {}:\n{}",
                S::NAME,
                w.glint.logs()
            );
        }
        close(upload);
        let status = w.glint.wait_status(&id, "killed", Duration::from_secs(60));
        assert_eq!(
            status,
            "killed",
            "{total} bytes announced, {sent} sent; log:\n{}",
            w.glint.logs()
        );
        w.direct.assert_nothing_for(&id);
        assert_eq!(w.glint.download_hashed(&id, false).status.as_u16(), 404);
    }
    w.direct.assert_empty();
}

/// `kill -9` of `glint serve` while an upload in pieces is under way in the server, then a
/// restart: the image is killed and the store holds nothing of it (the unfinished S3 multipart
/// upload aborted, the Swift segments removed), named by the process's own journal.
pub fn kill_9_mid_upload_then_restart_kills_the_image_and_leaves_nothing<S: RealStore>() {
    let Some(mut w) = world::<S>(false) else {
        return;
    };
    let (total, sent) = (40 * MIB, 20 * MIB);
    let id = uuid::Uuid::new_v4().to_string();
    let upload = w
        .glint
        .start_upload(&id, &[("x-image-meta-store", S::NAME)], total, sent);
    let under_way = eventually(Duration::from_secs(30), || w.direct.upload_under_way(&id));
    assert!(
        under_way,
        "no upload of {id} under way in {}:\n{}",
        S::NAME,
        w.glint.logs()
    );
    w.glint.api_process().kill9();
    drop(upload);
    assert!(
        w.direct.upload_under_way(&id),
        "the kill left nothing to recover"
    );
    w.glint.restart();
    assert_eq!(w.glint.status_of(&id), "killed", "{}", w.glint.logs());
    w.direct.assert_nothing_for(&id);
    w.direct.assert_empty();
}

/// Wrong credentials fail the upload clearly (403 with the server's reason), kill the image,
/// create nothing, and no secret shows in the reply or the log.
pub fn wrong_credentials_fail_the_upload_clearly_kill_the_image_and_never_show_the_secrets<
    S: RealStore,
>() {
    let _hold = S::hold();
    let Some(env) = S::env() else { return };
    let owned = S::credential_secrets(&env);
    let secrets: Vec<&str> = owned.iter().map(String::as_str).collect();
    let cases = S::credential_cases(&env);
    // An existing bucket or container, for the cases where glint does not create it.
    let existing = unique_name();
    let existing_direct = S::direct(&env, &existing);
    if cases.iter().any(|case| !case.fresh) {
        existing_direct.create_container();
    }
    let name = format!("{}-denied", S::NAME);
    for case in cases {
        let what = case.what;
        let container = if case.fresh {
            unique_name()
        } else {
            existing.clone()
        };
        let fresh;
        let direct = if case.fresh {
            fresh = S::direct(&env, &container);
            &fresh
        } else {
            &existing_direct
        };
        let mut config = S::config(&env, &container, PIECE_MB);
        for (var, value) in &case.set {
            set_var(&mut config, var, value);
        }
        let glint = ImageServer::serve(&config, true);
        let id = uuid::Uuid::new_v4().to_string();
        let headers = with_default::<S>(&[("x-image-meta-id", &id), ("x-image-meta-name", &name)]);
        let reply = glint.upload_answered_early(&headers, case.size, S::SEED + 5);
        assert!(
            reply.status.is_client_error() || reply.status.is_server_error(),
            "{what}: {reply:?}"
        );
        assert_clear_error(&reply, 403, &case.needles, &secrets);
        assert_eq!(glint.status_of(&id), "killed", "{what}");
        assert_eq!(status_in_detail(&glint, &id), "killed", "{what}");
        direct.assert_nothing_for(&id);
        if case.fresh {
            assert!(
                !direct.container_exists(),
                "{what}: the container was created"
            );
        }
        let log = glint.logs();
        drop(glint);
        assert_no_secret(&log, &secrets, &format!("glint's log ({what})"));
    }
}

/// The store's secret never appears in API responses (uploads, updates, locations that carry
/// it, HEADs, lists, deletes) nor in the debug log.
pub fn secret_never_appears_in_api_responses_or_the_debug_log<S: RealStore>() {
    let Some(w) = world::<S>(true) else { return };
    let secret = S::secret(&w.env);
    let mut seen = Vec::new();

    // Upload with POST, then metadata updates, reads and lists.
    let data = test_data((MIB + 7) as usize, S::SEED + 6);
    let md5 = md5_hex(&data);
    let posted = w.glint.upload(
        &format!("{}-secret", S::NAME),
        &with_default::<S>(&[("x-image-meta-property-purpose", "secrecy")]),
        Payload::Sized(Bytes::from(data.clone())),
    );
    let id = assert_uploaded(&posted, data.len() as u64, &md5);
    seen.push(posted);
    let updated = w.glint.request(
        "PUT",
        &format!("/v1/images/{id}"),
        &[("x-image-meta-property-purpose", "still-secret")],
        Payload::Empty,
    );
    updated.json(200);
    seen.push(updated);

    // Upload with PUT to a queued image.
    let queued = w.glint.post(&[
        ("x-image-meta-name", &format!("{}-secret-put", S::NAME)),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
    ]);
    let queued_id = queued.json(201)["image"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    seen.push(queued);
    let payload = if S::PUT_CHUNKED {
        Payload::Chunked(vec![Bytes::from(data.clone())])
    } else {
        Payload::Sized(Bytes::from(data.clone()))
    };
    let put = w.glint.request(
        "PUT",
        &format!("/v1/images/{queued_id}"),
        &[
            ("content-type", "application/octet-stream"),
            ("x-image-meta-store", S::NAME),
        ],
        payload,
    );
    assert_eq!(
        put.json(200)["image"]["checksum"].as_str(),
        Some(md5.as_str())
    );
    seen.push(put);

    // A Glance-style location that carries the credentials: registered, readable, never shown.
    let with_secret = S::location_with_secret(&w.env, &w.container, &id, &secret);
    let registered = register(&w.glint, &format!("{}-by-location", S::NAME), &with_secret);
    let image = registered.json(201)["image"].clone();
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["size"].as_u64(), Some(data.len() as u64), "{image}");
    let registered_id = image["id"].as_str().unwrap().to_string();
    seen.push(registered);
    let got = w.glint.download_hashed(&registered_id, true);
    assert_eq!(got.status.as_u16(), 200, "{got:?}");
    assert!(
        got.data.as_deref() == Some(&data[..]),
        "registered image reads differently"
    );
    assert_no_secret(
        &format!("{:?}", got.headers),
        &[&secret],
        "download headers",
    );

    if S::CHECKS_LOCATION_SECRET {
        // The same location with a wrong secret: refused, without the secret.
        let bad = S::location_with_secret(&w.env, &w.container, &id, WRONG_SECRET);
        let refused = register(&w.glint, &format!("{}-bad-location", S::NAME), &bad);
        assert!(
            refused.status.is_client_error() || refused.status.is_server_error(),
            "{refused:?}"
        );
        seen.push(refused);
    }

    for image in [&id, &registered_id, &queued_id] {
        seen.push(w.glint.head(image));
    }
    seen.push(w.glint.get("/v1/images"));
    seen.push(w.glint.get("/v1/images/detail"));
    seen.push(w.glint.get(ALL_IMAGES));
    for id in [&id, &queued_id] {
        let deleted = w.glint.delete(id);
        assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
        seen.push(deleted);
    }
    w.direct.assert_nothing_for(&queued_id);

    for reply in &seen {
        assert_no_secret(
            &reply.everything(),
            &[&secret, WRONG_SECRET],
            "an API reply",
        );
    }
    let log = w.glint.logs();
    assert!(log.contains("api POST /v1/images"), "no debug log:\n{log}");
    assert_no_secret(&log, &[&secret, WRONG_SECRET], "glint's debug log");
}

/// A checksum that does not match the data kills the image and removes what was stored.
pub fn checksum_mismatch_kills_the_image_and_removes_what_was_stored<S: RealStore>() {
    let Some(w) = world::<S>(false) else { return };
    let id = uuid::Uuid::new_v4().to_string();
    let payload = Payload::Generated {
        len: 20 * MIB,
        seed: S::SEED + 8,
        chunked: true,
    };
    let wrong = "0123456789abcdef0123456789abcdef";
    let reply = w.glint.upload(
        &format!("{}-mismatch", S::NAME),
        &with_default::<S>(&[("x-image-meta-id", &id), ("x-image-meta-checksum", wrong)]),
        payload,
    );
    assert_clear_error(&reply, 400, &["checksum", wrong, "killed"], &[]);
    assert_eq!(w.glint.status_of(&id), "killed");
    w.direct.assert_nothing_for(&id);
}
