//! The HTTP plumbing shared by the network stores: one hyper client, request bodies fed from an
//! upload through a bounded channel, and error text that never carries a URL (signed URLs hold
//! credentials).

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;

use super::{ByteRange, DataSource, Error, Metered, Retrieved};
use crate::body::BoxError;

/// Request bodies sent to stores.
pub type OutBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The client the network stores share: http, or https through rustls.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, OutBody>;

/// Most bytes one read from a store connection may take. hyper's default (about 400 KiB) makes
/// a download from a fast origin cost a read, a wake-up and a window update every 400 KiB.
const READ_BUFFER_MAX: usize = 4 << 20;

/// Chunks buffered between an upload and the store request it feeds.
const CHANNEL_DEPTH: usize = 8;

/// Which certificate authorities https endpoints are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustRoots {
    /// The system's CA store.
    #[default]
    System,
    /// The PEM bundle at this path (`https_ca_certificates_file`).
    Bundle(std::path::PathBuf),
}

/// A new client for http and https endpoints. Fails only on an unreadable CA bundle.
pub fn new(roots: &TrustRoots) -> Result<HttpClient, Error> {
    use rustls_pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    match roots {
        TrustRoots::System => {
            // Unreadable system certificates only make https endpoints fail to verify.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
        }
        TrustRoots::Bundle(path) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| {
                Error::BadLocation(format!("cannot read CA bundle {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    Error::BadLocation(format!("bad certificate in {}: {e}", path.display()))
                })?;
                store.add(cert).map_err(|e| {
                    Error::BadLocation(format!("bad certificate in {}: {e}", path.display()))
                })?;
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Backend(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(store)
        .with_no_client_auth();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .http1_max_buf_size(READ_BUFFER_MAX)
        .build(https))
}

/// An empty request body.
pub fn empty() -> OutBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A request body holding `data`.
pub fn full(data: impl Into<Bytes>) -> OutBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request body fed through the returned sender; [`Sender::abort`] aborts the request.
fn channel_body() -> (Sender<Bytes, BoxError>, OutBody) {
    let (tx, body) = Channel::new(CHANNEL_DEPTH);
    (tx, body.boxed_unsync())
}

/// Sends `request` and returns the answer's head, its body left to the caller. Every store
/// request goes through here, so a failure to reach a store always reads the same and never
/// names the (possibly signed) URL.
pub async fn send(
    http: &HttpClient,
    request: Request<OutBody>,
    what: &str,
) -> Result<Response<Incoming>, Error> {
    http.request(request)
        .await
        .map_err(|e| Error::Unavailable(format!("{what} endpoint unreachable: {}", describe(&e))))
}

/// A store request started by [`send_streamed`] or [`send_full`], its answer still to come.
pub struct Sending {
    task: JoinHandle<Result<Response<Incoming>, Error>>,
    what: &'static str,
}

impl Sending {
    /// Waits for the answer's head (its body is left to the caller).
    pub async fn answer(self) -> Result<Response<Incoming>, Error> {
        let what = self.what;
        self.task
            .await
            .map_err(|e| Error::Backend(format!("{what} request task failed: {e}")))?
    }
}

/// Starts `request` (its body fed by the caller) on a task of its own.
fn start(http: &HttpClient, request: Request<OutBody>, what: &'static str) -> Sending {
    // A clone of the client is a few reference counts; the task must own what it uses.
    let http = http.clone();
    Sending {
        task: tokio::spawn(async move { send(&http, request, what).await }),
        what,
    }
}

/// Builds a request from `builder` and `body`.
pub fn build(
    builder: hyper::http::request::Builder,
    body: OutBody,
    what: &str,
) -> Result<Request<OutBody>, Error> {
    builder
        .body(body)
        .map_err(|e| Error::Backend(format!("cannot build {what} request: {e}")))
}

/// Starts the request of `builder` with a body of `data`, answered later through [`Sending`].
pub fn send_full(
    http: &HttpClient,
    builder: hyper::http::request::Builder,
    data: Bytes,
    what: &'static str,
) -> Result<Sending, Error> {
    let len = data.len();
    let request = build(builder.header(CONTENT_LENGTH, len), full(data), what)?;
    Ok(start(http, request, what))
}

/// Starts the request of `builder` with the `len` bytes of `source` as its body, fed from a task
/// of its own, answered later through [`Sending`]. A source that fails or ends short aborts the
/// request, which then answers with an error.
pub fn send_owned<S: DataSource + 'static>(
    http: &HttpClient,
    builder: hyper::http::request::Builder,
    mut source: S,
    len: u64,
    what: &'static str,
) -> Result<Sending, Error> {
    let (mut sender, body) = channel_body();
    let sending = start(
        http,
        build(builder.header(CONTENT_LENGTH, len), body, what)?,
        what,
    );
    tokio::spawn(async move {
        loop {
            match source.next_chunk().await {
                Ok(Some(chunk)) => {
                    if sender.send_data(chunk).await.is_err() {
                        // The request ended early; its own answer says why.
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    sender.abort(e.to_string().into());
                    return;
                }
            }
        }
    });
    Ok(sending)
}

/// How much of an upload a streamed request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Exactly this many bytes, sent with `Content-Length`; an upload that ends sooner fails.
    Exact(u64),
    /// At most this many bytes, fewer if the upload ends first, sent chunked.
    UpTo(u64),
}

/// Starts the request of `builder` and streams the `span` of `source` that comes next as its body.
/// Returns once the body is handed over, with the number of bytes sent; the answer comes through
/// [`Sending::answer`], so a caller may feed its next request meanwhile. Nothing is buffered
/// beyond the channel's few chunks. If the source fails (or ends before an exact span), the
/// request is aborted and has ended when the error is returned.
pub async fn send_streamed<S: DataSource>(
    http: &HttpClient,
    builder: hyper::http::request::Builder,
    source: &mut Metered<'_, S>,
    span: Span,
    what: &'static str,
) -> Result<(Sending, u64), Error> {
    let (builder, limit) = match span {
        Span::Exact(len) => (builder.header(CONTENT_LENGTH, len), len),
        Span::UpTo(len) => (builder, len),
    };
    let (sender, body) = channel_body();
    let sending = start(http, build(builder, body, what)?, what);
    let fed = match feed(source, sender, limit).await {
        Ok(sent) if sent < limit && matches!(span, Span::Exact(_)) => {
            Err(Error::ClientDisconnected(format!(
                "the upload ended {} bytes before its announced size",
                limit - sent
            )))
        }
        other => other,
    };
    match fed {
        Ok(sent) => Ok((sending, sent)),
        Err(e) => {
            let _ = sending.task.await;
            Err(e)
        }
    }
}

/// Sends the next `limit` bytes of `source` (fewer if it ends first) into a channel body; the
/// rest of a chunk that crosses the limit is pushed back for the next read. A source failure is
/// passed on (so the store request is aborted) and returned.
async fn feed<S: DataSource>(
    source: &mut Metered<'_, S>,
    mut sender: Sender<Bytes, BoxError>,
    limit: u64,
) -> Result<u64, Error> {
    let mut sent = 0u64;
    while sent < limit {
        match source.next_chunk().await {
            Ok(Some(mut chunk)) => {
                let room = limit - sent;
                if chunk.len() as u64 > room {
                    source.push_back(chunk.split_off(room as usize));
                }
                sent += chunk.len() as u64;
                if sender.send_data(chunk).await.is_err() {
                    // The request ended early; its own answer says why.
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                sender.abort(e.to_string().into());
                return Err(e);
            }
        }
    }
    Ok(sent)
}

/// Sends a request and reads the whole (small) answer.
pub async fn call(
    http: &HttpClient,
    method: Method,
    url: &str,
    body: OutBody,
    length: Option<u64>,
    what: &str,
) -> Result<(StatusCode, Bytes), Error> {
    let mut builder = Request::builder().method(method).uri(url);
    if let Some(len) = length {
        builder = builder.header(CONTENT_LENGTH, len);
    }
    call_with_headers(http, builder, body, what)
        .await
        .map(|(status, body, _)| (status, body))
}

/// Sends the request of `builder` with `body` and reads the whole (small) answer, headers too.
pub async fn call_with_headers(
    http: &HttpClient,
    builder: hyper::http::request::Builder,
    body: OutBody,
    what: &str,
) -> Result<(StatusCode, Bytes, HeaderMap), Error> {
    let response = send(http, build(builder, body, what)?, what).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Unavailable(format!("reading the {what} answer failed: {e}")))?
        .to_bytes();
    Ok((status, body, headers))
}

/// The (small) body of an answer that is read only for its error text; empty if it cannot be read.
pub async fn answer_text(response: Response<Incoming>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// A store answer as image data: the body streamed, the size from `Content-Length`.
pub fn retrieved(response: Response<Incoming>) -> Retrieved {
    let size = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Retrieved {
        body: response.into_body().map_err(BoxError::from).boxed(),
        size,
        range: None,
    }
}

/// A successful store answer to a request for `asked` (sent with [`ByteRange::range_header`])
/// as image data: a 206 must carry exactly that range in its `Content-Range` (anything else is
/// refused rather than passed on as the wrong bytes); a 200 is the whole data, from an origin
/// that ignores `Range`.
pub fn retrieved_range(
    response: Response<Incoming>,
    asked: Option<ByteRange>,
    what: &str,
) -> Result<Retrieved, Error> {
    let Some(asked) = asked else {
        return Ok(retrieved(response));
    };
    if response.status() != StatusCode::PARTIAL_CONTENT {
        return Ok(retrieved(response));
    }
    let sent = response
        .headers()
        .get(hyper::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::from_content_range);
    if sent != Some(asked) {
        return Err(Error::Backend(format!(
            "{what} answered range {sent:?} to a request for {}-{}",
            asked.first, asked.last
        )));
    }
    Ok(Retrieved {
        range: Some(asked),
        ..retrieved(response)
    })
}

/// The cause chain of a client error, without the request URL.
pub fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
