//! Clients of glint's HTTP APIs, on the hyper client. They reuse the server's codecs, so client
//! and server agree by construction.

pub mod images;
pub mod registry;

pub use images::{Client, Download, Error, ImageSummary, Upload};
