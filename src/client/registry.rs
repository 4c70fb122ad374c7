//! A client of the Registry API (§9): what `glint api` uses to reach a remote registry. Answers
//! are turned into this module's [`Error`], which mirrors the registry's refusals (the API maps
//! one onto the other, so the client never depends on the registry).

use std::fmt;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use uuid::Uuid;

use crate::http::image_json::encode_registry_body;
use crate::http::wire::{
    PURGE_PROPS_HEADER, V2_LIST_PARAM, VIEWER_HEADER, VIEWER_MEMBER_STATUS_HEADER,
};
use crate::model::{Image, ImageMember, Member, MemberStatus, SharedImage};
use crate::patch::{ImagePatch, UpdateOptions};
use crate::timestamp::Timestamp;

/// Why the remote registry did not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No image with this id (404).
    NotFound(Uuid),
    /// An image with this id already exists (409 on create).
    Duplicate(Uuid),
    /// The registry refused the request as invalid (400); its message.
    Invalid(String),
    /// The change is not allowed on this image (403); the registry's message.
    Forbidden(String),
    /// The image is not in the expected state (409); the registry's message.
    Conflict(String),
    /// The tenant is not a member of the image.
    MemberNotFound,
    /// The registry could not be reached, failed, or gave a malformed answer.
    Unavailable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(id) => write!(f, "Image {id} not found"),
            Error::Duplicate(id) => write!(f, "Image with identifier {id} already exists!"),
            Error::Invalid(m) | Error::Forbidden(m) | Error::Conflict(m) => f.write_str(m),
            Error::MemberNotFound => f.write_str("Membership could not be found."),
            Error::Unavailable(m) => write!(f, "registry unavailable: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Most bytes read from one registry answer (a page of 1000 detailed records fits easily).
const MAX_RESPONSE: usize = 64 << 20;

/// A Registry API client.
#[derive(Clone)]
pub struct RegistryClient {
    /// `http://host:port`, without a trailing slash.
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Deserialize)]
struct ImageBody {
    image: Image,
}

#[derive(Deserialize)]
struct ImagesBody {
    images: Vec<Image>,
}

impl RegistryClient {
    /// A client of the registry at `base_url` (e.g. `http://127.0.0.1:9191`).
    pub fn new(base_url: &str) -> RegistryClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        RegistryClient {
            base: base_url.trim_end_matches('/').to_string(),
            http: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// `GET /images/{id}`.
    pub async fn get(&self, id: &Uuid) -> Result<Image, Error> {
        let (status, body) = self
            .call(Method::GET, &format!("/images/{id}"), None, false)
            .await?;
        decode_image(status, &body, |m| not_found_or(id, m))
    }

    /// `POST /images`.
    pub async fn create(&self, patch: &ImagePatch) -> Result<Image, Error> {
        let body = encode_registry_body(patch, None);
        let (status, resp) = self
            .call(Method::POST, "/images", Some(body), false)
            .await?;
        let id = patch.id;
        decode_image(status, &resp, |m| match (status, id) {
            (StatusCode::CONFLICT, Some(id)) => Error::Duplicate(id),
            _ => Error::Invalid(m),
        })
    }

    /// `PUT /images/{id}`, with `from_state` and the purge header as `options` says.
    pub async fn update(
        &self,
        id: &Uuid,
        patch: &ImagePatch,
        options: UpdateOptions,
    ) -> Result<Image, Error> {
        let body = encode_registry_body(patch, options.from_state);
        let path = format!("/images/{id}");
        let (status, resp) = self
            .call(Method::PUT, &path, Some(body), options.purge_props)
            .await?;
        decode_image(status, &resp, |m| not_found_or(id, m))
    }

    /// `DELETE /images/{id}`.
    pub async fn delete(&self, id: &Uuid) -> Result<Image, Error> {
        let (status, body) = self
            .call(Method::DELETE, &format!("/images/{id}"), None, false)
            .await?;
        decode_image(status, &body, |m| not_found_or(id, m))
    }

    /// `GET /images/{id}/members`.
    pub async fn members(&self, id: &Uuid) -> Result<Vec<Member>, Error> {
        Ok(self
            .image_members(id)
            .await?
            .into_iter()
            .map(|m| Member {
                member_id: m.member_id,
                can_share: m.can_share,
            })
            .collect())
    }

    /// `GET /images/{id}/members`, with the v2 status and times glint's registry adds (a
    /// registry without them gives `pending` and the epoch).
    pub async fn image_members(&self, id: &Uuid) -> Result<Vec<ImageMember>, Error> {
        #[derive(Deserialize)]
        struct Body {
            members: Vec<MemberJson>,
        }
        #[derive(Deserialize)]
        struct MemberJson {
            member_id: String,
            can_share: bool,
            status: Option<String>,
            created_at: Option<Timestamp>,
            updated_at: Option<Timestamp>,
        }
        let (status, body) = self
            .call(Method::GET, &format!("/images/{id}/members"), None, false)
            .await?;
        if status != StatusCode::OK {
            return Err(error_for(status, &body, |m| not_found_or(id, m)));
        }
        let parsed: Body = serde_json::from_slice(&body)
            .map_err(|e| Error::Unavailable(format!("registry sent malformed members: {e}")))?;
        let epoch = Timestamp::from_micros(0);
        Ok(parsed
            .members
            .into_iter()
            .map(|m| ImageMember {
                image_id: *id,
                member_id: m.member_id,
                can_share: m.can_share,
                status: m
                    .status
                    .as_deref()
                    .and_then(MemberStatus::parse)
                    .unwrap_or(MemberStatus::Pending),
                created_at: m.created_at.unwrap_or(epoch),
                updated_at: m.updated_at.unwrap_or(epoch),
            })
            .collect())
    }

    /// `PUT /images/{id}/members/{member}` with a v2 `status` (glint's registry extension).
    pub async fn set_member_status(
        &self,
        id: &Uuid,
        member: &str,
        member_status: MemberStatus,
    ) -> Result<ImageMember, Error> {
        if !self
            .image_members(id)
            .await?
            .iter()
            .any(|m| m.member_id == member)
        {
            return Err(Error::MemberNotFound);
        }
        let body =
            serde_json::to_vec(&serde_json::json!({"member": {"status": member_status.as_str()}}))
                .unwrap_or_default();
        let (status, resp) = self
            .call(
                Method::PUT,
                &format!("/images/{id}/members/{member}"),
                Some(body),
                false,
            )
            .await?;
        member_result(id, status, &resp)?;
        self.image_members(id)
            .await?
            .into_iter()
            .find(|m| m.member_id == member)
            .ok_or(Error::MemberNotFound)
    }

    /// `PUT /images/{id}/members`.
    pub async fn replace_members(
        &self,
        id: &Uuid,
        members: &[(String, Option<bool>)],
    ) -> Result<(), Error> {
        let list: Vec<serde_json::Value> = members
            .iter()
            .map(|(m, c)| match c {
                Some(c) => serde_json::json!({"member_id": m, "can_share": c}),
                None => serde_json::json!({"member_id": m}),
            })
            .collect();
        let body =
            serde_json::to_vec(&serde_json::json!({ "memberships": list })).unwrap_or_default();
        let (status, resp) = self
            .call(
                Method::PUT,
                &format!("/images/{id}/members"),
                Some(body),
                false,
            )
            .await?;
        member_result(id, status, &resp)
    }

    /// `PUT /images/{id}/members/{member}`.
    pub async fn add_member(
        &self,
        id: &Uuid,
        member: &str,
        can_share: Option<bool>,
    ) -> Result<(), Error> {
        let body = can_share.map(|c| {
            serde_json::to_vec(&serde_json::json!({"member": {"can_share": c}})).unwrap_or_default()
        });
        let (status, resp) = self
            .call(
                Method::PUT,
                &format!("/images/{id}/members/{member}"),
                body,
                false,
            )
            .await?;
        member_result(id, status, &resp)
    }

    /// `DELETE /images/{id}/members/{member}`.
    pub async fn remove_member(&self, id: &Uuid, member: &str) -> Result<(), Error> {
        let (status, resp) = self
            .call(
                Method::DELETE,
                &format!("/images/{id}/members/{member}"),
                None,
                false,
            )
            .await?;
        if status == StatusCode::NOT_FOUND
            && message_of(&resp).contains("Membership could not be found")
        {
            return Err(Error::MemberNotFound);
        }
        member_result(id, status, &resp)
    }

    /// `GET /shared-images/{member}`.
    pub async fn shared_images(&self, member: &str) -> Result<Vec<SharedImage>, Error> {
        #[derive(Deserialize)]
        struct Body {
            shared_images: Vec<Shared>,
        }
        #[derive(Deserialize)]
        struct Shared {
            image_id: Uuid,
            can_share: bool,
        }
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/shared-images/{member}"),
                None,
                false,
            )
            .await?;
        if status != StatusCode::OK {
            return Err(error_for(status, &body, Error::Invalid));
        }
        let parsed: Body = serde_json::from_slice(&body).map_err(|e| {
            Error::Unavailable(format!("registry sent malformed shared images: {e}"))
        })?;
        Ok(parsed
            .shared_images
            .into_iter()
            .map(|s| SharedImage {
                image_id: s.image_id,
                can_share: s.can_share,
            })
            .collect())
    }

    /// `GET /images/detail?<query>`.
    pub async fn list(&self, query: &str) -> Result<Vec<Image>, Error> {
        self.list_for(query, None).await
    }

    /// Like [`RegistryClient::list`], restricted to what a caller may see (§13): `viewer` is
    /// the caller's owner (empty for anonymous) and the member status that lists shared images
    /// (`any`, `pending`, `accepted`, `rejected`). The registry believes it only from its
    /// `registry_trusted_clients`.
    pub async fn list_for(
        &self,
        query: &str,
        viewer: Option<(&str, &str)>,
    ) -> Result<Vec<Image>, Error> {
        let path = if query.is_empty() {
            "/images/detail".to_string()
        } else {
            format!("/images/detail?{query}")
        };
        let headers: Vec<(&str, &str)> = match viewer {
            Some((owner, status)) => vec![
                (VIEWER_HEADER, owner),
                (VIEWER_MEMBER_STATUS_HEADER, status),
            ],
            None => Vec::new(),
        };
        let (status, body) = self
            .call_with(Method::GET, &path, None, false, &headers)
            .await?;
        if status != StatusCode::OK {
            return Err(error_for(status, &body, Error::Invalid));
        }
        serde_json::from_slice::<ImagesBody>(&body)
            .map(|b| b.images)
            .map_err(|e| Error::Unavailable(format!("registry sent a malformed list: {e}")))
    }

    /// `GET /images/detail` with v2 list parameters, which glint's registry reads as v2 when
    /// [`V2_LIST_PARAM`] is set.
    pub async fn list_v2(
        &self,
        query: &str,
        viewer: Option<(&str, &str)>,
    ) -> Result<Vec<Image>, Error> {
        let marked = if query.is_empty() {
            format!("{V2_LIST_PARAM}=1")
        } else {
            format!("{query}&{V2_LIST_PARAM}=1")
        };
        self.list_for(&marked, viewer).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        purge_props: bool,
    ) -> Result<(StatusCode, Bytes), Error> {
        self.call_with(method, path, body, purge_props, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        purge_props: bool,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json");
        if purge_props {
            req = req.header(PURGE_PROPS_HEADER, "true");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::Unavailable(format!("cannot build registry request: {e}")))?;
        let resp = self.http.request(req).await.map_err(|e| {
            Error::Unavailable(format!("registry at {} unreachable: {e}", self.base))
        })?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| Error::Unavailable(format!("reading the registry's answer failed: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

fn member_result(id: &Uuid, status: StatusCode, body: &[u8]) -> Result<(), Error> {
    if status.is_success() {
        Ok(())
    } else {
        Err(error_for(status, body, |m| not_found_or(id, m)))
    }
}

fn not_found_or(id: &Uuid, message: String) -> Error {
    let _ = message;
    Error::NotFound(*id)
}

/// The message of a glint error body (`<code> <Reason>\n\n<message>\n`), without the registry's
/// own "Failed to ... Got error:" prefix (the API adds its own).
fn message_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = text.split_once("\n\n").map_or(&*text, |(_, m)| m).trim();
    for prefix in [
        "Failed to add image metadata. Got error: ",
        "Failed to update image metadata. Got error: ",
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    message.to_string()
}

fn error_for(status: StatusCode, body: &[u8], other_4xx: impl FnOnce(String) -> Error) -> Error {
    let message = message_of(body);
    match status {
        StatusCode::BAD_REQUEST => Error::Invalid(message),
        StatusCode::FORBIDDEN => Error::Forbidden(message),
        StatusCode::CONFLICT | StatusCode::NOT_FOUND => other_4xx(message),
        s => Error::Unavailable(format!("registry answered {s}: {message}")),
    }
}

fn decode_image(
    status: StatusCode,
    body: &[u8],
    on_404_409: impl FnOnce(String) -> Error,
) -> Result<Image, Error> {
    if status == StatusCode::OK {
        return serde_json::from_slice::<ImageBody>(body)
            .map(|b| b.image)
            .map_err(|e| Error::Unavailable(format!("registry sent a malformed record: {e}")));
    }
    Err(match status {
        StatusCode::CONFLICT => {
            let message = message_of(body);
            let conflict = Error::Conflict(message.clone());
            match on_404_409(message) {
                Error::Duplicate(id) => Error::Duplicate(id),
                _ => conflict,
            }
        }
        _ => error_for(status, body, on_404_409),
    })
}
