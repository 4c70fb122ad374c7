//! The accept loop: serves a [`Handler`] on a listener until a shutdown signal, then stops
//! accepting and lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// What a server allows its clients, so that no client can hold a connection, a task or memory
/// without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// Most request headers (hyper answers 431 beyond); `None` keeps hyper's 100.
    pub max_headers: Option<usize>,
    /// How long a client may take to send a request's headers, and how long an idle keep-alive
    /// connection stays open (`client_header_timeout`, the slowloris guard).
    pub header_timeout: Duration,
    /// How long a connection may go without a byte moving either way before it is closed
    /// (`client_socket_timeout`; an upload that stalls, a download nobody reads); `None`: never.
    pub socket_timeout: Option<Duration>,
    /// Most connections served at once (`max_connections`); beyond, a connection gets a 503 and
    /// is closed. 0: no limit.
    pub max_connections: usize,
    /// Longest header line (name and value) accepted, in bytes (`max_header_line`); longer
    /// answers 431.
    pub max_header_line: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_headers: None,
            header_timeout: Duration::from_secs(30),
            socket_timeout: Some(Duration::from_secs(900)),
            max_connections: 4096,
            max_header_line: 16384,
        }
    }
}

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

/// Serves `handler` on `listener` within `limits` until `shutdown` resolves, then drains open
/// connections.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: ClientLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    if let Some(max) = limits.max_headers {
        builder.max_headers(max);
    }
    let open = Arc::new(AtomicUsize::new(0));
    let max_header_line = limits.max_header_line;
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
                let Some(slot) = Slot::take(&open, limits.max_connections) else {
                    tokio::spawn(refuse(stream, limits.max_connections));
                    continue;
                };
                let handler = handler.clone();
                let ids = ids.clone();
                let service = service_fn(move |mut req: Request<Incoming>| {
                    let handler = handler.clone();
                    req.extensions_mut().insert(Peer(peer));
                    let given = req.headers().get(REQUEST_ID_HEADER).map(|v| v.as_bytes());
                    let id = ids.for_request(given);
                    let too_long = longest_header_line(&req) > max_header_line;
                    async move {
                        let span = crate::log::request_span(&id);
                        let mut resp = if too_long {
                            header_line_too_long(max_header_line)
                        } else {
                            handler.handle(req).instrument(span).await
                        };
                        if let Ok(value) = HeaderValue::from_str(&id) {
                            resp.headers_mut().insert(REQUEST_ID_HEADER, value);
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let io = TokioIo::new(Watched::new(stream, limits.socket_timeout));
                let conn = builder.serve_connection(io, service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        crate::debug!("connection from {peer} ended: {e}");
                    }
                    drop(slot);
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

/// One of the `max_connections` places, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place if fewer than `max` are taken (always, when `max` is 0).
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let taken = open.fetch_add(1, Ordering::AcqRel);
        if max != 0 && taken >= max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a refused connection's request is read (and ignored) after the 503, so that the
/// client reads the answer rather than a reset.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Answers a connection beyond `max_connections` with a 503 that says so, and closes it.
async fn refuse(mut stream: tokio::net::TcpStream, max: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    crate::warn!("refusing a connection: {max} connections are open (max_connections)");
    let body = format!(
        "503 Service Unavailable\n\nThe server has {max} connections open (max_connections); try again later.\n"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The length of the request's longest header line (`name: value`).
fn longest_header_line(req: &Request<Incoming>) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len())
        .max()
        .unwrap_or(0)
}

/// 431 for a header line longer than `max_header_line`.
fn header_line_too_long(max: usize) -> Response<Body> {
    let mut resp = Response::new(crate::http::body::full(format!(
        "431 Request Header Fields Too Large\n\nA header line is longer than {max} bytes (max_header_line).\n"
    )));
    *resp.status_mut() = hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    resp.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A connection that fails with `TimedOut` once no byte has moved either way for the socket
/// timeout: a read may wait that long while the response is being written, and the other way
/// round, but a silent client (an upload that stalls, a download nobody reads) is let go.
struct Watched<S> {
    inner: S,
    timeout: Option<Duration>,
    /// When a byte last moved.
    last_progress: tokio::time::Instant,
    /// Fires at `last_progress + timeout` while a read or a write waits.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Watched<S> {
    fn new(inner: S, timeout: Option<Duration>) -> Self {
        Watched {
            inner,
            timeout,
            last_progress: tokio::time::Instant::now(),
            timer: None,
        }
    }

    fn progressed(&mut self) {
        self.last_progress = tokio::time::Instant::now();
    }

    /// Notes a write's progress, or checks the silence when it could not proceed.
    fn after_write(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<usize>>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        match polled {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.check_silence(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// Called when the inner stream is not ready: an error once the connection has been
    /// silent for the timeout, otherwise arranges to be woken when it would be.
    fn check_silence(&mut self, cx: &mut std::task::Context<'_>) -> std::io::Result<()> {
        let Some(timeout) = self.timeout else {
            return Ok(());
        };
        let deadline = self.last_progress + timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no data moved for {timeout:?} (client_socket_timeout)"),
            )),
            std::task::Poll::Pending => Ok(()),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.check_silence(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
