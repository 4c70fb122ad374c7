//! Image data as an HTTP representation, shared by v1 (`GET`/`HEAD /v1/images/{id}`) and v2
//! (`GET /v2/images/{id}/file`): its validators, the preconditions of RFC 9110 (304, 412), one
//! byte range read from the store itself (206, 416), and the cache headers that let a proxy such
//! as Varnish or Squid serve the data (README, "Behind a cache").
//!
//! * `ETag` is the MD5 (`checksum`) in double quotes: a strong validator, since an image's data
//!   never changes once it is active (uploads go only to queued images).
//! * `Last-Modified` is the time the image became active (`activated_at`, kept through a
//!   deactivation), or its `created_at` for a record written before glint kept that time. The
//!   data's validator must not move when only the metadata does (a cache would then fetch
//!   unchanged gigabytes again), so `updated_at` will not do.
//! * `Cache-Control`: public and community images `public, max-age=N`, every other image
//!   `private, max-age=N` (`image_cache_max_age`, default 60 s). The short age bounds how long a
//!   proxy keeps serving an image after it is deactivated or deleted without being purged; after
//!   it the proxy revalidates with `If-None-Match` and glint answers 304 (no data) or the 403/404
//!   that ends the copy. With authentication on, `Vary: X-Auth-Token`: a copy is reused only for
//!   the token whose access glint checked.

use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, VARY,
};
use hyper::{Response, StatusCode};

use super::images::ImagesService;
use super::Error;
use crate::http::body::{empty, Body};
use crate::http::conditional::{self, Precondition, Validators};
use crate::http::range::{self, Resolved};
use crate::model::{Image, Visibility};
use crate::store::Location;

/// How a data request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// `GET`: the data, or a range of it.
    Get,
    /// `HEAD`: the headers a `GET` would answer, no body and no store request.
    Head,
}

impl ImagesService {
    /// Answers a request for the data of `image`, which the caller has checked is active and
    /// may be downloaded by this caller: 304 or 412 when a precondition says so, 416 for a range
    /// past the end, 206 for one range, else 200 with the whole data. `extra` writes headers of
    /// the API version (v1's `x-image-meta-*`) on every answer but the 412 and 416 errors.
    pub(super) async fn data_response(
        &self,
        method: Method,
        request: &HeaderMap,
        image: &Image,
        extra: impl Fn(&mut HeaderMap),
    ) -> Result<Response<Body>, Error> {
        let validators = validators(image);
        let mut resp = Response::new(empty());
        extra(resp.headers_mut());
        self.representation_headers(image, &validators, resp.headers_mut());
        match conditional::evaluate(true, request, &validators) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                *resp.status_mut() = StatusCode::NOT_MODIFIED;
                return Ok(resp);
            }
            Precondition::Failed => {
                return Err(Error::PreconditionFailed(format!(
                "The data of image {} does not meet the request's preconditions (its ETag is {})",
                image.id,
                validators.etag_header().as_deref().unwrap_or("absent")
            )))
            }
        }
        let wanted = match method {
            // RFC 9110 defines Range for GET only; HEAD answers as a GET without Range would.
            Method::Head => Resolved::Whole,
            Method::Get if !conditional::if_range_holds(request, &validators) => Resolved::Whole,
            Method::Get => range::resolve(range::range_request(request), image.size),
        };
        let part = match wanted {
            Resolved::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size: image.size }),
            Resolved::Whole => None,
            Resolved::Part(part) => Some(part),
        };
        let headers = resp.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(image.size));
        // An empty image has no range to ask for (every one is unsatisfiable, above).
        if method == Method::Head || image.size == 0 {
            return Ok(resp);
        }
        let location = data_location(image)?;
        let data = match part {
            None => self.stores.get(&location).await?,
            Some(part) => self.stores.get_range(&location, part).await?,
        };
        if let Some(part) = data.range {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let headers = resp.headers_mut();
            insert(headers, CONTENT_RANGE, &part.content_range(image.size));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(part.len()));
        } else {
            // The whole data: asked for, or sent by an origin that ignored the Range.
            resp.headers_mut().insert(
                CONTENT_LENGTH,
                HeaderValue::from(data.size.unwrap_or(image.size)),
            );
        }
        *resp.body_mut() = data.body;
        Ok(resp)
    }

    /// The validators and cache headers of the data of `image` (on 200, 206, 304 and HEAD).
    fn representation_headers(
        &self,
        image: &Image,
        validators: &Validators<'_>,
        headers: &mut HeaderMap,
    ) {
        if let Some(etag) = validators.etag_header() {
            insert(headers, ETAG, &etag);
        }
        if let Some(date) = validators.last_modified_header() {
            insert(headers, LAST_MODIFIED, &date);
        }
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let scope = match image.visibility {
            Visibility::Public | Visibility::Community => "public",
            Visibility::Shared | Visibility::Private => "private",
        };
        let age = self.settings.cache_max_age;
        insert(headers, CACHE_CONTROL, &format!("{scope}, max-age={age}"));
        if self.auth.enabled() {
            headers.insert(VARY, HeaderValue::from_static("X-Auth-Token"));
        }
    }
}

/// The validators of the data of `image`: its MD5 as a strong entity tag when it can be one,
/// and its activation time (see the module documentation).
fn validators(image: &Image) -> Validators<'_> {
    let etag = image.checksum.as_deref().filter(|sum| {
        // etagc: a checksum a client declared is only a tag when it has none of `"`, space, ...
        !sum.is_empty() && sum.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
    });
    let modified = image.activated_at.unwrap_or(image.created_at);
    let seconds = modified.as_micros().div_euclid(1_000_000).max(0) as u64;
    Validators {
        etag,
        last_modified: Some(conditional::from_unix_seconds(seconds)),
    }
}

/// Where the data of `image` lives.
fn data_location(image: &Image) -> Result<Location, Error> {
    let uri = image
        .location
        .as_deref()
        .ok_or_else(|| Error::NotFound(format!("Image {} has no data", image.id)))?;
    Ok(Location::parse(uri)?)
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}
