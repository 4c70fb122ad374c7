//! Pure HTTP-facing code: path matching, query parsing, request body decoding and response body
//! types. No sockets, no sled, no tokio: this is the fuzz and property-test surface.

pub mod body;
pub mod conditional;
pub mod image_json;
pub mod image_v2;
pub mod json_out;
pub mod json_patch;
pub mod members_json;
pub mod meta_headers;
pub mod query;
pub mod range;
pub mod request_id;
pub mod route;
pub mod route_v2;
pub mod wire;
