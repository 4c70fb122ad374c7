//! The one support layer of every integration suite:
//!
//! * `http` – the one HTTP client on hyper (`Http`, `fetch_url`) and its whole [`Reply`]
//!   (status, headers, body text/JSON, the §5.9 error assertion), bodies of every kind
//!   ([`Payload`]) and downloads hashed as they stream (`Download`).
//! * `glint` – the real `glint` binary: `glint_command`, a child killed by PID on drop
//!   ([`GlintProcess`], with `glint registry` on a free port), a run to completion
//!   ([`run_glint`]).
//! * `images` – the image service (`glint serve`, or `glint registry` + `glint api`) on free
//!   loopback ports over fresh data dirs ([`ImageServer`], [`Shape`]) and the Images API
//!   helpers ([`ApiClient`]).
//! * `registry` – the Registry API in-process ([`TestServer`]) and its client
//!   ([`RegistryClient`]).
//! * `services` – the real servers (S3, Swift, nginx, Keystone) from the environment
//!   ([`service_vars`], `GLINT_REQUIRE_STORES=1` makes a missing one fatal), store
//!   configurations, and direct S3/Swift clients.
//! * `proxies` – real Varnish and Squid started per test in front of a test's glint
//!   ([`proxies::Proxy`]), stopped by PID on drop.
//! * `cli` – running the `glint` command-line client (pipes, a pty, a watchdog).
//! * `fixtures` – the one data generator ([`test_data`], `DataGen`), MD5, ids, polling.

pub mod cli;
pub mod fixtures;
pub mod glint;
pub mod http;
pub mod images;
pub mod proxies;
pub mod registry;
pub mod services;

pub use fixtures::{
    eventually, fresh_seed, generated_md5, id_of, ids_of, keys_of, md5_hex, random_image,
    test_data, BRIEF_KEYS, MIB,
};
pub use glint::{run_glint, GlintProcess};
pub use http::{Payload, Reply};
pub use images::{close, ApiClient, ImageServer, Shape, ALL_IMAGES};
pub use registry::{RegistryClient, TestServer};
pub use services::service_vars;
