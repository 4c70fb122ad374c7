//! Invariant: `match_registry_route` never panics on any method bytes and path. When it returns an
//! id segment (`Show`, `Update`, `Delete`), that id is a non-empty substring of the path, without
//! '/', at most `MAX_ID_LEN` (36) bytes. `Ok` is only returned for paths starting with "/", and
//! `GET /` is always `List`.
//!
//! Input: the method bytes, one space, then the path (the shape of an HTTP request line), e.g.
//! `GET /images/abc`. Inputs whose method hyper refuses or whose path is not UTF-8 are skipped.
#![no_main]

use glint::http::route::{match_registry_route, RegistryRoute, MAX_ID_LEN};
use hyper::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(space) = data.iter().position(|&b| b == b' ') else {
        return;
    };
    let Ok(method) = Method::from_bytes(&data[..space]) else {
        return;
    };
    let Ok(path) = std::str::from_utf8(&data[space + 1..]) else {
        return;
    };

    let result = match_registry_route(&method, path);

    if result.is_ok() {
        assert!(path.starts_with('/'), "Ok for a path without '/': {path:?}");
    }
    if method == Method::GET && path == "/" {
        assert_eq!(result, Ok(RegistryRoute::List));
    }
    if let Ok(RegistryRoute::Show(id) | RegistryRoute::Update(id) | RegistryRoute::Delete(id)) =
        result
    {
        assert!(!id.is_empty(), "empty id for {path:?}");
        assert!(!id.contains('/'), "id {id:?} contains '/'");
        assert!(id.len() <= MAX_ID_LEN, "id {id:?} is {} bytes", id.len());
        // A substring in the strict sense: the id borrows from the path itself.
        let path_range = path.as_bytes().as_ptr_range();
        let id_range = id.as_bytes().as_ptr_range();
        assert!(
            path_range.start <= id_range.start && id_range.end <= path_range.end,
            "id {id:?} does not borrow from the path {path:?}"
        );
    }
});
