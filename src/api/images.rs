//! The Images API v1 (spec §5): metadata in `x-image-meta-*` headers, image data streamed to and
//! from the stores, the status lifecycle of §6 and the upload procedure of §5.5.1.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, LOCATION,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::access::Api;
use super::catalog::Catalog;
use super::health;
use super::request::{
    check_content_type, content_length, has_body, read_small_body, refuse_unread, take_body,
};
use super::{json_response, Error};
use crate::api::error::RegistryOp;
use crate::auth::{Authenticator, Context, PolicyFile};
use crate::http::body::{empty, Body};
use crate::http::members_json::{decode_member, decode_memberships};
use crate::http::meta_headers::{decode_image_meta, encode_image_meta, truthy, MetaHeaders};
use crate::http::query::QueryParams;
use crate::http::route::{match_api_route, ApiRoute, RouteError};
use crate::metrics::metrics;
use crate::model::{parse_image_id, Image, PublicImage, Status};
use crate::patch::ImagePatch;
use crate::registry::query::Viewer;
use crate::registry::{self, Limits, ListQuery, UpdateOptions};
use crate::server::Handler;
use crate::store::{self, Filesystem, Location, Stores};

use crate::http::wire::PURGE_PROPS_HEADER;

/// Settings of the Images API that come from configuration.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Paging defaults.
    pub limits: Limits,
    /// Largest image accepted, in bytes (`image_size_cap`).
    pub size_cap: u64,
    /// Most custom properties per image (`image_property_quota`); `None` means unlimited.
    pub property_quota: Option<usize>,
    /// Base URL for the versions document and `Location` headers (`public_endpoint`).
    pub public_endpoint: Option<String>,
    /// Most members per image (`image_member_quota`); `None` means unlimited.
    pub member_quota: Option<usize>,
    /// While this file exists, `/healthcheck` answers 503 (`disable_by_file_path`).
    pub health_disable_file: Option<std::path::PathBuf>,
}

/// The Images API service.
pub struct ImagesService {
    /// Image records (in-process or remote registry).
    pub(super) catalog: Arc<Catalog>,
    /// Image data.
    pub(super) stores: Arc<Stores>,
    /// Limits and quotas.
    pub(super) settings: ApiSettings,
    /// Where v2 `stage` keeps data until its import (`<filesystem store>/staging`); `None` if
    /// that directory could not be made.
    pub(super) staging: Option<Arc<Filesystem>>,
    /// Who the caller is.
    pub(super) auth: Arc<Authenticator>,
    /// What callers may do.
    pub(super) policy: Arc<PolicyFile>,
}

impl Handler for ImagesService {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = std::time::Instant::now();
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let mut name = "unmatched";
        let resp = match self.route(req, &mut name).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        };
        let status = resp.status().as_u16();
        metrics().request("api", name, method.as_str(), status, started.elapsed());
        crate::debug!("api {method} {uri} -> {status}");
        resp
    }
}

impl ImagesService {
    /// A service over `catalog` and `stores`.
    pub fn new(catalog: Catalog, stores: Arc<Stores>, settings: ApiSettings) -> ImagesService {
        // Beside the image directory, never in it: the store's directory holds image files only.
        let images = stores.filesystem.dir();
        let staging_dir = match (images.parent(), images.file_name()) {
            (Some(parent), Some(name)) => {
                parent.join(format!("{}-staging", name.to_string_lossy()))
            }
            _ => images.join("staging"),
        };
        let staging = match Filesystem::open(&staging_dir) {
            Ok(fs) => Some(Arc::new(fs)),
            Err(e) => {
                crate::error!(
                    "cannot open the staging directory {}: {e}; v2 stage and import are off",
                    staging_dir.display()
                );
                None
            }
        };
        ImagesService {
            catalog: Arc::new(catalog),
            stores,
            settings,
            staging,
            auth: Arc::new(Authenticator::NoAuth),
            policy: Arc::new(PolicyFile::default()),
        }
    }

    /// The same service with authentication and a policy (the default is no authentication:
    /// every caller an admin without owner, §13).
    pub fn with_access(
        mut self,
        auth: Arc<Authenticator>,
        policy: Arc<PolicyFile>,
    ) -> ImagesService {
        self.auth = auth;
        self.policy = policy;
        self
    }

    /// Another handle on the same catalog, stores and settings, for work that outlives a request
    /// (a v2 import).
    pub(super) fn handle(&self) -> ImagesService {
        ImagesService {
            catalog: self.catalog.clone(),
            stores: self.stores.clone(),
            settings: self.settings.clone(),
            staging: self.staging.clone(),
            auth: self.auth.clone(),
            policy: self.policy.clone(),
        }
    }

    /// `/healthcheck`: the registry answers, the default store takes a write, no disable file.
    async fn healthcheck(&self, method: &Method) -> Response<Body> {
        let mut problem = health::disabled_by_file(self.settings.health_disable_file.as_deref());
        if problem.is_none() {
            let read = self.catalog.get(&health::PROBE_ID).await.map(|_| ());
            problem = health::registry_problem(read);
        }
        if problem.is_none() {
            if let Err(e) = self.stores.check_default().await {
                problem = Some(format!("default store unusable: {e}"));
            }
        }
        health::answer(method, problem)
    }

    /// `/metrics`: the process's counters, with the registry's images by status when it is
    /// in this process.
    fn metrics(&self) -> Result<Response<Body>, Error> {
        let counts = match &*self.catalog {
            Catalog::Local(registry) => Some(registry.count_by_status()?),
            Catalog::Remote(_) => None,
        };
        Ok(health::metrics_response(
            metrics().render(counts.as_deref()),
        ))
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        name: &mut &'static str,
    ) -> Result<Response<Body>, Error> {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            match req.uri().path() {
                health::HEALTHCHECK_PATH => {
                    *name = "healthcheck";
                    return Ok(self.healthcheck(req.method()).await);
                }
                health::METRICS_PATH => {
                    *name = "metrics";
                    return self.metrics();
                }
                _ => {}
            }
        }
        let path = req.uri().path().to_string();
        let accept = req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let route = match match_api_route(req.method(), &path, accept.as_deref()) {
            Ok(route) => route,
            Err(RouteError::NotFound) => return Err(Error::NoSuchRoute),
            Err(RouteError::MethodNotAllowed { allow })
                if req.method() == Method::HEAD && allow == "GET" =>
            {
                return Err(Error::MethodNotAllowedWith {
                    allow,
                    message: "This operation is currently not permitted on Glance images details.",
                })
            }
            Err(RouteError::MethodNotAllowed { allow }) => {
                return Err(Error::MethodNotAllowed { allow })
            }
        };
        *name = route.name();
        if let ApiRoute::Versions { multiple_choices } = route {
            // The versions document is for everyone, as Glance's unauthenticated pipeline.
            return self.versions(&req, multiple_choices);
        }
        let ctx = self.context(req.headers()).await?;
        let ctx = &ctx;
        match route {
            ApiRoute::Versions { .. } => Err(Error::NoSuchRoute),
            ApiRoute::List => self.list(ctx, &req, false).await,
            ApiRoute::Detail => self.list(ctx, &req, true).await,
            ApiRoute::Head(id) => self.head(ctx, id).await,
            ApiRoute::Download(id) => self.download(ctx, id).await,
            ApiRoute::Create => {
                let (parts, body) = req.into_parts();
                let mut body = Some(body);
                let result = self.create(ctx, &parts.headers, &mut body).await;
                refuse_unread(&parts.headers, body, result).await
            }
            ApiRoute::Update(id) => {
                let id = id.to_string();
                let (parts, body) = req.into_parts();
                let mut body = Some(body);
                let result = self.update(ctx, &id, &parts.headers, &mut body).await;
                refuse_unread(&parts.headers, body, result).await
            }
            ApiRoute::Delete(id) => self.delete(ctx, id).await,
            ApiRoute::ListMembers(id) => {
                let image = self.load_live(ctx, id).await?;
                self.enforce(ctx, "get_members", Some(&image))?;
                let members = self.catalog.members(&image.id).await?;
                json_response(StatusCode::OK, &json!({ "members": members }))
            }
            ApiRoute::ReplaceMembers(id) => {
                let image = self.load_live(ctx, id).await?;
                self.check_mutable(ctx, &image, Api::V1)?;
                self.enforce(ctx, "modify_member", Some(&image))?;
                let body = read_small_body(req.into_body()).await?;
                let members = decode_memberships(&body).map_err(|e| Error::BadRequest(e.0))?;
                self.check_member_quota(members.len())?;
                self.catalog.replace_members(&image.id, &members).await?;
                Ok(super::registry::no_content())
            }
            ApiRoute::AddMember(id, member) => {
                let member = member.to_string();
                let image = self.load_live(ctx, id).await?;
                self.check_mutable(ctx, &image, Api::V1)?;
                self.enforce(ctx, "add_member", Some(&image))?;
                let body = read_small_body(req.into_body()).await?;
                let can_share = decode_member(&body).map_err(|e| Error::BadRequest(e.0))?;
                // The count is taken even when the member exists already (§5.8).
                let count = self.catalog.members(&image.id).await?.len();
                self.check_member_quota(count + 1)?;
                self.catalog
                    .add_member(&image.id, &member, can_share)
                    .await?;
                Ok(super::registry::no_content())
            }
            ApiRoute::RemoveMember(id, member) => {
                let image = self.load_live(ctx, id).await?;
                self.check_mutable(ctx, &image, Api::V1)?;
                self.enforce(ctx, "delete_member", Some(&image))?;
                self.catalog.remove_member(&image.id, member).await?;
                Ok(super::registry::no_content())
            }
            ApiRoute::V2(route) => self.v2(ctx, route, req).await,
            ApiRoute::SharedImages(member) => {
                let mut shared = self.catalog.shared_images(member).await?;
                if !ctx.is_admin {
                    // Only what the caller may see itself.
                    let mut seen = Vec::with_capacity(shared.len());
                    for s in shared {
                        let image = self.catalog.get(&s.image_id).await;
                        if let Ok(image) = image {
                            if self.sees(ctx, &image).await? {
                                seen.push(s);
                            }
                        }
                    }
                    shared = seen;
                }
                json_response(StatusCode::OK, &json!({ "shared_images": shared }))
            }
        }
    }

    /// Loads an image for a members call: deleted images are "not found" there (§5.8).
    async fn load_live(&self, ctx: &Context, segment: &str) -> Result<Image, Error> {
        let image = self.load_for(ctx, segment).await?;
        if image.deleted {
            return Err(Error::NotFound(format!(
                "Image with identifier {} has been deleted.",
                image.id
            )));
        }
        Ok(image)
    }

    pub(super) fn check_member_quota(&self, count: usize) -> Result<(), Error> {
        match self.settings.member_quota {
            Some(max) if count > max => Err(Error::PayloadTooLarge(format!(
                "The limit has been exceeded on the number of allowed image members for this image. Attempted: {count}, Maximum: {max}"
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(endpoint) = &self.settings.public_endpoint {
            return endpoint.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    fn versions(
        &self,
        req: &Request<Incoming>,
        multiple_choices: bool,
    ) -> Result<Response<Body>, Error> {
        let base = self.base_url(req.headers());
        let link = |v: &str| json!([{"rel": "self", "href": format!("{base}/{v}/")}]);
        let mut versions: Vec<serde_json::Value> = super::v2::VERSIONS
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let status = if i == 0 { "CURRENT" } else { "SUPPORTED" };
                json!({"id": id, "status": status, "links": link("v2")})
            })
            .collect();
        for id in ["v1.1", "v1.0"] {
            versions.push(json!({"id": id, "status": "SUPPORTED", "links": link("v1")}));
        }
        let doc = json!({ "versions": versions });
        let status = if multiple_choices {
            StatusCode::MULTIPLE_CHOICES
        } else {
            StatusCode::OK
        };
        json_response(status, &doc)
    }

    async fn list(
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
            let images: Vec<PublicImage<'_>> = images.iter().map(Image::public_view).collect();
            json_response(StatusCode::OK, &ImagesBody { images })
        } else {
            let images: Vec<_> = images.iter().map(Image::brief).collect();
            json_response(StatusCode::OK, &ImagesBody { images })
        }
    }

    /// Loads an image by the id in a path; anything that is not a known id is 404.
    pub(super) async fn load(&self, segment: &str) -> Result<Image, Error> {
        let op = RegistryOp::LoadV1 { segment };
        let id = parse_image_id(segment).ok_or_else(|| op.not_found())?;
        self.catalog
            .get(&id)
            .await
            .map_err(|e| Error::from_registry(e, op))
    }

    /// Loads an image the caller may see; an invisible one is 404 like a missing one (§13).
    pub(super) async fn load_for(&self, ctx: &Context, segment: &str) -> Result<Image, Error> {
        let image = self.load(segment).await?;
        // Deleted records stay visible to admins only (§14 #21).
        if (ctx.is_admin || !image.deleted) && self.sees(ctx, &image).await? {
            Ok(image)
        } else {
            Err(Error::NotFound(format!(
                "Image with identifier {segment} not found"
            )))
        }
    }

    async fn head(&self, ctx: &Context, segment: &str) -> Result<Response<Body>, Error> {
        let image = self.load_for(ctx, segment).await?;
        self.enforce(ctx, "get_image", Some(&image))?;
        let mut resp = Response::new(empty());
        encode_image_meta(&image, resp.headers_mut());
        Ok(resp)
    }

    async fn download(&self, ctx: &Context, segment: &str) -> Result<Response<Body>, Error> {
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
        let (body, size) = if image.size == 0 {
            (empty(), 0)
        } else {
            let uri = image
                .location
                .as_deref()
                .ok_or_else(|| Error::NotFound(format!("Image {} has no data", image.id)))?;
            let location = Location::parse(uri)?;
            let data = self.stores.get(&location).await?;
            (data.body, data.size.unwrap_or(image.size))
        };
        let mut resp = Response::new(body);
        encode_image_meta(&image, resp.headers_mut());
        let headers = resp.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        Ok(resp)
    }

    /// Decodes and checks the metadata headers (§5.5 steps 1–3, 5): codec, request values, the
    /// declared size against the cap, and the property quota of the request alone.
    fn decode_request(&self, headers: &HeaderMap) -> Result<MetaHeaders, Error> {
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

    pub(super) fn check_property_quota(&self, count: usize) -> Result<(), Error> {
        match self.settings.property_quota {
            Some(max) if count > max => Err(Error::PayloadTooLarge(format!(
                "The limit has been exceeded on the number of allowed image properties. Attempted: {count}, Maximum: {max}"
            ))),
            _ => Ok(()),
        }
    }

    /// `POST /v1/images` (§5.5): every check that depends only on the request runs before the
    /// record is created (§14 #12), so a refused request leaves nothing behind.
    async fn create(
        &self,
        ctx: &Context,
        headers: &HeaderMap,
        body: &mut Option<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let mut meta = self.decode_request(headers)?;
        self.enforce(ctx, "add_image", None)?;
        self.check_patch_rights(ctx, &mut meta.patch, None, Api::V1)?;
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
        let image = if with_body {
            self.upload(
                image,
                meta.store.as_deref(),
                super::request::BodySource(take_body(body)?),
            )
            .await?
        } else {
            image
        };
        let mut resp = image_response(StatusCode::CREATED, &image)?;
        let location = format!("{base}/v1/images/{}", image.id);
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(LOCATION, v);
        }
        Ok(resp)
    }

    /// `PUT /v1/images/{id}` (§5.6): metadata update, and data upload to a queued image.
    async fn update(
        &self,
        ctx: &Context,
        segment: &str,
        headers: &HeaderMap,
        body: &mut Option<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let mut meta = self.decode_request(headers)?;
        let image = self.load_for(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V1)?;
        self.enforce(ctx, "modify_image", Some(&image))?;
        self.check_patch_rights(ctx, &mut meta.patch, Some(&image), Api::V1)?;
        if has_body(headers) {
            self.enforce(ctx, "upload_image", Some(&image))?;
        }
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
        let image = if with_body {
            self.upload(
                image,
                meta.store.as_deref(),
                super::request::BodySource(take_body(body)?),
            )
            .await?
        } else {
            image
        };
        image_response(StatusCode::OK, &image)
    }

    /// `DELETE /v1/images/{id}` (§5.7).
    async fn delete(&self, ctx: &Context, segment: &str) -> Result<Response<Body>, Error> {
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
        let deleted = self.catalog.delete(&image.id).await?;
        if let Some(uri) = &deleted.location {
            match Location::parse(uri) {
                Ok(location) => self.discard(&location).await,
                Err(e) => crate::warn!("image {} had an unreadable location: {e}", image.id),
            }
        }
        Ok(Response::new(empty()))
    }
}

fn image_response(status: StatusCode, image: &Image) -> Result<Response<Body>, Error> {
    #[derive(Serialize)]
    struct ImageBody<'a> {
        image: PublicImage<'a>,
    }
    let mut resp = json_response(
        status,
        &ImageBody {
            image: image.public_view(),
        },
    )?;
    if let Some(checksum) = &image.checksum {
        if let Ok(v) = HeaderValue::from_str(checksum) {
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
