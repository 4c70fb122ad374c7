//! The path matcher of the Images API v2 (`/v2/...`): method + path → route, telling "no such
//! path" (404) from "wrong method" (405 with the allowed methods). Pure and total over any input.

use hyper::Method;

use super::route::{RouteError, MAX_ID_LEN};

/// An Images API v2 resource and action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route<'a> {
    /// `GET /v2/schemas/{name}` (`image`, `images`, `member`, `members`).
    Schema(&'a str),
    /// `GET /v2/images`.
    List,
    /// `POST /v2/images`.
    Create,
    /// `GET /v2/images/{id}`.
    Show(&'a str),
    /// `PATCH /v2/images/{id}`.
    Update(&'a str),
    /// `DELETE /v2/images/{id}`.
    Delete(&'a str),
    /// `PUT /v2/images/{id}/file`.
    Upload(&'a str),
    /// `GET /v2/images/{id}/file`.
    Download(&'a str),
    /// `PUT /v2/images/{id}/stage`.
    Stage(&'a str),
    /// `POST /v2/images/{id}/import`.
    Import(&'a str),
    /// `PUT /v2/images/{id}/tags/{tag}` (the tag still percent-encoded).
    AddTag(&'a str, &'a str),
    /// `DELETE /v2/images/{id}/tags/{tag}`.
    RemoveTag(&'a str, &'a str),
    /// `GET /v2/images/{id}/members`.
    ListMembers(&'a str),
    /// `POST /v2/images/{id}/members`.
    AddMember(&'a str),
    /// `GET /v2/images/{id}/members/{member}`.
    ShowMember(&'a str, &'a str),
    /// `PUT /v2/images/{id}/members/{member}`: the member's status.
    UpdateMember(&'a str, &'a str),
    /// `DELETE /v2/images/{id}/members/{member}`.
    RemoveMember(&'a str, &'a str),
    /// `POST /v2/images/{id}/actions/deactivate`.
    Deactivate(&'a str),
    /// `POST /v2/images/{id}/actions/reactivate`.
    Reactivate(&'a str),
    /// `GET /v2/info/import`.
    ImportInfo,
    /// `GET /v2/info/stores`.
    StoresInfo,
}

impl V2Route<'_> {
    /// A fixed name for metrics labels.
    pub fn name(&self) -> &'static str {
        use V2Route::*;
        match self {
            Schema(_) => "v2.schema",
            List => "v2.list",
            Create => "v2.create",
            Show(_) => "v2.show",
            Update(_) => "v2.update",
            Delete(_) => "v2.delete",
            Upload(_) => "v2.upload",
            Download(_) => "v2.download",
            Stage(_) => "v2.stage",
            Import(_) => "v2.import",
            AddTag(..) => "v2.add_tag",
            RemoveTag(..) => "v2.remove_tag",
            ListMembers(_) => "v2.list_members",
            AddMember(_) => "v2.add_member",
            ShowMember(..) => "v2.show_member",
            UpdateMember(..) => "v2.update_member",
            RemoveMember(..) => "v2.remove_member",
            Deactivate(_) => "v2.deactivate",
            Reactivate(_) => "v2.reactivate",
            ImportInfo => "v2.import_info",
            StoresInfo => "v2.stores_info",
        }
    }
}

/// Matches `rest`, the path after `/v2`.
pub fn match_v2_route<'a>(method: &Method, rest: &'a str) -> Result<V2Route<'a>, RouteError> {
    use V2Route::*;
    let only = |want: Method, route: V2Route<'a>, allow: &'static str| {
        if *method == want {
            Ok(route)
        } else {
            Err(RouteError::MethodNotAllowed { allow })
        }
    };
    if let Some(name) = rest.strip_prefix("/schemas/") {
        return match name {
            "image" | "images" | "member" | "members" => only(Method::GET, Schema(name), "GET"),
            _ => Err(RouteError::NotFound),
        };
    }
    match rest {
        "/info/import" => return only(Method::GET, ImportInfo, "GET"),
        "/info/stores" => return only(Method::GET, StoresInfo, "GET"),
        "/images" => {
            return match *method {
                Method::GET => Ok(List),
                Method::POST => Ok(Create),
                _ => Err(RouteError::MethodNotAllowed { allow: "GET, POST" }),
            }
        }
        _ => {}
    }
    let tail = rest.strip_prefix("/images/").ok_or(RouteError::NotFound)?;
    let (id, sub) = match tail.split_once('/') {
        Some((id, sub)) => (id, Some(sub)),
        None => (tail, None),
    };
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(RouteError::NotFound);
    }
    let Some(sub) = sub else {
        return match *method {
            Method::GET => Ok(Show(id)),
            Method::PATCH => Ok(Update(id)),
            Method::DELETE => Ok(Delete(id)),
            _ => Err(RouteError::MethodNotAllowed {
                allow: "GET, PATCH, DELETE",
            }),
        };
    };
    let segment = |s: &'a str| {
        if s.is_empty() || s.contains('/') {
            Err(RouteError::NotFound)
        } else {
            Ok(s)
        }
    };
    match sub {
        "file" => match *method {
            Method::GET => Ok(Download(id)),
            Method::PUT => Ok(Upload(id)),
            _ => Err(RouteError::MethodNotAllowed { allow: "GET, PUT" }),
        },
        "stage" => only(Method::PUT, Stage(id), "PUT"),
        "import" => only(Method::POST, Import(id), "POST"),
        "actions/deactivate" => only(Method::POST, Deactivate(id), "POST"),
        "actions/reactivate" => only(Method::POST, Reactivate(id), "POST"),
        "members" => match *method {
            Method::GET => Ok(ListMembers(id)),
            Method::POST => Ok(AddMember(id)),
            _ => Err(RouteError::MethodNotAllowed { allow: "GET, POST" }),
        },
        _ => {
            if let Some(tag) = sub.strip_prefix("tags/") {
                let tag = segment(tag)?;
                return match *method {
                    Method::PUT => Ok(AddTag(id, tag)),
                    Method::DELETE => Ok(RemoveTag(id, tag)),
                    _ => Err(RouteError::MethodNotAllowed {
                        allow: "PUT, DELETE",
                    }),
                };
            }
            let member = segment(sub.strip_prefix("members/").ok_or(RouteError::NotFound)?)?;
            match *method {
                Method::GET => Ok(ShowMember(id, member)),
                Method::PUT => Ok(UpdateMember(id, member)),
                Method::DELETE => Ok(RemoveMember(id, member)),
                _ => Err(RouteError::MethodNotAllowed {
                    allow: "GET, PUT, DELETE",
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use V2Route::*;

    fn m(method: &str, path: &'static str) -> Result<V2Route<'static>, RouteError> {
        match_v2_route(&Method::from_bytes(method.as_bytes()).unwrap(), path)
    }

    #[test]
    fn matches_the_v2_route_table() {
        assert_eq!(m("GET", "/schemas/image"), Ok(Schema("image")));
        assert_eq!(m("GET", "/schemas/members"), Ok(Schema("members")));
        assert_eq!(m("GET", "/images"), Ok(List));
        assert_eq!(m("POST", "/images"), Ok(Create));
        assert_eq!(m("GET", "/images/x"), Ok(Show("x")));
        assert_eq!(m("PATCH", "/images/x"), Ok(Update("x")));
        assert_eq!(m("DELETE", "/images/x"), Ok(Delete("x")));
        assert_eq!(m("PUT", "/images/x/file"), Ok(Upload("x")));
        assert_eq!(m("GET", "/images/x/file"), Ok(Download("x")));
        assert_eq!(m("PUT", "/images/x/stage"), Ok(Stage("x")));
        assert_eq!(m("POST", "/images/x/import"), Ok(Import("x")));
        assert_eq!(m("PUT", "/images/x/tags/t%201"), Ok(AddTag("x", "t%201")));
        assert_eq!(m("DELETE", "/images/x/tags/t"), Ok(RemoveTag("x", "t")));
        assert_eq!(m("GET", "/images/x/members"), Ok(ListMembers("x")));
        assert_eq!(m("POST", "/images/x/members"), Ok(AddMember("x")));
        assert_eq!(m("GET", "/images/x/members/p"), Ok(ShowMember("x", "p")));
        assert_eq!(m("PUT", "/images/x/members/p"), Ok(UpdateMember("x", "p")));
        assert_eq!(
            m("DELETE", "/images/x/members/p"),
            Ok(RemoveMember("x", "p"))
        );
        assert_eq!(
            m("POST", "/images/x/actions/deactivate"),
            Ok(Deactivate("x"))
        );
        assert_eq!(
            m("POST", "/images/x/actions/reactivate"),
            Ok(Reactivate("x"))
        );
        assert_eq!(m("GET", "/info/import"), Ok(ImportInfo));
        assert_eq!(m("GET", "/info/stores"), Ok(StoresInfo));
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        let na = |allow| Err(RouteError::MethodNotAllowed { allow });
        assert_eq!(m("PUT", "/images"), na("GET, POST"));
        assert_eq!(m("PUT", "/images/x"), na("GET, PATCH, DELETE"));
        assert_eq!(m("POST", "/images/x/file"), na("GET, PUT"));
        assert_eq!(m("GET", "/images/x/import"), na("POST"));
        assert_eq!(m("GET", "/images/x/tags/t"), na("PUT, DELETE"));
        assert_eq!(m("POST", "/schemas/image"), na("GET"));
        for path in [
            "",
            "/",
            "/images/",
            "/images/x/",
            "/images/x/tags/",
            "/images/x/tags/a/b",
            "/images/x/members/",
            "/images/x/other",
            "/schemas/other",
            "/info/other",
            "/images/0123456789012345678901234567890123456",
        ] {
            assert_eq!(m("GET", path), Err(RouteError::NotFound), "{path:?}");
        }
    }
}
