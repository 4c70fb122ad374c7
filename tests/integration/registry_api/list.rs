//! `GET /images` and `GET /images/detail` (§8, §9.2): entry shapes, the default row restriction,
//! every filter, every bad parameter, and the page size limits.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use glint::patch::ImagePatch;
use glint::registry::Limits;

use super::{full_image, keys_of, time_of, RECORD_KEYS};
use crate::support::{id_of, ids_of, TestServer, BRIEF_KEYS};

#[test]
fn brief_list_entries_have_exactly_the_six_brief_keys() {
    let srv = TestServer::start();
    let created = srv.create(full_image("de2f2211-3ac7-4260-9142-41db0ecfb425"));
    for path in ["/images", "/"] {
        let images = srv.list(path);
        assert_eq!(images.len(), 1, "{path}");
        assert_eq!(keys_of(&images[0]), BRIEF_KEYS, "{path}");
        for key in keys_of(&images[0]) {
            assert_eq!(images[0][&key], created[&key], "{path} {key}");
        }
    }
}

#[test]
fn detail_list_has_full_records_including_location() {
    let srv = TestServer::start();
    let created = srv.create(full_image("de2f2211-3ac7-4260-9142-41db0ecfb425"));
    let images = srv.list("/images/detail");
    assert_eq!(images, vec![created]);
    let mut want: Vec<String> = RECORD_KEYS.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(keys_of(&images[0]), want);
    assert_eq!(images[0]["location"], "file:///var/lib/glint/images/cirros");
}

/// Public, private, killed and deleted images, for the visibility and row restriction tests.
struct Mixed {
    public: Value,
    public_queued: Value,
    private: Value,
    public_killed: Value,
    public_deleted: Value,
    private_deleted: Value,
}

fn mixed(srv: &TestServer) -> Mixed {
    let public = srv.create(json!({"name": "public", "is_public": true}));
    let public_queued =
        srv.create(json!({"name": "public-queued", "is_public": true, "status": "queued"}));
    let private = srv.create(json!({"name": "private", "is_public": false}));
    let public_killed =
        srv.create(json!({"name": "killed", "is_public": true, "status": "killed"}));
    let public_deleted = srv.create(json!({"name": "gone", "is_public": true}));
    let private_deleted = srv.create(json!({"name": "gone-private"}));
    for image in [&public_deleted, &private_deleted] {
        srv.delete(&format!("/images/{}", id_of(image))).json(200);
    }
    Mixed {
        public,
        public_queued,
        private,
        public_killed,
        public_deleted,
        private_deleted,
    }
}

#[test]
fn default_list_shows_only_public_images_that_are_neither_deleted_nor_killed() {
    let srv = TestServer::start();
    let m = mixed(&srv);
    let want = ids_of(&[&m.public, &m.public_queued]);
    for path in ["/images", "/images/detail", "/", "/images?is_public=true"] {
        assert_eq!(srv.id_set(path), want, "{path}");
    }
    assert_eq!(srv.id_set("/images?is_public=1"), want);
    assert_eq!(srv.id_set("/images?deleted=false"), want);
    assert!(srv.id_set("/images?status=killed").is_empty());
    assert_eq!(
        srv.id_set("/images?status=killed&changes-since=2000-01-01"),
        ids_of(&[&m.public_killed]),
        "the killed row exists; only the default restriction hides it"
    );
}

#[test]
fn is_public_false_lists_private_images_and_none_lists_all() {
    let srv = TestServer::start();
    let m = mixed(&srv);
    for path in [
        "/images?is_public=false",
        "/images?is_public=False",
        "/images/detail?is_public=0",
    ] {
        assert_eq!(srv.id_set(path), ids_of(&[&m.private]), "{path}");
    }
    let all = ids_of(&[&m.public, &m.public_queued, &m.private]);
    for path in ["/images?is_public=None", "/images/detail?is_public=none"] {
        assert_eq!(srv.id_set(path), all, "{path}");
    }
}

#[test]
fn deleted_true_lists_only_deleted_rows() {
    let srv = TestServer::start();
    let m = mixed(&srv);
    assert_eq!(
        srv.id_set("/images/detail?deleted=true"),
        ids_of(&[&m.public_deleted])
    );
    assert_eq!(
        srv.id_set("/images?deleted=yes&is_public=None"),
        ids_of(&[&m.public_deleted, &m.private_deleted])
    );
    for image in srv.list("/images/detail?deleted=1&is_public=None") {
        assert_eq!(
            (&image["deleted"], &image["status"]),
            (&json!(true), &json!("deleted"))
        );
    }
}

#[test]
fn changes_since_lists_rows_updated_after_it_including_deleted_and_killed_ones() {
    let srv = TestServer::start();
    let unchanged = srv.create(json!({"name": "unchanged", "is_public": true}));
    let updated = srv.create(json!({"name": "updated", "is_public": true}));
    let killed = srv.create(json!({"name": "killed", "is_public": true, "status": "queued"}));
    let deleted = srv.create(json!({"name": "deleted", "is_public": true}));
    let since = time_of(&deleted, "updated_at").to_string();
    let updated = srv.update(&id_of(&updated), json!({"min_ram": 128}));
    let killed = srv.update(&id_of(&killed), json!({"status": "killed"}));
    srv.delete(&format!("/images/{}", id_of(&deleted)))
        .json(200);
    let want = ids_of(&[&updated, &killed, &deleted]);
    assert_eq!(srv.id_set(&format!("/images?changes-since={since}")), want);
    assert_eq!(
        srv.id_set(&format!("/images/detail?changes-since={since}")),
        want
    );
    // The same instant written with an offset: 1 hour later in a zone 1 hour ahead.
    let t = glint::timestamp::Timestamp::parse(&since).unwrap();
    let ahead = glint::timestamp::Timestamp::from_micros(t.as_micros() + 3_600_000_000);
    assert_eq!(
        srv.id_set(&format!("/images?changes-since={ahead}%2B01:00")),
        want,
        "offsets are honoured"
    );
    assert_eq!(srv.id_set(&format!("/images?changes-since={since}Z")), want);
    let every = ids_of(&[&unchanged, &updated, &killed, &deleted]);
    assert_eq!(srv.id_set("/images?changes-since=2000-01-01"), every);
    assert!(srv.id_set("/images?changes-since=9999-12-31").is_empty());
    // Other filters still apply to the rows changes-since lets in.
    assert_eq!(
        srv.id_set(&format!("/images?changes-since={since}&status=killed")),
        ids_of(&[&killed])
    );
}

/// Six images whose filterable fields vary independently.
fn catalogue(srv: &TestServer) -> Vec<Value> {
    [
        json!({"name": "cirros", "status": "active", "disk_format": "qcow2",
               "container_format": "bare", "size": 0, "min_ram": 0, "min_disk": 0,
               "protected": false, "properties": {"os": "linux", "arch": "x86_64"}}),
        json!({"name": "cirros", "status": "queued", "disk_format": "raw",
               "container_format": "bare", "size": 100, "min_ram": 512, "min_disk": 1,
               "protected": true, "properties": {"os": "linux", "arch": "aarch64"}}),
        json!({"name": "My Image", "status": "saving", "disk_format": "raw",
               "container_format": "ovf", "size": 101, "min_ram": 512, "min_disk": 0,
               "protected": false, "properties": {"os": "windows", "arch": "x86_64"}}),
        json!({"name": "Cirros", "status": "active", "disk_format": "vhd",
               "container_format": "ova", "size": 5_000_000_000_u64, "min_ram": 1024,
               "min_disk": 20, "protected": true, "properties": {}}),
        json!({"name": null, "status": "active", "disk_format": null,
               "container_format": null, "size": 99, "min_ram": 0, "min_disk": 1,
               "properties": {"os": null}}),
        json!({"name": "a+b&c=d", "status": "active", "disk_format": "aki",
               "container_format": "aki", "size": 1, "properties": {"os": "Linux"}}),
    ]
    .into_iter()
    .map(|mut image| {
        image["is_public"] = json!(true);
        srv.create(image)
    })
    .collect()
}

/// Asserts that each query lists exactly the catalogue entries at the given indexes.
#[track_caller]
fn assert_filters(srv: &TestServer, images: &[Value], cases: &[(&str, &[usize])]) {
    for (query, want) in cases {
        let want: BTreeSet<String> = want.iter().map(|&i| id_of(&images[i])).collect();
        assert_eq!(srv.id_set(&format!("/images?{query}")), want, "{query}");
        assert_eq!(
            srv.id_set(&format!("/images/detail?{query}")),
            want,
            "detail {query}"
        );
    }
}

#[test]
fn name_status_and_format_filters_match_exactly() {
    let srv = TestServer::start();
    let images = catalogue(&srv);
    assert_filters(
        &srv,
        &images,
        &[
            ("name=cirros", &[0, 1]),
            ("name=Cirros", &[3]),
            ("name=cirro", &[]),
            ("name=My+Image", &[2]),
            ("name=My%20Image", &[2]),
            ("name=a%2Bb%26c%3Dd", &[5]),
            ("status=active", &[0, 3, 4, 5]),
            ("status=queued", &[1]),
            ("status=saving", &[2]),
            ("status=ACTIVE", &[]),
            ("status=nonsense", &[]),
            ("disk_format=raw", &[1, 2]),
            ("disk_format=aki", &[5]),
            ("container_format=bare", &[0, 1]),
            ("container_format=ova", &[3]),
            ("name=cirros&disk_format=raw", &[1]),
            ("name=cirros&status=active&container_format=bare", &[0]),
            ("unknown_filter=1", &[0, 1, 2, 3, 4, 5]),
        ],
    );
}

#[test]
fn size_min_and_size_max_are_inclusive_bounds() {
    let srv = TestServer::start();
    let images = catalogue(&srv);
    assert_filters(
        &srv,
        &images,
        &[
            ("size_min=100", &[1, 2, 3]),
            ("size_min=101", &[2, 3]),
            ("size_max=100", &[0, 1, 4, 5]),
            ("size_max=0", &[0]),
            ("size_min=99&size_max=101", &[1, 2, 4]),
            ("size_min=100&size_max=100", &[1]),
            ("size_min=102&size_max=101", &[]),
            ("size_min=5000000000", &[3]),
            ("size_min=0", &[0, 1, 2, 3, 4, 5]),
        ],
    );
}

#[test]
fn property_filters_are_exact_and_anded() {
    let srv = TestServer::start();
    let images = catalogue(&srv);
    assert_filters(
        &srv,
        &images,
        &[
            ("property-os=linux", &[0, 1]),
            ("property-os=Linux", &[5]),
            ("property-arch=x86_64", &[0, 2]),
            ("property-os=linux&property-arch=x86_64", &[0]),
            ("property-os=linux&property-arch=aarch64", &[1]),
            ("property-os=windows&property-arch=aarch64", &[]),
            ("property-missing=x", &[]),
            ("property-os=linux&name=cirros&size_min=1", &[1]),
        ],
    );
}

#[test]
fn min_ram_min_disk_and_protected_filters_match_exactly() {
    let srv = TestServer::start();
    let images = catalogue(&srv);
    assert_filters(
        &srv,
        &images,
        &[
            ("min_ram=512", &[1, 2]),
            ("min_ram=0", &[0, 4, 5]),
            ("min_ram=511", &[]),
            ("min_disk=1", &[1, 4]),
            ("min_disk=20", &[3]),
            ("min_ram=512&min_disk=0", &[2]),
            ("protected=true", &[1, 3]),
            ("protected=True", &[1, 3]),
            ("protected=1", &[1, 3]),
            ("protected=false", &[0, 2, 4, 5]),
            ("protected=0", &[0, 2, 4, 5]),
        ],
    );
}

#[test]
fn every_bad_list_parameter_is_400_with_its_message() {
    let srv = TestServer::start();
    let deleted = srv.create(json!({"is_public": true}));
    srv.delete(&format!("/images/{}", id_of(&deleted)))
        .json(200);
    let deleted = id_of(&deleted);
    let cases = [
        ("limit=ten", "limit param must be an integer"),
        ("limit=1.5", "limit param must be an integer"),
        ("limit=", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
        ("marker=nope", "Invalid marker format"),
        (
            "marker=0b6e3c38-8b5c-4b55-9a8e-3f1fb1b5b2a1",
            "Invalid marker. Image could not be found.",
        ),
        (
            &format!("marker={deleted}"),
            "Invalid marker. Image could not be found.",
        ),
        (
            "sort_key=owner",
            "Unsupported sort_key. Acceptable values: name, status, container_format, \
             disk_format, size, id, created_at, updated_at",
        ),
        ("sort_key=", "Unsupported sort_key"),
        (
            "sort_dir=up",
            "Unsupported sort_dir. Acceptable values: asc, desc",
        ),
        ("sort_dir=", "Unsupported sort_dir"),
        (
            "size_min=big",
            "Bad value passed to filter size_min got big",
        ),
        ("size_min=-1", "Bad value passed to filter size_min got -1"),
        (
            "size_max=1e3",
            "Bad value passed to filter size_max got 1e3",
        ),
        ("min_ram=x", "Bad value passed to filter min_ram got x"),
        ("min_disk=-2", "Bad value passed to filter min_disk got -2"),
        (
            "changes-since=yesterday",
            "Unrecognized changes-since value",
        ),
        ("changes-since=", "Unrecognized changes-since value"),
        (
            "changes-since=2020-13-01",
            "Unrecognized changes-since value",
        ),
        ("protected=maybe", "protected must be True, or False"),
        ("protected=", "protected must be True, or False"),
        ("is_public=maybe", "is_public must be None, True, or False"),
        ("is_public=", "is_public must be None, True, or False"),
    ];
    for (query, needle) in &cases {
        for resource in ["/images", "/images/detail", "/"] {
            srv.get(&format!("{resource}?{query}"))
                .assert_error(400, needle);
        }
    }
}

#[test]
fn limit_defaults_to_25_and_picks_the_last_repeated_value() {
    let srv = TestServer::start();
    for i in 0..30 {
        srv.create(json!({"name": format!("image-{i:02}"), "is_public": true}));
    }
    assert_eq!(srv.list_ids("/images").len(), 25);
    assert_eq!(srv.list_ids("/images/detail").len(), 25);
    assert_eq!(srv.list_ids("/images?limit=30").len(), 30);
    assert_eq!(srv.list_ids("/images?limit=31").len(), 30);
    assert_eq!(srv.list_ids("/images?limit=7").len(), 7);
    assert_eq!(srv.list_ids("/images?limit=2&limit=5").len(), 5);
    assert!(srv.list_ids("/images?limit=0").is_empty());
    assert!(srv.list_ids("/images/detail?limit=0").is_empty());
}

#[test]
fn limit_is_capped_at_1000() {
    let srv = TestServer::start_with(Limits::default(), |registry| {
        for i in 0..1005 {
            let patch = ImagePatch {
                name: Some(Some(format!("bulk-{i:04}"))),
                is_public: Some(true),
                ..Default::default()
            };
            registry
                .create_unflushed(patch, glint::model::Status::Active)
                .unwrap();
        }
    });
    assert_eq!(srv.list_ids("/images").len(), 25);
    for limit in ["1000", "1001", "5000", "99999999999"] {
        assert_eq!(
            srv.list_ids(&format!("/images?limit={limit}")).len(),
            1000,
            "limit={limit}"
        );
    }
    assert_eq!(srv.list_ids("/images/detail?limit=999").len(), 999);
}

#[test]
fn configured_limits_are_honoured() {
    let limits = Limits { default: 3, max: 4 };
    let srv = TestServer::start_with(limits, |_| {});
    for i in 0..6 {
        srv.create(json!({"name": format!("image-{i}"), "is_public": true}));
    }
    assert_eq!(srv.list_ids("/images").len(), 3);
    assert_eq!(srv.list_ids("/images?limit=4").len(), 4);
    assert_eq!(srv.list_ids("/images?limit=6").len(), 4);
}

/// An API server relays the caller's view of a list (§13) in `x-glint-viewer-owner`; the
/// registry believes it only from `registry_trusted_clients`.
#[test]
fn viewer_headers_are_refused_from_untrusted_peers_and_restrict_lists_from_trusted_ones() {
    let seed = |reg: &glint::registry::Registry| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (name, owner, public) in [
            ("mine", "p1", false),
            ("theirs", "p2", false),
            ("pub", "p2", true),
        ] {
            let patch = ImagePatch {
                name: Some(Some(name.into())),
                owner: Some(Some(owner.into())),
                is_public: Some(public),
                ..Default::default()
            };
            rt.block_on(reg.create(patch, glint::model::Status::Active))
                .unwrap();
        }
    };
    let headers = [
        ("x-glint-viewer-owner", "p1"),
        ("x-glint-viewer-member-status", "any"),
    ];
    let untrusted = TestServer::start_with(Limits::default(), seed);
    let refused = untrusted.request("GET", "/images/detail?is_public=None", &headers, "");
    refused.assert_error(403, "registry_trusted_clients");

    let trusted =
        TestServer::start_trusting(Limits::default(), seed, vec!["127.0.0.1".parse().unwrap()]);
    let reply = trusted.request("GET", "/images/detail?is_public=None", &headers, "");
    let names: BTreeSet<String> = reply.json(200)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["mine".to_string(), "pub".to_string()])
    );
    // Without the headers, the registry lists as before (the no-auth admin).
    assert_eq!(trusted.list("/images/detail?is_public=None").len(), 3);
}
