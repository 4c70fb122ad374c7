//! glint: an OpenStack Glance v1 compatible image service.
//!
//! Module map (dependencies point down):
//!
//! * [`cli`] – command-line parsing and the `serve` / `registry` commands.
//! * [`server`] – the accept loop with graceful shutdown, generic over a [`server::Handler`].
//! * [`api`] – the HTTP services: the Registry API handlers and the one error→status map.
//! * [`http`] – pure parsers: path matcher, query strings, request bodies.
//! * [`registry`] – image records in sled with secondary indexes.
//! * [`config`] – Glance-style INI file, `GLINT_*` environment and flags, resolved once.
//! * [`model`], [`patch`], [`timestamp`] – the image record, partial updates, UTC times.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod log;
pub mod model;
pub mod patch;
pub mod recovery;
pub mod registry;
pub mod server;
pub mod store;
pub mod timestamp;
