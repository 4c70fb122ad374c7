//! The one place where failures become HTTP statuses and error bodies (spec §5.9):
//! `text/plain; charset=UTF-8`, body `<code> <Reason>\n\n<message>\n`.

use std::fmt;

use hyper::header::{HeaderValue, ALLOW, CONTENT_RANGE, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use uuid::Uuid;

use crate::http::body::{full, Body};
use crate::registry;

/// Every way a request can fail.
#[derive(Debug)]
pub enum Error {
    /// No resource at this path.
    NoSuchRoute,
    /// The resource exists but not with this method.
    MethodNotAllowed {
        /// The methods it takes.
        allow: &'static str,
    },
    /// Like [`Error::MethodNotAllowed`], with a message of its own.
    MethodNotAllowedWith {
        /// The methods it takes.
        allow: &'static str,
        /// What to tell the client.
        message: &'static str,
    },
    /// The image changed under an upload (deleted while saving), or a conditional request's
    /// precondition (`If-Match`, `If-Unmodified-Since`) is false.
    PreconditionFailed(String),
    /// A `Range` that no byte of the image's data satisfies: 416 with `Content-Range: bytes
    /// */size`.
    RangeNotSatisfiable {
        /// The data's size in bytes.
        size: u64,
    },
    /// An image data store failed (mapped by kind).
    Store(crate::store::Error),
    /// An image conversion failed (mapped by kind).
    Convert(crate::convert::Error),
    /// The request is malformed or breaks a rule; the text says what was wrong.
    BadRequest(String),
    /// No image (or no visible image) with this id.
    NotFound(String),
    /// The operation is not allowed on this resource.
    Forbidden(String),
    /// The resource is not in a state that allows the operation.
    Conflict(String),
    /// The request body is larger than allowed.
    PayloadTooLarge(String),
    /// The request body is not of a media type the resource takes.
    UnsupportedMediaType(String),
    /// A registry failure (mapped by kind).
    Registry(registry::Error),
    /// A service this request needs is not available; the text (free of backend detail) says
    /// which.
    Unavailable(String),
    /// A response body could not be encoded (a bug: our own types failed to serialise).
    Encode(serde_json::Error),
    /// No valid token: 401, with `WWW-Authenticate` naming the identity service.
    Unauthorized {
        /// What to tell the client (never the token).
        message: String,
        /// The identity endpoint, when configured.
        www_authenticate: Option<String>,
    },
}

impl From<registry::Error> for Error {
    fn from(e: registry::Error) -> Self {
        Error::Registry(e)
    }
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        Error::Store(e)
    }
}

impl From<crate::convert::Error> for Error {
    fn from(e: crate::convert::Error) -> Self {
        Error::Convert(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchRoute => f.write_str("The resource could not be found."),
            Error::MethodNotAllowed { allow } => {
                write!(
                    f,
                    "The method is not allowed for this resource; allowed: {allow}."
                )
            }
            Error::MethodNotAllowedWith { message, .. } => f.write_str(message),
            Error::Store(e) => e.fmt(f),
            Error::Convert(e) => e.fmt(f),
            Error::BadRequest(m)
            | Error::PreconditionFailed(m)
            | Error::NotFound(m)
            | Error::Forbidden(m)
            | Error::Conflict(m)
            | Error::PayloadTooLarge(m)
            | Error::UnsupportedMediaType(m)
            | Error::Unavailable(m)
            | Error::Unauthorized { message: m, .. } => f.write_str(m),
            Error::Registry(e) => e.fmt(f),
            Error::Encode(e) => write!(f, "cannot encode response: {e}"),
            Error::RangeNotSatisfiable { size } => write!(
                f,
                "The requested range is not satisfiable: the image data is {size} bytes"
            ),
        }
    }
}

/// What a handler asked of the registry: decides which message (and so which status) a
/// registry refusal becomes, as Glance words it for that request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RegistryOp<'a> {
    /// v1: loading the image named by a path segment.
    LoadV1 {
        /// The id as the client wrote it.
        segment: &'a str,
    },
    /// v1 `POST /images`: reserving the record.
    CreateV1,
    /// v1 `PUT /images/{id}`: changing the metadata.
    UpdateV1,
    /// v1: moving a queued image to `saving` before its data is read.
    StartUpload,
    /// Making an image active once its data is stored.
    FinishUpload {
        /// The image.
        id: &'a Uuid,
    },
    /// v2: loading the live image named by a path segment.
    LoadV2 {
        /// The id as the client wrote it.
        segment: &'a str,
    },
    /// v2 `POST /v2/images`.
    CreateV2,
    /// v2: changing the record of `id` (PATCH, tags).
    UpdateV2 {
        /// The image.
        id: &'a Uuid,
    },
    /// v2 `DELETE /v2/images/{id}`.
    DeleteV2 {
        /// The image.
        id: &'a Uuid,
    },
    /// v2: reading or changing one member of an image.
    Member {
        /// The image.
        id: &'a Uuid,
        /// The member (tenant).
        member: &'a str,
    },
    /// Registry API `POST /images`.
    RegistryCreate,
    /// Registry API `PUT /images/{id}`.
    RegistryUpdate,
}

impl RegistryOp<'_> {
    /// The answer when the image does not exist (or is not visible) for this request.
    pub(crate) fn not_found(&self) -> Error {
        match self {
            RegistryOp::LoadV1 { segment } => {
                Error::NotFound(format!("Image with identifier {segment} not found"))
            }
            RegistryOp::LoadV2 { segment } => {
                Error::NotFound(format!("No image found with ID {segment}"))
            }
            RegistryOp::UpdateV2 { id } | RegistryOp::DeleteV2 { id } => {
                Error::NotFound(format!("No image found with ID {id}"))
            }
            _ => Error::NotFound("The resource could not be found.".into()),
        }
    }
}

impl Error {
    /// `e`, a registry refusal of `op`, as the request's answer. Anything `op` does not word
    /// on its own keeps the registry's message and its status from [`Error::status`].
    pub(crate) fn from_registry(e: registry::Error, op: RegistryOp<'_>) -> Error {
        use registry::Error as R;
        use RegistryOp as Op;
        match (op, e) {
            (
                Op::LoadV1 { .. } | Op::LoadV2 { .. } | Op::UpdateV2 { .. } | Op::DeleteV2 { .. },
                R::NotFound(_),
            )
            | (Op::UpdateV2 { .. }, R::Forbidden(_)) => op.not_found(),
            (Op::UpdateV2 { id }, R::Conflict(_)) => Error::Conflict(format!(
                "Image {id} changed status while the request ran; try again"
            )),
            (Op::CreateV1, R::Duplicate(id)) => {
                Error::Conflict(format!("An image with identifier {id} already exists"))
            }
            (Op::CreateV1, R::Invalid(m)) => {
                Error::BadRequest(format!("Failed to reserve image. Got error: {m}"))
            }
            (Op::UpdateV1 | Op::RegistryUpdate, R::Invalid(m)) => {
                Error::BadRequest(format!("Failed to update image metadata. Got error: {m}"))
            }
            (Op::UpdateV1, R::NotFound(id)) => {
                Error::NotFound(format!("Failed to find image to update: {id}"))
            }
            (Op::UpdateV1, R::Conflict(_)) => Error::Conflict("Image operation conflicts".into()),
            (Op::StartUpload, R::Conflict(_)) => {
                Error::Conflict("Cannot upload to an unqueued image".into())
            }
            (Op::FinishUpload { id }, R::NotFound(_) | R::Conflict(_) | R::Forbidden(_)) => {
                Error::PreconditionFailed(format!(
                    "Image {id} could not be found after upload. The image may have been deleted during the upload."
                ))
            }
            (Op::CreateV2, R::Duplicate(id)) => {
                Error::Conflict(format!("Image with identifier {id} already exists!"))
            }
            (Op::Member { id, member }, R::MemberNotFound) => {
                Error::NotFound(format!("Member {member} of image {id} not found"))
            }
            (Op::RegistryCreate, R::Invalid(m)) => {
                Error::BadRequest(format!("Failed to add image metadata. Got error: {m}"))
            }
            (_, e) => Error::Registry(e),
        }
    }
}

impl Error {
    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        use registry::Error as R;
        match self {
            Error::NoSuchRoute | Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } | Error::MethodNotAllowedWith { .. } => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::Store(e) => {
                use crate::store::Error as S;
                match e {
                    S::NotFound(_) => StatusCode::NOT_FOUND,
                    S::Duplicate(_) => StatusCode::CONFLICT,
                    S::ReadOnly => StatusCode::GONE,
                    S::SizeCapExceeded { .. } | S::StorageFull(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    S::ClientDisconnected(_)
                    | S::UnknownStore(_)
                    | S::BadLocation(_)
                    | S::Refused(_) => StatusCode::BAD_REQUEST,
                    S::PermissionDenied(_) | S::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    S::Forbidden(_) => StatusCode::FORBIDDEN,
                    S::Io(_) | S::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            Error::Convert(e) => {
                use crate::convert::Error as C;
                match e {
                    C::Refused(_) | C::Failed(_) | C::Stopped(_) => StatusCode::BAD_REQUEST,
                    C::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    C::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    // ENOSPC, EFBIG: the conversion directory is full.
                    C::Io(io) if matches!(io.raw_os_error(), Some(28) | Some(27)) => {
                        StatusCode::PAYLOAD_TOO_LARGE
                    }
                    C::Io(_) | C::SourceRead(_) => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Registry(e) => match e {
                R::NotFound(_) | R::MemberNotFound => StatusCode::NOT_FOUND,
                R::Duplicate(_) | R::Conflict(_) => StatusCode::CONFLICT,
                R::Invalid(_) => StatusCode::BAD_REQUEST,
                R::Forbidden(_) => StatusCode::FORBIDDEN,
                R::Storage(_) | R::Corrupt(_) | R::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
                R::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// The response for this failure. Server errors are logged with their cause, and their body
    /// never carries backend error text.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            crate::error!("request failed: {self}");
            "The server failed to complete the request; the cause is in its log.".to_string()
        } else if status.is_server_error() {
            // Unavailable backends: our own message, already free of credentials.
            crate::warn!("request failed: {self}");
            self.to_string()
        } else {
            crate::debug!("request refused ({status}): {self}");
            self.to_string()
        };
        let body = format!(
            "{} {}\n\n{message}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let mut resp = Response::new(full(body));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        if let Error::MethodNotAllowed { allow } | Error::MethodNotAllowedWith { allow, .. } = self
        {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        if let Error::RangeNotSatisfiable { size } = self {
            if let Ok(v) = HeaderValue::from_str(&crate::http::range::unsatisfied_range(size)) {
                resp.headers_mut().insert(CONTENT_RANGE, v);
            }
        }
        if let Error::Unauthorized {
            www_authenticate, ..
        } = &self
        {
            // As keystonemiddleware sends it: the scheme, and where to get a token.
            let value = match www_authenticate {
                Some(uri) => format!("Keystone uri=\"{uri}\""),
                None => "Keystone".to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_in_one_place() {
        use crate::convert::Error as C;
        let id = uuid::Uuid::nil();
        for (err, code) in [
            (Error::NoSuchRoute, 404),
            (Error::MethodNotAllowed { allow: "GET" }, 405),
            (Error::BadRequest("x".into()), 400),
            (Error::UnsupportedMediaType("u".into()), 415),
            (Error::Registry(registry::Error::NotFound(id)), 404),
            (Error::Registry(registry::Error::Duplicate(id)), 409),
            (Error::Registry(registry::Error::Conflict("c".into())), 409),
            (Error::Registry(registry::Error::Invalid("i".into())), 400),
            (Error::Registry(registry::Error::Forbidden("f".into())), 403),
            (Error::Registry(registry::Error::Corrupt("c".into())), 500),
            (Error::Encode(encode_failure()), 500),
            (Error::Convert(C::Failed("qemu-img: bad".into())), 400),
            (Error::Convert(C::Refused("unsafe".into())), 400),
            (Error::Convert(C::Stopped("timeout".into())), 400),
            (Error::Convert(C::TooLarge { cap: 1 }), 413),
            (Error::Convert(C::Unavailable("no qemu-img".into())), 503),
            (Error::Convert(C::SourceRead("s3 broke".into())), 500),
            (
                Error::Convert(C::Io(std::io::Error::from_raw_os_error(28))),
                413,
            ),
            (
                Error::Registry(registry::Error::Encode(encode_failure())),
                500,
            ),
        ] {
            assert_eq!(err.status().as_u16(), code, "{err:?}");
        }
    }

    #[test]
    fn registry_refusals_are_worded_per_request() {
        let id = uuid::Uuid::nil();
        let member = "tenant";
        for (e, op, code, text) in [
            (
                registry::Error::NotFound(id),
                RegistryOp::LoadV1 { segment: "x" },
                404,
                "Image with identifier x not found".to_string(),
            ),
            (
                registry::Error::Forbidden("f".into()),
                RegistryOp::UpdateV2 { id: &id },
                404,
                format!("No image found with ID {id}"),
            ),
            (
                registry::Error::Invalid("bad".into()),
                RegistryOp::CreateV1,
                400,
                "Failed to reserve image. Got error: bad".to_string(),
            ),
            (
                registry::Error::Conflict("c".into()),
                RegistryOp::FinishUpload { id: &id },
                412,
                format!("Image {id} could not be found after upload. The image may have been deleted during the upload."),
            ),
            (
                registry::Error::MemberNotFound,
                RegistryOp::Member { id: &id, member },
                404,
                format!("Member tenant of image {id} not found"),
            ),
            // What an operation does not word itself keeps the registry's text and status.
            (
                registry::Error::Conflict("busy".into()),
                RegistryOp::CreateV2,
                409,
                "busy".to_string(),
            ),
        ] {
            let err = Error::from_registry(e, op);
            assert_eq!((err.status().as_u16(), err.to_string()), (code, text), "{op:?}");
        }
    }

    /// A map with non-string keys: serde_json refuses to encode it.
    fn encode_failure() -> serde_json::Error {
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        serde_json::to_vec(&map).unwrap_err()
    }

    #[test]
    fn an_encode_failure_is_internal_and_not_called_corruption() {
        let err = Error::Encode(encode_failure());
        assert!(!err.to_string().contains("corrupt"), "{err}");
        let resp = err.into_response();
        assert_eq!(resp.status(), 500);
    }

    #[test]
    fn an_unsatisfiable_range_is_416_with_the_size_in_content_range() {
        let resp = Error::RangeNotSatisfiable { size: 1234 }.into_response();
        assert_eq!(resp.status(), 416);
        assert_eq!(resp.headers()[CONTENT_RANGE], "bytes */1234");
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let resp = Error::MethodNotAllowed { allow: "GET, POST" }.into_response();
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[ALLOW], "GET, POST");
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; charset=UTF-8");
    }
}
