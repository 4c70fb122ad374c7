//! The baseline of the wrk benchmark: the smallest reasonable hyper 1 HTTP/1 server on a
//! multi-thread tokio runtime, answering every request with the same small JSON body (about the
//! size of one registry image record).
//!
//! ```text
//! cargo run --release --example minimal_hyper -- --port 9999
//! ```
//!
//! Listens on 127.0.0.1 only; `--port 0` picks a free port. Prints
//! `minimal_hyper: listening on http://ADDR` on stderr once ready. Like `glint`, it sets
//! `TCP_NODELAY`, so the two differ only in what happens between request and response.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One image record as `GET /images/{id}` returns it for a seeded image (same fields and size).
const BODY: &str = r#"{"image":{"id":"9a5c1bcb-1c6e-4f3a-8d2e-6b5e4a3f2d10","name":"ubuntu-24.04-0500003","status":"active","size":512000512,"virtual_size":2048002048,"disk_format":"qcow2","container_format":"bare","checksum":"6f1ed002ab5595859014ebf0951522d9","location":"file:///var/lib/glint/images/9a5c1bcb-1c6e-4f3a-8d2e-6b5e4a3f2d10","is_public":true,"owner":"3f0e8c1b8dd2e6a3a4c3f6d1e2b7a905","protected":false,"min_disk":17,"min_ram":2048,"created_at":"2025-01-01T12:00:00.000000","updated_at":"2025-01-01T12:00:00.000000","deleted_at":null,"deleted":false,"properties":{"architecture":"x86_64","os_distro":"ubuntu-24.04"}}}"#;

async fn answer(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut port = 3000u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) => port = p.parse().expect("--port takes a port number"),
            _ => {
                eprintln!("usage: minimal_hyper [--port PORT]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    eprintln!(
        "minimal_hyper: listening on http://{}",
        listener.local_addr().unwrap()
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("minimal_hyper: accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
