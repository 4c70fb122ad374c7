//! The access rules of spec §13 for one image, the same for v1, v2 and the registry: who sees
//! it and who may change it, and the policy target an image gives.

use super::Context;
use crate::model::{Image, Visibility};

/// Whether `ctx` may see `image`: admins; images without an owner; public and community
/// images; the owner's own; and shared images the caller is a member of (`is_member`).
pub fn visible(image: &Image, ctx: &Context, is_member: bool) -> bool {
    ctx.is_admin
        || image.owner.is_none()
        || matches!(image.visibility, Visibility::Public | Visibility::Community)
        || owns(image, ctx)
        || (image.visibility == Visibility::Shared && is_member)
}

/// Whether `ctx` may change `image`: admins, and the owner (neither side null); anonymous
/// callers never.
pub fn mutable(image: &Image, ctx: &Context) -> bool {
    !ctx.read_only && (ctx.is_admin || owns(image, ctx))
}

/// Whether the caller owns `image` (both owners set and equal).
pub fn owns(image: &Image, ctx: &Context) -> bool {
    ctx.owner.is_some() && image.owner == ctx.owner
}

/// Whether seeing `image` needs a membership lookup: only a shared image the caller neither
/// owns nor sees otherwise.
pub fn needs_membership(image: &Image, ctx: &Context) -> bool {
    !visible(image, ctx, false) && image.visibility == Visibility::Shared && ctx.owner.is_some()
}

/// The policy target of an image: `%(project_id)s` and `%(owner)s` are its owner.
pub fn target(image: &Image) -> [(&'static str, Option<&str>); 3] {
    [
        ("project_id", image.owner.as_deref()),
        ("owner", image.owner.as_deref()),
        ("visibility", Some(image.visibility.as_str())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::patch::ImagePatch;
    use crate::timestamp::Timestamp;
    use uuid::Uuid;

    fn image(owner: Option<&str>, visibility: Visibility) -> Image {
        let mut image = Image::new(Uuid::nil(), Status::Queued, Timestamp::now());
        image.owner = owner.map(str::to_string);
        ImagePatch {
            visibility: Some(visibility),
            ..ImagePatch::default()
        }
        .apply_mutable(&mut image, false);
        image
    }

    fn member_of(project: &str) -> Context {
        Context {
            user_id: Some("u".into()),
            project_id: Some(project.into()),
            roles: vec!["member".into()],
            is_admin: false,
            read_only: false,
            owner: Some(project.into()),
        }
    }

    #[test]
    fn visibility_follows_the_q_rules() {
        let p1 = member_of("p1");
        assert!(visible(&image(Some("p1"), Visibility::Private), &p1, false));
        assert!(!visible(&image(Some("p2"), Visibility::Private), &p1, true));
        assert!(!visible(&image(Some("p2"), Visibility::Shared), &p1, false));
        assert!(visible(&image(Some("p2"), Visibility::Shared), &p1, true));
        assert!(visible(&image(Some("p2"), Visibility::Public), &p1, false));
        assert!(visible(
            &image(Some("p2"), Visibility::Community),
            &p1,
            false
        ));
        assert!(visible(&image(None, Visibility::Private), &p1, false));
        assert!(visible(
            &image(Some("p2"), Visibility::Private),
            &Context::no_auth(),
            false
        ));
        assert!(needs_membership(
            &image(Some("p2"), Visibility::Shared),
            &p1
        ));
        assert!(!needs_membership(
            &image(Some("p1"), Visibility::Shared),
            &p1
        ));
    }

    #[test]
    fn only_owners_and_admins_change_and_anonymous_callers_never() {
        let p1 = member_of("p1");
        assert!(mutable(&image(Some("p1"), Visibility::Private), &p1));
        assert!(!mutable(&image(Some("p2"), Visibility::Public), &p1));
        assert!(
            !mutable(&image(None, Visibility::Public), &p1),
            "null owners are nobody's"
        );
        assert!(mutable(
            &image(None, Visibility::Public),
            &Context::no_auth()
        ));
        let anonymous = Context::anonymous();
        assert!(!mutable(&image(None, Visibility::Public), &anonymous));
    }
}
