//! Clients of glint's HTTP APIs, on the hyper client. They reuse the server's codecs, so client
//! and server agree by construction.

pub mod registry;
