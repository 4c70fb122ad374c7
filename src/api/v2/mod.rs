//! The Images API v2 (`/v2/...`) over the same catalog and stores as v1: an image made through
//! either API is seen and used through the other. Metadata is JSON (core attributes and custom
//! properties side by side), updates are JSON patches, data moves through `/file`, and the
//! interoperable import (`stage` + `import`) runs in the background.

mod data;
mod images;
mod members;
pub mod schemas;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use super::images::ImagesService;
use super::request::read_small_body;
use super::{json_response, Error};
use crate::api::error::RegistryOp;
use crate::auth::Context;
use crate::http::body::{empty, Body};
use crate::http::image_v2::BodyError;
use crate::http::route_v2::V2Route;
use crate::model::{parse_image_id, Image};

/// The v2 versions glint serves, newest (CURRENT) first: 2.7 brought `os_hidden` and the
/// multihash, 2.6 the interoperable import.
pub const VERSIONS: &[&str] = &[
    "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0",
];

/// The import methods glint runs.
pub const IMPORT_METHODS: &[&str] = &["glance-direct", "web-download"];

impl ImagesService {
    /// Answers a v2 request.
    pub(super) async fn v2(
        &self,
        ctx: &Context,
        route: V2Route<'_>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        use V2Route::*;
        match route {
            Schema(name) => {
                let doc = schemas::schema(name, &self.settings.enabled_formats)
                    .ok_or(Error::NoSuchRoute)?;
                json_response(StatusCode::OK, &doc)
            }
            List => Box::pin(self.v2_list(ctx, &req)).await,
            Create => {
                let base = self.base_url(req.headers());
                let body = read_small_body(req.into_body()).await?;
                Box::pin(self.v2_create(ctx, &base, &body)).await
            }
            Show(id) => {
                let image = self.load_v2(ctx, id).await?;
                self.enforce(ctx, "get_image", Some(&image))?;
                image_json(StatusCode::OK, &image)
            }
            Update(id) => {
                let id = id.to_string();
                check_patch_type(&req)?;
                let body = read_small_body(req.into_body()).await?;
                Box::pin(self.v2_update(ctx, &id, &body)).await
            }
            Delete(id) => Box::pin(self.v2_delete(ctx, id)).await,
            AddTag(id, tag) => Box::pin(self.v2_add_tag(ctx, id, tag)).await,
            RemoveTag(id, tag) => Box::pin(self.v2_remove_tag(ctx, id, tag)).await,
            Deactivate(id) => Box::pin(self.v2_deactivate(ctx, id)).await,
            Reactivate(id) => Box::pin(self.v2_reactivate(ctx, id)).await,
            Upload(id) => {
                let id = id.to_string();
                Box::pin(self.v2_upload(ctx, &id, req)).await
            }
            Download(id) => Box::pin(self.v2_download(ctx, id, req.headers())).await,
            Stage(id) => {
                let id = id.to_string();
                Box::pin(self.v2_stage(ctx, &id, req)).await
            }
            Import(id) => {
                let id = id.to_string();
                let body = read_small_body(req.into_body()).await?;
                Box::pin(self.v2_import(ctx, &id, &body)).await
            }
            ListMembers(id) => Box::pin(self.v2_members(ctx, id)).await,
            AddMember(id) => {
                let id = id.to_string();
                let body = read_small_body(req.into_body()).await?;
                Box::pin(self.v2_add_member(ctx, &id, &body)).await
            }
            ShowMember(id, member) => Box::pin(self.v2_member(ctx, id, member)).await,
            UpdateMember(id, member) => {
                let (id, member) = (id.to_string(), member.to_string());
                let body = read_small_body(req.into_body()).await?;
                Box::pin(self.v2_update_member(ctx, &id, &member, &body)).await
            }
            RemoveMember(id, member) => Box::pin(self.v2_remove_member(ctx, id, member)).await,
            ImportInfo => json_response(
                StatusCode::OK,
                &json!({"import-methods": {
                    "description": "Import methods available.",
                    "type": "array",
                    "value": IMPORT_METHODS,
                }}),
            ),
            StoresInfo => {
                let stores: Vec<Value> = self
                    .stores
                    .writable()
                    .into_iter()
                    .map(|(id, description, default)| {
                        let mut store = json!({"id": id, "description": description});
                        if default {
                            store["default"] = Value::Bool(true);
                        }
                        store
                    })
                    .collect();
                json_response(StatusCode::OK, &json!({ "stores": stores }))
            }
        }
    }

    /// Loads a live image the caller may see by the id in a v2 path: unknown, malformed,
    /// deleted and invisible (§13) ids are 404.
    pub(super) async fn load_v2(&self, ctx: &Context, segment: &str) -> Result<Image, Error> {
        let op = RegistryOp::LoadV2 { segment };
        let id = parse_image_id(segment).ok_or_else(|| op.not_found())?;
        match self.catalog.get(&id).await {
            Ok(image) if !image.deleted && self.sees(ctx, &image).await? => Ok(image),
            Ok(_) => Err(op.not_found()),
            Err(e) => Err(Error::from_registry(e, op)),
        }
    }
}

/// A small JSON request body (import, members), or 400 saying why it is not JSON.
pub(super) fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("Malformed JSON in request body: {e}")))
}

/// A v2 image answer: the JSON object of the image.
pub(super) fn image_json(status: StatusCode, image: &Image) -> Result<Response<Body>, Error> {
    Ok(super::json_bytes_response(
        status,
        crate::http::image_v2::V2Image(image).to_json(),
    ))
}

/// `204 No Content`.
pub(super) fn no_content() -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// A refused v2 body as the API error with the same status.
impl From<BodyError> for Error {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Invalid(m) => Error::BadRequest(m),
            BodyError::Forbidden(m) => Error::Forbidden(m),
            BodyError::Conflict(m) => Error::Conflict(m),
        }
    }
}

/// A v2 update must be a JSON patch of the 2.1 media type.
fn check_patch_type(req: &Request<Incoming>) -> Result<(), Error> {
    let media = super::request::media_type(req.headers());
    if media.as_deref() == Some(crate::http::json_patch::MEDIA_TYPE) {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType(format!(
            "Unsupported Content-Type {}: image updates take {}",
            media.unwrap_or_else(|| "(none)".into()),
            crate::http::json_patch::MEDIA_TYPE
        )))
    }
}

/// Sets a header when the value is a valid header value.
pub(super) fn set_header(resp: &mut Response<Body>, name: hyper::header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
