//! `POST /v1/images` (§5.5) and `GET /v1/images/{id}` (§5.4): reserving, size-0 images, data
//! sent with a `Content-Length` or chunked, and the download that gives the same bytes back.

use bytes::Bytes;
use serde_json::Value;

use super::{assert_meta_headers, keys_of, IMAGE_KEYS, RAW_BARE};
use crate::support::{id_of, md5_hex, test_data, ImageServer, Payload};

acceptance! {
    create_without_body_reserves_a_queued_image_with_an_absolute_location,
    create_with_size_zero_is_active_and_downloads_empty,
    create_with_content_length_data_is_active_with_size_md5_and_etag,
    create_with_chunked_data_is_active_with_size_md5_and_etag,
    create_with_an_empty_chunked_body_is_a_zero_byte_upload,
    download_streams_the_same_bytes_with_length_meta_headers_and_etag,
    create_with_a_given_id_uses_it_and_a_second_create_is_409,
    create_with_a_malformed_id_is_400,
}

fn create_without_body_reserves_a_queued_image_with_an_absolute_location(srv: &ImageServer) {
    let reply = srv.post(&[("x-image-meta-name", "reserved")]);
    let body = reply.json(201);
    let image = &body["image"];
    assert_eq!(keys_of(&body), ["image"]);
    assert_eq!(keys_of(image), IMAGE_KEYS, "never the location: {image}");
    assert_eq!(image["status"], "queued");
    assert_eq!(image["name"], "reserved");
    assert_eq!(image["size"], 0);
    assert_eq!(image["checksum"], Value::Null);
    assert_eq!(image["is_public"], false);
    assert_eq!(image["protected"], false);
    assert_eq!(image["deleted"], false);
    assert_eq!(image["properties"], serde_json::json!({}));
    let id = id_of(image);
    assert_eq!(
        reply.header("location"),
        Some(format!("http://{}/v1/images/{id}", srv.addr()).as_str()),
        "Location is absolute (§14 #34)"
    );
    assert!(reply.header("etag").is_none(), "no checksum, no ETag");
    assert_eq!(srv.status_of(&id), "queued");
}

fn create_with_size_zero_is_active_and_downloads_empty(srv: &ImageServer) {
    let image = srv.create(&[("x-image-meta-size", "0")]);
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 0);
    assert_eq!(image["checksum"], Value::Null);
    let download = srv.download(&id_of(&image));
    assert_eq!(download.status.as_u16(), 200, "{download:?}");
    assert_eq!(download.header("content-length"), Some("0"));
    assert!(download.body.is_empty());
    assert!(
        srv.image_files().is_empty(),
        "no data, so nothing in the store"
    );
}

fn create_with_content_length_data_is_active_with_size_md5_and_etag(srv: &ImageServer) {
    let data = test_data(256 * 1024 + 3, 1);
    let reply = srv.post_data(&[RAW_BARE[0], RAW_BARE[1]], &data);
    let image = reply.json(201)["image"].clone();
    assert_eq!(keys_of(&image), IMAGE_KEYS);
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], data.len());
    assert_eq!(image["checksum"], md5_hex(&data));
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    let id = id_of(&image);
    assert_eq!(
        reply.header("location"),
        Some(format!("http://{}/v1/images/{id}", srv.addr()).as_str())
    );
    assert_eq!(
        srv.image_files(),
        std::slice::from_ref(&id),
        "one file, named by the id"
    );
    assert_eq!(srv.download(&id).body, data);
}

fn create_with_chunked_data_is_active_with_size_md5_and_etag(srv: &ImageServer) {
    // Chunks of uneven sizes, some tiny, so the store sees every kind of boundary.
    let data = test_data(3 * 1024 * 1024 + 11, 2);
    let mut chunks = Vec::new();
    let mut rest = &data[..];
    for size in [1usize, 7, 65536, 3, 1 << 20, 100_000].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = (*size).min(rest.len());
        chunks.push(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
    }
    let headers = [
        ("content-type", "application/octet-stream"),
        RAW_BARE[0],
        RAW_BARE[1],
    ];
    let reply = srv.request("POST", "/v1/images", &headers, Payload::Chunked(chunks));
    let image = reply.json(201)["image"].clone();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], data.len());
    assert_eq!(image["checksum"], md5_hex(&data));
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    let download = srv.download(&id_of(&image));
    assert_eq!(download.body.len(), data.len());
    assert!(download.body == data, "downloaded bytes differ");
}

fn create_with_an_empty_chunked_body_is_a_zero_byte_upload(srv: &ImageServer) {
    // An empty chunked body is still a body (§5.5): the image goes through an upload.
    let headers = [
        ("content-type", "application/octet-stream"),
        ("transfer-encoding", "chunked"),
        RAW_BARE[0],
        RAW_BARE[1],
    ];
    let reply = srv.request("POST", "/v1/images", &headers, Payload::Chunked(vec![]));
    let image = reply.json(201)["image"].clone();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 0);
    assert_eq!(image["checksum"], md5_hex(b""));
    let download = srv.download(&id_of(&image));
    assert_eq!(download.status.as_u16(), 200);
    assert!(download.body.is_empty());
}

fn download_streams_the_same_bytes_with_length_meta_headers_and_etag(srv: &ImageServer) {
    let data = test_data(1024 * 1024 + 17, 3);
    let image = srv.create_with_data(
        &[
            ("x-image-meta-name", "download me"),
            ("x-image-meta-property-distro", "Ubuntu"),
        ],
        &data,
    );
    let id = id_of(&image);
    let download = srv.download(&id);
    assert_eq!(download.status.as_u16(), 200, "{download:?}");
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        download.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(download.body == data, "downloaded bytes differ");
    assert_meta_headers(&download, &image);
    // Twice: reading does not consume anything.
    assert!(srv.download(&id).body == data);
}

fn create_with_a_given_id_uses_it_and_a_second_create_is_409(srv: &ImageServer) {
    let id = super::fixed_id(1);
    // Non-canonical spelling is accepted and stored canonical (§14 #18).
    let upper = id.to_uppercase();
    let image = srv.create(&[("x-image-meta-id", &upper)]);
    assert_eq!(image["id"], id.as_str());
    srv.post(&[("x-image-meta-id", &id)]).assert_error(
        409,
        &format!("An image with identifier {id} already exists"),
    );
    // Deleted rows count too.
    assert_eq!(srv.delete(&id).status.as_u16(), 200);
    srv.post(&[("x-image-meta-id", &id)])
        .assert_error(409, "already exists");
}

fn create_with_a_malformed_id_is_400(srv: &ImageServer) {
    srv.post(&[("x-image-meta-id", "not-a-uuid")])
        .assert_error(400, "Invalid image id format");
    assert!(srv.list("/v1/images?is_public=None").is_empty());
}
