//! `PUT /v1/images/{id}` (§5.6) and `DELETE /v1/images/{id}` (§5.7): metadata updates and their
//! immutability rules, data uploads to queued images, purge-props, protected and repeated deletes.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{assert_head_matches_detail, keys_of, IMAGE_KEYS, RAW_BARE};
use crate::support::{id_of, md5_hex, test_data, ImageServer, Payload};

acceptance! {
    put_updates_metadata_and_answers_the_json_object,
    put_changing_status_or_id_is_403_and_the_same_value_is_accepted,
    put_with_data_on_an_active_image_is_409,
    put_on_a_deleted_image_is_403,
    put_uploads_data_to_a_queued_image,
    put_uploads_chunked_data_to_a_queued_image,
    put_with_a_wrong_content_type_kills_the_queued_image,
    put_purges_properties_unless_the_header_says_false,
    delete_of_a_protected_image_is_403_until_unprotected,
    delete_removes_the_data_and_a_second_delete_is_404,
}

/// The properties of `id` as its detail shows them.
#[track_caller]
fn properties_of(srv: &ImageServer, id: &str) -> Value {
    srv.detail_of(id).unwrap()["properties"].clone()
}

fn put_updates_metadata_and_answers_the_json_object(srv: &ImageServer) {
    let data = test_data(5000, 70);
    let image = srv.create_with_data(&[("x-image-meta-name", "before")], &data);
    let id = id_of(&image);
    let reply = srv.put(
        &id,
        &[
            ("x-image-meta-name", "after"),
            ("x-image-meta-min_ram", "256"),
            ("x-image-meta-is_public", "1"),
            ("x-image-meta-disk_format", "qcow2"),
        ],
    );
    let updated = reply.json(200)["image"].clone();
    assert_eq!(keys_of(&updated), IMAGE_KEYS, "never the location");
    assert_eq!(updated["name"], "after");
    assert_eq!(updated["min_ram"], 256);
    assert_eq!(updated["is_public"], true);
    assert_eq!(updated["disk_format"], "qcow2");
    assert_eq!(updated["container_format"], "bare", "fields not sent stay");
    assert_eq!(updated["status"], "active");
    assert_eq!(updated["checksum"], md5_hex(&data));
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert!(reply.header("location").is_none(), "no Location on PUT");
    assert!(updated["updated_at"].as_str() >= image["updated_at"].as_str());
    // An empty value sets null.
    let cleared = srv.put(&id, &[("x-image-meta-name", "")]).json(200)["image"].clone();
    assert_eq!(cleared["name"], Value::Null);
    assert_head_matches_detail(srv, &id);
    assert!(
        srv.download(&id).body == data,
        "metadata updates keep the data"
    );
}

fn put_changing_status_or_id_is_403_and_the_same_value_is_accepted(srv: &ImageServer) {
    let image = srv.create(&[]);
    let id = id_of(&image);
    for status in ["active", "killed", "deleted", "saving"] {
        srv.put(&id, &[("x-image-meta-status", status)])
            .assert_error(403, "Forbidden to modify 'status' of image.");
    }
    let other = "3f2b1a6e-0000-4000-8000-000000000000";
    srv.put(&id, &[("x-image-meta-id", other)])
        .assert_error(403, "Forbidden to modify 'id' of image.");
    srv.put(&id, &[("x-image-meta-id", "garbage")])
        .assert_error(403, "Forbidden to modify 'id' of image.");
    assert_eq!(srv.status_of(&id), "queued");
    let same = srv.put(
        &id,
        &[
            ("x-image-meta-status", "queued"),
            ("x-image-meta-id", &id),
            ("x-image-meta-name", "same"),
        ],
    );
    assert_eq!(same.json(200)["image"]["name"], "same");
    assert_eq!(srv.status_of(&id), "queued");
}

fn put_with_data_on_an_active_image_is_409(srv: &ImageServer) {
    let data = test_data(1000, 71);
    let image = srv.create_with_data(&[], &data);
    let id = id_of(&image);
    srv.put_data(&id, &[], b"replacement")
        .assert_error(409, "Cannot upload to an unqueued image");
    assert_eq!(srv.status_of(&id), "active");
    assert!(srv.download(&id).body == data, "the data is untouched");
    assert_eq!(srv.image_files(), [id]);
}

fn put_on_a_deleted_image_is_403(srv: &ImageServer) {
    let image = srv.create(&[("x-image-meta-name", "doomed")]);
    let id = id_of(&image);
    assert_eq!(srv.delete(&id).status.as_u16(), 200);
    srv.put(&id, &[("x-image-meta-name", "revived")])
        .assert_error(403, "Forbidden to update deleted image.");
    srv.put_data(&id, &[RAW_BARE[0], RAW_BARE[1]], b"data")
        .assert_error(403, "Forbidden to update deleted image.");
    assert_eq!(srv.head(&id).header("x-image-meta-name"), Some("doomed"));
}

fn put_uploads_data_to_a_queued_image(srv: &ImageServer) {
    let data = test_data(700_001, 72);
    let size = data.len().to_string();
    let image = srv.create(&[
        ("x-image-meta-name", "reserved first"),
        ("x-image-meta-size", &size),
        RAW_BARE[0],
        RAW_BARE[1],
    ]);
    assert_eq!(image["status"], "queued");
    let id = id_of(&image);
    let reply = srv.put_data(&id, &[("x-image-meta-checksum", &md5_hex(&data))], &data);
    let uploaded = reply.json(200)["image"].clone();
    assert_eq!(uploaded["status"], "active");
    assert_eq!(uploaded["size"], data.len());
    assert_eq!(uploaded["checksum"], md5_hex(&data));
    assert_eq!(uploaded["name"], "reserved first");
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    let download = srv.download(&id);
    assert_eq!(download.status.as_u16(), 200);
    assert!(download.body == data, "downloaded bytes differ");
    assert_eq!(srv.image_files(), std::slice::from_ref(&id));
    // Only once.
    srv.put_data(&id, &[], &data)
        .assert_error(409, "Cannot upload to an unqueued image");
}

fn put_uploads_chunked_data_to_a_queued_image(srv: &ImageServer) {
    let data = test_data(300_000, 73);
    // Formats may come with the upload instead of the reservation.
    let image = srv.create(&[]);
    let id = id_of(&image);
    let chunks: Vec<Bytes> = data.chunks(65_536).map(Bytes::copy_from_slice).collect();
    let headers = [
        ("content-type", "application/octet-stream"),
        RAW_BARE[0],
        RAW_BARE[1],
    ];
    let reply = srv.request(
        "PUT",
        &format!("/v1/images/{id}"),
        &headers,
        Payload::Chunked(chunks),
    );
    let uploaded = reply.json(200)["image"].clone();
    assert_eq!(uploaded["status"], "active");
    assert_eq!(uploaded["size"], data.len());
    assert_eq!(uploaded["disk_format"], "raw");
    assert!(srv.download(&id).body == data);
}

fn put_with_a_wrong_content_type_kills_the_queued_image(srv: &ImageServer) {
    let image = srv.create(&[RAW_BARE[0], RAW_BARE[1]]);
    let id = id_of(&image);
    let payload = Payload::Sized(Bytes::from_static(b"some data"));
    srv.request(
        "PUT",
        &format!("/v1/images/{id}"),
        &[("content-type", "text/plain")],
        payload,
    )
    .assert_error(400, "Content-Type must be application/octet-stream");
    // §6: an upload attempt with a wrong Content-Type moves queued → killed.
    assert_eq!(srv.status_of(&id), "killed");
    assert!(srv.image_files().is_empty());
}

fn put_purges_properties_unless_the_header_says_false(srv: &ImageServer) {
    let image = srv.create(&[
        ("x-image-meta-property-a", "1"),
        ("x-image-meta-property-b", "2"),
    ]);
    let id = id_of(&image);
    // `false` upserts.
    let reply = srv.put(
        &id,
        &[
            ("x-glance-registry-purge-props", "false"),
            ("x-image-meta-property-b", "two"),
            ("x-image-meta-property-c", "3"),
        ],
    );
    let want = json!({"a": "1", "b": "two", "c": "3"});
    assert_eq!(reply.json(200)["image"]["properties"], want);
    assert_eq!(properties_of(srv, &id), want);
    // Any value that is not truthy means no purge (§14 #15), a typo included.
    srv.put(
        &id,
        &[
            ("x-glance-registry-purge-props", "ture"),
            ("x-image-meta-name", "kept"),
        ],
    )
    .json(200);
    assert_eq!(properties_of(srv, &id), want);
    // A missing header purges: a name-only PUT deletes every property.
    let reply = srv.put(&id, &[("x-image-meta-name", "renamed")]);
    assert_eq!(reply.json(200)["image"]["properties"], json!({}));
    assert_eq!(properties_of(srv, &id), json!({}));
    let head = srv.head(&id);
    assert!(!head.meta().keys().any(|k| k.starts_with("property-")));
    // `true` purges and sets exactly the properties sent.
    srv.put(
        &id,
        &[
            ("x-glance-registry-purge-props", "false"),
            ("x-image-meta-property-x", "1"),
            ("x-image-meta-property-y", "2"),
        ],
    )
    .json(200);
    srv.put(
        &id,
        &[
            ("x-glance-registry-purge-props", "True"),
            ("x-image-meta-property-z", "3"),
        ],
    )
    .json(200);
    assert_eq!(properties_of(srv, &id), json!({"z": "3"}));
    assert_head_matches_detail(srv, &id);
}

fn delete_of_a_protected_image_is_403_until_unprotected(srv: &ImageServer) {
    let data = test_data(2000, 74);
    let image = srv.create_with_data(&[("x-image-meta-protected", "True")], &data);
    let id = id_of(&image);
    srv.delete(&id).assert_error(403, "Image is protected");
    assert_eq!(srv.status_of(&id), "active");
    assert!(srv.download(&id).body == data, "still there");
    srv.put(&id, &[("x-image-meta-protected", "False")])
        .json(200);
    assert_eq!(srv.delete(&id).status.as_u16(), 200);
    assert_eq!(srv.status_of(&id), "deleted");
}

fn delete_removes_the_data_and_a_second_delete_is_404(srv: &ImageServer) {
    let image = srv.create_with_data(&[], &test_data(3000, 75));
    let id = id_of(&image);
    assert_eq!(srv.image_files(), std::slice::from_ref(&id));
    let reply = srv.delete(&id);
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    assert!(reply.body.is_empty());
    assert!(reply.header("location").is_none());
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
    srv.delete(&id).assert_error(404, "not found");
    // Queued (no data) and killed images can be deleted too.
    let queued = id_of(&srv.create(&[]));
    assert_eq!(srv.delete(&queued).status.as_u16(), 200);
    assert!(srv.list("/v1/images?is_public=None").is_empty());
}
