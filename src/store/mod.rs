//! Image data stores (Glance's "store"): where the bytes of an image live. One interface for every
//! backend; the backend that reads or deletes an image is chosen by the scheme of its location
//! URI, the one that takes an upload by name. Data always moves as a stream: size and MD5 are
//! computed on the way through, and nothing is ever held whole in memory.

mod checksum;
pub mod filesystem;
pub mod http;
pub mod http_client;
pub mod location;
pub mod s3;
pub mod spool;
pub mod swift;

use std::fmt;
use std::future::Future;
use std::io;

use bytes::Bytes;
use uuid::Uuid;

use checksum::BackgroundHashes;
pub use checksum::Digests;

use crate::body::Body;
pub use crate::body::ByteRange;
pub use filesystem::Filesystem;
pub use http::Http;
pub use location::Location;
pub use s3::{S3Config, S3};
pub use swift::{Swift, SwiftAuth, SwiftConfig};

/// Why a store operation failed.
#[derive(Debug)]
pub enum Error {
    /// The store has no data at this location.
    NotFound(String),
    /// The store already holds data for this image.
    Duplicate(String),
    /// The store cannot take uploads (the http store).
    ReadOnly,
    /// The upload went past `image_size_cap`.
    SizeCapExceeded {
        /// The cap in bytes.
        cap: u64,
    },
    /// The client's request body failed before its end.
    ClientDisconnected(String),
    /// The storage medium is full.
    StorageFull(String),
    /// The store may not write where it was told to.
    PermissionDenied(String),
    /// No store handles this location scheme or store name.
    UnknownStore(String),
    /// A location URI that cannot be parsed.
    BadLocation(String),
    /// The backend refused (bad credentials, no permission).
    Forbidden(String),
    /// The backend could not be reached.
    Unavailable(String),
    /// The backend answered with an unexpected failure.
    Backend(String),
    /// Any other I/O failure.
    Io(io::Error),
    /// The data was refused while it streamed (the disk image inspector); the text says why.
    Refused(String),
}

impl Error {
    /// Whether the store itself failed (what `glint_store_errors_total` counts), rather than the
    /// request (a missing object, a duplicate, a client that went away, a size over the cap).
    pub fn is_store_failure(&self) -> bool {
        matches!(
            self,
            Error::StorageFull(_)
                | Error::PermissionDenied(_)
                | Error::Forbidden(_)
                | Error::Unavailable(_)
                | Error::Backend(_)
                | Error::Io(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "image data not found: {what}"),
            Error::Duplicate(what) => write!(f, "Attempt to upload duplicate image: {what}"),
            Error::ReadOnly => {
                f.write_str("Error in store configuration. Adding images to store is disabled.")
            }
            Error::SizeCapExceeded { cap } => {
                write!(
                    f,
                    "Denying attempt to upload image larger than {cap} bytes."
                )
            }
            Error::ClientDisconnected(why) => write!(
                f,
                "Client disconnected before sending all data to backend ({why})"
            ),
            Error::StorageFull(why) => write!(f, "Image storage media is full: {why}"),
            Error::PermissionDenied(why) => {
                write!(f, "Insufficient permissions on image storage media: {why}")
            }
            Error::UnknownStore(s) => write!(f, "Store for scheme {s} not found"),
            Error::BadLocation(l) => write!(f, "Invalid location {l}"),
            Error::Forbidden(why) => write!(f, "Forbidden upload attempt: {why}"),
            Error::Unavailable(why) => write!(f, "image store unavailable: {why}"),
            Error::Backend(why) => write!(f, "image store failed: {why}"),
            Error::Io(e) => write!(f, "store I/O failed: {e}"),
            Error::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(28) | Some(27) => Error::StorageFull(e.to_string()), // ENOSPC, EFBIG
            Some(13) => Error::PermissionDenied(e.to_string()),       // EACCES
            _ => Error::Io(e),
        }
    }
}

/// A stream of upload bytes: the request body, or any other source.
pub trait DataSource: Send {
    /// The next chunk, `None` at the end. An error means the source broke off.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send;

    /// The total length, when the source knows it in advance.
    fn size_hint(&self) -> Option<u64> {
        None
    }
}

/// Counts bytes, computes the MD5 and SHA-512 and enforces the size cap over a [`DataSource`], so that every
/// store gets these guarantees without implementing them.
pub struct Metered<'a, S> {
    source: &'a mut S,
    hashes: BackgroundHashes,
    size: u64,
    cap: u64,
    /// A chunk handed back with [`Metered::push_back`], already counted.
    pending: Option<Bytes>,
}

impl<'a, S: DataSource> Metered<'a, S> {
    /// Wraps `source`; more than `cap` bytes is an error.
    pub fn new(source: &'a mut S, cap: u64) -> Self {
        Metered {
            source,
            hashes: BackgroundHashes::new(),
            size: 0,
            cap,
            pending: None,
        }
    }

    /// The total length, if the source announced it.
    pub fn size_hint(&self) -> Option<u64> {
        self.source.size_hint()
    }

    /// Returns the unused tail of a chunk, to be read again by the next [`Metered::next_chunk`].
    pub fn push_back(&mut self, chunk: Bytes) {
        self.pending = Some(chunk);
    }

    /// The next chunk, counted and hashed.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if let Some(chunk) = self.pending.take() {
            return Ok(Some(chunk));
        }
        let chunk = self.source.next_chunk().await?;
        if let Some(data) = &chunk {
            self.size += data.len() as u64;
            if self.size > self.cap {
                return Err(Error::SizeCapExceeded { cap: self.cap });
            }
            self.hashes.update(data.clone()).await?;
        }
        Ok(chunk)
    }

    /// Reads up to `size` bytes into one buffer (less only at the end of the data); the part of
    /// a chunk that does not fit is kept for the next read. Stores that send fixed-size parts or
    /// segments use this, so memory stays at one part.
    pub async fn fill(&mut self, size: usize) -> Result<bytes::BytesMut, Error> {
        let mut part = bytes::BytesMut::with_capacity(size.min(64 << 20));
        while part.len() < size {
            match self.next_chunk().await? {
                None => break,
                Some(chunk) => {
                    let room = size - part.len();
                    if chunk.len() <= room {
                        part.extend_from_slice(&chunk);
                    } else {
                        part.extend_from_slice(&chunk[..room]);
                        self.push_back(chunk.slice(room..));
                    }
                }
            }
        }
        Ok(part)
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digests of everything read.
    pub async fn finish(self) -> Result<Digests, Error> {
        self.hashes.finish().await
    }
}

impl Filesystem {
    /// Streams `source` into this directory as the data of `id`, counted, capped and hashed like
    /// any upload (v2's staging area uses this).
    pub async fn put_source<S: DataSource>(
        &self,
        id: &Uuid,
        source: &mut S,
        size_cap: u64,
    ) -> Result<Stored, Error> {
        let mut metered = Metered::new(source, size_cap);
        let location = self.put(id, &mut metered).await?;
        let size = metered.size();
        match metered.finish().await {
            Ok(digests) => Ok(Stored {
                location,
                size,
                checksum: digests.md5,
                os_hash_value: digests.sha512,
            }),
            Err(e) => {
                if let Location::File(path) = &location {
                    let _ = self.delete(path).await;
                }
                Err(e)
            }
        }
    }

    /// Opens the data of `id` in this directory.
    pub async fn open_data(&self, id: &Uuid) -> Result<Retrieved, Error> {
        self.get(&self.dir().join(id.to_string()), None).await
    }

    /// Removes the data of `id` from this directory; `NotFound` if there was none.
    pub async fn remove_data(&self, id: &Uuid) -> Result<(), Error> {
        self.delete(&self.dir().join(id.to_string())).await
    }
}

/// What a store wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Where the data now lives.
    pub location: Location,
    /// Bytes written.
    pub size: u64,
    /// Lower-case hex MD5 of the bytes.
    pub checksum: String,
    /// Lower-case hex SHA-512 of the bytes (`os_hash_value`).
    pub os_hash_value: String,
}

/// Image data read back from a store.
pub struct Retrieved {
    /// The bytes, as a response body stream.
    pub body: Body,
    /// How many bytes the body holds, when the store says.
    pub size: Option<u64>,
    /// The range of the data the body holds, when a range was asked and the store sent just
    /// that; `None` when the body is the whole data (also what a ranged read gets from an HTTP
    /// origin that ignores `Range`).
    pub range: Option<ByteRange>,
}

/// Names by which `x-image-meta-store` and `default_store` pick a store.
pub const STORE_NAMES: &[&str] = &[
    "file",
    "filesystem",
    "s3",
    "s3+http",
    "s3+https",
    "swift",
    "swift+http",
    "swift+https",
    "http",
    "https",
];

/// Which backend a store name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    File,
    S3,
    Swift,
    Http,
}

impl Backend {
    /// The store's name in metrics.
    fn name(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::S3 => "s3",
            Backend::Swift => "swift",
            Backend::Http => "http",
        }
    }
}

fn backend_named(name: &str) -> Option<Backend> {
    match name {
        "file" | "filesystem" => Some(Backend::File),
        "s3" | "s3+http" | "s3+https" => Some(Backend::S3),
        "swift" | "swift+http" | "swift+https" => Some(Backend::Swift),
        "http" | "https" => Some(Backend::Http),
        _ => None,
    }
}

/// Every configured store; picks one by name (uploads) or by location (reads, deletes).
pub struct Stores {
    /// The filesystem store (always configured).
    pub filesystem: Filesystem,
    /// The S3 store, when `s3_store_*` options are set.
    pub s3: Option<S3>,
    /// The Swift store, when `swift_store_*` options are set.
    pub swift: Option<Swift>,
    /// The read-only HTTP store (always available).
    pub http: Http,
    /// The store that takes uploads without `x-image-meta-store`: checked and resolved once,
    /// so an upload that names no store does no name lookup.
    default_backend: Backend,
}

impl Stores {
    /// The stores, with uploads going to `default_store` unless a request names another.
    pub fn new(
        filesystem: Filesystem,
        s3: Option<S3>,
        swift: Option<Swift>,
        http: http_client::HttpClient,
        default_store: &str,
    ) -> Result<Stores, Error> {
        let mut stores = Stores {
            filesystem,
            s3,
            swift,
            http: Http::new(http),
            default_backend: Backend::File,
        };
        stores.default_backend = stores.backend(default_store)?;
        Ok(stores)
    }

    /// Whether the default store can take an upload now. The filesystem store is probed with a
    /// write; S3 and Swift are not probed (a request per health check would cost the object
    /// store more than it tells), and the HTTP store takes no uploads.
    pub async fn check_default(&self) -> Result<(), Error> {
        match self.default_backend {
            Backend::File => self.filesystem.probe().await,
            Backend::S3 | Backend::Swift | Backend::Http => Ok(()),
        }
    }

    /// Fails unless `name` names a configured store.
    pub fn check_name(&self, name: &str) -> Result<(), Error> {
        self.backend(name).map(|_| ())
    }

    /// The configured backend `name` means.
    fn backend(&self, name: &str) -> Result<Backend, Error> {
        match backend_named(name) {
            Some(b @ (Backend::File | Backend::Http)) => Ok(b),
            Some(Backend::S3) if self.s3.is_some() => Ok(Backend::S3),
            Some(Backend::Swift) if self.swift.is_some() => Ok(Backend::Swift),
            _ => Err(Error::UnknownStore(name.to_string())),
        }
    }

    fn swift(&self) -> Result<&Swift, Error> {
        self.swift.as_ref().ok_or_else(|| {
            Error::UnknownStore(
                "swift (not configured: set swift_store_auth_address and the other swift_store_* options)".into(),
            )
        })
    }

    fn s3(&self) -> Result<&S3, Error> {
        self.s3.as_ref().ok_or_else(|| {
            Error::UnknownStore(
                "s3 (not configured: set s3_store_host and the other s3_store_* options)".into(),
            )
        })
    }

    /// The name (`file`, `s3`, `swift`, `http`) of the store an upload to `store` (or the
    /// default) goes to; an unknown or unconfigured store is an error.
    pub fn resolve(&self, store: Option<&str>) -> Result<&'static str, Error> {
        Ok(match store {
            Some(name) => self.backend(name)?,
            None => self.default_backend,
        }
        .name())
    }

    /// Removes what an upload of `id` to the store named `store` (a [`Stores::resolve`] name)
    /// left when it was interrupted: a partial file, unfinished S3 multipart uploads, Swift
    /// segments; and with `with_data` the complete data too (an image that never became
    /// active). Absent leftovers are fine.
    pub async fn remove_leftovers(
        &self,
        store: &str,
        id: &Uuid,
        with_data: bool,
    ) -> Result<(), Error> {
        match self.backend(store)? {
            Backend::File => {
                self.filesystem.remove_partial(id).await?;
                if with_data {
                    match self.filesystem.remove_data(id).await {
                        Ok(()) | Err(Error::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Backend::S3 => {
                self.s3()?
                    .remove_leftovers(&id.to_string(), with_data)
                    .await
            }
            Backend::Swift => {
                self.swift()?
                    .remove_leftovers(&id.to_string(), with_data)
                    .await
            }
            Backend::Http => Ok(()),
        }
    }

    /// Streams `source` into the store named `store` (or the default) as the data of `id`.
    /// On any failure every byte written is removed before the error is returned.
    pub async fn put<S: DataSource>(
        &self,
        store: Option<&str>,
        id: &Uuid,
        source: &mut S,
        size_cap: u64,
    ) -> Result<Stored, Error> {
        let backend = match store {
            Some(name) => self.backend(name)?,
            None => self.default_backend,
        };
        let metrics = crate::metrics::metrics();
        let _in_flight = metrics.upload_started();
        let result = self.put_in(backend, id, source, size_cap).await;
        match &result {
            Ok(stored) => metrics.store_bytes(backend.name(), true, stored.size),
            Err(e) if e.is_store_failure() => metrics.store_error(backend.name()),
            Err(_) => {}
        }
        result
    }

    async fn put_in<S: DataSource>(
        &self,
        backend: Backend,
        id: &Uuid,
        source: &mut S,
        size_cap: u64,
    ) -> Result<Stored, Error> {
        let mut metered = Metered::new(source, size_cap);
        let location = match backend {
            Backend::S3 => self.s3()?.put(&id.to_string(), &mut metered).await?,
            Backend::Swift => self.swift()?.put(&id.to_string(), &mut metered).await?,
            Backend::Http => return Err(Error::ReadOnly),
            Backend::File => self.filesystem.put(id, &mut metered).await?,
        };
        let size = metered.size();
        let digests = match metered.finish().await {
            Ok(digests) => digests,
            Err(e) => {
                if let Err(cleanup) = self.delete(&location).await {
                    crate::error!("cannot remove the data of a failed upload: {cleanup}");
                }
                return Err(e);
            }
        };
        Ok(Stored {
            location,
            size,
            checksum: digests.md5,
            os_hash_value: digests.sha512,
        })
    }

    /// Opens the data at `location` for reading.
    pub async fn get(&self, location: &Location) -> Result<Retrieved, Error> {
        self.open(location, None).await
    }

    /// Opens `range` of the data at `location`, read from the store itself: a seek on a file, a
    /// `Range` request to S3, Swift and HTTP origins. The prefix is never read. An HTTP origin
    /// that ignores `Range` answers the whole data: then [`Retrieved::range`] is `None`.
    pub async fn get_range(
        &self,
        location: &Location,
        range: ByteRange,
    ) -> Result<Retrieved, Error> {
        self.open(location, Some(range)).await
    }

    async fn open(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<Retrieved, Error> {
        use http_body_util::BodyExt;
        let store = match location {
            Location::File(_) => Backend::File,
            Location::S3(_) => Backend::S3,
            Location::Swift(_) => Backend::Swift,
            Location::Http(_) => Backend::Http,
        }
        .name();
        let metrics = crate::metrics::metrics();
        match self.open_in(location, range).await {
            Ok(data) => {
                // Counted as the bytes go out, so an abandoned download counts what was sent.
                let body = data
                    .body
                    .map_frame(move |frame| {
                        if let Some(bytes) = frame.data_ref() {
                            metrics.store_bytes(store, false, bytes.len() as u64);
                        }
                        frame
                    })
                    .boxed();
                Ok(Retrieved { body, ..data })
            }
            Err(e) => {
                if e.is_store_failure() {
                    metrics.store_error(store);
                }
                Err(e)
            }
        }
    }

    async fn open_in(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<Retrieved, Error> {
        match location {
            Location::File(path) => self.filesystem.get(path, range).await,
            Location::S3(loc) => self.s3()?.get(loc, range).await,
            Location::Swift(loc) => self.swift()?.get(loc, range).await,
            Location::Http(url) => self.http.get(url, range).await,
        }
    }

    /// Whether a client may register data at `location` (§5.5 step 6.1): a configured store that
    /// can read it, never the filesystem (§12.2).
    pub fn accepts_external(&self, location: &Location) -> bool {
        match location {
            Location::File(_) => false,
            Location::S3(_) => self.s3.is_some(),
            Location::Swift(_) => self.swift.is_some(),
            Location::Http(_) => true,
        }
    }

    /// The size of the data at `location`, asked from its store.
    pub async fn size(&self, location: &Location) -> Result<u64, Error> {
        match location {
            Location::Http(url) => self.http.size(url).await,
            other => Ok(self.get(other).await?.size.unwrap_or(0)),
        }
    }

    /// The stores that take uploads, as `(name, description, is the default)`, for v2's
    /// `/v2/info/stores`.
    pub fn writable(&self) -> Vec<(&'static str, &'static str, bool)> {
        let default = self.default_backend;
        let mut out = vec![("file", "Filesystem store", default == Backend::File)];
        if self.s3.is_some() {
            out.push(("s3", "S3 store", default == Backend::S3));
        }
        if self.swift.is_some() {
            out.push(("swift", "Swift store", default == Backend::Swift));
        }
        out
    }

    /// Removes the data at `location`. Data that is already gone is not an error.
    pub async fn delete(&self, location: &Location) -> Result<(), Error> {
        let result = match location {
            Location::File(path) => self.filesystem.delete(path).await,
            Location::S3(loc) => self.s3()?.delete(loc).await,
            Location::Swift(loc) => self.swift()?.delete(loc).await,
            // Data the service did not write is not the service's to delete.
            Location::Http(_) => Ok(()),
        };
        match result {
            Err(Error::NotFound(what)) => {
                crate::warn!("data to delete was already gone: {what}");
                Ok(())
            }
            other => other,
        }
    }
}
