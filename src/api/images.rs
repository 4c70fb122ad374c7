//! The Images API service on port 9292: its settings and shared state, the routing of each request
//! (health, metrics, versions, then `api::v1` or `api::v2` after authentication), and
//! the loads and quotas both API versions share.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderMap, ACCEPT, HOST};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::catalog::Catalog;
use super::health;
use super::{json_response, Error};
use crate::api::error::RegistryOp;
use crate::auth::{Authenticator, Context, PolicyFile};
use crate::convert::Converter;
use crate::http::body::Body;
use crate::http::route::{match_api_route, ApiRoute, RouteError};
use crate::journal::Journal;
use crate::metrics::metrics;
use crate::model::{parse_image_id, Image};
use crate::patch::ImagePatch;
use crate::registry::Limits;
use crate::server::Handler;
use crate::store::{Filesystem, Stores};

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
    /// Refuse data whose format is not the declared `disk_format`
    /// (`[image_format] require_image_format_match`, default true).
    pub require_format_match: bool,
    /// The disk and container formats images may have (`[image_format] disk_formats`,
    /// `container_formats`).
    pub enabled_formats: crate::model::EnabledFormats,
    /// `max-age` of image data responses, in seconds (`image_cache_max_age`, default 60): how
    /// long a proxy may serve a copy before it asks glint again.
    pub cache_max_age: u64,
    /// Image conversion (v1 `x-glint-convert-from`, the v2 `image_conversion` import plugin).
    pub conversion: crate::convert::Options,
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
    /// The uploads, stages and imports this process is running.
    pub(super) journal: Arc<Journal>,
    /// Runs conversions in `<data_dir>/convert`; `None` if that directory could not be made.
    pub(super) converter: Option<Arc<Converter>>,
}

impl Handler for ImagesService {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = std::time::Instant::now();
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let mut name = "unmatched";
        let mut resp = match self.route(req, &mut name).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        };
        // Only image data says how it may be cached; metadata, lists and errors (a 404 for an
        // image not yet active, say) must not be kept by a proxy.
        resp.headers_mut()
            .entry(hyper::header::CACHE_CONTROL)
            .or_insert(hyper::header::HeaderValue::from_static("no-store"));
        let status = resp.status().as_u16();
        metrics().request("api", name, method.as_str(), status, started.elapsed());
        crate::debug!("api {method} {uri} -> {status}");
        resp
    }
}

impl ImagesService {
    /// A service over `catalog` and `stores`, keeping its uploads in flight in `journal`.
    pub fn new(
        catalog: Catalog,
        stores: Arc<Stores>,
        settings: ApiSettings,
        journal: Journal,
    ) -> ImagesService {
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
        let conversion = &settings.conversion;
        let converter = match Converter::open(&conversion.dir, conversion.limits.clone()) {
            Ok(converter) => Some(Arc::new(converter)),
            Err(e) => {
                crate::error!(
                    "cannot open the conversion directory {}: {e}; image conversion is off",
                    conversion.dir.display()
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
            journal: Arc::new(journal),
            converter,
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
            journal: self.journal.clone(),
            converter: self.converter.clone(),
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
                    return Ok(Box::pin(self.healthcheck(req.method())).await);
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
        let ctx = Box::pin(self.context(req.headers())).await?;
        let ctx = &ctx;
        match route {
            ApiRoute::V2(route) => self.v2(ctx, route, req).await,
            v1 => self.v1(ctx, v1, req).await,
        }
    }

    /// Loads an image for a members call: deleted images are "not found" there (§5.8).
    pub(super) async fn load_live(&self, ctx: &Context, segment: &str) -> Result<Image, Error> {
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

    /// Refuses (400) a disk or container format the operator has not enabled. Only a value the
    /// patch changes is checked, so an image keeps a format that was disabled after it was made.
    pub(super) fn check_enabled_formats(
        &self,
        patch: &ImagePatch,
        current: Option<&Image>,
    ) -> Result<(), Error> {
        let enabled = &self.settings.enabled_formats;
        let checks = [
            (
                "disk",
                &patch.disk_format,
                current.and_then(|i| i.disk_format.as_ref()),
                &enabled.disk,
            ),
            (
                "container",
                &patch.container_format,
                current.and_then(|i| i.container_format.as_ref()),
                &enabled.container,
            ),
        ];
        for (kind, new, old, enabled) in checks {
            let Some(Some(new)) = new else { continue };
            if old != Some(new) && !enabled.contains(new) {
                return Err(Error::BadRequest(format!(
                    "Invalid {kind} format '{new}' for image: this service takes {}",
                    enabled.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub(super) fn check_property_quota(&self, count: usize) -> Result<(), Error> {
        match self.settings.property_quota {
            Some(max) if count > max => Err(Error::PayloadTooLarge(format!(
                "The limit has been exceeded on the number of allowed image properties. Attempted: {count}, Maximum: {max}"
            ))),
            _ => Ok(()),
        }
    }
}
