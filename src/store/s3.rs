//! The S3 store (Amazon S3 and compatible servers such as Ceph radosgw): AWS Signature V4 through
//! `rusty-s3`'s sans-IO signer, requests through the hyper client. An upload of known size below
//! the multipart threshold is streamed as one sized PUT; anything else goes as a multipart upload
//! of fixed-size parts, at most two parts in memory (one uploading, one filling), aborted on any
//! failure. Credentials come from the configuration (or the location) and never appear in a
//! location, an error message or a log line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::header::{CONTENT_LENGTH, ETAG};
use hyper::{Method, Request, StatusCode};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::http_client::{self, HttpClient, OutBody};
use super::{DataSource, Error, Location, Metered, Retrieved};

/// How long a signed request stays valid.
const SIGNATURE_TTL: Duration = Duration::from_secs(3600);

/// Smallest part S3 accepts (except the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// The S3 store's settings (`s3_store_*` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL, `http(s)://host[:port]`.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Bucket that receives uploads.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Path-style (`host/bucket/key`) rather than virtual-host (`bucket.host/key`) URLs.
    pub path_style: bool,
    /// Create the bucket if it does not exist when uploading.
    pub create_bucket_on_put: bool,
    /// Uploads of known size up to this many bytes go as one PUT.
    pub multipart_threshold: u64,
    /// Size of each multipart part, in bytes (at least [`MIN_PART_SIZE`]).
    pub part_size: u64,
}

/// Where an object lives: endpoint, bucket and key, plus credentials if the location carried any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// Whether the endpoint speaks https.
    pub secure: bool,
    /// `host[:port]` of the endpoint.
    pub host: String,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// `(access key, secret key)` from a Glance-style `s3://ak:sk@host/...` location.
    pub credentials: Option<(String, String)>,
}

/// The S3 store.
pub struct S3 {
    config: S3Config,
    credentials: Credentials,
    bucket: Bucket,
    http: HttpClient,
    /// Set once the bucket is known to exist (when creating buckets on put).
    bucket_ready: AtomicBool,
}

impl S3 {
    /// A store for `config`; fails on an endpoint that is not an http(s) URL.
    pub fn new(config: S3Config, http: HttpClient) -> Result<S3, Error> {
        let bucket = make_bucket(
            &config.endpoint,
            &config.bucket,
            &config.region,
            config.path_style,
        )?;
        Ok(S3 {
            credentials: Credentials::new(config.access_key.clone(), config.secret_key.clone()),
            bucket,
            http,
            bucket_ready: AtomicBool::new(false),
            config,
        })
    }

    /// The location of `key` in the configured bucket.
    fn location_of(&self, key: &str) -> Location {
        let url = self.bucket.base_url();
        let secure = url.scheme() == "https";
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let endpoint_host = endpoint_host(&self.config.endpoint).unwrap_or(host);
        Location::S3(S3Location {
            secure,
            host: endpoint_host,
            bucket: self.config.bucket.clone(),
            key: key.to_string(),
            credentials: None,
        })
    }

    /// The bucket and credentials that serve `loc`.
    fn resolve(&self, loc: &S3Location) -> Result<(Bucket, Credentials), Error> {
        let credentials = match &loc.credentials {
            Some((ak, sk)) => Credentials::new(ak.clone(), sk.clone()),
            None => self.credentials.clone(),
        };
        let scheme = if loc.secure { "https" } else { "http" };
        let bucket = make_bucket(
            &format!("{scheme}://{}", loc.host),
            &loc.bucket,
            &self.config.region,
            self.config.path_style,
        )?;
        Ok((bucket, credentials))
    }

    /// Streams `source` into the object `key`.
    pub async fn put<S: DataSource>(
        &self,
        key: &str,
        source: &mut Metered<'_, S>,
    ) -> Result<Location, Error> {
        self.ensure_bucket().await?;
        match source.size_hint() {
            Some(size) if size <= self.config.multipart_threshold => {
                self.put_single(key, source, size).await?;
            }
            _ => self.put_multipart(key, source).await?,
        }
        Ok(self.location_of(key))
    }

    async fn ensure_bucket(&self) -> Result<(), Error> {
        if !self.config.create_bucket_on_put || self.bucket_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(SIGNATURE_TTL);
        let (status, body) = self
            .call(Method::PUT, url.as_str(), http_client::empty(), None)
            .await?;
        // 409 BucketAlreadyOwnedByYou / BucketAlreadyExists: it is there.
        if status.is_success() || status == StatusCode::CONFLICT {
            self.bucket_ready.store(true, Ordering::Relaxed);
            Ok(())
        } else {
            Err(self.failure("creating the bucket", status, &body))
        }
    }

    /// One PUT with a known length, the body streamed through a bounded channel.
    async fn put_single<S: DataSource>(
        &self,
        key: &str,
        source: &mut Metered<'_, S>,
        size: u64,
    ) -> Result<(), Error> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNATURE_TTL);
        let (sender, body) = http_client::channel_body();
        let request = Request::builder()
            .method(Method::PUT)
            .uri(url.as_str())
            .header(CONTENT_LENGTH, size)
            .body(body)
            .map_err(|e| Error::Backend(format!("cannot build S3 request: {e}")))?;
        let sending = tokio::spawn(self.http.request(request));
        let fed = http_client::feed(source, sender).await;
        let response = sending
            .await
            .map_err(|e| Error::Backend(format!("S3 upload task failed: {e}")))?;
        fed?;
        let response = response.map_err(|e| {
            Error::Unavailable(format!(
                "S3 endpoint unreachable: {}",
                http_client::describe(&e)
            ))
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !status.is_success() {
            return Err(self.failure("uploading the object", status, &body));
        }
        Ok(())
    }

    async fn put_multipart<S: DataSource>(
        &self,
        key: &str,
        source: &mut Metered<'_, S>,
    ) -> Result<(), Error> {
        let part_size = self.config.part_size.max(MIN_PART_SIZE) as usize;
        let first = source.fill(part_size).await?;
        if first.len() < part_size {
            // The whole image fits in one part: a single PUT of the buffer.
            return self.put_buffer(key, first.freeze()).await;
        }
        let url = self
            .bucket
            .create_multipart_upload(Some(&self.credentials), key)
            .sign(SIGNATURE_TTL);
        let (status, body) = self
            .call(Method::POST, url.as_str(), http_client::empty(), None)
            .await?;
        if !status.is_success() {
            return Err(self.failure("starting a multipart upload", status, &body));
        }
        let text = String::from_utf8_lossy(&body);
        let upload_id = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|e| Error::Backend(format!("S3 sent a malformed multipart answer: {e}")))?
            .upload_id()
            .to_string();
        match self
            .upload_parts(key, &upload_id, first, source, part_size)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let url = self
                    .bucket
                    .abort_multipart_upload(Some(&self.credentials), key, &upload_id)
                    .sign(SIGNATURE_TTL);
                match self
                    .call(Method::DELETE, url.as_str(), http_client::empty(), None)
                    .await
                {
                    Ok((status, _)) if status.is_success() => {}
                    Ok((status, _)) => {
                        crate::error!("aborting S3 multipart upload of {key} answered {status}")
                    }
                    Err(abort) => {
                        crate::error!("aborting S3 multipart upload of {key} failed: {abort}")
                    }
                }
                Err(e)
            }
        }
    }

    async fn upload_parts<S: DataSource>(
        &self,
        key: &str,
        upload_id: &str,
        first: BytesMut,
        source: &mut Metered<'_, S>,
        part_size: usize,
    ) -> Result<(), Error> {
        let mut etags: Vec<String> = Vec::new();
        let mut in_flight: Option<tokio::task::JoinHandle<Result<String, Error>>> = None;
        let mut part = first;
        let mut number: u16 = 1;
        loop {
            let url = self
                .bucket
                .upload_part(Some(&self.credentials), key, number, upload_id)
                .sign(SIGNATURE_TTL);
            let upload = {
                let http = self.http.clone();
                let data = part.freeze();
                async move { put_part(http, url.to_string(), data, number).await }
            };
            if let Some(previous) = in_flight.take() {
                etags.push(join_part(previous).await?);
            }
            in_flight = Some(tokio::spawn(upload));
            part = match source.fill(part_size).await {
                Ok(part) => part,
                Err(e) => {
                    // No part may still be uploading when the caller aborts the upload.
                    if let Some(last) = in_flight.take() {
                        let _ = join_part(last).await;
                    }
                    return Err(e);
                }
            };
            if part.is_empty() {
                break;
            }
            number = number.checked_add(1).ok_or_else(|| {
                Error::Backend("image needs more than 65535 S3 parts; raise the part size".into())
            })?;
        }
        if let Some(last) = in_flight.take() {
            etags.push(join_part(last).await?);
        }
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNATURE_TTL);
        let body = action.body();
        let (status, answer) = self
            .call(Method::POST, url.as_str(), http_client::full(body), None)
            .await?;
        // S3 may answer 200 with an error document when completing.
        if !status.is_success() || String::from_utf8_lossy(&answer).contains("<Error>") {
            return Err(self.failure("completing the multipart upload", status, &answer));
        }
        Ok(())
    }

    async fn put_buffer(&self, key: &str, data: Bytes) -> Result<(), Error> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNATURE_TTL);
        let len = data.len() as u64;
        let (status, body) = self
            .call(
                Method::PUT,
                url.as_str(),
                http_client::full(data),
                Some(len),
            )
            .await?;
        if !status.is_success() {
            return Err(self.failure("uploading the object", status, &body));
        }
        Ok(())
    }

    /// Streams the object at `loc`.
    pub async fn get(&self, loc: &S3Location) -> Result<Retrieved, Error> {
        let (bucket, credentials) = self.resolve(loc)?;
        let url = bucket
            .get_object(Some(&credentials), &loc.key)
            .sign(SIGNATURE_TTL);
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .body(http_client::empty())
            .map_err(|e| Error::Backend(format!("cannot build S3 request: {e}")))?;
        let response = self.http.request(request).await.map_err(|e| {
            Error::Unavailable(format!(
                "S3 endpoint unreachable: {}",
                http_client::describe(&e)
            ))
        })?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "S3 object {}/{}",
                loc.bucket, loc.key
            )));
        }
        if !status.is_success() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(self.failure_in(&loc.bucket, "reading the object", status, &body));
        }
        Ok(http_client::retrieved(response))
    }

    /// Deletes the object at `loc`.
    pub async fn delete(&self, loc: &S3Location) -> Result<(), Error> {
        let (bucket, credentials) = self.resolve(loc)?;
        let head = bucket
            .head_object(Some(&credentials), &loc.key)
            .sign(SIGNATURE_TTL);
        let (status, _) = self
            .call(Method::HEAD, head.as_str(), http_client::empty(), None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "S3 object {}/{}",
                loc.bucket, loc.key
            )));
        }
        let url = bucket
            .delete_object(Some(&credentials), &loc.key)
            .sign(SIGNATURE_TTL);
        let (status, body) = self
            .call(Method::DELETE, url.as_str(), http_client::empty(), None)
            .await?;
        if !status.is_success() {
            return Err(self.failure_in(&loc.bucket, "deleting the object", status, &body));
        }
        Ok(())
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: OutBody,
        length: Option<u64>,
    ) -> Result<(StatusCode, Bytes), Error> {
        http_client::call(&self.http, method, url, body, length, "S3").await
    }

    /// A store error for an S3 answer, with S3's error code but never the signed URL.
    fn failure(&self, doing: &str, status: StatusCode, body: &[u8]) -> Error {
        self.failure_in(&self.config.bucket, doing, status, body)
    }

    /// Like [`S3::failure`], for a request to `bucket`.
    fn failure_in(&self, bucket: &str, doing: &str, status: StatusCode, body: &[u8]) -> Error {
        let text = String::from_utf8_lossy(body);
        let code = text
            .split("<Code>")
            .nth(1)
            .and_then(|rest| rest.split("</Code>").next())
            .unwrap_or("");
        let message = format!("S3 refused {doing} in bucket {bucket}: {status} {code}");
        match status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Error::Forbidden(message),
            StatusCode::NOT_FOUND => Error::NotFound(message),
            _ => Error::Backend(message),
        }
    }
}

async fn put_part(
    http: HttpClient,
    url: String,
    data: Bytes,
    number: u16,
) -> Result<String, Error> {
    let len = data.len() as u64;
    let (status, body, headers) = http_client::call_with_headers(
        &http,
        Method::PUT,
        &url,
        http_client::full(data),
        Some(len),
        "S3",
    )
    .await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(Error::Backend(format!(
            "S3 refused part {number}: {status} {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::Backend(format!("S3 sent no ETag for part {number}")))
}

async fn join_part(task: tokio::task::JoinHandle<Result<String, Error>>) -> Result<String, Error> {
    task.await
        .map_err(|e| Error::Backend(format!("S3 part upload task failed: {e}")))?
}

fn make_bucket(
    endpoint: &str,
    bucket: &str,
    region: &str,
    path_style: bool,
) -> Result<Bucket, Error> {
    let url: url::Url = endpoint
        .parse()
        .map_err(|_| Error::BadLocation(format!("S3 endpoint '{endpoint}' is not a URL")))?;
    let style = if path_style {
        UrlStyle::Path
    } else {
        UrlStyle::VirtualHost
    };
    Bucket::new(url, style, bucket.to_string(), region.to_string())
        .map_err(|e| Error::BadLocation(format!("S3 bucket '{bucket}' at '{endpoint}': {e}")))
}

fn endpoint_host(endpoint: &str) -> Option<String> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_string())
}
