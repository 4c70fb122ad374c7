//! The byte-stream types that every layer passes along: a boxed body of response or store data
//! and its error. A leaf like [`crate::model`], so that [`crate::http`], [`crate::store`] and
//! [`crate::client`] can share them without importing each other.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// The error a body stream can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response glint sends, and of image data read from a store: whole buffers
/// or a stream of chunks.
pub type Body = BoxBody<Bytes, BoxError>;
