//! The S3 store against Ceph radosgw: every test has its own bucket (created by glint on the first
//! upload, removed with its contents when the test ends) and its own `glint serve`.

use std::time::Duration;

use bytes::Bytes;

use super::{assert_clear_error, assert_download, assert_no_secret, assert_uploaded};
use crate::stores_support::{
    close, eventually, generated_md5, md5_hex, s3_config, s3_env, set_var, test_data, unique_name,
    Glint, Payload, S3Direct, S3Env, MIB,
};

/// Multipart threshold (MiB) of the tests: uploads of known size above it go multipart.
const THRESHOLD_MB: u64 = 16;

/// Part size (MiB) of the tests.
const PART_MB: u64 = 8;

/// A test's S3 world: glint over a fresh bucket, and a direct client of that bucket.
struct S3World {
    /// The service; dropped (killed) first.
    glint: Glint,
    /// The bucket as S3 sees it; removes it on drop.
    direct: S3Direct,
    /// The server's variables.
    env: S3Env,
    /// The bucket's name.
    bucket: String,
}

/// glint (with `-d` when `debug`) over a fresh bucket, or `None` when the S3 server is not
/// configured (outside CI).
fn world(debug: bool) -> Option<S3World> {
    world_with_parts(debug, PART_MB)
}

/// Like [`world`], with parts of `part_mb` MiB.
fn world_with_parts(debug: bool, part_mb: u64) -> Option<S3World> {
    let env = s3_env()?;
    let bucket = unique_name();
    let direct = S3Direct::new(&env, &bucket);
    let glint = Glint::start(&s3_config(&env, &bucket, THRESHOLD_MB, part_mb), debug);
    Some(S3World {
        glint,
        direct,
        env,
        bucket,
    })
}

/// Asserts that S3 holds nothing for `id`: no object under that prefix and no unfinished
/// multipart upload of it.
#[track_caller]
fn assert_nothing_in_s3(direct: &S3Direct, id: &str) {
    assert_eq!(
        direct.head(id).map(|_| ()),
        None,
        "object {id} is still in S3"
    );
    assert_eq!(
        direct.list(id),
        Vec::<String>::new(),
        "objects left for {id}"
    );
    let uploads: Vec<_> = direct
        .unfinished_uploads()
        .into_iter()
        .filter(|(key, _)| key.starts_with(id))
        .collect();
    assert_eq!(
        uploads,
        vec![],
        "unfinished multipart uploads left for {id}"
    );
}

#[test]
fn s3_upload_with_content_length_is_one_object_reads_back_identical_and_delete_removes_it() {
    let Some(w) = world(false) else { return };
    let data = test_data((3 * MIB + 12_345) as usize, 1);
    let md5 = md5_hex(&data);
    let reply = w.glint.upload(
        "s3-sized",
        &[("x-image-meta-store", "s3")],
        Payload::Sized(Bytes::from(data.clone())),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);

    // One plain PUT: S3 holds exactly one object, named by the id, whose ETag is its MD5.
    assert_eq!(w.direct.list(&id), vec![id.clone()]);
    assert_eq!(w.direct.etag(&id).as_deref(), Some(md5.as_str()));
    let got = assert_download(&w.glint, &id, data.len() as u64, &md5, true).unwrap();
    assert!(
        got == data,
        "downloaded bytes differ from the uploaded ones"
    );

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    assert_nothing_in_s3(&w.direct, &id);
    assert_eq!(w.glint.download(&id, false).status.as_u16(), 404);
}

#[test]
fn s3_chunked_upload_smaller_than_a_part_reads_back_identical() {
    let Some(w) = world(false) else { return };
    let data = test_data((2 * MIB + 4_321) as usize, 2);
    let md5 = md5_hex(&data);
    // Uneven chunks, one of a single byte.
    let cuts = [0, 1, 65_536, 65_537, 1_048_576 + 3, data.len()];
    let chunks: Vec<Bytes> = cuts
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect();
    let reply = w.glint.upload(
        "s3-chunked",
        &[("x-image-meta-store", "s3")],
        Payload::Chunked(chunks),
    );
    let id = assert_uploaded(&reply, data.len() as u64, &md5);
    assert_eq!(w.direct.list(&id), vec![id.clone()]);
    let got = assert_download(&w.glint, &id, data.len() as u64, &md5, true).unwrap();
    assert!(
        got == data,
        "downloaded bytes differ from the uploaded ones"
    );
    assert_eq!(w.direct.unfinished_uploads(), vec![]);
}

#[test]
fn s3_chunked_upload_larger_than_a_part_goes_multipart_and_reads_back_identical() {
    let Some(w) = world(false) else { return };
    // Unknown size: a multipart upload of 8 + 8 + 4 MiB.
    let len = 20 * MIB;
    let md5 = generated_md5(len, 3);
    let payload = Payload::Generated {
        len,
        seed: 3,
        chunked: true,
    };
    let reply = w.glint.upload("s3-chunked-multipart", &[], payload);
    let id = assert_uploaded(&reply, len, &md5);
    let etag = w.direct.etag(&id).expect("no object in S3");
    assert!(
        etag.ends_with("-3"),
        "expected a 3-part object, S3 has ETag {etag}"
    );
    assert_eq!(w.direct.unfinished_uploads(), vec![]);
    assert_download(&w.glint, &id, len, &md5, false);

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    assert_nothing_in_s3(&w.direct, &id);
}

#[test]
fn s3_300_mib_upload_streams_its_100_mib_parts_in_flat_memory_reads_back_and_delete_removes_it() {
    // Parts far larger than the memory glint may use: they must be streamed, not buffered.
    let part_mb = 100;
    let Some(w) = world_with_parts(false, part_mb) else {
        return;
    };
    let len = 300 * MIB;
    let md5 = generated_md5(len, 4);
    let started = std::time::Instant::now();
    let payload = Payload::Generated {
        len,
        seed: 4,
        chunked: false,
    };
    let reply = w
        .glint
        .upload("s3-300", &[("x-image-meta-store", "s3")], payload);
    let id = assert_uploaded(&reply, len, &md5);
    let upload = started.elapsed();

    // 300 MiB in 100 MiB parts: a multipart object of exactly 3 parts, no upload left open.
    let etag = w.direct.etag(&id).expect("no object in S3");
    assert!(
        etag.ends_with("-3"),
        "expected a 3-part object, S3 has ETag {etag}"
    );
    assert_eq!(w.direct.list(&id), vec![id.clone()]);
    assert_eq!(w.direct.unfinished_uploads(), vec![]);
    let started = std::time::Instant::now();
    assert_download(&w.glint, &id, len, &md5, false);
    eprintln!(
        "s3 300 MiB: upload {upload:?}, download {:?}",
        started.elapsed()
    );

    // Memory stayed flat: not the image, and not even one part.
    let peak = w.glint.peak_rss();
    eprintln!("s3 300 MiB: glint's peak RSS {} MiB", peak / MIB);
    assert!(
        peak < 64 * MIB,
        "glint's peak RSS was {} MiB for a 300 MiB image in {part_mb} MiB parts",
        peak / MIB
    );

    let deleted = w.glint.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
    assert_nothing_in_s3(&w.direct, &id);
}

#[test]
fn s3_upload_to_a_missing_bucket_is_refused_with_503_naming_it_and_kills_the_image() {
    let Some(env) = s3_env() else { return };
    let bucket = unique_name();
    let direct = S3Direct::new(&env, &bucket);
    let mut config = s3_config(&env, &bucket, THRESHOLD_MB, PART_MB);
    set_var(&mut config, "GLINT_S3_STORE_CREATE_BUCKET_ON_PUT", "false");
    let glint = Glint::start(&config, false);
    for (what, size) in [("one PUT", 256 << 10), ("multipart", 20 * MIB)] {
        let id = uuid::Uuid::new_v4().to_string();
        let reply = glint.upload_answered_early(
            &[
                ("x-image-meta-id", &id),
                ("x-image-meta-name", "s3-no-bucket"),
            ],
            size,
            6,
        );
        assert_clear_error(
            &reply,
            503,
            &[&bucket, "does not exist", "s3_store_create_bucket_on_put"],
            &[&env.secret_key],
        );
        assert_eq!(glint.status_of(&id), "killed", "{what}");
    }
    assert!(!direct.bucket_exists(), "the bucket was created");
}

#[test]
fn s3_client_disconnect_mid_upload_kills_the_image_and_leaves_nothing_in_s3() {
    let Some(w) = world(false) else { return };
    // Above the threshold (a multipart upload, aborted), then below it (one streamed PUT).
    for (total, sent) in [(40 * MIB, 20 * MIB), (12 * MIB, 6 * MIB)] {
        let id = uuid::Uuid::new_v4().to_string();
        let upload = w.glint.start_upload(&id, "s3", total, sent);
        assert_eq!(
            w.glint.wait_status(&id, "saving", Duration::from_secs(30)),
            "saving"
        );
        if total > THRESHOLD_MB * MIB {
            // The multipart upload is under way in S3 when the client goes away.
            let open = eventually(Duration::from_secs(30), || {
                w.direct
                    .unfinished_uploads()
                    .iter()
                    .any(|(key, _)| *key == id)
            });
            assert!(
                open,
                "no multipart upload of {id} in S3:\n{}",
                w.glint.log()
            );
        }
        close(upload);
        let status = w.glint.wait_status(&id, "killed", Duration::from_secs(60));
        assert_eq!(
            status,
            "killed",
            "{total} bytes announced, {sent} sent; log:\n{}",
            w.glint.log()
        );
        assert_nothing_in_s3(&w.direct, &id);
        assert_eq!(w.glint.download(&id, false).status.as_u16(), 404);
    }
    assert_eq!(w.direct.list(""), Vec::<String>::new(), "bucket not empty");
    assert_eq!(w.direct.unfinished_uploads(), vec![]);
}

#[test]
fn s3_wrong_credentials_fail_the_upload_clearly_kill_the_image_and_never_show_the_keys() {
    let Some(env) = s3_env() else { return };
    let wrong_secret = "wrong-secret-k3y-for-glint-tests";
    let wrong_access = "WRONGACCESSKEYGLINT1";
    let secrets = [
        env.secret_key.as_str(),
        env.access_key.as_str(),
        wrong_secret,
        wrong_access,
    ];
    // An existing bucket, for the cases where glint does not create it.
    let existing = unique_name();
    let existing_direct = S3Direct::new(&env, &existing);
    existing_direct.create_bucket();
    struct Case {
        what: &'static str,
        access: String,
        create_bucket: bool,
        size: u64,
        code: &'static str,
    }
    let cases = [
        Case {
            what: "wrong secret, bucket created on put",
            access: env.access_key.clone(),
            create_bucket: true,
            size: 256 << 10,
            code: "SignatureDoesNotMatch",
        },
        Case {
            what: "unknown access key, bucket created on put",
            access: wrong_access.into(),
            create_bucket: true,
            size: 256 << 10,
            code: "InvalidAccessKeyId",
        },
        Case {
            what: "wrong secret, one PUT to an existing bucket",
            access: env.access_key.clone(),
            create_bucket: false,
            size: 256 << 10,
            code: "SignatureDoesNotMatch",
        },
        Case {
            what: "wrong secret, multipart upload to an existing bucket",
            access: env.access_key.clone(),
            create_bucket: false,
            size: 20 * MIB,
            code: "SignatureDoesNotMatch",
        },
    ];
    for case in cases {
        let bucket = if case.create_bucket {
            unique_name()
        } else {
            existing.clone()
        };
        let fresh;
        let direct = if case.create_bucket {
            fresh = S3Direct::new(&env, &bucket);
            &fresh
        } else {
            &existing_direct
        };
        let mut config = s3_config(&env, &bucket, THRESHOLD_MB, PART_MB);
        set_var(&mut config, "GLINT_S3_STORE_ACCESS_KEY", &case.access);
        set_var(&mut config, "GLINT_S3_STORE_SECRET_KEY", wrong_secret);
        let create = case.create_bucket.to_string();
        set_var(&mut config, "GLINT_S3_STORE_CREATE_BUCKET_ON_PUT", &create);
        let glint = Glint::start(&config, true);
        let id = uuid::Uuid::new_v4().to_string();
        let reply = glint.upload_answered_early(
            &[("x-image-meta-id", &id), ("x-image-meta-name", "s3-denied")],
            case.size,
            5,
        );
        let what = case.what;
        assert!(
            reply.status.is_client_error() || reply.status.is_server_error(),
            "{what}: {reply:?}"
        );
        assert_clear_error(&reply, 403, &["S3 refused", case.code], &secrets);
        assert_eq!(glint.status_of(&id), "killed", "{what}");
        assert_eq!(super::status_in_detail(&glint, &id), "killed", "{what}");
        assert_nothing_in_s3(direct, &id);
        if case.create_bucket {
            assert!(!direct.bucket_exists(), "{what}: the bucket was created");
        }
        let log = glint.log();
        drop(glint);
        assert_no_secret(&log, &secrets, &format!("glint's log ({what})"));
    }
}

#[test]
fn s3_secret_key_never_appears_in_api_responses_or_the_debug_log() {
    let Some(w) = world(true) else { return };
    let secret = w.env.secret_key.clone();
    let wrong_secret = "Wr0ng-s3cret-in-a-location";
    let mut seen = Vec::new();

    // Upload with POST, then metadata updates, reads and lists.
    let data = test_data((MIB + 7) as usize, 6);
    let md5 = md5_hex(&data);
    let posted = w.glint.upload(
        "s3-secret",
        &[("x-image-meta-property-purpose", "secrecy")],
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
        ("x-image-meta-name", "s3-secret-put"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
    ]);
    let queued_id = queued.json(201)["image"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    seen.push(queued);
    let put = w.glint.request(
        "PUT",
        &format!("/v1/images/{queued_id}"),
        &[
            ("content-type", "application/octet-stream"),
            ("x-image-meta-store", "s3"),
        ],
        Payload::Sized(Bytes::from(data.clone())),
    );
    assert_eq!(
        put.json(200)["image"]["checksum"].as_str(),
        Some(md5.as_str())
    );
    seen.push(put);

    // A Glance-style location that carries the credentials: registered, readable, never shown.
    let host = w.env.endpoint.split_once("://").unwrap().1.to_string();
    let with_keys = format!(
        "s3://{}:{secret}@{host}/{}/{id}",
        w.env.access_key, w.bucket
    );
    let registered = w.glint.post(&[
        ("x-image-meta-name", "s3-by-location"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
        ("x-image-meta-location", &with_keys),
    ]);
    let image = registered.json(201)["image"].clone();
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["size"].as_u64(), Some(data.len() as u64), "{image}");
    let registered_id = image["id"].as_str().unwrap().to_string();
    seen.push(registered);
    let got = w.glint.download(&registered_id, true);
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

    // The same location with a wrong secret: refused, without the secret.
    let bad = format!(
        "s3://{}:{wrong_secret}@{host}/{}/{id}",
        w.env.access_key, w.bucket
    );
    let refused = w.glint.post(&[
        ("x-image-meta-name", "s3-bad-location"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
        ("x-image-meta-location", &bad),
    ]);
    assert!(
        refused.status.is_client_error() || refused.status.is_server_error(),
        "{refused:?}"
    );
    seen.push(refused);

    for path in [
        format!("/v1/images/{id}"),
        format!("/v1/images/{registered_id}"),
        format!("/v1/images/{queued_id}"),
    ] {
        seen.push(w.glint.request("HEAD", &path, &[], Payload::Empty));
    }
    seen.push(w.glint.get("/v1/images"));
    seen.push(w.glint.get("/v1/images/detail"));
    seen.push(
        w.glint
            .get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=None"),
    );
    for id in [&id, &queued_id] {
        let deleted = w.glint.delete(id);
        assert_eq!(deleted.status.as_u16(), 200, "{deleted:?}");
        seen.push(deleted);
    }

    for reply in &seen {
        assert_no_secret(
            &reply.everything(),
            &[&secret, wrong_secret],
            "an API reply",
        );
    }
    let log = w.glint.log();
    assert!(log.contains("api POST /v1/images"), "no debug log:\n{log}");
    assert_no_secret(&log, &[&secret, wrong_secret], "glint's debug log");
}

#[test]
fn s3_checksum_mismatch_kills_the_image_and_removes_the_multipart_object() {
    let Some(w) = world(false) else { return };
    let id = uuid::Uuid::new_v4().to_string();
    let payload = Payload::Generated {
        len: 20 * MIB,
        seed: 8,
        chunked: true,
    };
    let wrong = "0123456789abcdef0123456789abcdef";
    let reply = w.glint.upload(
        "s3-mismatch",
        &[("x-image-meta-id", &id), ("x-image-meta-checksum", wrong)],
        payload,
    );
    assert_clear_error(&reply, 400, &["checksum", wrong, "killed"], &[]);
    assert_eq!(w.glint.status_of(&id), "killed");
    assert_nothing_in_s3(&w.direct, &id);
}

#[test]
fn s3_location_in_another_bucket_is_read_with_the_configured_keys_and_errors_name_that_bucket() {
    let Some(w) = world(false) else { return };
    let other = unique_name();
    let other_direct = S3Direct::new(&w.env, &other);
    other_direct.create_bucket();
    let data = test_data(300_000, 9);
    other_direct.put("outside/object.img", &data);
    let host = w.env.endpoint.split_once("://").unwrap().1.to_string();
    let register = |location: &str| {
        w.glint.post(&[
            ("x-image-meta-name", "s3-elsewhere"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-location", location),
        ])
    };

    let reply = register(&format!("s3://{host}/{other}/outside/object.img"));
    let image = reply.json(201)["image"].clone();
    assert_eq!(image["size"].as_u64(), Some(data.len() as u64), "{image}");
    let id = image["id"].as_str().unwrap().to_string();
    let got = w.glint.download(&id, true);
    assert_eq!(got.status.as_u16(), 200, "{got:?}");
    assert!(got.data.as_deref() == Some(&data[..]), "bytes differ");

    // A missing object there: 404, and the message names where glint looked, not the bucket
    // uploads go to.
    let reply = register(&format!("s3://{host}/{other}/outside/missing.img"));
    assert_clear_error(&reply, 404, &[&other], &[&w.env.secret_key]);
    assert!(!reply.text().contains(&w.bucket), "{}", reply.text());
}
