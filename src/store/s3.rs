//! The S3 store (Amazon S3 and compatible servers such as Ceph radosgw): AWS Signature V4 through
//! `rusty-s3`'s sans-IO signer, requests through the hyper client. An upload of known size below
//! the multipart threshold is streamed as one sized PUT; a larger one goes as a multipart upload
//! whose parts are streamed from the upload with their exact lengths, so memory does not grow with
//! the part size. An upload of unknown size is cut into parts spooled to unlinked files in the
//! data directory first (S3 needs a part's length up front; [`super::spool`]): at most two, one
//! uploading and one filling, and none of it in memory. A multipart upload
//! is aborted on any failure. Credentials come from the configuration (or the location) and never
//! appear in a location, an error message or a log line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::ETAG;
use hyper::{Method, Request, StatusCode};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::task::JoinHandle;

use super::http_client::{self, HttpClient, OutBody, Span};
use super::spool::Spooled;
use super::{ByteRange, DataSource, Error, Location, Metered, Retrieved};

/// How long a signed request stays valid.
const SIGNATURE_TTL: Duration = Duration::from_secs(3600);

/// Smallest part S3 accepts (except the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// Most parts S3 accepts in one multipart upload.
pub const MAX_PARTS: u16 = 10_000;

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
    /// Where the parts of uploads of unknown size wait until their length is known
    /// (`<data dir>/spool`).
    pub spool_dir: PathBuf,
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

    /// One PUT with a known length, the body streamed from the upload.
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
        let request = Request::builder().method(Method::PUT).uri(url.as_str());
        let (sending, _) =
            http_client::send_streamed(&self.http, request, source, Span::Exact(size), "S3")
                .await?;
        let response = sending.answer().await?;
        let status = response.status();
        if !status.is_success() {
            let body = http_client::answer_text(response).await;
            return Err(self.failure("uploading the object", status, &body));
        }
        Ok(())
    }

    /// A multipart upload: of parts streamed straight from the upload when its size is known,
    /// otherwise of parts spooled to disk first (S3 needs each part's length up front).
    async fn put_multipart<S: DataSource>(
        &self,
        key: &str,
        source: &mut Metered<'_, S>,
    ) -> Result<(), Error> {
        let part_size = self.config.part_size.max(MIN_PART_SIZE);
        let (parts, first) = match source.size_hint() {
            Some(size) => (Parts::streamed(size, part_size), None),
            None => {
                let first = Spooled::fill(&self.config.spool_dir, source, part_size).await?;
                if first.len() < part_size {
                    // The whole image fits in one part: a single PUT of the spooled part.
                    return self.put_spooled(key, first).await;
                }
                (Parts::Spooled { part_size }, Some(first))
            }
        };
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
            .upload_parts(key, &upload_id, parts, first, source)
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

    /// Sends every part, each one's answer awaited while the next is sent, then completes the
    /// upload. Returns only once no part request is running, so the caller may abort.
    async fn upload_parts<S: DataSource>(
        &self,
        key: &str,
        upload_id: &str,
        parts: Parts,
        mut spooled: Option<Spooled>,
        source: &mut Metered<'_, S>,
    ) -> Result<(), Error> {
        let mut etags: Vec<String> = Vec::new();
        let mut in_flight: Option<JoinHandle<Result<String, Error>>> = None;
        let result = async {
            for number in 1u16.. {
                let url = self
                    .bucket
                    .upload_part(Some(&self.credentials), key, number, upload_id)
                    .sign(SIGNATURE_TTL);
                let request = Request::builder().method(Method::PUT).uri(url.as_str());
                let sending = match parts {
                    Parts::Streamed {
                        size, part_size, ..
                    } => {
                        let start = (number as u64 - 1) * part_size;
                        let len = part_size.min(size - start);
                        let span = Span::Exact(len);
                        http_client::send_streamed(&self.http, request, source, span, "S3")
                            .await?
                            .0
                    }
                    Parts::Spooled { .. } => {
                        let part = spooled.take().ok_or_else(|| {
                            Error::Backend(format!("S3 part {number} of {key} was not spooled"))
                        })?;
                        let len = part.len();
                        http_client::send_owned(&self.http, request, part, len, "S3")?
                    }
                };
                if let Some(previous) = in_flight.take() {
                    etags.push(join_part(previous).await?);
                }
                in_flight = Some(tokio::spawn(part_etag(sending, number)));
                if number >= parts.count().unwrap_or(MAX_PARTS) {
                    if parts.count().is_none() && source.next_chunk().await?.is_some() {
                        return Err(too_many_parts());
                    }
                    break;
                }
                if let Parts::Spooled { part_size } = parts {
                    let part = Spooled::fill(&self.config.spool_dir, source, part_size).await?;
                    if part.is_empty() {
                        break;
                    }
                    spooled = Some(part);
                }
            }
            if let Some(last) = in_flight.take() {
                etags.push(join_part(last).await?);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // No part may still be uploading when the caller aborts the upload.
            if let Some(last) = in_flight.take() {
                let _ = join_part(last).await;
            }
            return Err(e);
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

    async fn put_spooled(&self, key: &str, part: Spooled) -> Result<(), Error> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNATURE_TTL);
        let request = Request::builder().method(Method::PUT).uri(url.as_str());
        let len = part.len();
        let response = http_client::send_owned(&self.http, request, part, len, "S3")?
            .answer()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = http_client::answer_text(response).await;
            return Err(self.failure("uploading the object", status, &body));
        }
        Ok(())
    }

    /// Streams the object at `loc`.
    pub async fn get(
        &self,
        loc: &S3Location,
        range: Option<ByteRange>,
    ) -> Result<Retrieved, Error> {
        let (bucket, credentials) = self.resolve(loc)?;
        let url = bucket
            .get_object(Some(&credentials), &loc.key)
            .sign(SIGNATURE_TTL);
        let mut builder = Request::builder().method(Method::GET).uri(url.as_str());
        // The presigned URL signs the host only, so a Range header needs no signature of its own.
        if let Some(r) = range {
            builder = builder.header(hyper::header::RANGE, r.range_header());
        }
        let request = http_client::build(builder, http_client::empty(), "S3")?;
        let response = http_client::send(&self.http, request, "S3").await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "S3 object {}/{}",
                loc.bucket, loc.key
            )));
        }
        if !status.is_success() {
            let body = http_client::answer_text(response).await;
            return Err(self.failure_in(&loc.bucket, "reading the object", status, &body));
        }
        http_client::retrieved_range(response, range, "S3")
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

    /// Removes what an interrupted upload of `key` left in the configured bucket: its unfinished
    /// multipart uploads and, when `with_object`, the object itself (absent is fine).
    pub async fn remove_leftovers(&self, key: &str, with_object: bool) -> Result<(), Error> {
        for upload_id in self.unfinished_uploads(key).await? {
            let url = self
                .bucket
                .abort_multipart_upload(Some(&self.credentials), key, &upload_id)
                .sign(SIGNATURE_TTL);
            let (status, body) = self
                .call(Method::DELETE, url.as_str(), http_client::empty(), None)
                .await?;
            if !status.is_success() && status != StatusCode::NOT_FOUND {
                return Err(self.failure("aborting a multipart upload", status, &body));
            }
            crate::warn!("aborted the unfinished S3 multipart upload of {key}");
        }
        if with_object {
            let url = self
                .bucket
                .delete_object(Some(&self.credentials), key)
                .sign(SIGNATURE_TTL);
            let (status, body) = self
                .call(Method::DELETE, url.as_str(), http_client::empty(), None)
                .await?;
            if !status.is_success() && status != StatusCode::NOT_FOUND {
                return Err(self.failure("deleting the object", status, &body));
            }
        }
        Ok(())
    }

    /// The ids of the multipart uploads of exactly `key` that were started and never completed
    /// or aborted (`ListMultipartUploads`, signed with rusty-s3's signer: it has no action for it).
    pub async fn unfinished_uploads(&self, key: &str) -> Result<Vec<String>, Error> {
        let query = [("prefix", key), ("uploads", "")];
        let url = rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            rusty_s3::Method::Get,
            self.bucket.base_url().clone(),
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            SIGNATURE_TTL.as_secs(),
            query.iter().copied(),
            std::iter::empty(),
        );
        let (status, body) = self
            .call(Method::GET, url.as_str(), http_client::empty(), None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new()); // no bucket, no uploads
        }
        if !status.is_success() {
            return Err(self.failure("listing multipart uploads", status, &body));
        }
        Ok(uploads_of(&String::from_utf8_lossy(&body), key))
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

    /// A store error for an S3 answer to a write to the configured bucket, with S3's error code
    /// but never the signed URL. A missing bucket makes the store unusable, not the image absent.
    fn failure(&self, doing: &str, status: StatusCode, body: &[u8]) -> Error {
        if String::from_utf8_lossy(body).contains("<Code>NoSuchBucket</Code>") {
            return Error::Unavailable(format!(
                "S3 bucket {} does not exist (set s3_store_create_bucket_on_put)",
                self.config.bucket
            ));
        }
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

/// How an upload is cut into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    /// A known size: every part is streamed from the upload with its exact length.
    Streamed {
        /// The whole upload's size.
        size: u64,
        /// Bytes per part (the last may be shorter).
        part_size: u64,
        /// How many parts.
        count: u16,
    },
    /// An unknown size: each part is spooled to disk first to learn its length.
    Spooled {
        /// Bytes per part (the last may be shorter).
        part_size: u64,
    },
}

impl Parts {
    /// Parts for `size` bytes: of `part_size`, or larger if that would need more than
    /// [`MAX_PARTS`] parts (rounded up to a whole MiB).
    fn streamed(size: u64, part_size: u64) -> Parts {
        let least = size.div_ceil(MAX_PARTS as u64).next_multiple_of(1 << 20);
        let part_size = part_size.max(least);
        let count = size.div_ceil(part_size).max(1) as u16;
        Parts::Streamed {
            size,
            part_size,
            count,
        }
    }

    /// How many parts, when known in advance.
    fn count(&self) -> Option<u16> {
        match self {
            Parts::Streamed { count, .. } => Some(*count),
            Parts::Spooled { .. } => None,
        }
    }
}

fn too_many_parts() -> Error {
    Error::Backend(format!(
        "image needs more than {MAX_PARTS} S3 parts; raise s3_store_large_object_chunk_size"
    ))
}

/// The ETag S3 gives a part, once it answers.
async fn part_etag(sending: http_client::Sending, number: u16) -> Result<String, Error> {
    let response = sending.answer().await?;
    let status = response.status();
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = http_client::answer_text(response).await;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(Error::Backend(format!(
            "S3 refused part {number}: {status} {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    etag.ok_or_else(|| Error::Backend(format!("S3 sent no ETag for part {number}")))
}

async fn join_part(task: JoinHandle<Result<String, Error>>) -> Result<String, Error> {
    task.await
        .map_err(|e| Error::Backend(format!("S3 part upload task failed: {e}")))?
}

/// The `UploadId`s of the `<Upload>` entries for `key` in a `ListMultipartUploadsResult`.
fn uploads_of(xml: &str, key: &str) -> Vec<String> {
    fn field<'a>(element: &'a str, name: &str) -> Option<&'a str> {
        let open = format!("<{name}>");
        let start = element.find(&open)? + open.len();
        let end = element[start..].find(&format!("</{name}>"))?;
        Some(&element[start..start + end])
    }
    xml.split("<Upload>")
        .skip(1)
        .filter_map(|rest| rest.split("</Upload>").next())
        .filter(|upload| field(upload, "Key") == Some(key))
        .filter_map(|upload| field(upload, "UploadId"))
        .map(str::to_string)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_uploads_of_exactly_the_key_are_listed() {
        let xml = "<?xml version=\"1.0\"?><ListMultipartUploadsResult><Bucket>b</Bucket>\
            <Upload><Key>abc</Key><UploadId>2~one</UploadId></Upload>\
            <Upload><Key>abc-1</Key><UploadId>2~other</UploadId></Upload>\
            <Upload><Key>abc</Key><UploadId>2~two</UploadId><Initiated>x</Initiated></Upload>\
            </ListMultipartUploadsResult>";
        assert_eq!(uploads_of(xml, "abc"), vec!["2~one", "2~two"]);
        assert!(uploads_of(xml, "ab").is_empty());
        assert!(uploads_of("<ListMultipartUploadsResult/>", "abc").is_empty());
    }
}
