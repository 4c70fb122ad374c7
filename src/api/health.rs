//! `GET /metrics` (see [`crate::metrics`]) and `GET /healthcheck` (and `HEAD`) as
//! oslo.middleware's healthcheck answers it, on both ports:
//! `200 OK` when the service can do its work, `503` with the reason when the registry cannot be
//! read, the default store cannot be written, or the operator's `disable_by_file_path` exists
//! (to drain a node from a load balancer).

use std::path::Path;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use uuid::Uuid;

use crate::http::body::{empty, full, Body};

/// The path load balancers probe.
pub const HEALTHCHECK_PATH: &str = "/healthcheck";

/// The path Prometheus scrapes.
pub const METRICS_PATH: &str = "/metrics";

/// A `/metrics` answer: the text exposition.
pub(super) fn metrics_response(text: String) -> Response<Body> {
    let mut resp = Response::new(full(text));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    resp
}

/// The answer for `problem` (`None`: healthy): `OK` or the reason, as plain text; `HEAD`
/// answers 204 when healthy, as oslo does.
pub(super) fn answer(method: &Method, problem: Option<String>) -> Response<Body> {
    let (status, text) = match problem {
        None => (StatusCode::OK, "OK".to_string()),
        Some(why) => {
            crate::warn!("health check failed: {why}");
            (StatusCode::SERVICE_UNAVAILABLE, why)
        }
    };
    let mut resp = if method == Method::HEAD {
        Response::new(empty())
    } else {
        Response::new(full(text))
    };
    *resp.status_mut() = if method == Method::HEAD && status == StatusCode::OK {
        StatusCode::NO_CONTENT
    } else {
        status
    };
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// `DISABLED BY FILE` when the operator's file exists.
pub(super) fn disabled_by_file(path: Option<&Path>) -> Option<String> {
    path.filter(|p| p.exists())
        .map(|_| "DISABLED BY FILE".to_string())
}

/// A problem reading the registry, if any: an unknown id must come back as "not found".
pub(super) fn registry_problem(result: Result<(), crate::registry::Error>) -> Option<String> {
    match result {
        Ok(()) | Err(crate::registry::Error::NotFound(_)) => None,
        Err(e) => Some(format!("registry unavailable: {e}")),
    }
}

/// The id health checks look up: no image has it.
pub(super) const PROBE_ID: Uuid = Uuid::nil();
