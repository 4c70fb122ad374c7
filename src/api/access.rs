//! Where the Images API asks [`crate::auth`]: the caller's context, the policy, and the §13
//! checks on one image, with the statuses and messages each API version answers.

use hyper::header::HeaderMap;

use super::images::ImagesService;
use super::Error;
use crate::auth::{access, AuthFailure, Context};
use crate::model::{Image, Visibility};
use crate::patch::ImagePatch;
use crate::registry::query::Viewer;

/// Which API asks: the two answer some refusals differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    V1,
    V2,
}

impl ImagesService {
    /// The context of the caller, or 401 / 503.
    pub(super) async fn context(&self, headers: &HeaderMap) -> Result<Context, Error> {
        self.auth.context(headers).await.map_err(|e| match e {
            AuthFailure::Unauthorized {
                message,
                www_authenticate,
            } => Error::Unauthorized {
                message,
                www_authenticate,
            },
            AuthFailure::Unavailable(m) => {
                crate::error!("token validation failed: {m}");
                Error::Unavailable("The identity service is unavailable; try again later.".into())
            }
        })
    }

    /// 403 naming the rule when the policy denies `rule` to `ctx` on `image`.
    pub(super) fn enforce(
        &self,
        ctx: &Context,
        rule: &str,
        image: Option<&Image>,
    ) -> Result<(), Error> {
        let target = image.map(access::target);
        let target = target.as_ref().map_or(&[][..], |t| &t[..]);
        if self.policy.current().allows(rule, ctx, target) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "You are not authorized to complete {rule} action (policy rule \"{rule}\")."
            )))
        }
    }

    /// Whether `ctx` may see `image` (§13), asking the catalog about membership only when that
    /// decides.
    pub(super) async fn sees(&self, ctx: &Context, image: &Image) -> Result<bool, Error> {
        if !access::needs_membership(image, ctx) {
            return Ok(access::visible(image, ctx, false));
        }
        let owner = ctx.owner.as_deref().unwrap_or_default();
        let is_member = match self.catalog.image_members(&image.id).await {
            Ok(members) => members.iter().any(|m| m.member_id == owner),
            Err(crate::registry::Error::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        Ok(access::visible(image, ctx, is_member))
    }

    /// The check before any change: anonymous callers get 403 `Read-only access`; a caller who
    /// may not change the image gets 403 (v2, or a public image in v1) or 404 (a private one in
    /// v1, which it must not learn exists).
    pub(super) fn check_mutable(
        &self,
        ctx: &Context,
        image: &Image,
        api: Api,
    ) -> Result<(), Error> {
        if ctx.read_only {
            return Err(Error::Forbidden("Read-only access".into()));
        }
        if access::mutable(image, ctx) {
            return Ok(());
        }
        match (api, image.visibility) {
            (Api::V1, Visibility::Public) => Err(Error::Forbidden(
                "You are not permitted to modify this image.".into(),
            )),
            (Api::V1, _) => Err(Error::NotFound(format!(
                "Image with identifier {} not found",
                image.id
            ))),
            (Api::V2, _) => Err(Error::Forbidden(format!(
                "You are not permitted to modify image {}.",
                image.id
            ))),
        }
    }

    /// The rules on what a create or update may set: the owner (non-admins: v1 drops a foreign
    /// owner silently, v2 refuses it), the caller's project as the owner of a new image, and the
    /// `publicize_image` / `communitize_image` policies.
    pub(super) fn check_patch_rights(
        &self,
        ctx: &Context,
        patch: &mut ImagePatch,
        current: Option<&Image>,
        api: Api,
    ) -> Result<(), Error> {
        if ctx.read_only {
            return Err(Error::Forbidden("Read-only access".into()));
        }
        if !ctx.is_admin {
            let foreign = patch
                .owner
                .as_ref()
                .is_some_and(|o| *o != ctx.owner && current.is_none_or(|i| *o != i.owner));
            if foreign {
                match api {
                    Api::V1 => patch.owner = None,
                    Api::V2 => {
                        return Err(Error::Forbidden(match current {
                            None => {
                                "You are not permitted to create images owned by another project."
                                    .into()
                            }
                            Some(_) => {
                                "You are not permitted to modify 'owner' on this image.".into()
                            }
                        }))
                    }
                }
            }
        }
        if current.is_none() && patch.owner.is_none() {
            patch.owner = Some(ctx.owner.clone());
        }
        let target = current;
        // v1 asks `publicize_image` for every `is_public: True`, even when it is already public
        // (§14 #32); v2 for a change of visibility to public.
        let publicize = match patch.visibility {
            Some(Visibility::Public) => {
                api == Api::V1 || current.is_none_or(|i| i.visibility != Visibility::Public)
            }
            Some(_) => false,
            None => patch.is_public == Some(true),
        };
        if publicize {
            self.enforce(ctx, "publicize_image", target)?;
        }
        if patch.visibility == Some(Visibility::Community)
            && current.is_none_or(|i| i.visibility != Visibility::Community)
        {
            self.enforce(ctx, "communitize_image", target)?;
        }
        Ok(())
    }

    /// The list restriction for `ctx` (§13): `None` for an admin.
    pub(super) fn viewer(
        ctx: &Context,
        member_status: Option<crate::model::MemberStatus>,
    ) -> Option<Viewer> {
        (!ctx.is_admin).then(|| Viewer {
            owner: ctx.owner.clone(),
            member_status,
        })
    }
}
