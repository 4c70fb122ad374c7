//! The S3 store against Ceph radosgw: the shared store tests over [`S3Direct`], and the S3-only
//! ones. Every test has its own bucket (created by glint on the first upload, removed with its
//! contents when the test ends) and its own `glint serve`.

use super::shared::{world, World};
use super::{assert_clear_error, register, CredentialCase, RealStore, LARGE_MB};
use crate::support::services::{s3_config, s3_env, unique_name, S3Direct, S3Env};
use crate::support::test_data;

/// The access key id of the wrong-credentials test.
const WRONG_ACCESS: &str = "WRONGACCESSKEYGLINT1";

/// The secret key of the wrong-credentials test.
const WRONG_SECRET: &str = "wrong-secret-k3y-for-glint-tests";

impl RealStore for S3Direct {
    const NAME: &'static str = "s3";
    const STORE_METRIC: &'static str = "s3";
    const SEED: u64 = 0;
    // The configuration makes S3 the default store.
    const DEFAULT_HEADERS: &'static [(&'static str, &'static str)] = &[];
    const CREATE_OPTION: &'static str = "s3_store_create_bucket_on_put";
    const BIG_UPLOADS: &'static [(u64, bool)] = &[(4, false), (5, true)];
    const PUT_CHUNKED: bool = false;
    const CHECKS_LOCATION_SECRET: bool = true;
    type Env = S3Env;
    type Hold = ();

    fn env() -> Option<S3Env> {
        s3_env()
    }

    fn hold() {}

    fn config(env: &S3Env, bucket: &str, part_mb: u64) -> Vec<(String, String)> {
        s3_config(env, bucket, LARGE_MB, part_mb)
    }

    fn direct(env: &S3Env, bucket: &str) -> S3Direct {
        S3Direct::new(env, bucket)
    }

    fn secret(env: &S3Env) -> String {
        env.secret_key.clone()
    }

    fn location_with_secret(env: &S3Env, bucket: &str, id: &str, secret: &str) -> String {
        let host = env.endpoint.split_once("://").unwrap().1;
        format!("s3://{}:{secret}@{host}/{bucket}/{id}", env.access_key)
    }

    fn credential_cases(env: &S3Env) -> Vec<CredentialCase> {
        let case = |what, access: &str, fresh: bool, size, code| CredentialCase {
            what,
            set: vec![
                ("GLINT_S3_STORE_ACCESS_KEY".into(), access.to_string()),
                ("GLINT_S3_STORE_SECRET_KEY".into(), WRONG_SECRET.into()),
                (
                    "GLINT_S3_STORE_CREATE_BUCKET_ON_PUT".into(),
                    fresh.to_string(),
                ),
            ],
            fresh,
            size,
            needles: vec!["S3 refused", code],
        };
        let access = env.access_key.as_str();
        vec![
            case(
                "wrong secret, bucket created on put",
                access,
                true,
                256 << 10,
                "SignatureDoesNotMatch",
            ),
            case(
                "unknown access key, bucket created on put",
                WRONG_ACCESS,
                true,
                256 << 10,
                "InvalidAccessKeyId",
            ),
            case(
                "wrong secret, one PUT to an existing bucket",
                access,
                false,
                256 << 10,
                "SignatureDoesNotMatch",
            ),
            case(
                "wrong secret, multipart upload to an existing bucket",
                access,
                false,
                20 << 20,
                "SignatureDoesNotMatch",
            ),
        ]
    }

    fn credential_secrets(env: &S3Env) -> Vec<String> {
        vec![
            env.secret_key.clone(),
            env.access_key.clone(),
            WRONG_SECRET.into(),
            WRONG_ACCESS.into(),
        ]
    }

    fn create_container(&self) {
        self.create_bucket();
    }

    fn container_exists(&self) -> bool {
        self.bucket_exists()
    }

    fn assert_one_object(&self, id: &str, md5: &str) {
        // One plain PUT: exactly one object, named by the id, whose ETag is its MD5.
        assert_eq!(self.list(id), vec![id.to_string()]);
        assert_eq!(self.etag(id).as_deref(), Some(md5));
    }

    fn assert_small_chunked(&self, id: &str) {
        assert_eq!(self.list(id), vec![id.to_string()]);
        assert_eq!(self.unfinished_uploads(), vec![]);
    }

    fn assert_pieces(&self, id: &str, count: u64) {
        // A multipart object of exactly `count` parts, no upload left open.
        let etag = self.etag(id).expect("no object in S3");
        assert!(
            etag.ends_with(&format!("-{count}")),
            "expected a {count}-part object, S3 has ETag {etag}"
        );
        assert_eq!(self.list(id), vec![id.to_string()]);
        assert_eq!(self.unfinished_uploads(), vec![]);
    }

    fn upload_under_way(&self, id: &str) -> bool {
        self.unfinished_uploads().iter().any(|(key, _)| key == id)
    }

    fn assert_nothing_for(&self, id: &str) {
        // No object under that prefix and no unfinished multipart upload of it.
        assert_eq!(
            self.head(id).map(|_| ()),
            None,
            "object {id} is still in S3"
        );
        assert_eq!(self.list(id), Vec::<String>::new(), "objects left for {id}");
        let uploads: Vec<_> = self
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

    fn assert_empty(&self) {
        assert_eq!(self.list(""), Vec::<String>::new(), "bucket not empty");
        assert_eq!(self.unfinished_uploads(), vec![]);
    }
}

store_tests! {S3Direct:
    upload_with_content_length_is_one_object_reads_back_identical_and_delete_removes_it,
    chunked_upload_smaller_than_a_piece_reads_back_identical_and_delete_removes_all,
    chunked_upload_larger_than_a_piece_goes_in_pieces_and_reads_back_identical,
    upload_of_300_mib_streams_its_100_mib_pieces_in_flat_memory_and_reads_back,
    upload_to_a_missing_container_is_refused_with_503_naming_it_and_kills_the_image,
    client_disconnect_mid_upload_kills_the_image_and_leaves_nothing,
    kill_9_mid_upload_then_restart_kills_the_image_and_leaves_nothing,
    wrong_credentials_fail_the_upload_clearly_kill_the_image_and_never_show_the_secrets,
    secret_never_appears_in_api_responses_or_the_debug_log,
    checksum_mismatch_kills_the_image_and_removes_what_was_stored,
    ranged_downloads_read_only_the_range_from_the_store_across_pieces,
}

#[test]
fn s3_location_in_another_bucket_is_read_with_the_configured_keys_and_errors_name_that_bucket() {
    let Some(w): Option<World<S3Direct>> = world(false) else {
        return;
    };
    let other = unique_name();
    let other_direct = S3Direct::new(&w.env, &other);
    other_direct.create_bucket();
    let data = test_data(300_000, 9);
    other_direct.put("outside/object.img", &data);
    let host = w.env.endpoint.split_once("://").unwrap().1.to_string();
    let register = |location: &str| register(&w.glint, "s3-elsewhere", location);

    let reply = register(&format!("s3://{host}/{other}/outside/object.img"));
    let image = reply.json(201)["image"].clone();
    assert_eq!(image["size"].as_u64(), Some(data.len() as u64), "{image}");
    let id = image["id"].as_str().unwrap().to_string();
    let got = w.glint.download_hashed(&id, true);
    assert_eq!(got.status.as_u16(), 200, "{got:?}");
    assert!(got.data.as_deref() == Some(&data[..]), "bytes differ");

    // A missing object there: 404, and the message names where glint looked, not the bucket
    // uploads go to.
    let reply = register(&format!("s3://{host}/{other}/outside/missing.img"));
    assert_clear_error(&reply, 404, &[&other], &[&w.env.secret_key]);
    assert!(!reply.text().contains(&w.container), "{}", reply.text());
}
