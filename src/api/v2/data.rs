//! v2 image data: `PUT/GET /file`, and the interoperable import: `PUT /stage` keeps the data in
//! the staging directory (`queued → uploading`), `POST /import` moves it, or the data at a
//! `web-download` URL, into the default store in the background (`→ importing → active`; a
//! failure kills the image and removes every byte, as an upload's does).

use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use uuid::Uuid;

use super::{no_content, IMPORT_METHODS};
use crate::api::access::Api;
use crate::api::download::Method;
use crate::api::images::ImagesService;
use crate::api::request::{check_content_type, BodySource, RequestBody};
use crate::api::upload::from;
use crate::api::Error;
use crate::auth::Context;
use crate::http::body::{empty, Body};
use crate::journal::Work;
use crate::model::{Image, Status};
use crate::patch::ImagePatch;
use crate::store::Location;

/// The message Glance gives for data of an image without both formats.
const FORMATS_FIRST: &str =
    "Properties disk_format, container_format must be set prior to saving data.";

impl ImagesService {
    /// `PUT /v2/images/{id}/file` (204): the upload procedure, from `queued`.
    pub(super) async fn v2_upload(
        &self,
        ctx: &Context,
        segment: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let (parts, body) = req.into_parts();
        let mut body = RequestBody::new(body);
        let result = async {
            let image = self
                .ready_for_data(ctx, segment, &parts.headers, "saving")
                .await?;
            let body = body.take()?;
            self.upload(image, None, BodySource(body)).await?;
            Ok(no_content())
        }
        .await;
        body.answer(&parts.headers, result).await
    }

    /// `GET /v2/images/{id}/file`: the data (200, `Content-MD5`; conditional and ranged,
    /// [`crate::api::download`]), or 204 for an image without.
    pub(super) async fn v2_download(
        &self,
        ctx: &Context,
        segment: &str,
        request: &hyper::HeaderMap,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_v2(ctx, segment).await?;
        self.enforce(ctx, "download_image", Some(&image))?;
        if image.status == Status::Deactivated {
            return Err(Error::Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
                    .into(),
            ));
        }
        if image.location.is_none() || image.status != Status::Active {
            return Ok(no_content());
        }
        let md5 = image
            .checksum
            .as_deref()
            .and_then(|m| HeaderValue::from_str(m).ok());
        self.data_response(Method::Get, request, &image, |headers| {
            if let Some(md5) = &md5 {
                headers.insert(HeaderName::from_static("content-md5"), md5.clone());
            }
        })
        .await
    }

    /// `PUT /v2/images/{id}/stage` (204): the data into the staging directory, `queued →
    /// uploading`. A failed stage puts the image back to `queued`, with nothing staged.
    pub(super) async fn v2_stage(
        &self,
        ctx: &Context,
        segment: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let (parts, body) = req.into_parts();
        let mut body = RequestBody::new(body);
        let result = async {
            let staging = self.staging.clone().ok_or_else(staging_off)?;
            check_content_type(&parts.headers)
                .map_err(|e| Error::UnsupportedMediaType(e.to_string()))?;
            let image = self.load_v2(ctx, segment).await?;
            self.check_mutable(ctx, &image, Api::V2)?;
            self.enforce(ctx, "upload_image", Some(&image))?;
            if image.status != Status::Queued {
                return Err(transition(&image, "uploading"));
            }
            let uploading = ImagePatch {
                status: Some(Status::Uploading),
                ..Default::default()
            };
            let work = self.begin_work(&image.id, Work::Stage, None).await?;
            let image = match self
                .update_record(&image, uploading, from(Status::Queued))
                .await
            {
                Ok(image) => image,
                Err(e) => {
                    work.abandon();
                    return Err(e);
                }
            };
            let body = body.take()?;
            let mut source = BodySource(body);
            let staged = staging
                .put_source(&image.id, &mut source, self.settings.size_cap)
                .await;
            let succeeded = staged.is_ok();
            let answer = match staged {
                Ok(_) => Ok(no_content()),
                Err(e) => {
                    let queued = ImagePatch {
                        status: Some(Status::Queued),
                        ..Default::default()
                    };
                    if let Err(back) = self
                        .catalog
                        .update(&image.id, queued, from(Status::Uploading))
                        .await
                    {
                        crate::warn!("could not return image {} to queued: {back}", image.id);
                    }
                    Err(e.into())
                }
            };
            work.settle(succeeded).await;
            answer
        }
        .await;
        body.answer(&parts.headers, result).await
    }

    /// `POST /v2/images/{id}/import` (202): starts `glance-direct` (from the staged data) or
    /// `web-download` (from a URL) in the background.
    pub(super) async fn v2_import(
        &self,
        ctx: &Context,
        segment: &str,
        body: &[u8],
    ) -> Result<Response<Body>, Error> {
        let request = super::parse_json(body)?;
        let method = &request["method"];
        let name = method["name"].as_str().ok_or_else(|| {
            Error::BadRequest("Import request requires a 'method' with a 'name'.".into())
        })?;
        if !IMPORT_METHODS.contains(&name) {
            return Err(Error::BadRequest(format!(
                "Import method {name} is not supported; available: {}",
                IMPORT_METHODS.join(", ")
            )));
        }
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "modify_image", Some(&image))?;
        if image.disk_format.is_none() || image.container_format.is_none() {
            return Err(Error::BadRequest(FORMATS_FIRST.into()));
        }
        let (expected, source) = if name == "web-download" {
            let uri = method["uri"].as_str().ok_or_else(|| {
                Error::BadRequest("web-download requires a 'uri' in the method.".into())
            })?;
            let location = Location::parse(uri)
                .ok()
                .filter(|l| matches!(l, Location::Http(_)));
            let Some(Location::Http(url)) = location else {
                return Err(Error::BadRequest(format!(
                    "URI for web-download must be an http:// or https:// URL: '{}'",
                    crate::store::location::redact(uri)
                )));
            };
            (Status::Queued, Source::Web(url))
        } else {
            if self.staging.is_none() {
                return Err(staging_off());
            }
            (Status::Uploading, Source::Staged)
        };
        // A format the import plugin cannot convert is refused now, not in the background.
        self.import_conversion(&image)?;
        if image.status != expected {
            return Err(Error::Conflict(format!(
                "Image {} is {}; {name} needs it {expected}",
                image.id, image.status
            )));
        }
        let importing = ImagePatch {
            status: Some(Status::Importing),
            ..Default::default()
        };
        let work = self.begin_work(&image.id, Work::Import, None).await?;
        let image = match self.update_record(&image, importing, from(expected)).await {
            Ok(image) => image,
            Err(e) => {
                work.abandon();
                return Err(e);
            }
        };
        let service = self.handle();
        tokio::spawn(async move {
            let succeeded = service.run_import(image, source).await;
            work.settle(succeeded).await;
        });
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::ACCEPTED;
        Ok(resp)
    }

    /// The background half of an import: streams the source into the default store; whether
    /// the image became active.
    async fn run_import(&self, image: Image, source: Source) -> bool {
        let id = image.id;
        let opened = match &source {
            Source::Staged => match &self.staging {
                Some(staging) => staging.open_data(&id).await,
                None => Err(crate::store::Error::Unavailable(
                    "no staging directory".into(),
                )),
            },
            Source::Web(url) => self.stores.http.get(url, None).await,
        };
        let outcome = match opened {
            Ok(data) => self.import_data(image, data).await,
            Err(e) => {
                self.kill(&id, Status::Importing).await;
                Err(e.into())
            }
        };
        self.unstage(&id).await;
        match outcome {
            Ok(()) => {
                crate::info!("image {id} imported");
                true
            }
            Err(e) => {
                crate::warn!("import of image {id} failed: {e}");
                false
            }
        }
    }

    /// Removes staged data of `id`, if any.
    pub(in crate::api) async fn unstage(&self, id: &Uuid) {
        if let Some(staging) = &self.staging {
            match staging.remove_data(id).await {
                Ok(()) | Err(crate::store::Error::NotFound(_)) => {}
                Err(e) => crate::error!("could not remove staged data of {id}: {e}"),
            }
        }
    }

    /// Checks that data may be sent for the image now: the media type, `queued`, both formats.
    async fn ready_for_data(
        &self,
        ctx: &Context,
        segment: &str,
        headers: &hyper::HeaderMap,
        next: &str,
    ) -> Result<Image, Error> {
        check_content_type(headers).map_err(|e| Error::UnsupportedMediaType(e.to_string()))?;
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "upload_image", Some(&image))?;
        if image.status != Status::Queued {
            return Err(transition(&image, next));
        }
        if image.disk_format.is_none() || image.container_format.is_none() {
            return Err(Error::BadRequest(FORMATS_FIRST.into()));
        }
        Ok(image)
    }
}

/// Where an import reads its data.
enum Source {
    /// The staging directory (`glance-direct`).
    Staged,
    /// A URL (`web-download`).
    Web(String),
}

fn transition(image: &Image, to: &str) -> Error {
    Error::Conflict(format!(
        "Image status transition from {} to {to} is not allowed",
        image.status
    ))
}

fn staging_off() -> Error {
    Error::Unavailable("the staging directory is not available (see the server log)".into())
}
