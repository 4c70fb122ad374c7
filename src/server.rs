//! The accept loop: serves a [`Handler`] on a listener until a shutdown signal, then stops
//! accepting and lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::http::body::Body;
use crate::http::request_id::{RequestIds, REQUEST_ID_HEADER};
use crate::log::__tracing::Instrument;

/// Most request headers the Images API accepts: an image with the full property quota (128)
/// plus every core field and the usual request headers fits. The Registry API (JSON bodies)
/// keeps hyper's default of 100, which parses on the stack; a larger limit costs a heap buffer
/// per request.
pub const API_MAX_HEADERS: usize = 256;

/// How long a client may take to send its request headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight requests may run after a shutdown signal before connections are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Something that answers HTTP requests. Every failure is already a response: a handler never
/// returns an error, so hyper never drops a connection without answering.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// The address a request came from, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

/// Serves `handler` on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    max_headers: Option<usize>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    if let Some(max) = max_headers {
        builder.max_headers(max);
    }
    let graceful = GracefulShutdown::new();
    let ids = Arc::new(RequestIds::default());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving the others.
                        crate::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let ids = ids.clone();
                let service = service_fn(move |mut req: Request<Incoming>| {
                    let handler = handler.clone();
                    req.extensions_mut().insert(Peer(peer));
                    let given = req.headers().get(REQUEST_ID_HEADER).map(|v| v.as_bytes());
                    let id = ids.for_request(given);
                    async move {
                        let span = crate::log::request_span(&id);
                        let mut resp = handler.handle(req).instrument(span).await;
                        if let Ok(value) = HeaderValue::from_str(&id) {
                            resp.headers_mut().insert(REQUEST_ID_HEADER, value);
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        crate::debug!("connection from {peer} ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            crate::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
}
