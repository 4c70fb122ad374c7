//! The path matchers, run on every request before anything else: `match_api_route` (Images API,
//! with its version negotiation) and `match_registry_route`, over the requests a deployment sees
//! most (HEAD and GET of an image, lists, an upload; v1 and v2), plus a 404 and a 405 of each and
//! the versions-document fallback.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use glint::http::route::{match_api_route, match_registry_route};
use hyper::Method;

const ID: &str = "12345678-9abc-def0-1234-56789abcdef0";

fn main() {
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_api(&mut c);
    bench_registry(&mut c);
    c.final_summary();
}

fn bench_api(c: &mut Criterion) {
    let image = format!("/v1/images/{ID}");
    let members = format!("/v1/images/{ID}/members/tenant-b");
    let v2_image = format!("/v2/images/{ID}");
    let v2_file = format!("/v2/images/{ID}/file");
    let v2_member = format!("/v2/images/{ID}/members/tenant-b");
    let cases: [(&str, Method, &str, Option<&str>); 14] = [
        ("head_image", Method::HEAD, &image, None),
        ("get_image", Method::GET, &image, None),
        ("detail", Method::GET, "/v1/images/detail", None),
        ("create", Method::POST, "/v1/images", None),
        (
            "accept_header",
            Method::GET,
            "/images",
            Some("application/vnd.openstack.images-v1"),
        ),
        ("member_wrong_method", Method::GET, &members, None),
        ("not_found", Method::GET, "/v1/nothing/here", None),
        // No version in the path or Accept: the versions document (300).
        ("versions_fallback", Method::GET, "/", None),
        // v2 is matched behind the same entry point, after the `/v2` prefix.
        ("v2_show", Method::GET, &v2_image, None),
        ("v2_list", Method::GET, "/v2/images", None),
        ("v2_upload", Method::PUT, &v2_file, None),
        ("v2_member", Method::GET, &v2_member, None),
        (
            "v2_schema_wrong_method",
            Method::DELETE,
            "/v2/schemas/image",
            None,
        ),
        ("v2_not_found", Method::GET, "/v2/nothing", None),
    ];
    let mut group = c.benchmark_group("route/api");
    for (name, method, path, accept) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let _ = black_box(match_api_route(
                    black_box(method),
                    black_box(path),
                    black_box(*accept),
                ));
            })
        });
    }
    group.finish();
}

fn bench_registry(c: &mut Criterion) {
    let image = format!("/images/{ID}");
    let cases: [(&str, Method, &str); 4] = [
        ("show", Method::GET, &image),
        ("update", Method::PUT, &image),
        ("detail", Method::GET, "/images/detail"),
        ("not_found", Method::GET, "/nothing"),
    ];
    let mut group = c.benchmark_group("route/registry");
    for (name, method, path) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let _ = black_box(match_registry_route(black_box(method), black_box(path)));
            })
        });
    }
    group.finish();
}
