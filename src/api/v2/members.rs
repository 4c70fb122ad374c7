//! v2 image members: who a `shared` image is offered to, and each member's answer
//! (`pending`, `accepted`, `rejected`).

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::no_content;
use crate::api::access::Api;
use crate::api::error::RegistryOp;
use crate::api::images::ImagesService;
use crate::api::{json_response, Error};
use crate::auth::{access, Context};
use crate::http::body::Body;
use crate::http::image_v2::v2_time;
use crate::http::query::percent_decode;
use crate::model::Visibility;
use crate::registry::{self, ImageMember, MemberStatus};

/// The v2 JSON of a member.
fn member_json(m: &ImageMember) -> Value {
    json!({
        "image_id": m.image_id,
        "member_id": m.member_id,
        "status": m.status.as_str(),
        "created_at": v2_time(m.created_at),
        "updated_at": v2_time(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

impl ImagesService {
    /// `GET /v2/images/{id}/members`.
    pub(super) async fn v2_members(
        &self,
        ctx: &Context,
        segment: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_v2(ctx, segment).await?;
        self.enforce(ctx, "get_members", Some(&image))?;
        let mut members = self.catalog.image_members(&image.id).await?;
        if !access::mutable(&image, ctx) {
            // A member sees its own membership only (Glance v2).
            members.retain(|m| Some(&m.member_id) == ctx.owner.as_ref());
        }
        json_response(
            StatusCode::OK,
            &json!({
                "members": members.iter().map(member_json).collect::<Vec<_>>(),
                "schema": "/v2/schemas/members",
            }),
        )
    }

    /// `POST /v2/images/{id}/members` with `{"member": "<project>"}`: a pending member of a
    /// shared image.
    pub(super) async fn v2_add_member(
        &self,
        ctx: &Context,
        segment: &str,
        body: &[u8],
    ) -> Result<Response<Body>, Error> {
        let request = super::parse_json(body)?;
        let member = request["member"]
            .as_str()
            .ok_or_else(|| Error::BadRequest("Member to be added not specified".into()))?;
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "add_member", Some(&image))?;
        if image.visibility != Visibility::Shared {
            return Err(Error::Forbidden(format!(
                "Only shared images have members; image {} is {}.",
                image.id,
                image.visibility.as_str()
            )));
        }
        let current = self.catalog.image_members(&image.id).await?;
        if current.iter().any(|m| m.member_id == member) {
            return Err(Error::Conflict(format!(
                "Member {member} already associated with image {}",
                image.id
            )));
        }
        self.check_member_quota(current.len() + 1)?;
        self.catalog.add_member(&image.id, member, None).await?;
        let added = self.find_member(&image.id, member).await?;
        json_response(StatusCode::OK, &member_json(&added))
    }

    /// `GET /v2/images/{id}/members/{member}`.
    pub(super) async fn v2_member(
        &self,
        ctx: &Context,
        segment: &str,
        member: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_v2(ctx, segment).await?;
        self.enforce(ctx, "get_member", Some(&image))?;
        let member = percent_decode(member);
        if !access::mutable(&image, ctx) && ctx.owner.as_ref() != Some(&member) {
            return Err(member_error(
                registry::Error::MemberNotFound,
                &image.id,
                &member,
            ));
        }
        let found = self.find_member(&image.id, &member).await?;
        json_response(StatusCode::OK, &member_json(&found))
    }

    /// `PUT /v2/images/{id}/members/{member}` with `{"status": "accepted"}`.
    pub(super) async fn v2_update_member(
        &self,
        ctx: &Context,
        segment: &str,
        member: &str,
        body: &[u8],
    ) -> Result<Response<Body>, Error> {
        let request = super::parse_json(body)?;
        let status = request["status"]
            .as_str()
            .and_then(MemberStatus::parse)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid member status {}: it must be pending, accepted or rejected",
                    request["status"]
                ))
            })?;
        let image = self.load_v2(ctx, segment).await?;
        self.enforce(ctx, "modify_member", Some(&image))?;
        let member = percent_decode(member);
        // Only the member answers an offer (Glance v2); admins may act for it.
        if ctx.read_only || (!ctx.is_admin && ctx.owner.as_ref() != Some(&member)) {
            return Err(Error::Forbidden(format!(
                "Only the member {member} may change the status of its membership."
            )));
        }
        let updated = self
            .catalog
            .set_member_status(&image.id, &member, status)
            .await
            .map_err(|e| member_error(e, &image.id, &member))?;
        json_response(StatusCode::OK, &member_json(&updated))
    }

    /// `DELETE /v2/images/{id}/members/{member}` (204).
    pub(super) async fn v2_remove_member(
        &self,
        ctx: &Context,
        segment: &str,
        member: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "delete_member", Some(&image))?;
        let member = percent_decode(member);
        self.catalog
            .remove_member(&image.id, &member)
            .await
            .map_err(|e| member_error(e, &image.id, &member))?;
        Ok(no_content())
    }

    async fn find_member(&self, id: &uuid::Uuid, member: &str) -> Result<ImageMember, Error> {
        self.catalog
            .image_members(id)
            .await?
            .into_iter()
            .find(|m| m.member_id == member)
            .ok_or_else(|| member_error(registry::Error::MemberNotFound, id, member))
    }
}

fn member_error(e: registry::Error, id: &uuid::Uuid, member: &str) -> Error {
    Error::from_registry(e, RegistryOp::Member { id, member })
}
