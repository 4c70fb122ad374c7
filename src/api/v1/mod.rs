//! The Images API v1 (spec §5): metadata in `x-image-meta-*` headers, image data streamed to and
//! from the stores, the status lifecycle of §6 and the upload procedure of §5.5.1
//! ([`super::upload`]). `images` holds the image calls, `members` the sharing calls.

mod convert;
mod images;
mod members;

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::images::ImagesService;
use super::request::RequestBody;
use super::Error;
use crate::auth::Context;
use crate::http::body::Body;
use crate::http::route::ApiRoute;

impl ImagesService {
    /// Answers a v1 request (the versions document and v2 are routed before).
    pub(super) async fn v1(
        &self,
        ctx: &Context,
        route: ApiRoute<'_>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Error> {
        match route {
            ApiRoute::Versions { .. } | ApiRoute::V2(_) => Err(Error::NoSuchRoute),
            ApiRoute::List => Box::pin(self.list(ctx, &req, false)).await,
            ApiRoute::Detail => Box::pin(self.list(ctx, &req, true)).await,
            ApiRoute::Head(id) => Box::pin(self.head(ctx, id, req.headers())).await,
            ApiRoute::Download(id) => Box::pin(self.download(ctx, id, req.headers())).await,
            ApiRoute::Create => {
                let (parts, body) = req.into_parts();
                let mut body = RequestBody::new(body);
                let result = Box::pin(self.create(ctx, &parts.headers, &mut body)).await;
                Box::pin(body.answer(&parts.headers, result)).await
            }
            ApiRoute::Update(id) => {
                let id = id.to_string();
                let (parts, body) = req.into_parts();
                let mut body = RequestBody::new(body);
                let result = Box::pin(self.update(ctx, &id, &parts.headers, &mut body)).await;
                Box::pin(body.answer(&parts.headers, result)).await
            }
            ApiRoute::Delete(id) => Box::pin(self.delete(ctx, id)).await,
            ApiRoute::ListMembers(id) => Box::pin(self.list_members(ctx, id)).await,
            ApiRoute::ReplaceMembers(id) => {
                let id = id.to_string();
                Box::pin(self.replace_members(ctx, &id, req.into_body())).await
            }
            ApiRoute::AddMember(id, member) => {
                let (id, member) = (id.to_string(), member.to_string());
                Box::pin(self.add_member(ctx, &id, &member, req.into_body())).await
            }
            ApiRoute::RemoveMember(id, member) => {
                Box::pin(self.remove_member(ctx, id, member)).await
            }
            ApiRoute::SharedImages(member) => Box::pin(self.shared_images(ctx, member)).await,
        }
    }
}
