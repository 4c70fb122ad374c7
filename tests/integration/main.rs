//! glint's integration tests: one binary (so it links once) that starts the real services on
//! `127.0.0.1:0`, in-process or as the `glint` executable, and speaks HTTP to them.
//!
//! * `support` – the one support layer of every suite (see its module documentation): one HTTP
//!   client, one way to start `glint`, the real servers, fixtures.
//! * `registry_api` – the Registry API over HTTP (spec §5.9, §7, §8, §9).
//! * `registry_binary` – the `glint` executable: signals, durability after `kill -9`, config.
//! * `images_api` – the Images API in both deployment shapes, and python-glanceclient.
//! * `cli` – the `glint` command-line client against a real server.
//! * `proxies` – `glint serve` behind real Varnish and Squid: cached downloads served once,
//!   resumed downloads, revalidation and purges.
//! * `stores` – the S3, Swift and HTTP stores against real servers (started by scripts/test.sh),
//!   the object-store tests written once and run against each store.
//! * `full_disk` – the store's and the registry's disks full, on tmpfs mounts of their own.
//! * `hostile` – slow, stalled, crowding and oversized clients against the server's limits.
//! * `torture` – `glint serve` killed at random instants under a writer load, checked each
//!   round against what the clients were told.

#![allow(clippy::unwrap_used)]

mod cli;
mod full_disk;
mod hostile;
mod images_api;
mod proxies;
mod registry_api;
mod registry_binary;
mod stores;
mod support;
mod torture;
