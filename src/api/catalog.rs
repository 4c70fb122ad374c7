//! Where the Images API finds image records: the registry in the same process (`glint serve`), or
//! a remote registry over the Registry API (`glint api --registry-url`). Both answer with the
//! same typed errors, so the handlers cannot tell them apart.
//!
//! A remote call's future (an HTTP exchange) is boxed: inline, it would make the future of every
//! request several KiB larger, and hyper moves that future into place for each request, local
//! registry or not.

use std::sync::Arc;

use uuid::Uuid;

use crate::client::registry::{self as remote, RegistryClient};
use crate::model::{Image, Status};
use crate::patch::ImagePatch;
use crate::registry::{
    Error, ImageMember, ListQuery, Member, MemberStatus, Registry, SharedImage, UpdateOptions,
};

/// The source of image records.
pub enum Catalog {
    /// The registry in this process: no HTTP hop.
    Local(Arc<Registry>),
    /// A registry reached over HTTP.
    Remote(RegistryClient),
}

impl Catalog {
    /// The image with this id, deleted or not.
    pub async fn get(&self, id: &Uuid) -> Result<Image, Error> {
        match self {
            Catalog::Local(r) => r.get(id),
            Catalog::Remote(c) => Ok(Box::pin(c.get(id)).await?),
        }
    }

    /// Creates an image; an absent status becomes `default_status`.
    pub async fn create(&self, patch: ImagePatch, default_status: Status) -> Result<Image, Error> {
        match self {
            Catalog::Local(r) => r.create(patch, default_status).await,
            Catalog::Remote(c) => {
                let mut patch = patch;
                patch.status = patch.status.or(Some(default_status));
                Ok(Box::pin(c.create(&patch)).await?)
            }
        }
    }

    /// Updates an image (§9.4).
    pub async fn update(
        &self,
        id: &Uuid,
        patch: ImagePatch,
        options: UpdateOptions,
    ) -> Result<Image, Error> {
        match self {
            Catalog::Local(r) => r.update(id, patch, options).await,
            Catalog::Remote(c) => Ok(Box::pin(c.update(id, &patch, options)).await?),
        }
    }

    /// Soft-deletes an image.
    pub async fn delete(&self, id: &Uuid) -> Result<Image, Error> {
        match self {
            Catalog::Local(r) => r.delete(id).await,
            Catalog::Remote(c) => Ok(Box::pin(c.delete(id)).await?),
        }
    }

    /// The members of an image.
    pub async fn members(&self, id: &Uuid) -> Result<Vec<Member>, Error> {
        match self {
            Catalog::Local(r) => r.members(id),
            Catalog::Remote(c) => Ok(Box::pin(c.members(id)).await?),
        }
    }

    /// The members of an image with their v2 status.
    pub async fn image_members(&self, id: &Uuid) -> Result<Vec<ImageMember>, Error> {
        match self {
            Catalog::Local(r) => r.image_members(id),
            Catalog::Remote(c) => Ok(Box::pin(c.image_members(id)).await?),
        }
    }

    /// Sets the v2 status of a member.
    pub async fn set_member_status(
        &self,
        id: &Uuid,
        member: &str,
        status: MemberStatus,
    ) -> Result<ImageMember, Error> {
        match self {
            Catalog::Local(r) => r.set_member_status(id, member, status).await,
            Catalog::Remote(c) => Ok(Box::pin(c.set_member_status(id, member, status)).await?),
        }
    }

    /// Makes the member set exactly `members`.
    pub async fn replace_members(
        &self,
        id: &Uuid,
        members: &[(String, Option<bool>)],
    ) -> Result<(), Error> {
        match self {
            Catalog::Local(r) => r.replace_members(id, members).await,
            Catalog::Remote(c) => Ok(Box::pin(c.replace_members(id, members)).await?),
        }
    }

    /// Adds or updates one member.
    pub async fn add_member(
        &self,
        id: &Uuid,
        member: &str,
        can_share: Option<bool>,
    ) -> Result<(), Error> {
        match self {
            Catalog::Local(r) => r.add_member(id, member, can_share).await,
            Catalog::Remote(c) => Ok(Box::pin(c.add_member(id, member, can_share)).await?),
        }
    }

    /// Removes one member.
    pub async fn remove_member(&self, id: &Uuid, member: &str) -> Result<(), Error> {
        match self {
            Catalog::Local(r) => r.remove_member(id, member).await,
            Catalog::Remote(c) => Ok(Box::pin(c.remove_member(id, member)).await?),
        }
    }

    /// The images shared with `member`.
    pub async fn shared_images(&self, member: &str) -> Result<Vec<SharedImage>, Error> {
        match self {
            Catalog::Local(r) => r.shared_images(member),
            Catalog::Remote(c) => Ok(Box::pin(c.shared_images(member)).await?),
        }
    }

    /// Lists images for the Images API v2; `raw_query` is the v2 request's query string.
    pub async fn list_v2(&self, query: &ListQuery, raw_query: &str) -> Result<Vec<Image>, Error> {
        match self {
            Catalog::Local(r) => r.list(query),
            Catalog::Remote(c) => {
                let viewer = viewer_headers(query);
                Ok(Box::pin(c.list_v2(raw_query, viewer.as_ref().map(pair))).await?)
            }
        }
    }

    /// Lists images. `raw_query` is the request's query string, which a remote registry parses
    /// itself (it has been validated into `query` already).
    pub async fn list(&self, query: &ListQuery, raw_query: &str) -> Result<Vec<Image>, Error> {
        match self {
            Catalog::Local(r) => r.list(query),
            Catalog::Remote(c) => {
                let viewer = viewer_headers(query);
                Ok(Box::pin(c.list_for(raw_query, viewer.as_ref().map(pair))).await?)
            }
        }
    }
}

/// A remote registry's refusal as the registry's own error, so handlers answer the same either
/// way.
impl From<remote::Error> for Error {
    fn from(e: remote::Error) -> Self {
        match e {
            remote::Error::NotFound(id) => Error::NotFound(id),
            remote::Error::Duplicate(id) => Error::Duplicate(id),
            remote::Error::Invalid(m) => Error::Invalid(m),
            remote::Error::Forbidden(m) => Error::Forbidden(m),
            remote::Error::Conflict(m) => Error::Conflict(m),
            remote::Error::MemberNotFound => Error::MemberNotFound,
            remote::Error::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

/// The viewer of a list as the registry's viewer headers: owner (empty for anonymous) and
/// member status.
fn viewer_headers(query: &ListQuery) -> Option<(String, &'static str)> {
    query.filters.viewer.as_ref().map(|v| {
        let status = v.member_status.map_or("any", |s| s.as_str());
        (v.owner.clone().unwrap_or_default(), status)
    })
}

fn pair<'a>(v: &'a (String, &'static str)) -> (&'a str, &'a str) {
    (v.0.as_str(), v.1)
}
