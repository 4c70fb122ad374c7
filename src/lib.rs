//! glint: an OpenStack Glance compatible image service (Images API v1 and v2, Registry API).
//!
//! Module map (dependencies point down: `registry`, `store` and `client` never import each other,
//! `auth` or `api`; `http` is pure codecs the others share, and `metrics`, `log`, `model`,
//! `patch`, `body`, `timestamp` and `journal` are leaves any module may use):
//!
//! * [`cli`] – command-line parsing, the server commands and the image commands.
//! * [`server`] – the accept loop with graceful shutdown, generic over a [`server::Handler`].
//! * [`api`] – the HTTP services (Images API and Registry API), the catalog over a local or
//!   remote registry, and the one error→status map.
//! * [`auth`] – request contexts (tokens file, Keystone v3), policy rules and the §13 access
//!   rules; uses the stores' https client to reach Keystone.
//! * [`client`] – typed clients of the Images API and the Registry API.
//! * [`convert`] – disk image conversion with `qemu-img` under limits, through temporary files;
//!   uses `inspect` and the store's `DataSource`.
//! * [`http`] – pure codecs: path matcher, query strings, meta headers, JSON bodies, wire names.
//! * [`registry`] – image records in sled with secondary indexes.
//! * [`store`] – image data: filesystem, S3, Swift and the read-only HTTP store.
//! * [`config`] – Glance-style INI file, `GLINT_*` environment and flags, resolved once.
//! * [`log`] – logging through tracing, a span per request with its request id.
//! * [`metrics`] – the Prometheus metrics served at `/metrics`.
//! * [`journal`] – the uploads this API process has in flight, for recovery after a crash.
//! * [`model`], [`patch`], [`body`], [`timestamp`] – leaves: the image record and its members,
//!   partial updates, the shared byte-stream types, UTC times.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod auth;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod convert;
pub mod http;
pub mod inspect;
pub mod journal;
pub mod log;
pub mod metrics;
pub mod model;
pub mod patch;
pub mod registry;
pub mod server;
pub mod store;
pub mod timestamp;
