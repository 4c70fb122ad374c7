//! The header codec on the wire (§4): HEAD in every status gives the §4.2 header set, every
//! settable field and property set by POST comes back identical in HEAD and in detail, and an
//! image with the full property quota round-trips (one more is 413).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{assert_head_matches_detail, assert_meta_headers, PUBLIC, RAW_BARE};
use crate::support::{id_of, md5_hex, test_data, ImageServer};

acceptance! {
    head_of_an_active_image_sends_exactly_the_queens_header_set,
    head_of_a_queued_image_omits_null_fields_and_etag,
    head_of_a_killed_image_says_killed,
    head_of_a_deleted_image_is_200_with_deleted_true_and_no_properties,
    header_codec_round_trips_every_settable_field_and_20_properties,
    header_names_are_case_insensitive_and_dashes_mean_underscores,
    image_with_128_properties_round_trips_and_129_is_413,
}

/// The `x-image-meta-*` names of a reply, sorted.
fn meta_names(meta: &BTreeMap<String, String>) -> Vec<&str> {
    meta.keys().map(String::as_str).collect()
}

fn head_of_an_active_image_sends_exactly_the_queens_header_set(srv: &ImageServer) {
    let data = test_data(4096, 10);
    let image = srv.create_with_data(&[("x-image-meta-name", "cirros")], &data);
    let head = srv.head(&id_of(&image));
    assert_eq!(head.status.as_u16(), 200);
    assert!(head.body.is_empty());
    let meta = head.meta();
    // §4.2: an active image with no owner and no properties; the upload's inspection adds its
    // virtual size (issue 13: raw data's is its size).
    let mut want = vec![
        "virtual_size",
        "checksum",
        "container_format",
        "created_at",
        "deleted",
        "disk_format",
        "id",
        "is_public",
        "min_disk",
        "min_ram",
        "name",
        "protected",
        "size",
        "status",
        "updated_at",
    ];
    want.sort();
    assert_eq!(meta_names(&meta), want);
    assert_eq!(meta["status"], "active");
    assert_eq!(meta["size"], "4096");
    assert_eq!(meta["virtual_size"], "4096");
    assert_eq!(meta["checksum"], md5_hex(&data));
    assert_eq!(meta["is_public"], "False");
    assert_eq!(meta["protected"], "False");
    assert_eq!(meta["deleted"], "False");
    assert_eq!(meta["min_ram"], "0");
    assert_eq!(
        head.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert_meta_headers(&head, &image);
    assert_head_matches_detail(srv, &id_of(&image));
}

fn head_of_a_queued_image_omits_null_fields_and_etag(srv: &ImageServer) {
    let image = srv.create(&[]);
    let head = srv.head(&id_of(&image));
    assert_eq!(head.status.as_u16(), 200);
    let mut want = vec![
        "created_at",
        "deleted",
        "id",
        "is_public",
        "min_disk",
        "min_ram",
        "protected",
        "size",
        "status",
        "updated_at",
    ];
    want.sort();
    assert_eq!(meta_names(&head.meta()), want);
    assert!(head.header("etag").is_none());
    assert_meta_headers(&head, &image);
    assert_head_matches_detail(srv, &id_of(&image));
}

fn head_of_a_killed_image_says_killed(srv: &ImageServer) {
    let id = super::fixed_id(2);
    srv.post_data(
        &[
            ("x-image-meta-id", &id),
            ("x-image-meta-size", "5"),
            ("x-image-meta-property-kept", "yes"),
            RAW_BARE[0],
            RAW_BARE[1],
        ],
        b"more than five bytes",
    )
    .assert_error(400, "did not match");
    let head = srv.head(&id);
    assert_eq!(head.status.as_u16(), 200);
    assert_eq!(head.header("x-image-meta-status"), Some("killed"));
    assert_eq!(head.header("x-image-meta-property-kept"), Some("yes"));
    assert_head_matches_detail(srv, &id);
}

fn head_of_a_deleted_image_is_200_with_deleted_true_and_no_properties(srv: &ImageServer) {
    let image = srv.create_with_data(
        &[("x-image-meta-property-distro", "Ubuntu"), PUBLIC],
        b"some bytes",
    );
    let id = id_of(&image);
    let deleted = srv.delete(&id);
    assert_eq!(deleted.status.as_u16(), 200);
    assert!(deleted.body.is_empty(), "DELETE answers an empty body");
    let head = srv.head(&id);
    assert_eq!(head.status.as_u16(), 200, "{head:?}");
    let meta = head.meta();
    assert_eq!(meta["deleted"], "True");
    assert_eq!(meta["status"], "deleted");
    assert!(meta.contains_key("deleted_at"));
    assert!(
        !meta.keys().any(|k| k.starts_with("property-")),
        "no property headers once deleted: {meta:?}"
    );
    assert_head_matches_detail(srv, &id);
}

fn header_codec_round_trips_every_settable_field_and_20_properties(srv: &ImageServer) {
    let properties: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("x-image-meta-property-key-{i:02}"),
                format!("value {i} with spaces, commas; and = signs"),
            )
        })
        .collect();
    let mut headers: Vec<(&str, &str)> = vec![
        ("x-image-meta-name", "Round Trip – café"),
        ("x-image-meta-disk_format", "qcow2"),
        ("x-image-meta-container_format", "ovf"),
        ("x-image-meta-size", "123456789"),
        ("x-image-meta-virtual_size", "987654321"),
        ("x-image-meta-checksum", "8a40c862b5735975d82605c1dd395796"),
        ("x-image-meta-is_public", "true"),
        ("x-image-meta-protected", "yes"),
        ("x-image-meta-min_ram", "512"),
        ("x-image-meta-min_disk", "2147483647"),
        ("x-image-meta-owner", "13cc6052265b41529e2fd0fc461fa8ef"),
        // Validated, then ignored (§14 #26).
        ("x-image-meta-created_at", "2001-02-03T04:05:06.000000"),
        ("x-image-meta-status", "active"),
        ("x-image-meta-deleted", "True"),
    ];
    headers.extend(properties.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let image = srv.create(&headers);
    let id = id_of(&image);

    let mut want_properties = serde_json::Map::new();
    for i in 0..20 {
        want_properties.insert(
            format!("key_{i:02}"),
            json!(format!("value {i} with spaces, commas; and = signs")),
        );
    }
    let want = json!({
        "name": "Round Trip – café",
        "disk_format": "qcow2",
        "container_format": "ovf",
        "size": 123456789,
        "virtual_size": 987654321,
        "checksum": "8a40c862b5735975d82605c1dd395796",
        "is_public": true,
        "protected": true,
        "min_ram": 512,
        "min_disk": 2147483647,
        "owner": "13cc6052265b41529e2fd0fc461fa8ef",
        "status": "queued",
        "deleted": false,
        "deleted_at": null,
        "properties": want_properties,
    });
    for (field, value) in want.as_object().unwrap() {
        assert_eq!(&image[field], value, "POST body: {field}");
    }
    assert_ne!(image["created_at"], "2001-02-03T04:05:06.000000");

    let detail = srv.detail_of(&id).unwrap();
    assert_eq!(detail, image, "detail shows what POST answered");
    let head = srv.head(&id);
    assert_meta_headers(&head, &image);
    let meta = head.meta();
    assert_eq!(meta["name"], "Round Trip – café", "UTF-8 both ways");
    assert_eq!(meta["is_public"], "True");
    assert_eq!(meta["protected"], "True");
    assert_eq!(meta["virtual_size"], "987654321");
    assert_eq!(
        meta.keys().filter(|k| k.starts_with("property-")).count(),
        20
    );
    assert_eq!(
        meta["property-key_07"],
        "value 7 with spaces, commas; and = signs"
    );
}

fn header_names_are_case_insensitive_and_dashes_mean_underscores(srv: &ImageServer) {
    // hyper sends header names in lower case; raw TCP keeps the spelling of an old client.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(srv.addr()).unwrap();
    let request = format!(
        "POST /v1/images HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\
         X-Image-Meta-Disk-Format: vhd\r\nX-IMAGE-META-CONTAINER_FORMAT: bare\r\n\
         x-image-meta-Min-Ram: 64\r\nX-Image-Meta-Property-Kernel-Id: Mixed-Case Value\r\n\r\n",
        srv.addr()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let image: Value = serde_json::from_str(body).unwrap();
    let image = &image["image"];
    assert_eq!(image["disk_format"], "vhd");
    assert_eq!(image["container_format"], "bare");
    assert_eq!(image["min_ram"], 64);
    assert_eq!(
        image["properties"],
        json!({"kernel_id": "Mixed-Case Value"})
    );
    let head = srv.head(&id_of(image));
    assert_eq!(
        head.header("x-image-meta-property-kernel_id"),
        Some("Mixed-Case Value")
    );
}

fn image_with_128_properties_round_trips_and_129_is_413(srv: &ImageServer) {
    let names: Vec<String> = (0..129)
        .map(|i| format!("x-image-meta-property-p{i:03}"))
        .collect();
    let values: Vec<String> = (0..129).map(|i| format!("v{i}")).collect();
    let headers = |n: usize| -> Vec<(&str, &str)> {
        names
            .iter()
            .zip(&values)
            .take(n)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    let image = srv.create(&headers(128));
    let id = id_of(&image);
    assert_eq!(image["properties"].as_object().unwrap().len(), 128);
    let head = srv.head(&id);
    assert_eq!(head.status.as_u16(), 200, "{head:?}");
    let properties = head
        .meta()
        .into_iter()
        .filter(|(k, _)| k.starts_with("property-"))
        .count();
    assert_eq!(properties, 128);
    assert_meta_headers(&head, &image);
    let detail = srv.detail_of(&id).unwrap();
    assert_eq!(detail["properties"], image["properties"]);

    let refused_id = super::fixed_id(3);
    let mut over = headers(129);
    over.push(("x-image-meta-id", &refused_id));
    srv.post(&over).assert_error(
        413,
        "The limit has been exceeded on the number of allowed image properties. Attempted: 129, Maximum: 128",
    );
    super::assert_no_record(srv, &refused_id);

    // An upsert that would make 129 is refused too, and changes nothing.
    srv.put(
        &id,
        &[
            ("x-glance-registry-purge-props", "false"),
            ("x-image-meta-property-one_more", "x"),
        ],
    )
    .assert_error(413, "Attempted: 129, Maximum: 128");
    assert_eq!(
        srv.detail_of(&id).unwrap()["properties"],
        image["properties"]
    );
}
