//! Location URIs: where an image's data lives, as stored in its record (`file:///...` now;
//! `s3://`, `swift://`, `http(s)://` join with their stores). Parsing is pure and total.

use std::fmt;
use std::path::PathBuf;

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `file://<absolute path>`: the filesystem store.
    File(PathBuf),
}

impl Location {
    /// Parses a location URI. `Err` carries the scheme (unknown store) or the reason.
    pub fn parse(uri: &str) -> Result<Location, super::Error> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| super::Error::BadLocation(redact(uri)))?;
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !rest.starts_with('/') || rest.contains('\0') {
                    return Err(super::Error::BadLocation(redact(uri)));
                }
                Ok(Location::File(PathBuf::from(rest)))
            }
            other => Err(super::Error::UnknownStore(other.to_string())),
        }
    }

    /// The scheme: which store holds the data.
    pub fn scheme(&self) -> &'static str {
        match self {
            Location::File(_) => "file",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "file://{}", path.display()),
        }
    }
}

/// A location with any `user:password@` part replaced, safe to log or show.
pub fn redact(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => uri.to_string(),
            }
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_locations() {
        let loc = Location::parse("file:///var/lib/glint/images/abc").unwrap();
        assert_eq!(
            loc,
            Location::File(PathBuf::from("/var/lib/glint/images/abc"))
        );
        assert_eq!(loc.to_string(), "file:///var/lib/glint/images/abc");
        assert_eq!(loc.scheme(), "file");
    }

    #[test]
    fn rejects_bad_and_unknown_locations() {
        assert!(matches!(
            Location::parse("file://relative"),
            Err(super::super::Error::BadLocation(_))
        ));
        assert!(matches!(
            Location::parse("nonsense"),
            Err(super::super::Error::BadLocation(_))
        ));
        assert!(
            matches!(Location::parse("rbd://pool/x"), Err(super::super::Error::UnknownStore(s)) if s == "rbd")
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact("swift://user:key@host/v1/c/o"),
            "swift://***@host/v1/c/o"
        );
        assert_eq!(
            redact("s3://AK:SK@host/bucket/key"),
            "s3://***@host/bucket/key"
        );
        assert_eq!(redact("file:///a@b/c"), "file:///a@b/c");
    }
}
