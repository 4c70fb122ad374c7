//! Uploads and sources refused (§5.5, §5.5.1, §7.3): the size cap, several or external sources,
//! missing formats, a wrong Content-Type, an unknown store, and size or checksum mismatches. A
//! POST refused on the request alone leaves no record (§14 #12); an upload refused once data
//! flows leaves a `killed` record and no data.

use bytes::Bytes;

use super::{assert_no_record, fixed_id, RAW_BARE};
use crate::support::{id_of, md5_hex, test_data, ImageServer, Payload};

acceptance! {
    declared_size_over_the_cap_is_400_and_leaves_no_record[("GLINT_IMAGE_SIZE_CAP", "1000")],
    chunked_body_over_the_cap_is_413_and_kills_the_image[("GLINT_IMAGE_SIZE_CAP", "1000")],
    multiple_sources_are_400_and_leave_no_record,
    data_without_formats_is_400_and_leaves_no_record,
    data_with_a_wrong_content_type_is_400_and_leaves_no_record,
    external_locations_are_400,
    unknown_store_is_400,
    upload_into_the_read_only_http_store_is_410_and_kills_the_image,
    location_on_an_image_that_is_not_queued_is_400,
    size_mismatch_is_400_and_kills_the_image_and_removes_the_data,
    checksum_mismatch_is_400_and_kills_the_image_and_removes_the_data,
}

fn declared_size_over_the_cap_is_400_and_leaves_no_record(srv: &ImageServer) {
    let message = "Denying attempt to upload image larger than 1000 bytes.";
    let id = fixed_id(11);
    // Declared by x-image-meta-size, even without a body.
    srv.post(&[("x-image-meta-id", &id), ("x-image-meta-size", "1001")])
        .assert_error(400, message);
    // Declared by Content-Length.
    let data = test_data(1001, 30);
    srv.post_data(&[("x-image-meta-id", &id), RAW_BARE[0], RAW_BARE[1]], &data)
        .assert_error(400, message);
    assert_no_record(srv, &id);
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
    // PUT checks it too.
    let queued = srv.create(&[RAW_BARE[0], RAW_BARE[1]]);
    srv.put(&id_of(&queued), &[("x-image-meta-size", "5000")])
        .assert_error(400, message);
    srv.put_data(&id_of(&queued), &[], &data)
        .assert_error(400, message);
    assert_eq!(srv.status_of(&id_of(&queued)), "queued");
    // Exactly the cap is fine.
    let at_cap = srv.create_with_data(&[], &test_data(1000, 31));
    assert_eq!(at_cap["size"], 1000);
    assert_eq!(at_cap["status"], "active");
}

fn chunked_body_over_the_cap_is_413_and_kills_the_image(srv: &ImageServer) {
    let id = fixed_id(12);
    let chunks: Vec<Bytes> = (0..4)
        .map(|i| Bytes::from(test_data(400, 40 + i)))
        .collect();
    let headers = [
        ("content-type", "application/octet-stream"),
        ("x-image-meta-id", id.as_str()),
        RAW_BARE[0],
        RAW_BARE[1],
    ];
    srv.request("POST", "/v1/images", &headers, Payload::Chunked(chunks))
        .assert_error(
            413,
            "Denying attempt to upload image larger than 1000 bytes.",
        );
    assert_eq!(srv.status_of(&id), "killed");
    srv.assert_no_data_for(&id);
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
    // A chunked body within the cap is accepted.
    let chunks = vec![
        Bytes::from(test_data(500, 50)),
        Bytes::from(test_data(500, 51)),
    ];
    let with_formats = [headers[0], headers[2], headers[3]];
    let image = srv
        .request(
            "POST",
            "/v1/images",
            &with_formats,
            Payload::Chunked(chunks),
        )
        .json(201)["image"]
        .clone();
    assert_eq!(image["size"], 1000);
}

fn multiple_sources_are_400_and_leave_no_record(srv: &ImageServer) {
    let id = fixed_id(13);
    let sources: [(&str, &str); 2] = [
        ("x-image-meta-location", "http://127.0.0.1:1/image.img"),
        ("x-glance-api-copy-from", "http://127.0.0.1:1/image.img"),
    ];
    let message = "It's invalid to provide multiple image sources.";
    for source in sources {
        srv.post_data(
            &[("x-image-meta-id", &id), RAW_BARE[0], RAW_BARE[1], source],
            b"data and a location",
        )
        .assert_error(400, message);
        assert_no_record(srv, &id);
    }
    srv.post(&[
        ("x-image-meta-id", &id),
        RAW_BARE[0],
        RAW_BARE[1],
        sources[0],
        sources[1],
    ])
    .assert_error(400, message);
    assert_no_record(srv, &id);
    // PUT on a queued image: data and a location together are refused too, and change nothing.
    let queued = srv.create(&[RAW_BARE[0], RAW_BARE[1]]);
    srv.put_data(&id_of(&queued), &[sources[0]], b"data and a location")
        .assert_error(400, message);
    assert_eq!(srv.status_of(&id_of(&queued)), "queued");
    assert!(srv.image_files().is_empty());
}

fn data_without_formats_is_400_and_leaves_no_record(srv: &ImageServer) {
    let id = fixed_id(14);
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "Disk format is not specified."),
        (&[RAW_BARE[1]], "Disk format is not specified."),
        (&[RAW_BARE[0]], "Container format is not specified."),
    ];
    for (formats, message) in cases {
        let mut headers = vec![("x-image-meta-id", id.as_str())];
        headers.extend_from_slice(formats);
        srv.post_data(&headers, b"some data")
            .assert_error(400, message);
        assert_no_record(srv, &id);
    }
    assert!(srv.image_files().is_empty());
    // PUT data to a queued image without formats: 400, the image stays queued.
    let queued = srv.create(&[RAW_BARE[0]]);
    srv.put_data(&id_of(&queued), &[], b"some data")
        .assert_error(400, "Container format is not specified.");
    assert_eq!(srv.status_of(&id_of(&queued)), "queued");
}

fn data_with_a_wrong_content_type_is_400_and_leaves_no_record(srv: &ImageServer) {
    let id = fixed_id(15);
    let message = "Content-Type must be application/octet-stream";
    for content_type in [Some("text/plain"), Some("application/json"), None] {
        let mut headers = vec![("x-image-meta-id", id.as_str()), RAW_BARE[0], RAW_BARE[1]];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let payload = Payload::Sized(Bytes::from_static(b"some data"));
        srv.request("POST", "/v1/images", &headers, payload)
            .assert_error(400, message);
        assert_no_record(srv, &id);
    }
    // Parameters after the media type are ignored.
    let headers = [
        ("content-type", "Application/Octet-Stream; charset=binary"),
        RAW_BARE[0],
        RAW_BARE[1],
    ];
    let payload = Payload::Sized(Bytes::from_static(b"some data"));
    let reply = srv.request("POST", "/v1/images", &headers, payload);
    assert_eq!(reply.json(201)["image"]["status"], "active");
}

fn external_locations_are_400(srv: &ImageServer) {
    let id = fixed_id(16);
    let cases = [
        (
            "x-image-meta-location",
            "file:///etc/passwd",
            "External sources are not supported: 'file:///etc/passwd'",
        ),
        (
            "x-image-meta-location",
            "",
            "External source should not be empty",
        ),
        // Upstream: "External sources are not supported"; glint copies from nowhere.
        (
            "x-glance-api-copy-from",
            "file:///etc/passwd",
            "not supported",
        ),
        (
            "x-glance-api-copy-from",
            "",
            "External source should not be empty",
        ),
        (
            "x-image-meta-location",
            "swift+config://ref/container/obj",
            "External sources are not supported",
        ),
    ];
    let queued = srv.create(&[RAW_BARE[0], RAW_BARE[1]]);
    for (header, value, message) in cases {
        srv.post(&[
            ("x-image-meta-id", &id),
            RAW_BARE[0],
            RAW_BARE[1],
            (header, value),
        ])
        .assert_error(400, message);
        assert_no_record(srv, &id);
        srv.put(&id_of(&queued), &[(header, value)])
            .assert_error(400, message);
        assert_eq!(srv.status_of(&id_of(&queued)), "queued");
    }
}

fn unknown_store_is_400(srv: &ImageServer) {
    let id = fixed_id(17);
    srv.post(&[("x-image-meta-id", &id), ("x-image-meta-store", "bogus")])
        .assert_error(400, "Required store bogus is invalid");
    srv.post_data(
        &[
            ("x-image-meta-id", &id),
            ("x-image-meta-store", "bogus"),
            RAW_BARE[0],
            RAW_BARE[1],
        ],
        b"data",
    )
    .assert_error(400, "Required store bogus is invalid");
    assert_no_record(srv, &id);
    assert!(srv.image_files().is_empty());
    // The filesystem store by either of its names.
    for store in ["file", "filesystem"] {
        let image = srv.create_with_data(&[("x-image-meta-store", store)], b"data");
        assert_eq!(image["status"], "active", "{store}");
    }
}

fn size_mismatch_is_400_and_kills_the_image_and_removes_the_data(srv: &ImageServer) {
    let id = fixed_id(18);
    let data = test_data(20_000, 60);
    srv.post_data(
        &[
            ("x-image-meta-id", &id),
            ("x-image-meta-size", "10"),
            RAW_BARE[0],
            RAW_BARE[1],
        ],
        &data,
    )
    .assert_error(
        400,
        "Supplied size (10) and size generated from uploaded image (20000) did not match. Setting image status to 'killed'.",
    );
    assert_eq!(srv.status_of(&id), "killed");
    srv.download(&id).assert_error(404, "is not active");
    srv.assert_no_data_for(&id);
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
    // A size given on an earlier POST is checked by the PUT upload (§5.5.1 step 6).
    let queued = srv.create(&[("x-image-meta-size", "7"), RAW_BARE[0], RAW_BARE[1]]);
    srv.put_data(&id_of(&queued), &[], b"eight by")
        .assert_error(400, "Supplied size (7)");
    assert_eq!(srv.status_of(&id_of(&queued)), "killed");
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
}

fn checksum_mismatch_is_400_and_kills_the_image_and_removes_the_data(srv: &ImageServer) {
    let id = fixed_id(19);
    let wrong = "0123456789abcdef0123456789abcdef";
    let data = test_data(20_000, 61);
    srv.post_data(
        &[
            ("x-image-meta-id", &id),
            ("x-image-meta-checksum", wrong),
            RAW_BARE[0],
            RAW_BARE[1],
        ],
        &data,
    )
    .assert_error(
        400,
        &format!(
            "Supplied checksum ({wrong}) and checksum generated from uploaded image ({}) did not match. Setting image status to 'killed'.",
            md5_hex(&data)
        ),
    );
    assert_eq!(srv.status_of(&id), "killed");
    srv.assert_no_data_for(&id);
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
    // A killed image cannot be uploaded to again.
    srv.put_data(&id, &[], &data)
        .assert_error(409, "Cannot upload to an unqueued image");
}

fn upload_into_the_read_only_http_store_is_410_and_kills_the_image(srv: &ImageServer) {
    let id = fixed_id(20);
    srv.post_data(
        &[
            ("x-image-meta-id", &id),
            ("x-image-meta-store", "http"),
            RAW_BARE[0],
            RAW_BARE[1],
        ],
        b"nowhere to go",
    )
    .assert_error(
        410,
        "Error in store configuration. Adding images to store is disabled.",
    );
    assert_eq!(srv.status_of(&id), "killed");
    assert!(srv.image_files().is_empty(), "{:?}", srv.image_files());
}

fn location_on_an_image_that_is_not_queued_is_400(srv: &ImageServer) {
    let message = "Attempted to update Location field for an image not in queued status.";
    let active = srv.create_with_data(&[], b"data");
    let killed_id = fixed_id(21);
    srv.post_data(
        &[
            ("x-image-meta-id", &killed_id),
            ("x-image-meta-size", "1"),
            RAW_BARE[0],
            RAW_BARE[1],
        ],
        b"two",
    )
    .assert_error(400, "did not match");
    for id in [id_of(&active), killed_id] {
        let before = srv.head(&id).meta();
        srv.put(
            &id,
            &[("x-image-meta-location", "http://127.0.0.1:1/image.img")],
        )
        .assert_error(400, message);
        assert_eq!(srv.head(&id).meta(), before, "nothing changed");
    }
}
