//! v1 sharing: the members of an image (`/v1/images/{id}/members`) and the images shared with a
//! member (`/v1/shared-images/{member}`), §5.8.

use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::api::access::Api;
use crate::api::images::ImagesService;
use crate::api::request::read_small_body;
use crate::api::{json_response, Error};
use crate::auth::Context;
use crate::http::body::Body;
use crate::http::members_json::{decode_member, decode_memberships};

impl ImagesService {
    /// `GET /v1/images/{id}/members`.
    pub(super) async fn list_members(
        &self,
        ctx: &Context,
        segment: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_live(ctx, segment).await?;
        self.enforce(ctx, "get_members", Some(&image))?;
        let members = self.catalog.members(&image.id).await?;
        json_response(StatusCode::OK, &json!({ "members": members }))
    }

    /// `PUT /v1/images/{id}/members` with `{"memberships": [...]}`: the whole member set.
    pub(super) async fn replace_members(
        &self,
        ctx: &Context,
        segment: &str,
        body: Incoming,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_live(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V1)?;
        self.enforce(ctx, "modify_member", Some(&image))?;
        let body = read_small_body(body).await?;
        let members = decode_memberships(&body).map_err(|e| Error::BadRequest(e.0))?;
        self.check_member_quota(members.len())?;
        self.catalog.replace_members(&image.id, &members).await?;
        Ok(crate::api::registry::no_content())
    }

    /// `PUT /v1/images/{id}/members/{member}` (optionally `{"member": {"can_share": ...}}`).
    pub(super) async fn add_member(
        &self,
        ctx: &Context,
        segment: &str,
        member: &str,
        body: Incoming,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_live(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V1)?;
        self.enforce(ctx, "add_member", Some(&image))?;
        let body = read_small_body(body).await?;
        let can_share = decode_member(&body).map_err(|e| Error::BadRequest(e.0))?;
        // The count is taken even when the member exists already (§5.8).
        let count = self.catalog.members(&image.id).await?.len();
        self.check_member_quota(count + 1)?;
        self.catalog
            .add_member(&image.id, member, can_share)
            .await?;
        Ok(crate::api::registry::no_content())
    }

    /// `DELETE /v1/images/{id}/members/{member}`.
    pub(super) async fn remove_member(
        &self,
        ctx: &Context,
        segment: &str,
        member: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_live(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V1)?;
        self.enforce(ctx, "delete_member", Some(&image))?;
        self.catalog.remove_member(&image.id, member).await?;
        Ok(crate::api::registry::no_content())
    }

    /// `GET /v1/shared-images/{member}`: for a non-admin, only the images it may see itself.
    pub(super) async fn shared_images(
        &self,
        ctx: &Context,
        member: &str,
    ) -> Result<Response<Body>, Error> {
        let mut shared = self.catalog.shared_images(member).await?;
        if !ctx.is_admin {
            let mut seen = Vec::with_capacity(shared.len());
            for s in shared {
                if let Ok(image) = self.catalog.get(&s.image_id).await {
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
