//! Wire names that more than one side of the protocol spells: the services that read them and
//! the clients that send them take them from here, so neither imports the other.

/// Header that asks a Registry API update to remove the properties its body does not name
/// (§9.4). Sent by `glint api` to a remote registry for an Images API update that purges.
pub const PURGE_PROPS_HEADER: &str = "x-glance-registry-purge-props";

/// The query parameter that makes glint's registry parse a list request as an Images API v2 one
/// (`glint api` with a remote registry serving `GET /v2/images`).
pub const V2_LIST_PARAM: &str = "glint_v2_list";

/// The list restriction an API server hands a registry (§13): the caller's owner, empty for an
/// anonymous caller. Believed only from `registry_trusted_clients`.
pub const VIEWER_HEADER: &str = "x-glint-viewer-owner";

/// Which memberships of the viewer list shared images: `any`, `pending`, `accepted` or
/// `rejected`.
pub const VIEWER_MEMBER_STATUS_HEADER: &str = "x-glint-viewer-member-status";

/// The v1 `POST /v1/images` header that makes the new image a conversion of the image it names
/// (`x-image-meta-disk_format` is the format converted to).
pub const CONVERT_FROM_HEADER: &str = "x-glint-convert-from";
