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
    let rest = path.strip_prefix("/images").ok_or(RouteError::NotFound)?;
    if rest.is_empty() {
        return match *method {
            Method::GET => Ok(List),
            Method::POST => Ok(Create),
            _ => allow("GET, POST"),
        };
    }
    let segment = rest.strip_prefix('/').ok_or(RouteError::NotFound)?;
    if segment.is_empty() || segment.contains('/') || segment.len() > MAX_ID_LEN {
        return Err(RouteError::NotFound);
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
