//! The path matcher: method + path → route, telling "no such path" (404) from "path exists, wrong
//! method" (405 with the allowed methods). Pure and total over any input.

use hyper::Method;

/// Longest path segment accepted as an image id; longer ids are "no such path" (§5.0).
pub const MAX_ID_LEN: usize = 36;

/// A Registry API resource and action (§9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRoute<'a> {
    /// `GET /` or `GET /images`: brief list.
    List,
    /// `GET /images/detail`: full records.
    Detail,
    /// `POST /images`.
    Create,
    /// `GET /images/{id}`.
    Show(&'a str),
    /// `PUT /images/{id}`.
    Update(&'a str),
    /// `DELETE /images/{id}`.
    Delete(&'a str),
    /// `GET /images/{id}/members`.
    ListMembers(&'a str),
    /// `PUT /images/{id}/members`: replace the member set.
    ReplaceMembers(&'a str),
    /// `PUT /images/{id}/members/{member}`.
    AddMember(&'a str, &'a str),
    /// `DELETE /images/{id}/members/{member}`.
    RemoveMember(&'a str, &'a str),
    /// `GET /shared-images/{member}`.
    SharedImages(&'a str),
}

/// The member routes under an image, shared by both APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MemberRoute<'a> {
    List,
    Replace,
    Add(&'a str),
    Remove(&'a str),
}

/// Matches `rest`, what follows `{id}/`; `member_allow` is the `Allow` value for a wrong method
/// on `members/{member}`.
fn match_member_route<'a>(
    method: &Method,
    rest: &'a str,
    member_allow: &'static str,
) -> Result<MemberRoute<'a>, RouteError> {
    let allow = |allow| Err(RouteError::MethodNotAllowed { allow });
    if rest == "members" {
        return match *method {
            Method::GET => Ok(MemberRoute::List),
            Method::PUT => Ok(MemberRoute::Replace),
            _ => allow("GET, PUT"),
        };
    }
    let member = rest.strip_prefix("members/").ok_or(RouteError::NotFound)?;
    if member.is_empty() || member.contains(['/', '.']) || member.len() > 255 {
        return Err(RouteError::NotFound);
    }
    match *method {
        Method::PUT => Ok(MemberRoute::Add(member)),
        Method::DELETE => Ok(MemberRoute::Remove(member)),
        _ => allow(member_allow),
    }
}

/// Splits `{id}/{rest}` into the id and the rest (if any).
fn split_id(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once('/') {
        Some((id, rest)) => (id, Some(rest)),
        None => (segment, None),
    }
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No resource at this path.
    NotFound,
    /// The resource exists; `allow` lists the methods it takes.
    MethodNotAllowed {
        /// Value of the `Allow` response header.
        allow: &'static str,
    },
}

impl RegistryRoute<'_> {
    /// A fixed name for metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            RegistryRoute::List => "list",
            RegistryRoute::Detail => "detail",
            RegistryRoute::Create => "create",
            RegistryRoute::Show(_) => "show",
            RegistryRoute::Update(_) => "update",
            RegistryRoute::Delete(_) => "delete",
            RegistryRoute::ListMembers(_) => "list_members",
            RegistryRoute::ReplaceMembers(_) => "replace_members",
            RegistryRoute::AddMember(..) => "add_member",
            RegistryRoute::RemoveMember(..) => "remove_member",
            RegistryRoute::SharedImages(_) => "shared_images",
        }
    }
}

/// Matches a Registry API request. The path is the URI path without the query string.
pub fn match_registry_route<'a>(
    method: &Method,
    path: &'a str,
) -> Result<RegistryRoute<'a>, RouteError> {
    use RegistryRoute::*;
    let allow = |allow| Err(RouteError::MethodNotAllowed { allow });
    if path == "/" {
        return if method == Method::GET {
            Ok(List)
        } else {
            allow("GET")
        };
    }
    if let Some(member) = path.strip_prefix("/shared-images/") {
        if member.is_empty() || member.contains('/') {
            return Err(RouteError::NotFound);
        }
        return if method == Method::GET {
            Ok(SharedImages(member))
        } else {
            allow("GET")
        };
    }
    let rest = path.strip_prefix("/images").ok_or(RouteError::NotFound)?;
    if rest.is_empty() {
        return match *method {
            Method::GET => Ok(List),
            Method::POST => Ok(Create),
            _ => allow("GET, POST"),
        };
    }
    let segment = rest.strip_prefix('/').ok_or(RouteError::NotFound)?;
    let (segment, sub) = split_id(segment);
    if segment.is_empty() || segment.len() > MAX_ID_LEN {
        return Err(RouteError::NotFound);
    }
    if let Some(sub) = sub {
        return Ok(match match_member_route(method, sub, "PUT, DELETE")? {
            MemberRoute::List => ListMembers(segment),
            MemberRoute::Replace => ReplaceMembers(segment),
            MemberRoute::Add(m) => AddMember(segment, m),
            MemberRoute::Remove(m) => RemoveMember(segment, m),
        });
    }
    if segment == "detail" {
        return if method == Method::GET {
            Ok(Detail)
        } else {
            allow("GET")
        };
    }
    match *method {
        Method::GET => Ok(Show(segment)),
        Method::PUT => Ok(Update(segment)),
        Method::DELETE => Ok(Delete(segment)),
        _ => allow("GET, PUT, DELETE"),
    }
}

/// An Images API v1 resource and action (§5.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute<'a> {
    /// The versions document: `GET /versions` answers 200; an unversioned or unknown-version
    /// path answers 300 (`multiple_choices`).
    Versions {
        /// Whether the answer is 300 Multiple Choices rather than 200.
        multiple_choices: bool,
    },
    /// `GET /v1/images` or `GET /v1/`: brief list.
    List,
    /// `GET /v1/images/detail`.
    Detail,
    /// `POST /v1/images`.
    Create,
    /// `HEAD /v1/images/{id}`: metadata in headers.
    Head(&'a str),
    /// `GET /v1/images/{id}`: the data.
    Download(&'a str),
    /// `PUT /v1/images/{id}`.
    Update(&'a str),
    /// `DELETE /v1/images/{id}`.
    Delete(&'a str),
    /// `GET /v1/images/{id}/members`.
    ListMembers(&'a str),
    /// `PUT /v1/images/{id}/members`: replace the member set.
    ReplaceMembers(&'a str),
    /// `PUT /v1/images/{id}/members/{member}`.
    AddMember(&'a str, &'a str),
    /// `DELETE /v1/images/{id}/members/{member}`.
    RemoveMember(&'a str, &'a str),
    /// `/v1/shared-images/{member}` (any method): images shared with a member.
    SharedImages(&'a str),
    /// A route of the Images API v2 (`/v2/...`).
    V2(super::route_v2::V2Route<'a>),
}

/// Version ids that select the v1 API.
const V1_IDS: &[&str] = &["v1", "v1.0", "v1.1"];

/// Media type prefix that selects a version through `Accept` (§2.3 rule 2).
const ACCEPT_PREFIX: &str = "application/vnd.openstack.images-";

impl ApiRoute<'_> {
    /// A fixed name for metrics labels (`v1.download`, `v2.upload`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ApiRoute::Versions { .. } => "versions",
            ApiRoute::List => "v1.list",
            ApiRoute::Detail => "v1.detail",
            ApiRoute::Create => "v1.create",
            ApiRoute::Head(_) => "v1.head",
            ApiRoute::Download(_) => "v1.download",
            ApiRoute::Update(_) => "v1.update",
            ApiRoute::Delete(_) => "v1.delete",
            ApiRoute::ListMembers(_) => "v1.list_members",
            ApiRoute::ReplaceMembers(_) => "v1.replace_members",
            ApiRoute::AddMember(..) => "v1.add_member",
            ApiRoute::RemoveMember(..) => "v1.remove_member",
            ApiRoute::SharedImages(_) => "v1.shared_images",
            ApiRoute::V2(r) => r.name(),
        }
    }
}

/// Matches an Images API request, negotiating the version as Queens does (§2.3): `/versions`,
/// then an `Accept: application/vnd.openstack.images-v1` header (path kept as is), then a
/// `/v1`, `/v1.0` or `/v1.1` prefix; anything else is the versions document with 300.
pub fn match_api_route<'a>(
    method: &Method,
    path: &'a str,
    accept: Option<&str>,
) -> Result<ApiRoute<'a>, RouteError> {
    use ApiRoute::*;
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first == "versions" {
        return Ok(Versions {
            multiple_choices: false,
        });
    }
    if first == "v2" {
        return super::route_v2::match_v2_route(method, &path[1 + first.len()..]).map(V2);
    }
    let by_accept = accept
        .and_then(|a| a.trim().strip_prefix(ACCEPT_PREFIX))
        .is_some_and(|v| V1_IDS.contains(&v));
    let resource = if by_accept {
        path
    } else if V1_IDS.contains(&first) {
        &path[1 + first.len()..]
    } else {
        return Ok(Versions {
            multiple_choices: true,
        });
    };
    let allow = |allow| Err(RouteError::MethodNotAllowed { allow });
    if resource.is_empty() || resource == "/" {
        return if method == Method::GET {
            Ok(List)
        } else {
            allow("GET")
        };
    }
    if let Some(member) = resource.strip_prefix("/shared-images/") {
        if member.is_empty() || member.contains(['/', '.']) {
            return Err(RouteError::NotFound);
        }
        return Ok(SharedImages(member));
    }
    let rest = resource
        .strip_prefix("/images")
        .ok_or(RouteError::NotFound)?;
    if rest.is_empty() {
        return match *method {
            Method::GET => Ok(List),
            Method::POST => Ok(Create),
            _ => allow("GET, POST"),
        };
    }
    let segment = rest.strip_prefix('/').ok_or(RouteError::NotFound)?;
    let (segment, sub) = split_id(segment);
    // A `.` would be a format suffix (`detail.json`), which v1 does not serve (§14 #19).
    if segment.is_empty() || segment.contains('.') || segment.len() > MAX_ID_LEN {
        return Err(RouteError::NotFound);
    }
    if let Some(sub) = sub {
        // Queens routes GET on `members/{member}` without a handler: 405 listing GET (§14 #4).
        return Ok(match match_member_route(method, sub, "GET, PUT, DELETE")? {
            MemberRoute::List => ListMembers(segment),
            MemberRoute::Replace => ReplaceMembers(segment),
            MemberRoute::Add(m) => AddMember(segment, m),
            MemberRoute::Remove(m) => RemoveMember(segment, m),
        });
    }
    if segment == "detail" {
        return match *method {
            Method::GET => Ok(Detail),
            Method::HEAD => allow("GET"),
            _ => allow("GET, HEAD"),
        };
    }
    match *method {
        Method::HEAD => Ok(Head(segment)),
        Method::GET => Ok(Download(segment)),
        Method::PUT => Ok(Update(segment)),
        Method::DELETE => Ok(Delete(segment)),
        _ => allow("GET, HEAD, PUT, DELETE"),
    }
}

#[cfg(test)]
mod api_tests {
    use super::*;
    use ApiRoute::*;

    fn m(
        method: &str,
        path: &'static str,
        accept: Option<&str>,
    ) -> Result<ApiRoute<'static>, RouteError> {
        match_api_route(
            &Method::from_bytes(method.as_bytes()).unwrap(),
            path,
            accept,
        )
    }

    const MULTIPLE: Result<ApiRoute<'static>, RouteError> = Ok(Versions {
        multiple_choices: true,
    });

    #[test]
    fn negotiates_versions_like_queens() {
        assert_eq!(
            m("GET", "/versions", None),
            Ok(Versions {
                multiple_choices: false
            })
        );
        for path in [
            "/",
            "/images",
            "/v3/x",
            "/v1.2/x",
            "/V1/images",
            "/v2.0/images",
        ] {
            assert_eq!(m("GET", path, None), MULTIPLE, "{path}");
        }
        assert_eq!(
            m("POST", "/images", None),
            MULTIPLE,
            "the method does not matter"
        );
        assert_eq!(
            m("GET", "/v2/images", None),
            Ok(V2(crate::http::route_v2::V2Route::List))
        );
        for prefix in ["/v1", "/v1.0", "/v1.1"] {
            let path: &'static str = Box::leak(format!("{prefix}/images").into_boxed_str());
            assert_eq!(m("GET", path, None), Ok(List));
        }
        let accept = Some("application/vnd.openstack.images-v1");
        assert_eq!(m("GET", "/images", accept), Ok(List));
        assert_eq!(
            m("GET", "/v1/images", accept),
            Err(RouteError::NotFound),
            "the path is kept"
        );
        assert_eq!(
            m(
                "GET",
                "/images",
                Some("application/vnd.openstack.images-v9")
            ),
            MULTIPLE
        );
    }

    #[test]
    fn matches_the_v1_route_table() {
        assert_eq!(m("GET", "/v1/", None), Ok(List));
        assert_eq!(m("GET", "/v1", None), Ok(List));
        assert_eq!(m("POST", "/v1/images", None), Ok(Create));
        assert_eq!(m("GET", "/v1/images/detail", None), Ok(Detail));
        assert_eq!(m("HEAD", "/v1/images/x", None), Ok(Head("x")));
        assert_eq!(m("GET", "/v1/images/x", None), Ok(Download("x")));
        assert_eq!(m("PUT", "/v1/images/x", None), Ok(Update("x")));
        assert_eq!(m("DELETE", "/v1/images/x", None), Ok(Delete("x")));
    }

    #[test]
    fn member_routes() {
        let na = |allow| Err(RouteError::MethodNotAllowed { allow });
        assert_eq!(m("GET", "/v1/images/x/members", None), Ok(ListMembers("x")));
        assert_eq!(
            m("PUT", "/v1/images/x/members", None),
            Ok(ReplaceMembers("x"))
        );
        assert_eq!(m("POST", "/v1/images/x/members", None), na("GET, PUT"));
        assert_eq!(
            m("PUT", "/v1/images/x/members/t1", None),
            Ok(AddMember("x", "t1"))
        );
        assert_eq!(
            m("DELETE", "/v1/images/x/members/t1", None),
            Ok(RemoveMember("x", "t1"))
        );
        assert_eq!(
            m("GET", "/v1/images/x/members/t1", None),
            na("GET, PUT, DELETE")
        );
        assert_eq!(
            m("POST", "/v1/shared-images/t1", None),
            Ok(SharedImages("t1"))
        );
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        let na = |allow| Err(RouteError::MethodNotAllowed { allow });
        assert_eq!(m("PUT", "/v1/images", None), na("GET, POST"));
        assert_eq!(m("HEAD", "/v1/images/detail", None), na("GET"));
        assert_eq!(m("POST", "/v1/images/detail", None), na("GET, HEAD"));
        assert_eq!(
            m("POST", "/v1/images/x", None),
            na("GET, HEAD, PUT, DELETE")
        );
        for path in [
            "/v1/images/",
            "/v1/images.json",
            "/v1/images/detail.xxx",
            "/v1/images/x/members.xxx",
            "/v1/images/x/other",
            "/v1/other",
        ] {
            assert_eq!(m("GET", path, None), Err(RouteError::NotFound), "{path}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistryRoute::*;

    fn m(method: &str, path: &str) -> Result<RegistryRoute<'static>, RouteError> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path: &'static str = Box::leak(path.to_string().into_boxed_str());
        match_registry_route(&method, path)
    }

    fn not_allowed(allow: &'static str) -> Result<RegistryRoute<'static>, RouteError> {
        Err(RouteError::MethodNotAllowed { allow })
    }

    #[test]
    fn matches_every_registry_route() {
        assert_eq!(m("GET", "/"), Ok(List));
        assert_eq!(m("GET", "/images"), Ok(List));
        assert_eq!(m("POST", "/images"), Ok(Create));
        assert_eq!(m("GET", "/images/detail"), Ok(Detail));
        assert_eq!(m("GET", "/images/abc"), Ok(Show("abc")));
        assert_eq!(m("PUT", "/images/abc"), Ok(Update("abc")));
        assert_eq!(m("DELETE", "/images/abc"), Ok(Delete("abc")));
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        assert_eq!(m("DELETE", "/images"), not_allowed("GET, POST"));
        assert_eq!(m("POST", "/images/detail"), not_allowed("GET"));
        assert_eq!(m("HEAD", "/images/detail"), not_allowed("GET"));
        assert_eq!(m("POST", "/images/abc"), not_allowed("GET, PUT, DELETE"));
        assert_eq!(m("PATCH", "/"), not_allowed("GET"));
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "",
            "/imagesx",
            "/images/",
            "/images//x",
            "/images/a/b",
            "/images.json",
            "/v1/images",
            "/images/detail/",
            "/images/0123456789012345678901234567890123456",
        ] {
            assert_eq!(m("GET", path), Err(RouteError::NotFound), "{path:?}");
        }
    }

    #[test]
    fn ids_up_to_36_characters_match() {
        let id = "de2f2211-3ac7-4260-9142-41db0ecfb425";
        assert_eq!(m("GET", &format!("/images/{id}")), Ok(Show(id)));
    }
}
