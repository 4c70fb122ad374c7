//! Identity and access (spec §13, issue 12) with the standalone tokens file, in both shapes (the
//! split shape relays each list's viewer to a registry that trusts 127.0.0.1): 401 without a
//! valid token, owners, visibility through v1 and v2, members, `publicize_image`, the lists
//! each caller gets, and anonymous read-only access.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::support::{id_of, ImageServer, Payload, Reply};

const ADMIN: &str = "tok-admin";
const ALICE: &str = "tok-alice";
const BOB: &str = "tok-bob";
const PROJECT_A: &str = "project-a";
const PROJECT_B: &str = "project-b";

/// The tokens file every test server reads: an admin and a member of project A, a member of B.
fn tokens_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("tokens");
        std::fs::write(
            &path,
            format!(
                "# token project user roles\n\
                 {ADMIN} {PROJECT_A} user-admin admin,member\n\
                 {ALICE} {PROJECT_A} user-alice member,reader\n\
                 {BOB} {PROJECT_B} user-bob member\n"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    })
}

/// The settings of every tokens-file test server (the split shape's registry trusts the API).
fn tokens_env() -> [(&'static str, &'static str); 3] {
    [
        ("GLINT_FLAVOR", "keystone"),
        ("GLINT_STATIC_TOKENS_FILE", tokens_file()),
        ("GLINT_REGISTRY_TRUSTED_CLIENTS", "127.0.0.1"),
    ]
}

acceptance! {
    requests_without_a_valid_token_are_401_but_versions_stay_open [
        @super::tokens_env(), ("GLINT_DEBUG", "true"),
    ],
    v1_owners_members_and_strangers_follow_the_q_rules [@super::tokens_env(),],
    v1_public_images_need_publicize_image_and_stay_read_only_to_others [@super::tokens_env(),],
    v2_visibility_owner_and_member_rules [@super::tokens_env(),],
    lists_hold_exactly_what_each_caller_may_see [@super::tokens_env(),],
    anonymous_callers_read_public_images_only [
        @super::tokens_env(), ("GLINT_ALLOW_ANONYMOUS_ACCESS", "true"),
    ],
}

fn as_user(
    srv: &ImageServer,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut all = vec![("x-auth-token", token)];
    all.extend_from_slice(headers);
    srv.request(method, path, &all, Payload::Empty)
}

fn json_as(srv: &ImageServer, token: &str, method: &str, path: &str, body: Value) -> Reply {
    let content_type = if method == "PATCH" {
        "application/openstack-images-v2.1-json-patch"
    } else {
        "application/json"
    };
    srv.request(
        method,
        path,
        &[("x-auth-token", token), ("content-type", content_type)],
        Payload::Sized(Bytes::from(serde_json::to_vec(&body).unwrap())),
    )
}

/// Creates a v1 image as `token` and returns its JSON.
fn v1_create(srv: &ImageServer, token: &str, name: &str, public: bool) -> Value {
    let public = if public { "True" } else { "False" };
    let reply = as_user(
        srv,
        token,
        "POST",
        "/v1/images",
        &[
            ("x-image-meta-name", name),
            ("x-image-meta-is_public", public),
        ],
    );
    reply.json(201)["image"].clone()
}

fn v1_ids(srv: &ImageServer, token: &str, query: &str) -> Vec<String> {
    let reply = as_user(srv, token, "GET", &format!("/v1/images/detail{query}"), &[]);
    let mut ids: Vec<String> = reply.json(200)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    ids.sort();
    ids
}

fn v2_ids(srv: &ImageServer, token: &str, query: &str) -> Vec<String> {
    let reply = as_user(srv, token, "GET", &format!("/v2/images{query}"), &[]);
    let mut ids: Vec<String> = reply.json(200)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn requests_without_a_valid_token_are_401_but_versions_stay_open(srv: &ImageServer) {
    let anonymous = srv.get("/v1/images");
    anonymous.assert_error(401, "X-Auth-Token");
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Keystone")),
        "401 names the scheme: {:?}",
        anonymous.header("www-authenticate")
    );
    let forged = "forged-token-4711";
    let reply = as_user(srv, forged, "GET", "/v2/images", &[]);
    reply.assert_error(401, "invalid or has expired");
    assert!(!reply.text().contains(forged), "the token is never echoed");
    srv.get("/versions").json(200);
    srv.get("/").json(300);
    as_user(srv, ALICE, "GET", "/v1/images", &[]).json(200);
    // No token, valid or not, appears in any log line (the server logs at debug level here).
    let logs = srv.logs();
    for token in [forged, ALICE] {
        assert!(!logs.contains(token), "token {token} in the logs:\n{logs}");
    }
}

fn v1_owners_members_and_strangers_follow_the_q_rules(srv: &ImageServer) {
    let image = v1_create(srv, ALICE, "alice-private", false);
    let id = id_of(&image);
    assert_eq!(
        image["owner"], PROJECT_A,
        "owner defaults to the caller's project"
    );
    let head = |token| as_user(srv, token, "HEAD", &format!("/v1/images/{id}"), &[]);
    assert_eq!(head(ALICE).status, 200);
    assert_eq!(head(ADMIN).status, 200);
    assert_eq!(head(BOB).status, 404, "invisible images are 404");
    assert!(!v1_ids(srv, BOB, "").contains(&id));
    // A stranger cannot change or delete a private image, and does not learn it exists.
    let update = as_user(
        srv,
        BOB,
        "PUT",
        &format!("/v1/images/{id}"),
        &[("x-image-meta-name", "x")],
    );
    assert_eq!(update.status, 404);
    assert_eq!(
        as_user(srv, BOB, "DELETE", &format!("/v1/images/{id}"), &[]).status,
        404
    );
    // Shared with project B: Bob sees and lists it, but still cannot change it.
    let member = as_user(
        srv,
        BOB,
        "PUT",
        &format!("/v1/images/{id}/members/{PROJECT_B}"),
        &[],
    );
    assert_eq!(member.status, 404, "only the owner shares");
    let share = as_user(
        srv,
        ALICE,
        "PUT",
        &format!("/v1/images/{id}/members/{PROJECT_B}"),
        &[],
    );
    assert_eq!(share.status, 204, "{}", share.text());
    assert_eq!(head(BOB).status, 200);
    assert!(v1_ids(srv, BOB, "").contains(&id));
    let update = as_user(
        srv,
        BOB,
        "PUT",
        &format!("/v1/images/{id}"),
        &[("x-image-meta-name", "x")],
    );
    assert_eq!(
        update.status, 404,
        "a member may not change a private image"
    );
    let download = as_user(srv, BOB, "GET", &format!("/v1/images/{id}"), &[]);
    assert_eq!(
        download.status,
        404,
        "queued: no data, but visible: {}",
        download.text()
    );
    // The owner changes it; a foreign owner from a non-admin is dropped silently (§14 #27).
    let renamed = as_user(
        srv,
        ALICE,
        "PUT",
        &format!("/v1/images/{id}"),
        &[
            ("x-image-meta-name", "renamed"),
            ("x-image-meta-owner", PROJECT_B),
        ],
    );
    let renamed = renamed.json(200)["image"].clone();
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["owner"], PROJECT_A);
    // Admins may give an image away.
    let given = as_user(
        srv,
        ADMIN,
        "PUT",
        &format!("/v1/images/{id}"),
        &[("x-image-meta-owner", PROJECT_B)],
    );
    assert_eq!(given.json(200)["image"]["owner"], PROJECT_B);
    assert_eq!(
        as_user(srv, BOB, "DELETE", &format!("/v1/images/{id}"), &[]).status,
        200
    );
}

fn v1_public_images_need_publicize_image_and_stay_read_only_to_others(srv: &ImageServer) {
    let refused = as_user(
        srv,
        ALICE,
        "POST",
        "/v1/images",
        &[
            ("x-image-meta-name", "mine"),
            ("x-image-meta-is_public", "True"),
        ],
    );
    refused.assert_error(403, "publicize_image");
    let public = v1_create(srv, ADMIN, "public", true);
    let id = id_of(&public);
    assert_eq!(
        as_user(srv, BOB, "HEAD", &format!("/v1/images/{id}"), &[]).status,
        200
    );
    let update = as_user(
        srv,
        BOB,
        "PUT",
        &format!("/v1/images/{id}"),
        &[("x-image-meta-name", "x")],
    );
    update.assert_error(403, "not permitted");
    let delete = as_user(srv, BOB, "DELETE", &format!("/v1/images/{id}"), &[]);
    assert_eq!(delete.status, 403);
    // An owner who is not an admin may not repeat `is_public: True` either (§14 #32).
    let own = v1_create(srv, ALICE, "own", false);
    let repeat = as_user(
        srv,
        ALICE,
        "PUT",
        &format!("/v1/images/{}", id_of(&own)),
        &[("x-image-meta-is_public", "True")],
    );
    repeat.assert_error(403, "publicize_image");
}

fn v2_visibility_owner_and_member_rules(srv: &ImageServer) {
    let private = json_as(
        srv,
        ALICE,
        "POST",
        "/v2/images",
        json!({"name": "p", "visibility": "private"}),
    );
    let private = private.json(201);
    let pid = private["id"].as_str().unwrap().to_string();
    assert_eq!(private["owner"], PROJECT_A);
    assert_eq!(
        as_user(srv, BOB, "GET", &format!("/v2/images/{pid}"), &[]).status,
        404
    );
    json_as(
        srv,
        ALICE,
        "POST",
        "/v2/images",
        json!({"visibility": "public"}),
    )
    .assert_error(403, "publicize_image");
    json_as(
        srv,
        ALICE,
        "POST",
        "/v2/images",
        json!({"owner": PROJECT_B}),
    )
    .assert_error(403, "owned by another project");
    // A shared image with Bob as a member: visible to him at once, listed once he accepts.
    let shared = json_as(srv, ALICE, "POST", "/v2/images", json!({"name": "s"})).json(201);
    let sid = shared["id"].as_str().unwrap().to_string();
    let members = format!("/v2/images/{sid}/members");
    json_as(srv, BOB, "POST", &members, json!({"member": PROJECT_B})).assert_error(404, "");
    json_as(srv, ALICE, "POST", &members, json!({"member": PROJECT_B})).json(200);
    as_user(srv, BOB, "GET", &format!("/v2/images/{sid}"), &[]).json(200);
    assert!(
        !v2_ids(srv, BOB, "").contains(&sid),
        "pending members do not list it"
    );
    assert!(v2_ids(srv, BOB, "?member_status=pending").contains(&sid));
    let member = format!("{members}/{PROJECT_B}");
    json_as(srv, ALICE, "PUT", &member, json!({"status": "accepted"}))
        .assert_error(403, "Only the member");
    let accepted = json_as(srv, BOB, "PUT", &member, json!({"status": "accepted"})).json(200);
    assert_eq!(accepted["status"], "accepted");
    assert!(v2_ids(srv, BOB, "").contains(&sid));
    // A member sees only its own membership, and changes nothing else.
    let seen = as_user(srv, BOB, "GET", &members, &[]).json(200);
    assert_eq!(seen["members"].as_array().unwrap().len(), 1);
    json_as(
        srv,
        BOB,
        "PATCH",
        &format!("/v2/images/{sid}"),
        json!([{"op": "replace", "path": "/name", "value": "x"}]),
    )
    .assert_error(403, "not permitted");
    assert_eq!(
        as_user(srv, BOB, "DELETE", &format!("/v2/images/{sid}"), &[]).status,
        403
    );
    assert_eq!(as_user(srv, BOB, "DELETE", &member, &[]).status, 403);
    // The owner may not publicise by patch either; the admin may.
    let publicise = json!([{"op": "replace", "path": "/visibility", "value": "public"}]);
    json_as(
        srv,
        ALICE,
        "PATCH",
        &format!("/v2/images/{pid}"),
        publicise.clone(),
    )
    .assert_error(403, "publicize_image");
    let public = json_as(srv, ADMIN, "PATCH", &format!("/v2/images/{pid}"), publicise).json(200);
    assert_eq!(public["visibility"], "public");
    as_user(srv, BOB, "GET", &format!("/v2/images/{pid}"), &[]).json(200);
}

fn lists_hold_exactly_what_each_caller_may_see(srv: &ImageServer) {
    let public = id_of(&v1_create(srv, ADMIN, "public", true));
    let alices = id_of(&v1_create(srv, ALICE, "alice", false));
    let bobs = id_of(&v1_create(srv, BOB, "bob", false));
    let shared_with_bob = id_of(&v1_create(srv, ALICE, "for-bob", false));
    let share = as_user(
        srv,
        ALICE,
        "PUT",
        &format!("/v1/images/{shared_with_bob}/members/{PROJECT_B}"),
        &[],
    );
    assert_eq!(share.status, 204);
    let community = json_as(
        srv,
        BOB,
        "POST",
        "/v2/images",
        json!({"visibility": "community"}),
    );
    let community = community.json(201)["id"].as_str().unwrap().to_string();

    // v1 (§13): public, own and shared images; `is_public` narrows it.
    assert_eq!(
        v1_ids(srv, ALICE, ""),
        sorted(vec![
            public.clone(),
            alices.clone(),
            shared_with_bob.clone()
        ])
    );
    assert_eq!(
        v1_ids(srv, BOB, ""),
        sorted(vec![
            public.clone(),
            bobs.clone(),
            shared_with_bob.clone(),
            community.clone()
        ])
    );
    assert_eq!(
        v1_ids(srv, BOB, "?is_public=False"),
        sorted(vec![
            bobs.clone(),
            shared_with_bob.clone(),
            community.clone()
        ])
    );
    assert_eq!(v1_ids(srv, ALICE, "?is_public=True"), vec![public.clone()]);
    // An admin with a project lists like its project unless it asks for everything.
    assert_eq!(
        v1_ids(srv, ADMIN, ""),
        sorted(vec![
            public.clone(),
            alices.clone(),
            shared_with_bob.clone()
        ])
    );
    assert_eq!(v1_ids(srv, ADMIN, "?is_public=None").len(), 5);
    // A marker pointing at an invisible image is refused as unknown.
    as_user(
        srv,
        ALICE,
        "GET",
        &format!("/v1/images/detail?marker={bobs}"),
        &[],
    )
    .assert_error(400, "marker");

    // v2: community images only when asked for (or owned); shared ones once accepted.
    assert_eq!(
        v2_ids(srv, ALICE, ""),
        sorted(vec![
            public.clone(),
            alices.clone(),
            shared_with_bob.clone()
        ])
    );
    assert_eq!(
        v2_ids(srv, ALICE, "?visibility=community"),
        vec![community.clone()]
    );
    assert_eq!(
        v2_ids(srv, BOB, ""),
        sorted(vec![public.clone(), bobs.clone(), community.clone()])
    );
    assert_eq!(
        v2_ids(srv, BOB, "?member_status=all"),
        sorted(vec![
            public.clone(),
            bobs.clone(),
            shared_with_bob.clone(),
            community.clone()
        ])
    );
    assert_eq!(
        v2_ids(srv, ADMIN, "").len(),
        5,
        "v2 admins list every image"
    );
}

fn anonymous_callers_read_public_images_only(srv: &ImageServer) {
    let public = id_of(&v1_create(srv, ADMIN, "public", true));
    let private = id_of(&v1_create(srv, ALICE, "private", false));
    let ids: Vec<String> = srv.list("/v1/images/detail").iter().map(id_of).collect();
    assert_eq!(ids, vec![public.clone()]);
    assert_eq!(srv.head(&public).status, 200);
    assert_eq!(srv.head(&private).status, 404);
    srv.post(&[("x-image-meta-name", "anon")])
        .assert_error(403, "Read-only access");
    let delete = srv.delete(&public);
    delete.assert_error(403, "Read-only access");
    // A token that is present but unknown is still refused.
    assert_eq!(as_user(srv, "nope", "GET", "/v1/images", &[]).status, 401);
}

/// A policy file overrides Glance's defaults rule by rule: here only admins download, members
/// may publicise, and nobody deletes; a denial names the rule.
#[test]
fn a_policy_file_replaces_the_default_rules_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "# glint test policy\n\
         \"download_image\": \"role:admin\"\n\
         \"publicize_image\": \"role:member\"\n\
         \"delete_image\": \"!\"\n",
    )
    .unwrap();
    for shape in [crate::support::Shape::Serve, crate::support::Shape::Split] {
        let srv = ImageServer::start(
            shape,
            &[
                ("GLINT_FLAVOR", "keystone"),
                ("GLINT_STATIC_TOKENS_FILE", tokens_file()),
                ("GLINT_REGISTRY_TRUSTED_CLIENTS", "127.0.0.1"),
                ("GLINT_POLICY_FILE", policy.to_str().unwrap()),
            ],
        );
        let public = v1_create(&srv, ALICE, "members-publicise-now", true);
        let id = id_of(&public);
        let download = as_user(&srv, BOB, "GET", &format!("/v1/images/{id}"), &[]);
        download.assert_error(403, "download_image");
        let delete = as_user(&srv, ALICE, "DELETE", &format!("/v1/images/{id}"), &[]);
        delete.assert_error(403, "delete_image");
        let v2_delete = as_user(&srv, ADMIN, "DELETE", &format!("/v2/images/{id}"), &[]);
        v2_delete.assert_error(403, "delete_image");
    }
}

/// SIGHUP reads the tokens file and the policy file again: a new token works at once, a removed
/// one is refused, a changed rule applies, and a broken file keeps what is in force.
#[test]
fn sighup_reloads_the_tokens_and_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&tokens, format!("{ALICE} {PROJECT_A} user-alice member\n")).unwrap();
    std::fs::write(&policy, "get_images: \"!\"\n").unwrap();
    let mut srv = ImageServer::start(
        crate::support::Shape::Serve,
        &[
            ("GLINT_FLAVOR", "keystone"),
            ("GLINT_STATIC_TOKENS_FILE", tokens.to_str().unwrap()),
            ("GLINT_POLICY_FILE", policy.to_str().unwrap()),
            ("GLINT_VERBOSE", "true"),
        ],
    );
    let list = |srv: &ImageServer, token| {
        as_user(srv, token, "GET", "/v1/images", &[])
            .status
            .as_u16()
    };
    assert_eq!(list(&srv, ALICE), 403, "the policy denies lists");
    assert_eq!(list(&srv, BOB), 401);

    std::fs::write(&tokens, format!("{BOB} {PROJECT_B} user-bob member\n")).unwrap();
    std::fs::write(&policy, "get_images: \"role:member\"\n").unwrap();
    let hangup = |srv: &mut ImageServer, reloads: usize| {
        srv.api_process().signal("HUP");
        for _ in 0..100 {
            if srv.logs().matches("policy reloaded").count() >= reloads {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no reload logged:\n{}", srv.logs());
    };
    hangup(&mut srv, 1);
    assert_eq!(list(&srv, BOB), 200, "the new token and rule apply");
    assert_eq!(list(&srv, ALICE), 401, "the removed token is refused");

    std::fs::write(&tokens, "broken line\n").unwrap();
    std::fs::write(&policy, "get_images: (\n").unwrap();
    srv.api_process().signal("HUP");
    for _ in 0..100 {
        if srv.logs().contains("policy not reloaded") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        srv.logs().contains("tokens file not reloaded"),
        "{}",
        srv.logs()
    );
    assert_eq!(list(&srv, BOB), 200, "broken files keep what is in force");
}
