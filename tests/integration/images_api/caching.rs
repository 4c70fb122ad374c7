//! Image data for caches and resumed downloads (issue 14), through v1 (`GET`/`HEAD
//! /v1/images/{id}`) and v2 (`GET /v2/images/{id}/file`): validators (quoted ETag, a
//! Last-Modified that metadata updates leave alone), 304 and 412 preconditions, one byte range
//! (206, 416, If-Range), cache headers (public / private / Vary with auth, no-store on metadata),
//! and no data ever for a deactivated or deleted image, conditional or not.

use crate::support::{id_of, md5_hex, test_data, ImageServer, Payload, RegistryClient, Reply};

/// Size of the test image.
const SIZE: usize = 100_000;

acceptance! {
    data_answers_carry_a_quoted_etag_last_modified_accept_ranges_and_cache_control,
    last_modified_and_etag_stay_when_only_the_metadata_changes,
    last_modified_is_when_the_image_became_active_and_survives_a_deactivation,
    if_none_match_and_if_modified_since_answer_304_without_a_body,
    if_match_and_if_unmodified_since_mismatches_answer_412,
    single_ranges_answer_206_with_exactly_those_bytes,
    unsatisfiable_ranges_are_416_and_unusable_ones_get_the_whole_image,
    if_range_with_the_current_validator_gets_the_range_and_a_stale_one_the_whole_image,
    deactivated_and_deleted_images_are_never_served_even_to_conditional_requests,
    with_authentication_data_varies_on_the_token [
        ("GLINT_FLAVOR", "keystone"),
        ("GLINT_STATIC_TOKENS_FILE", super::tokens_file()),
        ("GLINT_REGISTRY_TRUSTED_CLIENTS", "127.0.0.1"),
    ],
    image_cache_max_age_sets_the_max_age [("GLINT_IMAGE_CACHE_MAX_AGE", "3600")],
}

/// The token of the authenticated test (an admin of project-a).
const TOKEN: &str = "tok-cache-admin";

fn tokens_file() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("tokens");
        std::fs::write(&path, format!("{TOKEN} project-a user-a admin\n")).unwrap();
        path.to_str().unwrap().to_string()
    })
}

/// An active image of [`SIZE`] bytes (public when `public`); returns its id and data.
fn image(srv: &ImageServer, public: bool, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    let data = test_data(SIZE, 14);
    let mut all = vec![("x-image-meta-name", "cached")];
    if public {
        all.push(("x-image-meta-is_public", "True"));
    }
    all.extend_from_slice(headers);
    let image = srv.create_with_data(&all, &data);
    (id_of(&image).to_string(), data)
}

/// The data paths of `id`: v1 and v2.
fn data_paths(id: &str) -> [String; 2] {
    [format!("/v1/images/{id}"), format!("/v2/images/{id}/file")]
}

fn quoted(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

#[track_caller]
fn get(srv: &ImageServer, path: &str, headers: &[(&str, &str)]) -> Reply {
    srv.get_with(path, headers)
}

#[track_caller]
fn head(srv: &ImageServer, path: &str, headers: &[(&str, &str)]) -> Reply {
    srv.request("HEAD", path, headers, Payload::Empty)
}

#[track_caller]
fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .header(name)
        .unwrap_or_else(|| panic!("no {name} in {reply:?}"))
}

fn data_answers_carry_a_quoted_etag_last_modified_accept_ranges_and_cache_control(
    srv: &ImageServer,
) {
    let (public, data) = image(srv, true, &[]);
    let (private, _) = image(srv, false, &[]);
    for (id, scope) in [(&public, "public"), (&private, "private")] {
        for path in data_paths(id) {
            let reply = get(srv, &path, &[]);
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
            assert_eq!(reply.body.as_ref(), &data[..], "{path}");
            assert_eq!(header(&reply, "etag"), quoted(&data), "{path}");
            let modified = httpdate::parse_http_date(header(&reply, "last-modified"));
            assert!(modified.is_ok(), "{path}: {reply:?}");
            assert_eq!(header(&reply, "accept-ranges"), "bytes", "{path}");
            assert_eq!(
                header(&reply, "cache-control"),
                format!("{scope}, max-age=60")
            );
            assert!(
                reply.header("vary").is_none(),
                "no auth, no Vary: {reply:?}"
            );
        }
        // HEAD of v1 answers what GET would, without the body.
        let [v1, _] = data_paths(id);
        let got = get(srv, &v1, &[]);
        let headed = head(srv, &v1, &[]);
        assert_eq!(headed.status, 200);
        assert!(headed.body.is_empty());
        for name in ["etag", "last-modified", "cache-control", "accept-ranges"] {
            assert_eq!(headed.header(name), got.header(name), "{name}");
        }
        assert_eq!(
            headed.header("content-length"),
            Some(SIZE.to_string().as_str())
        );
    }
    // Metadata, lists and errors are never to be kept by a cache.
    for path in [
        format!("/v2/images/{public}"),
        "/v1/images/detail".to_string(),
        "/v2/images".to_string(),
        format!("/v1/images/{}", uuid::Uuid::new_v4()),
    ] {
        let reply = get(srv, &path, &[]);
        assert_eq!(
            header(&reply, "cache-control"),
            "no-store",
            "{path}: {reply:?}"
        );
    }
}

fn last_modified_and_etag_stay_when_only_the_metadata_changes(srv: &ImageServer) {
    let (id, _) = image(srv, true, &[]);
    let [v1, v2] = data_paths(&id);
    let before = get(srv, &v1, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let updated = srv.put(
        &id,
        &[
            ("x-image-meta-name", "renamed"),
            ("x-image-meta-property-os_distro", "cirros"),
        ],
    );
    let updated = updated.json(200)["image"].clone();
    assert_ne!(
        header(&before, "x-image-meta-updated_at"),
        updated["updated_at"].as_str().unwrap()
    );
    for path in [&v1, &v2] {
        let after = get(srv, path, &[]);
        for name in ["etag", "last-modified"] {
            assert_eq!(after.header(name), before.header(name), "{path} {name}");
        }
    }
    // The validators still match, so a cache revalidating its copy gets a 304, and v1's 304
    // carries the new metadata headers for the cache to update its copy with.
    let etag = header(&before, "etag");
    let reply = get(srv, &v1, &[("if-none-match", etag)]);
    assert_eq!(reply.status, 304, "{reply:?}");
    assert_eq!(header(&reply, "x-image-meta-name"), "renamed");
    assert_eq!(header(&reply, "x-image-meta-property-os_distro"), "cirros");
}

/// The registry's record of `id` (in both shapes, over the Registry API).
fn record(srv: &ImageServer, id: &str) -> serde_json::Value {
    let registry = RegistryClient::new(srv.registry_addr());
    registry.get(&format!("/images/{id}")).json(200)["image"].clone()
}

/// `text` (the registry's `YYYY-MM-DDTHH:MM:SS.ffffff`) cut to whole seconds as an HTTP date.
fn http_date_of(text: &str) -> String {
    let seconds: jiff::Timestamp = format!("{}Z", &text[..19]).parse().unwrap();
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.as_second() as u64);
    httpdate::fmt_http_date(time)
}

fn last_modified_is_when_the_image_became_active_and_survives_a_deactivation(srv: &ImageServer) {
    // Queued first, data more than a second later: the two times differ in whole seconds.
    let created = srv.create(&[
        ("x-image-meta-name", "activated"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
    ]);
    let id = id_of(&created).to_string();
    assert!(record(srv, &id).get("activated_at").is_none(), "queued");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let uploaded = srv.put_data(&id, &[], &test_data(SIZE, 16));
    assert_eq!(uploaded.status, 200, "{uploaded:?}");

    let active = record(srv, &id);
    let activated = active["activated_at"]
        .as_str()
        .expect("no activated_at")
        .to_string();
    assert_eq!(
        activated, active["updated_at"],
        "the time of the write that made it active"
    );
    let created_at = active["created_at"].as_str().unwrap();
    assert_ne!(http_date_of(&activated), http_date_of(created_at));
    for path in data_paths(&id) {
        let reply = get(srv, &path, &[]);
        assert_eq!(
            header(&reply, "last-modified"),
            http_date_of(&activated),
            "{path}: not the activation time (created {created_at})"
        );
    }

    // Deactivated and reactivated a second later: the same data, the same validator.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for what in ["deactivate", "reactivate"] {
        let path = format!("/v2/images/{id}/actions/{what}");
        let reply = srv.request("POST", &path, &[], Payload::Empty);
        assert_eq!(reply.status, 204, "{what}: {reply:?}");
    }
    let reactivated = record(srv, &id);
    assert_ne!(reactivated["updated_at"], active["updated_at"]);
    assert_eq!(
        reactivated["activated_at"].as_str(),
        Some(activated.as_str())
    );
    for path in data_paths(&id) {
        let reply = get(srv, &path, &[]);
        assert_eq!(
            header(&reply, "last-modified"),
            http_date_of(&activated),
            "{path}"
        );
    }
}

fn if_none_match_and_if_modified_since_answer_304_without_a_body(srv: &ImageServer) {
    let (id, data) = image(srv, true, &[]);
    let etag = quoted(&data);
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    let modified = header(&get(srv, &data_paths(&id)[0], &[]), "last-modified").to_string();
    let earlier = httpdate::fmt_http_date(
        httpdate::parse_http_date(&modified).unwrap() - std::time::Duration::from_secs(1),
    );
    for path in data_paths(&id) {
        for (name, value, status) in [
            ("if-none-match", etag.as_str(), 304),
            ("if-none-match", weak.as_str(), 304),
            ("if-none-match", listed.as_str(), 304),
            ("if-none-match", "*", 304),
            ("if-none-match", "\"nope\"", 200),
            ("if-modified-since", modified.as_str(), 304),
            ("if-modified-since", earlier.as_str(), 200),
            ("if-modified-since", "not a date", 200),
        ] {
            let reply = get(srv, &path, &[(name, value)]);
            assert_eq!(reply.status, status, "{path} {name}: {value}: {reply:?}");
            if status == 304 {
                assert!(reply.body.is_empty(), "a 304 has no body: {reply:?}");
                assert_eq!(header(&reply, "etag"), etag);
                assert_eq!(header(&reply, "cache-control"), "public, max-age=60");
            } else {
                assert_eq!(reply.body.len(), SIZE);
            }
        }
        // If-None-Match wins over If-Modified-Since.
        let reply = get(
            srv,
            &path,
            &[
                ("if-none-match", "\"nope\""),
                ("if-modified-since", &modified),
            ],
        );
        assert_eq!(reply.status, 200, "{path}");
    }
    let reply = head(srv, &data_paths(&id)[0], &[("if-none-match", &etag)]);
    assert_eq!(reply.status, 304, "HEAD: {reply:?}");
}

fn if_match_and_if_unmodified_since_mismatches_answer_412(srv: &ImageServer) {
    let (id, data) = image(srv, true, &[]);
    let etag = quoted(&data);
    let modified = header(&get(srv, &data_paths(&id)[0], &[]), "last-modified").to_string();
    let earlier = httpdate::fmt_http_date(
        httpdate::parse_http_date(&modified).unwrap() - std::time::Duration::from_secs(60),
    );
    for path in data_paths(&id) {
        for (headers, status) in [
            (vec![("if-match", etag.as_str())], 200),
            (vec![("if-match", "*")], 200),
            (vec![("if-match", "\"nope\"")], 412),
            // If-Match compares strongly: a weak tag never matches.
            (vec![("if-match", &*format!("W/{etag}"))], 412),
            (vec![("if-unmodified-since", modified.as_str())], 200),
            (vec![("if-unmodified-since", earlier.as_str())], 412),
            // If-Match is evaluated first and, when present, If-Unmodified-Since is not.
            (
                vec![
                    ("if-match", etag.as_str()),
                    ("if-unmodified-since", &earlier),
                ],
                200,
            ),
            // 412 wins over 304.
            (
                vec![("if-match", "\"nope\""), ("if-none-match", &etag)],
                412,
            ),
        ] {
            let reply = get(srv, &path, &headers);
            assert_eq!(reply.status, status, "{path} {headers:?}: {reply:?}");
            if status == 412 {
                reply.assert_error(412, "does not meet the request's preconditions");
            } else {
                assert_eq!(reply.body.as_ref(), &data[..]);
            }
        }
    }
}

fn single_ranges_answer_206_with_exactly_those_bytes(srv: &ImageServer) {
    let (id, data) = image(srv, true, &[]);
    let last = SIZE - 1;
    // The filesystem store seeks to the range: glint reads from it only what it sends.
    let out = "glint_store_bytes_total{store=\"file\",direction=\"out\"}";
    let before = srv.metric(out);
    let mut sent = 0;
    for path in data_paths(&id) {
        for (range, first, end) in [
            ("bytes=0-0", 0, 0),
            ("bytes=10-19", 10, 19),
            ("bytes=99990-", 99_990, last),
            ("bytes=-10", SIZE - 10, last),
            ("bytes=-1000000", 0, last),
            ("bytes=50000-9999999", 50_000, last),
            ("bytes= 7-8 ", 7, 8),
        ] {
            let reply = get(srv, &path, &[("range", range)]);
            assert_eq!(reply.status, 206, "{path} {range}: {reply:?}");
            assert_eq!(
                header(&reply, "content-range"),
                format!("bytes {first}-{end}/{SIZE}"),
                "{path} {range}"
            );
            let len = (end - first + 1).to_string();
            assert_eq!(header(&reply, "content-length"), len, "{path} {range}");
            assert_eq!(reply.body.as_ref(), &data[first..=end], "{path} {range}");
            assert_eq!(header(&reply, "etag"), quoted(&data));
            sent += end - first + 1;
        }
    }
    assert_eq!(
        (srv.metric(out) - before) as usize,
        sent,
        "bytes read from the file"
    );
    // HEAD ignores Range (RFC 9110 defines it for GET only).
    let reply = head(srv, &data_paths(&id)[0], &[("range", "bytes=0-9")]);
    assert_eq!(reply.status, 200, "{reply:?}");
}

fn unsatisfiable_ranges_are_416_and_unusable_ones_get_the_whole_image(srv: &ImageServer) {
    let (id, data) = image(srv, true, &[]);
    let beyond = format!("bytes={SIZE}-");
    for path in data_paths(&id) {
        for range in [beyond.as_str(), "bytes=-0", "bytes=200000-300000"] {
            let reply = get(srv, &path, &[("range", range)]);
            reply.assert_error(416, "not satisfiable");
            assert_eq!(header(&reply, "content-range"), format!("bytes */{SIZE}"));
        }
        // Several ranges, another unit, an end before the start, garbage: the whole image.
        for range in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-4",
            "bytes=a-b",
            "garbage",
        ] {
            let reply = get(srv, &path, &[("range", range)]);
            assert_eq!(reply.status, 200, "{path} {range}: {reply:?}");
            assert!(reply.header("content-range").is_none());
            assert_eq!(reply.body.as_ref(), &data[..], "{path} {range}");
        }
    }
}

fn if_range_with_the_current_validator_gets_the_range_and_a_stale_one_the_whole_image(
    srv: &ImageServer,
) {
    let (id, data) = image(srv, true, &[]);
    let etag = quoted(&data);
    let modified = header(&get(srv, &data_paths(&id)[0], &[]), "last-modified").to_string();
    let other_date = httpdate::fmt_http_date(
        httpdate::parse_http_date(&modified).unwrap() - std::time::Duration::from_secs(5),
    );
    for path in data_paths(&id) {
        for (if_range, status) in [
            (etag.as_str(), 206),
            (modified.as_str(), 206),
            ("\"stale\"", 200),
            (&*format!("W/{etag}"), 200),
            (other_date.as_str(), 200),
            ("garbage", 200),
        ] {
            let reply = get(
                srv,
                &path,
                &[("range", "bytes=100-199"), ("if-range", if_range)],
            );
            assert_eq!(
                reply.status, status,
                "{path} If-Range {if_range}: {reply:?}"
            );
            let want = if status == 206 {
                &data[100..200]
            } else {
                &data[..]
            };
            assert_eq!(reply.body.as_ref(), want, "{path} If-Range {if_range}");
        }
    }
}

fn deactivated_and_deleted_images_are_never_served_even_to_conditional_requests(srv: &ImageServer) {
    let (id, data) = image(srv, true, &[]);
    let etag = quoted(&data);
    let action = |what: &str| {
        let path = format!("/v2/images/{id}/actions/{what}");
        let reply = srv.request("POST", &path, &[], Payload::Empty);
        assert_eq!(reply.status, 204, "{what}: {reply:?}");
    };
    let conditionals: [&[(&str, &str)]; 4] = [
        &[],
        &[("if-none-match", &etag)],
        &[("if-match", &etag)],
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    ];
    action("deactivate");
    for path in data_paths(&id) {
        for headers in conditionals {
            let reply = get(srv, &path, headers);
            reply.assert_error(403, "deactivated");
            assert_eq!(header(&reply, "cache-control"), "no-store");
        }
    }
    action("reactivate");
    for path in data_paths(&id) {
        let reply = get(srv, &path, &[]);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(header(&reply, "etag"), etag, "reactivated: the same data");
    }
    assert_eq!(srv.delete(&id).status, 200);
    for path in data_paths(&id) {
        for headers in conditionals {
            let reply = get(srv, &path, headers);
            assert_eq!(reply.status, 404, "{path} {headers:?}: {reply:?}");
            assert!(reply.header("etag").is_none());
            assert_eq!(header(&reply, "cache-control"), "no-store");
        }
    }
}

fn with_authentication_data_varies_on_the_token(srv: &ImageServer) {
    let auth = [("x-auth-token", TOKEN)];
    let data = test_data(SIZE, 15);
    let mut headers = vec![
        ("x-image-meta-name", "cached"),
        ("x-image-meta-is_public", "True"),
        ("x-image-meta-disk_format", "raw"),
        ("x-image-meta-container_format", "bare"),
    ];
    headers.extend_from_slice(&auth);
    let created = srv.post_data(&headers, &data).json(201);
    let id = id_of(&created["image"]).to_string();
    for path in data_paths(&id) {
        let reply = get(srv, &path, &auth);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(header(&reply, "vary"), "X-Auth-Token");
        assert_eq!(header(&reply, "cache-control"), "public, max-age=60");
        let reply = get(srv, &path, &[]);
        assert_eq!(reply.status, 401, "{path}: no token, no data");
        assert_eq!(header(&reply, "cache-control"), "no-store");
    }
}

fn image_cache_max_age_sets_the_max_age(srv: &ImageServer) {
    let (id, _) = image(srv, false, &[]);
    for path in data_paths(&id) {
        let reply = get(srv, &path, &[]);
        assert_eq!(header(&reply, "cache-control"), "private, max-age=3600");
    }
}
