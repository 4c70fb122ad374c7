//! v1 `POST /v1/images` with `x-glint-convert-from: <source id>`: a new image whose data is the
//! source's converted to `x-image-meta-disk_format`. Answered like an upload, once the image is
//! active (201), or with the reason it was killed.

use hyper::header::{HeaderMap, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};

use super::images::image_response;
use crate::api::access::Api;
use crate::api::convert::converted_patch;
use crate::api::error::RegistryOp;
use crate::api::images::ImagesService;
use crate::api::request::has_body;
use crate::api::Error;
use crate::auth::Context;
use crate::convert::{self, Format};
use crate::http::body::Body;
use crate::model::{parse_image_id, Image, Status};

impl ImagesService {
    /// `POST /v1/images` converting the image `source_id`: the caller must see the source and
    /// may download it (`download_image`), and may add images (`add_image`).
    pub(super) async fn create_converted(
        &self,
        ctx: &Context,
        headers: &HeaderMap,
        source_id: &str,
    ) -> Result<Response<Body>, Error> {
        let mut meta = self.decode_request(headers)?;
        self.enforce(ctx, "add_image", None)?;
        self.check_patch_rights(ctx, &mut meta.patch, None, Api::V1)?;
        self.check_enabled_formats(&meta.patch, None)?;
        if has_body(headers) || meta.location.is_some() || meta.copy_from.is_some() {
            return Err(Error::BadRequest(
                "It's invalid to provide multiple image sources: x-glint-convert-from takes its \
                 data from the source image."
                    .into(),
            ));
        }
        let to = target_format(meta.patch.disk_format.as_ref())?;
        let source = self.load_for(ctx, source_id).await?;
        self.enforce(ctx, "download_image", Some(&source))?;
        let from = convertible_source(&source)?;
        let base = self.base_url(headers);
        let mut patch = converted_patch(&source, std::mem::take(&mut meta.patch), to);
        self.check_property_quota(patch.properties.as_ref().map_or(0, |p| p.len()))?;
        if let Some(id) = &meta.id {
            patch.id = Some(parse_image_id(id).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Failed to reserve image. Got error: Invalid image id format: '{id}'"
                ))
            })?);
        }
        patch.status = Some(Status::Queued);
        let image = self
            .catalog
            .create(patch, Status::Queued)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::CreateV1))?;
        let image = self
            .convert_into(image, source, (from, to), meta.store.clone())
            .await?;
        let mut resp = image_response(StatusCode::CREATED, &image)?;
        if let Ok(v) = HeaderValue::from_str(&format!("{base}/v1/images/{}", image.id)) {
            resp.headers_mut().insert(LOCATION, v);
        }
        Ok(resp)
    }
}

/// The format to convert to: `x-image-meta-disk_format`, one glint converts to.
fn target_format(disk_format: Option<&Option<String>>) -> Result<Format, Error> {
    let Some(Some(name)) = disk_format else {
        return Err(Error::BadRequest(format!(
            "x-glint-convert-from needs x-image-meta-disk_format, the format to convert to (one \
             of {})",
            convert::names()
        )));
    };
    convert::convertible(name).ok_or_else(|| {
        Error::BadRequest(format!(
            "Cannot convert to disk_format {name}; glint converts to {}",
            convert::names()
        ))
    })
}

/// The source's format, if it is an active image with data glint can convert: a deactivated
/// one is 403 (as its download), another state 409, an image without data or of a format
/// glint does not convert 400.
fn convertible_source(source: &Image) -> Result<Format, Error> {
    match source.status {
        Status::Active => {}
        Status::Deactivated => {
            return Err(Error::Forbidden(format!(
                "Image {} has been deactivated; its data cannot be converted.",
                source.id
            )))
        }
        other => {
            return Err(Error::Conflict(format!(
                "Image {} is {other}; only an active image can be converted.",
                source.id
            )))
        }
    }
    if source.size == 0 || source.location.is_none() {
        return Err(Error::BadRequest(format!(
            "Image {} has no data to convert.",
            source.id
        )));
    }
    let declared = source.disk_format.as_deref().unwrap_or("");
    convert::convertible(declared).ok_or_else(|| {
        Error::BadRequest(format!(
            "Cannot convert image {} of disk_format {declared}; glint converts {}",
            source.id,
            convert::names()
        ))
    })
}
