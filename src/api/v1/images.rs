//! v1 image calls: lists, HEAD, download, create (with data, a location or neither), update
//! (metadata, and data to a queued image) and delete.

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ETAG, LOCATION};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::api::access::Api;
use crate::api::download::Method;
use crate::api::error::RegistryOp;
use crate::api::images::ImagesService;
use crate::api::request::{check_content_type, content_length, has_body, RequestBody};
use crate::api::{json_bytes_response, json_response, Error};
use crate::auth::Context;
use crate::http::body::{empty, Body};
use crate::http::image_json::write_public_image;
use crate::http::meta_headers::{decode_image_meta, encode_image_meta, truthy, MetaHeaders};
use crate::http::query::QueryParams;
use crate::http::wire::{CONVERT_FROM_HEADER, PURGE_PROPS_HEADER};
use crate::model::{parse_image_id, Image, Status};
use crate::patch::ImagePatch;
use crate::registry::query::Viewer;
use crate::registry::{self, ListQuery, UpdateOptions};
use crate::store::{self, Location};

impl ImagesService {
    /// The upload procedure for a request that carries data; `image` as it is otherwise.
    async fn upload_if_body(
        &self,
        image: Image,
        with_body: bool,
        store: Option<&str>,
        body: &mut RequestBody,
    ) -> Result<Image, Error> {
        if !with_body {
            return Ok(image);
        }
        let source = crate::api::request::BodySource(body.take()?);
        self.upload(image, store, source).await
    }

    pub(super) async fn list(
        &self,
        ctx: &Context,
        req: &Request<Incoming>,
        detail: bool,
    ) -> Result<Response<Body>, Error> {
        self.enforce(ctx, "get_images", None)?;
        let raw = req.uri().query().unwrap_or("");
        let params = QueryParams::parse(raw);
        let mut query = ListQuery::from_params(params.iter(), self.settings.limits)
            .map_err(|e| Error::BadRequest(e.0))?;
        // §13: a caller with an owner lists public, own and shared images unless `is_public`
        // says otherwise (admins then see every image it selects).
        let explicit = params.iter().any(|(k, _)| k == "is_public");
        let mut forwarded = std::borrow::Cow::Borrowed(raw);
        if ctx.owner.is_some() && !explicit {
            query.filters.visibility = registry::Visibility::All;
            // A remote registry parses the query itself: say so there too.
            forwarded = match raw {
                "" => "is_public=None".into(),
                raw => format!("{raw}&is_public=None").into(),
            };
        }
        if !ctx.is_admin || (ctx.owner.is_some() && !explicit) {
            query.filters.viewer = Some(Viewer {
                owner: ctx.owner.clone(),
                member_status: None,
            });
        }
        let images = self.catalog.list(&query, &forwarded).await?;
        #[derive(Serialize)]
        struct ImagesBody<T> {
            images: Vec<T>,
        }
        if detail {
            let mut json = Vec::with_capacity(64 + 768 * images.len());
            json.extend_from_slice(b"{\"images\":[");
            for (i, image) in images.iter().enumerate() {
                if i > 0 {
                    json.push(b',');
                }
                write_public_image(&mut json, &image.public_view());
            }
            json.extend_from_slice(b"]}");
            Ok(json_bytes_response(StatusCode::OK, json))
        } else {
            let images: Vec<_> = images.iter().map(Image::brief).collect();
            json_response(StatusCode::OK, &ImagesBody { images })
        }
    }

    /// `HEAD /v1/images/{id}`: the metadata headers; for an active image also what a `GET`
    /// of its data answers (validators, cache headers, `Content-Length`, 304/412).
    pub(super) async fn head(
        &self,
        ctx: &Context,
        segment: &str,
        request: &HeaderMap,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_for(ctx, segment).await?;
        self.enforce(ctx, "get_image", Some(&image))?;
        if image.status == Status::Active && !image.deleted {
            return self
                .data_response(Method::Head, request, &image, |h| {
                    encode_image_meta(&image, h)
                })
                .await;
        }
        let mut resp = Response::new(empty());
        encode_image_meta(&image, resp.headers_mut());
        Ok(resp)
    }

    /// `GET /v1/images/{id}`: the data with the metadata headers (§5.4), conditional and
    /// ranged ([`crate::api::download`]).
    pub(super) async fn download(
        &self,
        ctx: &Context,
        segment: &str,
        request: &HeaderMap,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_for(ctx, segment).await?;
        self.enforce(ctx, "download_image", Some(&image))?;
        if image.status == Status::Deactivated && !image.deleted {
            return Err(Error::Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
                    .into(),
            ));
        }
        if image.status != Status::Active || image.deleted {
            return Err(Error::NotFound(format!("Image {} is not active", image.id)));
        }
        self.data_response(Method::Get, request, &image, |h| {
            encode_image_meta(&image, h)
        })
        .await
    }

    /// Decodes and checks the metadata headers (§5.5 steps 1–3, 5): codec, request values, the
    /// declared size against the cap, and the property quota of the request alone.
    pub(super) fn decode_request(&self, headers: &HeaderMap) -> Result<MetaHeaders, Error> {
        let mut meta = decode_image_meta(headers).map_err(|e| Error::BadRequest(e.0))?;
        meta.validate().map_err(|e| Error::BadRequest(e.0))?;
        let content_length = content_length(headers).filter(|n| *n > 0);
        if let Some(declared) = content_length.or(meta.patch.size) {
            if declared > self.settings.size_cap {
                return Err(Error::BadRequest(format!(
                    "Denying attempt to upload image larger than {} bytes.",
                    self.settings.size_cap
                )));
            }
        }
        if let Some(store) = &meta.store {
            self.stores
                .check_name(store)
                .map_err(|_| Error::BadRequest(format!("Required store {store} is invalid")))?;
        }
        Ok(meta)
    }

    /// Validates an `x-image-meta-location` and asks its store for the size (§5.5 steps 6.1 and
    /// 6.4): a store that is configured and can read it, never `file://`; a declared non-zero size
    /// that differs from the stored one is a 409.
    async fn external_source(&self, meta: &MetaHeaders) -> Result<Option<(Location, u64)>, Error> {
        let Some(uri) = &meta.location else {
            return Ok(None);
        };
        let shown = store::location::redact(uri);
        let location = match Location::parse(uri) {
            Ok(location) => location,
            Err(store::Error::UnknownStore(_)) => {
                return Err(Error::BadRequest(format!(
                    "External sources are not supported: '{shown}'"
                )))
            }
            Err(_) => return Err(Error::BadRequest(format!("Invalid location {shown}"))),
        };
        if !self.stores.accepts_external(&location) {
            return Err(Error::BadRequest(format!(
                "External sources are not supported: '{shown}'"
            )));
        }
        let stored = self.stores.size(&location).await?;
        let size = match meta.patch.size.filter(|s| *s != 0) {
            Some(declared) if stored != 0 && declared != stored => {
                return Err(Error::Conflict(format!(
                    "Provided image size must match the stored image size. (provided size: {declared}, stored size: {stored})"
                )))
            }
            Some(declared) => declared,
            None => stored,
        };
        Ok(Some((location, size)))
    }

    /// `POST /v1/images` (§5.5): every check that depends only on the request runs before the
    /// record is created (§14 #12), so a refused request leaves nothing behind.
    pub(super) async fn create(
        &self,
        ctx: &Context,
        headers: &HeaderMap,
        body: &mut RequestBody,
    ) -> Result<Response<Body>, Error> {
        if let Some(source) = headers.get(CONVERT_FROM_HEADER) {
            let source = String::from_utf8_lossy(source.as_bytes())
                .trim()
                .to_string();
            return self.create_converted(ctx, headers, &source).await;
        }
        let mut meta = self.decode_request(headers)?;
        self.enforce(ctx, "add_image", None)?;
        self.check_patch_rights(ctx, &mut meta.patch, None, Api::V1)?;
        self.check_enabled_formats(&meta.patch, None)?;
        let base = self.base_url(headers);
        let with_body = has_body(headers);
        self.check_property_quota(meta.patch.properties.as_ref().map_or(0, |p| p.len()))?;
        check_sources(&meta, with_body)?;
        if with_body || meta.location.is_some() {
            require_formats(&meta.patch, None)?;
        }
        if with_body {
            check_content_type(headers)?;
            self.enforce(ctx, "upload_image", None)?;
        }
        let external = self.external_source(&meta).await?;
        let mut patch = std::mem::take(&mut meta.patch);
        if let Some(id) = &meta.id {
            patch.id = Some(parse_image_id(id).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Failed to reserve image. Got error: Invalid image id format: '{id}'"
                ))
            })?);
        }
        let status = match &external {
            Some((location, size)) => {
                // Registered data is active at once, never saving (§6).
                patch.location = Some(Some(location.to_string()));
                patch.size = Some(*size);
                Status::Active
            }
            None if patch.size == Some(0) && !with_body => Status::Active,
            None => Status::Queued,
        };
        patch.status = Some(status);
        let image = self
            .catalog
            .create(patch, status)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::CreateV1))?;
        let image = self
            .upload_if_body(image, with_body, meta.store.as_deref(), body)
            .await?;
        let mut resp = image_response(StatusCode::CREATED, &image)?;
        let location = format!("{base}/v1/images/{}", image.id);
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(LOCATION, v);
        }
        Ok(resp)
    }

    /// `PUT /v1/images/{id}` (§5.6): metadata update, and data upload to a queued image.
    pub(super) async fn update(
        &self,
        ctx: &Context,
        segment: &str,
        headers: &HeaderMap,
        body: &mut RequestBody,
    ) -> Result<Response<Body>, Error> {
        let mut meta = self.decode_request(headers)?;
        let image = self.load_for(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V1)?;
        self.enforce(ctx, "modify_image", Some(&image))?;
        self.check_patch_rights(ctx, &mut meta.patch, Some(&image), Api::V1)?;
        self.check_enabled_formats(&meta.patch, Some(&image))?;
        if has_body(headers) {
            self.enforce(ctx, "upload_image", Some(&image))?;
        }
        check_immutable(&meta, &image)?;
        let with_body = has_body(headers);
        let purge_props = !with_body
            && headers
                .get(PURGE_PROPS_HEADER)
                .is_none_or(|v| truthy(&String::from_utf8_lossy(v.as_bytes())));
        if with_body && image.status != Status::Queued {
            return Err(Error::Conflict("Cannot upload to an unqueued image".into()));
        }
        check_sources(&meta, with_body)?;
        if meta.location.is_some() && image.status != Status::Queued {
            return Err(Error::BadRequest(
                "Attempted to update Location field for an image not in queued status.".into(),
            ));
        }
        let new_props = meta.patch.properties.as_ref();
        let count = if purge_props {
            new_props.map_or(0, |p| p.len())
        } else {
            let mut keys: Vec<&String> = image.properties.keys().collect();
            keys.extend(new_props.into_iter().flat_map(|p| p.keys()));
            keys.sort();
            keys.dedup();
            keys.len()
        };
        self.check_property_quota(count)?;
        if with_body || meta.location.is_some() {
            require_formats(&meta.patch, Some(&image))?;
        }
        let external = self.external_source(&meta).await?;
        if with_body {
            if let Err(e) = check_content_type(headers) {
                self.kill(&image.id, Status::Queued).await;
                return Err(e);
            }
        }
        let mut patch = std::mem::take(&mut meta.patch);
        let mut options = UpdateOptions {
            purge_props,
            from_state: None,
        };
        if let Some((location, size)) = &external {
            patch.location = Some(Some(location.to_string()));
            patch.size = Some(*size);
            patch.status = Some(Status::Active);
            options.from_state = Some(Status::Queued);
        }
        let image = self
            .catalog
            .update(&image.id, patch, options)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::UpdateV1))?;
        let image = self
            .upload_if_body(image, with_body, meta.store.as_deref(), body)
            .await?;
        image_response(StatusCode::OK, &image)
    }

    /// `DELETE /v1/images/{id}` (§5.7).
    pub(super) async fn delete(
        &self,
        ctx: &Context,
        segment: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_for(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V1)?;
        self.enforce(ctx, "delete_image", Some(&image))?;
        if image.protected {
            return Err(Error::Forbidden("Image is protected".into()));
        }
        match image.status {
            Status::PendingDelete => {
                return Err(Error::Forbidden(
                    "Forbidden to delete a pending_delete image.".into(),
                ))
            }
            _ if image.deleted || image.status == Status::Deleted => {
                return Err(Error::NotFound(format!("Image {} not found.", image.id)))
            }
            _ => {}
        }
        let delete = async { Ok(self.catalog.delete(&image.id).await?) };
        self.delete_with_data(&image, delete).await?;
        Ok(Response::new(empty()))
    }
}

/// What an update may never change (§5.6): a deleted image, its status, its id.
fn check_immutable(meta: &MetaHeaders, image: &Image) -> Result<(), Error> {
    if image.deleted {
        return Err(Error::Forbidden(
            "Forbidden to update deleted image.".into(),
        ));
    }
    if meta
        .status
        .as_deref()
        .is_some_and(|s| s != image.status.as_str())
    {
        return Err(Error::Forbidden(
            "Forbidden to modify 'status' of image.".into(),
        ));
    }
    if meta
        .id
        .as_deref()
        .is_some_and(|s| parse_image_id(s) != Some(image.id))
    {
        return Err(Error::Forbidden(
            "Forbidden to modify 'id' of image.".into(),
        ));
    }
    Ok(())
}

pub(super) fn image_response(status: StatusCode, image: &Image) -> Result<Response<Body>, Error> {
    let mut json = Vec::with_capacity(1024);
    json.extend_from_slice(b"{\"image\":");
    write_public_image(&mut json, &image.public_view());
    json.push(b'}');
    let mut resp = json_bytes_response(status, json);
    if let Some(checksum) = &image.checksum {
        // Quoted, as HTTP spells an entity-tag (and as the data's ETag is).
        let tag = crate::http::conditional::quote_etag(checksum);
        if let Ok(v) = HeaderValue::from_str(&tag) {
            resp.headers_mut().insert(ETAG, v);
        }
    }
    Ok(resp)
}

/// Data needs both formats, from the request or the record.
fn require_formats(patch: &ImagePatch, record: Option<&Image>) -> Result<(), Error> {
    let disk = match &patch.disk_format {
        Some(v) => v.is_some(),
        None => record.is_some_and(|r| r.disk_format.is_some()),
    };
    let container = match &patch.container_format {
        Some(v) => v.is_some(),
        None => record.is_some_and(|r| r.container_format.is_some()),
    };
    if !disk {
        return Err(Error::BadRequest("Disk format is not specified.".into()));
    }
    if !container {
        return Err(Error::BadRequest(
            "Container format is not specified.".into(),
        ));
    }
    Ok(())
}

/// At most one source of data (§5.5 step 7), a non-empty location, and no copy-from (glint
/// registers URLs with `x-image-meta-location` instead of copying them in the background).
fn check_sources(meta: &MetaHeaders, with_body: bool) -> Result<(), Error> {
    let sources = usize::from(with_body)
        + usize::from(meta.location.is_some())
        + usize::from(meta.copy_from.is_some());
    if sources > 1 {
        return Err(Error::BadRequest(
            "It's invalid to provide multiple image sources.".into(),
        ));
    }
    if meta.location.as_deref() == Some("") || meta.copy_from.as_deref() == Some("") {
        return Err(Error::BadRequest(
            "External source should not be empty".into(),
        ));
    }
    if let Some(source) = &meta.copy_from {
        return Err(Error::BadRequest(format!(
            "Copying from an external source is not supported: '{}'; register it with x-image-meta-location or upload the data",
            store::location::redact(source)
        )));
    }
    Ok(())
}
