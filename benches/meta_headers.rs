//! The `x-image-meta-*` header codec on the Images API hot paths: `encode_image_meta` (every HEAD
//! and GET of an image writes its record as headers), `decode_image_meta` (every POST and PUT
//! reads them), and the client's halves, `encode_patch_headers` and `decode_response_image`.
//! The image is a typical one: every core field set and eight properties.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use glint::http::meta_headers::{
    decode_image_meta, decode_response_image, encode_image_meta, encode_patch_headers,
};
use glint::model::{Image, Status};
use glint::patch::ImagePatch;
use glint::timestamp::Timestamp;
use hyper::header::HeaderMap;
use uuid::Uuid;

fn main() {
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_codec(&mut c);
    c.final_summary();
}

/// An active image with every field an operator usually sets, and eight properties.
fn sample_image() -> Image {
    let at = Timestamp::from_micros(1_700_000_000_000_000);
    let properties: BTreeMap<String, Option<String>> = (0..8)
        .map(|i| (format!("prop_{i}"), Some(format!("value number {i}"))))
        .collect();
    Image {
        id: Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
        name: Some("Ubuntu 24.04 server".into()),
        status: Status::Active,
        size: 2_361_393_152,
        virtual_size: None,
        disk_format: Some("qcow2".into()),
        container_format: Some("bare".into()),
        checksum: Some("0123456789abcdef0123456789abcdef".into()),
        location: Some("file:///var/lib/glint/images/x".into()),
        is_public: true,
        owner: Some("tenant-a".into()),
        protected: false,
        min_disk: 10,
        min_ram: 512,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        deleted: false,
        properties,
        visibility: glint::model::Visibility::Public,
        tags: Default::default(),
        os_hash_algo: None,
        os_hash_value: None,
        os_hidden: false,
        activated_at: Some(at),
    }
}

/// What a client sends to create the sample image.
fn sample_patch(image: &Image) -> ImagePatch {
    ImagePatch {
        name: Some(image.name.clone()),
        disk_format: Some(image.disk_format.clone()),
        container_format: Some(image.container_format.clone()),
        is_public: Some(image.is_public),
        min_disk: Some(image.min_disk),
        min_ram: Some(image.min_ram),
        properties: Some(image.properties.clone()),
        ..Default::default()
    }
}

fn bench_codec(c: &mut Criterion) {
    let image = sample_image();
    let patch = sample_patch(&image);
    let mut response = HeaderMap::new();
    encode_image_meta(&image, &mut response);
    let mut request = HeaderMap::new();
    encode_patch_headers(&patch, &mut request);
    assert_eq!(decode_image_meta(&request).unwrap().patch, patch);
    assert_eq!(decode_response_image(&response).unwrap().id, image.id);

    let mut group = c.benchmark_group("meta_headers");
    group.bench_function("encode_image_meta", |b| {
        b.iter(|| {
            let mut headers = HeaderMap::new();
            encode_image_meta(black_box(&image), &mut headers);
            headers
        })
    });
    group.bench_function("decode_image_meta", |b| {
        b.iter(|| decode_image_meta(black_box(&request)).unwrap())
    });
    group.bench_function("encode_patch_headers", |b| {
        b.iter(|| {
            let mut headers = HeaderMap::new();
            encode_patch_headers(black_box(&patch), &mut headers);
            headers
        })
    });
    group.bench_function("decode_response_image", |b| {
        b.iter(|| decode_response_image(black_box(&response)).unwrap())
    });
    group.finish();
}
