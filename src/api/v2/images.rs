//! v2 image records: create, list, JSON-patch update, delete, tags, deactivate and reactivate.

use hyper::body::Incoming;
use hyper::header::LOCATION;
use hyper::{Request, Response, StatusCode};

use super::{image_json, no_content, set_header};
use crate::api::access::Api;
use crate::api::error::RegistryOp;
use crate::api::images::ImagesService;
use crate::api::upload::from;
use crate::api::{json_bytes_response, Error};
use crate::auth::Context;
use crate::http::body::Body;
use crate::http::image_v2::{apply_changes, decode_create, V2Image};
use crate::http::json_out::Object;
use crate::http::json_patch;
use crate::http::query::{percent_decode, QueryParams};
use crate::model::{Image, Status, MAX_NAME_LEN, MAX_TAGS};
use crate::patch::ImagePatch;
use crate::registry::{query_v2, MemberStatus, UpdateOptions};

impl ImagesService {
    /// `POST /v2/images`: a queued image (201, `Location`).
    pub(super) async fn v2_create(
        &self,
        ctx: &Context,
        base: &str,
        body: &[u8],
    ) -> Result<Response<Body>, Error> {
        self.enforce(ctx, "add_image", None)?;
        let mut patch = decode_create(body)?;
        self.check_patch_rights(ctx, &mut patch, None, Api::V2)?;
        self.check_enabled_formats(&patch, None)?;
        self.check_property_quota(patch.properties.as_ref().map_or(0, |p| p.len()))?;
        let image = self
            .catalog
            .create(patch, Status::Queued)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::CreateV2))?;
        let mut resp = image_json(StatusCode::CREATED, &image)?;
        set_header(
            &mut resp,
            LOCATION,
            &format!("{base}/v2/images/{}", image.id),
        );
        // How clients learn that the interoperable import is on (openstacksdk checks it).
        set_header(
            &mut resp,
            hyper::header::HeaderName::from_static("openstack-image-import-methods"),
            &super::IMPORT_METHODS.join(","),
        );
        Ok(resp)
    }

    /// `GET /v2/images`: a page of images with `first` and (when the page is full) `next` links.
    pub(super) async fn v2_list(
        &self,
        ctx: &Context,
        req: &Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        let raw = req.uri().query().unwrap_or("");
        let params = QueryParams::parse(raw);
        self.enforce(ctx, "get_images", None)?;
        let mut parsed = query_v2::parse(params.iter(), self.settings.limits)
            .map_err(|e| Error::BadRequest(e.0))?;
        let member_status = match parsed.member_status {
            query_v2::MemberStatus::All => None,
            query_v2::MemberStatus::Pending => Some(MemberStatus::Pending),
            query_v2::MemberStatus::Accepted => Some(MemberStatus::Accepted),
            query_v2::MemberStatus::Rejected => Some(MemberStatus::Rejected),
        };
        parsed.query.filters.viewer = Self::viewer(ctx, member_status);
        let images = self.catalog.list_v2(&parsed.query, raw).await?;
        let kept: Vec<&str> = raw
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("marker="))
            .collect();
        let link = |extra: Option<String>| {
            let mut parts: Vec<String> = kept.iter().map(|p| p.to_string()).collect();
            parts.extend(extra);
            if parts.is_empty() {
                "/v2/images".to_string()
            } else {
                format!("/v2/images?{}", parts.join("&"))
            }
        };
        let next = match images.last() {
            Some(last) if images.len() == parsed.query.limit => {
                Some(link(Some(format!("marker={}", last.id))))
            }
            _ => None,
        };
        let mut json = Vec::with_capacity(256 + 1024 * images.len());
        let mut page = Object::open(&mut json);
        let list = page.key("images");
        list.push(b'[');
        for (i, image) in images.iter().enumerate() {
            if i > 0 {
                list.push(b',');
            }
            V2Image(image).write_json(list);
        }
        list.push(b']');
        page.word("schema", "/v2/schemas/images");
        page.str("first", &link(None));
        if let Some(next) = &next {
            page.str("next", next);
        }
        page.close();
        Ok(json_bytes_response(StatusCode::OK, json))
    }

    /// `PATCH /v2/images/{id}`: applies a JSON patch, answers the new image.
    pub(super) async fn v2_update(
        &self,
        ctx: &Context,
        segment: &str,
        body: &[u8],
    ) -> Result<Response<Body>, Error> {
        let changes = json_patch::parse(body).map_err(|e| Error::BadRequest(e.0))?;
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "modify_image", Some(&image))?;
        let mut patch = apply_changes(&image, &changes)?;
        self.check_patch_rights(ctx, &mut patch, Some(&image), Api::V2)?;
        self.check_enabled_formats(&patch, Some(&image))?;
        let added = patch
            .properties
            .as_ref()
            .is_some_and(|p| p.len() > image.properties.len());
        if added {
            self.check_property_quota(patch.properties.as_ref().map_or(0, |p| p.len()))?;
        }
        check_tag_quota(patch.tags.as_ref().map_or(0, |t| t.len()))?;
        let options = UpdateOptions {
            purge_props: true,
            from_state: None,
        };
        let image = self.update_record(&image, patch, options).await?;
        image_json(StatusCode::OK, &image)
    }

    /// `DELETE /v2/images/{id}` (204): the record is deleted and its data and staged data removed.
    pub(super) async fn v2_delete(
        &self,
        ctx: &Context,
        segment: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "delete_image", Some(&image))?;
        if image.protected {
            return Err(Error::Forbidden(format!(
                "Image {} is protected and cannot be deleted.",
                image.id
            )));
        }
        let delete = async {
            self.catalog
                .delete(&image.id)
                .await
                .map_err(|e| Error::from_registry(e, RegistryOp::DeleteV2 { id: &image.id }))
        };
        self.delete_with_data(&image, delete).await?;
        self.unstage(&image.id).await;
        Ok(no_content())
    }

    /// `PUT /v2/images/{id}/tags/{tag}` (204; adding a tag twice is fine).
    pub(super) async fn v2_add_tag(
        &self,
        ctx: &Context,
        segment: &str,
        tag: &str,
    ) -> Result<Response<Body>, Error> {
        let tag = percent_decode(tag);
        if tag.chars().count() > MAX_NAME_LEN {
            return Err(Error::BadRequest(format!(
                "Tag is too long: at most {MAX_NAME_LEN} characters"
            )));
        }
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "modify_image", Some(&image))?;
        if image.tags.contains(&tag) {
            return Ok(no_content());
        }
        let mut tags = image.tags.clone();
        tags.insert(tag);
        check_tag_quota(tags.len())?;
        self.set_tags(&image, tags).await?;
        Ok(no_content())
    }

    /// `DELETE /v2/images/{id}/tags/{tag}` (204; 404 for a tag the image does not have).
    pub(super) async fn v2_remove_tag(
        &self,
        ctx: &Context,
        segment: &str,
        tag: &str,
    ) -> Result<Response<Body>, Error> {
        let tag = percent_decode(tag);
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, "modify_image", Some(&image))?;
        let mut tags = image.tags.clone();
        if !tags.remove(&tag) {
            return Err(Error::NotFound(format!(
                "Image {} has no tag '{tag}'",
                image.id
            )));
        }
        self.set_tags(&image, tags).await?;
        Ok(no_content())
    }

    /// `POST /v2/images/{id}/actions/deactivate`: an active image stops serving its data.
    pub(super) async fn v2_deactivate(
        &self,
        ctx: &Context,
        segment: &str,
    ) -> Result<Response<Body>, Error> {
        self.switch_activation(
            ctx,
            segment,
            Status::Active,
            Status::Deactivated,
            "deactivate",
        )
        .await
    }

    /// `POST /v2/images/{id}/actions/reactivate`: a deactivated image serves its data again.
    pub(super) async fn v2_reactivate(
        &self,
        ctx: &Context,
        segment: &str,
    ) -> Result<Response<Body>, Error> {
        self.switch_activation(
            ctx,
            segment,
            Status::Deactivated,
            Status::Active,
            "reactivate",
        )
        .await
    }

    async fn switch_activation(
        &self,
        ctx: &Context,
        segment: &str,
        from_status: Status,
        to: Status,
        action: &str,
    ) -> Result<Response<Body>, Error> {
        let image = self.load_v2(ctx, segment).await?;
        self.check_mutable(ctx, &image, Api::V2)?;
        self.enforce(ctx, action, Some(&image))?;
        if image.status == to {
            return Ok(no_content());
        }
        if image.status != from_status {
            return Err(Error::Forbidden(format!(
                "Not allowed to {action} image in status '{}'",
                image.status
            )));
        }
        let patch = ImagePatch {
            status: Some(to),
            ..Default::default()
        };
        self.update_record(&image, patch, from(from_status)).await?;
        Ok(no_content())
    }

    async fn set_tags(
        &self,
        image: &Image,
        tags: std::collections::BTreeSet<String>,
    ) -> Result<Image, Error> {
        let patch = ImagePatch {
            tags: Some(tags),
            ..Default::default()
        };
        let options = UpdateOptions {
            purge_props: false,
            from_state: None,
        };
        self.update_record(image, patch, options).await
    }

    /// Updates a record the request loaded, with v2's messages for what the registry refuses.
    pub(super) async fn update_record(
        &self,
        image: &Image,
        patch: ImagePatch,
        options: UpdateOptions,
    ) -> Result<Image, Error> {
        self.catalog
            .update(&image.id, patch, options)
            .await
            .map_err(|e| Error::from_registry(e, RegistryOp::UpdateV2 { id: &image.id }))
    }
}

fn check_tag_quota(count: usize) -> Result<(), Error> {
    if count > MAX_TAGS {
        return Err(Error::PayloadTooLarge(format!(
            "Maximum number of tags exceeded: attempted {count}, maximum {MAX_TAGS}"
        )));
    }
    Ok(())
}
