//! The Registry API (spec §9): image records as JSON, no image data, no version prefix.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use uuid::Uuid;

use super::{json_response, Error};
use crate::api::error::RegistryOp;
use crate::http::body::{collect_limited, Body, CollectError};
use crate::http::image_json::decode_registry_body;
use crate::http::members_json::{decode_member, decode_member_status, decode_memberships};
use crate::http::query::QueryParams;
use crate::http::route::{match_registry_route, RegistryRoute, RouteError};
use crate::http::wire::{VIEWER_HEADER, VIEWER_MEMBER_STATUS_HEADER};
use crate::model::{parse_image_id, Image, MemberStatus, Status};
use crate::registry::query::Viewer;
use crate::registry::{Limits, ListQuery, Registry, UpdateOptions};
use crate::server::{Handler, Peer};

/// Largest JSON request body accepted.
pub const MAX_JSON_BODY: usize = 4 << 20;

pub use crate::http::wire::PURGE_PROPS_HEADER;

/// The Registry API service.
pub struct RegistryService {
    /// The image records.
    registry: Arc<Registry>,
    /// Page size defaults for list requests.
    limits: Limits,
    /// Peers whose list restrictions (the viewer headers) are believed.
    trusted_clients: Vec<IpAddr>,
}

impl RegistryService {
    /// A service over `registry` with the given paging limits.
    pub fn new(registry: Arc<Registry>, limits: Limits) -> RegistryService {
        RegistryService {
            registry,
            limits,
            trusted_clients: Vec::new(),
        }
    }

    /// The same service, believing the viewer headers of API servers at these addresses
    /// (`registry_trusted_clients`); from anyone else they are refused.
    pub fn with_trusted_clients(mut self, clients: Vec<IpAddr>) -> RegistryService {
        self.trusted_clients = clients;
        self
    }

    /// The list restriction an API server relayed (§13), if any; 403 from an untrusted peer.
    fn relayed_viewer(&self, req: &Request<Incoming>) -> Result<Option<Viewer>, Error> {
        let Some(owner) = req.headers().get(VIEWER_HEADER) else {
            return Ok(None);
        };
        let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
        if !peer.is_some_and(|ip| self.trusted_clients.contains(&ip)) {
            return Err(Error::Forbidden(format!(
                "{VIEWER_HEADER} is accepted only from registry_trusted_clients"
            )));
        }
        let owner = String::from_utf8_lossy(owner.as_bytes()).into_owned();
        let status = req
            .headers()
            .get(VIEWER_MEMBER_STATUS_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let member_status = match status.as_deref() {
            None | Some("any") => None,
            Some(s) => Some(MemberStatus::parse(s).ok_or_else(|| {
                Error::BadRequest(format!("{VIEWER_MEMBER_STATUS_HEADER}: unknown status {s}"))
            })?),
        };
        Ok(Some(Viewer {
            owner: Some(owner).filter(|o| !o.is_empty()),
            member_status,
        }))
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        name: &mut &'static str,
    ) -> Result<Response<Body>, Error> {
        if matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
            match req.uri().path() {
                super::health::HEALTHCHECK_PATH => {
                    *name = "healthcheck";
                    return Ok(self.healthcheck(req.method()));
                }
                super::health::METRICS_PATH => {
                    *name = "metrics";
                    let counts = self.registry.count_by_status()?;
                    let text = crate::metrics::metrics().render(Some(&counts));
                    return Ok(super::health::metrics_response(text));
                }
                _ => {}
            }
        }
        let path = req.uri().path().to_string();
        let route = match_registry_route(req.method(), &path).map_err(|e| match e {
            RouteError::NotFound => Error::NoSuchRoute,
            RouteError::MethodNotAllowed { allow } => Error::MethodNotAllowed { allow },
        })?;
        *name = route.name();
        match route {
            RegistryRoute::List => self.list(&req, false),
            RegistryRoute::Detail => self.list(&req, true),
            RegistryRoute::Show(id) => {
                // The stored bytes are the record's JSON: wrap them, don't decode and re-encode.
                let stored = self.registry.get_json(&image_id(id)?)?;
                let mut body = Vec::with_capacity(stored.len() + 10);
                body.extend_from_slice(b"{\"image\":");
                body.extend_from_slice(&stored);
                body.push(b'}');
                let mut resp = Response::new(crate::http::body::full(body));
                resp.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok(resp)
            }
            RegistryRoute::Create => self.create(req).await,
            RegistryRoute::Update(id) => {
                let id = image_id(id)?;
                self.update(id, req).await
            }
            RegistryRoute::Delete(id) => {
                let image = self.registry.delete(&image_id(id)?).await?;
                json_response(StatusCode::OK, &ImageBody { image: &image })
            }
            RegistryRoute::ListMembers(id) => {
                // With each member's v2 status and times (extra keys v1 clients ignore).
                let members = self.registry.image_members(&image_id(id)?)?;
                json_response(StatusCode::OK, &serde_json::json!({ "members": members }))
            }
            RegistryRoute::ReplaceMembers(id) => {
                let id = image_id(id)?;
                let body = read_json_body(req).await?;
                let members = decode_memberships(&body).map_err(|e| Error::BadRequest(e.0))?;
                self.registry.replace_members(&id, &members).await?;
                Ok(no_content())
            }
            RegistryRoute::AddMember(id, member) => {
                let (id, member) = (image_id(id)?, member.to_string());
                let body = read_json_body(req).await?;
                let can_share = decode_member(&body).map_err(|e| Error::BadRequest(e.0))?;
                let status = decode_member_status(&body).map_err(|e| Error::BadRequest(e.0))?;
                let status = status
                    .map(|s| {
                        crate::registry::MemberStatus::parse(&s).ok_or_else(|| {
                            Error::BadRequest(format!("Invalid member status '{s}'"))
                        })
                    })
                    .transpose()?;
                self.registry.add_member(&id, &member, can_share).await?;
                if let Some(status) = status {
                    self.registry
                        .set_member_status(&id, &member, status)
                        .await?;
                }
                Ok(no_content())
            }
            RegistryRoute::RemoveMember(id, member) => {
                self.registry.remove_member(&image_id(id)?, member).await?;
                Ok(no_content())
            }
            RegistryRoute::SharedImages(member) => {
                let shared = self.registry.shared_images(member)?;
                json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "shared_images": shared }),
                )
            }
        }
    }

    /// `/healthcheck` of the Registry API: the database answers a read.
    fn healthcheck(&self, method: &hyper::Method) -> Response<Body> {
        let read = self.registry.get(&super::health::PROBE_ID).map(|_| ());
        super::health::answer(method, super::health::registry_problem(read))
    }

    fn list(&self, req: &Request<Incoming>, detail: bool) -> Result<Response<Body>, Error> {
        let params = QueryParams::parse(req.uri().query().unwrap_or(""));
        let v2_param = crate::http::wire::V2_LIST_PARAM;
        let query = if params.iter().any(|(k, _)| k == v2_param) {
            // A glint API server relaying a v2 list (see `RegistryClient::list_v2`).
            let v2 = params.iter().filter(|(k, _)| *k != v2_param);
            crate::registry::query_v2::parse(v2, self.limits).map(|q| q.query)
        } else {
            ListQuery::from_params(params.iter(), self.limits)
        }
        .map_err(|e| Error::BadRequest(e.0))?;
        let mut query = query;
        query.filters.viewer = self.relayed_viewer(req)?;
        let images = self.registry.list(&query)?;
        if detail {
            json_response(StatusCode::OK, &ImagesBody { images })
        } else {
            let images: Vec<_> = images.iter().map(Image::brief).collect();
            json_response(StatusCode::OK, &ImagesBody { images })
        }
    }

    async fn create(&self, req: Request<Incoming>) -> Result<Response<Body>, Error> {
        let body = read_json_body(req).await?;
        let request = decode_registry_body(&body).map_err(|e| {
            Error::BadRequest(format!("Failed to add image metadata. Got error: {e}"))
        })?;
        let image = self
            .registry
            .create(request.patch, Status::Active)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::RegistryCreate))?;
        json_response(StatusCode::OK, &ImageBody { image: &image })
    }

    async fn update(&self, id: Uuid, req: Request<Incoming>) -> Result<Response<Body>, Error> {
        let purge_props = req
            .headers()
            .get(PURGE_PROPS_HEADER)
            // Exactly `true`, as upstream compares (§9.4); `True` or `1` do not purge.
            .is_some_and(|v| v.as_bytes() == b"true");
        let body = read_json_body(req).await?;
        let request = decode_registry_body(&body).map_err(|e| {
            Error::BadRequest(format!("Failed to update image metadata. Got error: {e}"))
        })?;
        let options = UpdateOptions {
            purge_props,
            from_state: request.from_state,
        };
        let image = self
            .registry
            .update(&id, request.patch, options)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::RegistryUpdate))?;
        json_response(StatusCode::OK, &ImageBody { image: &image })
    }
}

impl Handler for RegistryService {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = std::time::Instant::now();
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let mut name = "unmatched";
        let resp = match self.route(req, &mut name).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        };
        let status = resp.status().as_u16();
        crate::metrics::metrics().request(
            "registry",
            name,
            method.as_str(),
            status,
            started.elapsed(),
        );
        crate::debug!("registry {method} {uri} -> {status}");
        resp
    }
}

#[derive(Serialize)]
struct ImageBody<'a> {
    image: &'a Image,
}

#[derive(Serialize)]
struct ImagesBody<T> {
    images: Vec<T>,
}

/// 204 with no body: the answer to member changes.
pub(crate) fn no_content() -> Response<Body> {
    let mut resp = Response::new(crate::http::body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// An image id from a path: anything that is not a UUID names no image.
fn image_id(segment: &str) -> Result<Uuid, Error> {
    parse_image_id(segment).ok_or_else(|| Error::NotFound(format!("Image {segment} not found")))
}

async fn read_json_body(req: Request<Incoming>) -> Result<bytes::Bytes, Error> {
    collect_limited(req.into_body(), MAX_JSON_BODY)
        .await
        .map_err(|e| match e {
            CollectError::TooLarge { limit } => {
                Error::PayloadTooLarge(format!("Request body is larger than {limit} bytes"))
            }
            CollectError::Read(e) => Error::BadRequest(format!("Could not read request body: {e}")),
        })
}
