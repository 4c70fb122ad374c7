//! The HTTP services: glue between the pure [`crate::http`] code and the [`crate::registry`].
//! Every failure passes through [`error::Error`], the one error→status map.

mod access;
pub mod catalog;
mod convert;
mod download;
pub mod error;
mod health;
pub mod images;
mod recovery;
pub mod registry;
mod request;
mod upload;
mod v1;
mod v2;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::http::body::{full, Body};
pub use error::Error;

/// A JSON response.
pub(crate) fn json_response(
    status: StatusCode,
    value: &impl Serialize,
) -> Result<Response<Body>, Error> {
    let bytes = serde_json::to_vec(value).map_err(Error::Encode)?;
    Ok(json_bytes_response(status, bytes))
}

/// A JSON response of JSON already written.
pub(crate) fn json_bytes_response(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(json));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
