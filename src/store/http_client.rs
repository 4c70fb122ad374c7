//! The HTTP plumbing shared by the network stores: one hyper client, request bodies fed from an
//! upload through a bounded channel, and error text that never carries a URL (signed URLs hold
//! credentials).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use super::{DataSource, Error, Metered, Retrieved};
use crate::http::body::BoxError;

/// Request bodies sent to stores.
pub type OutBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The client the network stores share: http, or https through rustls.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, OutBody>;

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
    Ok(Client::builder(TokioExecutor::new()).build(https))
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

/// A request body fed through the returned sender; an `Err` sent aborts the request.
pub fn channel_body() -> (mpsc::Sender<Result<Bytes, BoxError>>, OutBody) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    (tx, ChannelBody { rx }.boxed_unsync())
}

struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

/// Sends every chunk of `source` into a channel body. A source failure is passed on (so the store
/// request is aborted) and returned.
pub async fn feed<S: DataSource>(
    source: &mut Metered<'_, S>,
    sender: mpsc::Sender<Result<Bytes, BoxError>>,
) -> Result<(), Error> {
    loop {
        match source.next_chunk().await {
            Ok(Some(chunk)) => {
                if sender.send(Ok(chunk)).await.is_err() {
                    // The request ended early; its own result says why.
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                let _ = sender.send(Err(e.to_string().into())).await;
                return Err(e);
            }
        }
    }
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
    call_with_headers(http, method, url, body, length, what)
        .await
        .map(|(status, body, _)| (status, body))
}

/// Like [`call`], also returning the answer's headers.
pub async fn call_with_headers(
    http: &HttpClient,
    method: Method,
    url: &str,
    body: OutBody,
    length: Option<u64>,
    what: &str,
) -> Result<(StatusCode, Bytes, HeaderMap), Error> {
    let mut builder = Request::builder().method(method).uri(url);
    if let Some(len) = length {
        builder = builder.header(CONTENT_LENGTH, len);
    }
    let request = builder
        .body(body)
        .map_err(|e| Error::Backend(format!("cannot build {what} request: {e}")))?;
    let response = http.request(request).await.map_err(|e| {
        Error::Unavailable(format!("{what} endpoint unreachable: {}", describe(&e)))
    })?;
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
    }
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
