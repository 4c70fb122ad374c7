//! Location URIs: where an image's data lives, as stored in its record (`file:///...` now;
//! `s3://`, `swift://`, `http(s)://` join with their stores). Parsing is pure and total.

use std::fmt;
use std::path::PathBuf;

use super::s3::S3Location;
use super::swift::SwiftLocation;

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `file://<absolute path>`: the filesystem store.
    File(PathBuf),
    /// `s3://`, `s3+http://` (both plain http, as Glance D/E) or `s3+https://`
    /// `[access:secret@]host[:port]/bucket/key`: the S3 store.
    S3(S3Location),
    /// `swift://` (https, as Glance), `swift+http://` or `swift+https://`
    /// `[user:key@]auth-address/container/object`: the Swift store.
    Swift(SwiftLocation),
    /// `http(s)://...`: the read-only HTTP store.
    Http(String),
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
            "s3" | "s3+http" | "s3+https" => {
                let bad = || super::Error::BadLocation(redact(uri));
                let secure = scheme.eq_ignore_ascii_case("s3+https");
                let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
                let (credentials, host) = match authority.rsplit_once('@') {
                    Some((creds, host)) => {
                        let (ak, sk) = creds.split_once(':').ok_or_else(bad)?;
                        (Some((ak.to_string(), sk.to_string())), host)
                    }
                    None => (None, authority),
                };
                let (bucket, key) = path.split_once('/').ok_or_else(bad)?;
                if host.is_empty() || bucket.is_empty() || key.is_empty() {
                    return Err(bad());
                }
                Ok(Location::S3(S3Location {
                    secure,
                    host: host.to_string(),
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    credentials,
                }))
            }
            "swift" | "swift+http" | "swift+https" => {
                let bad = || super::Error::BadLocation(redact(uri));
                let rest = match rest.split_once('/') {
                    // Credentials (`account:user:key@`) may come first; the store uses its own.
                    Some((authority, _)) if authority.contains('@') => {
                        rest.rsplit_once('@').map(|(_, r)| r).ok_or_else(bad)?
                    }
                    _ => rest,
                };
                let (auth, object) = rest.rsplit_once('/').ok_or_else(bad)?;
                let (auth, container) = auth.rsplit_once('/').ok_or_else(bad)?;
                if auth.is_empty() || container.is_empty() || object.is_empty() {
                    return Err(bad());
                }
                let http = if scheme.eq_ignore_ascii_case("swift+http") {
                    "http"
                } else {
                    "https"
                };
                Ok(Location::Swift(SwiftLocation {
                    auth_address: format!("{http}://{auth}"),
                    container: container.to_string(),
                    object: object.to_string(),
                }))
            }
            "http" | "https" => {
                if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
                    return Err(super::Error::BadLocation(redact(uri)));
                }
                Ok(Location::Http(uri.to_string()))
            }
            other => Err(super::Error::UnknownStore(other.to_string())),
        }
    }

    /// The scheme: which store holds the data.
    pub fn scheme(&self) -> &'static str {
        match self {
            Location::File(_) => "file",
            Location::S3(l) if l.secure => "s3+https",
            Location::S3(_) => "s3+http",
            Location::Swift(l) if l.auth_address.starts_with("http://") => "swift+http",
            Location::Swift(_) => "swift+https",
            Location::Http(url) if url.starts_with("https") => "https",
            Location::Http(_) => "http",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "file://{}", path.display()),
            // Credentials are never written back: they come from the configuration.
            Location::S3(l) => write!(f, "{}://{}/{}/{}", self.scheme(), l.host, l.bucket, l.key),
            Location::Swift(l) => {
                let auth = l
                    .auth_address
                    .split_once("://")
                    .map_or(l.auth_address.as_str(), |(_, a)| a);
                write!(f, "{}://{auth}/{}/{}", self.scheme(), l.container, l.object)
            }
            Location::Http(url) => f.write_str(url),
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
    fn parses_s3_locations_and_never_prints_credentials() {
        let loc = Location::parse("s3://AK:SK@127.0.0.1:17480/glance/abc-1").unwrap();
        let Location::S3(s3) = &loc else {
            panic!("{loc:?}")
        };
        assert_eq!(
            (
                s3.secure,
                s3.host.as_str(),
                s3.bucket.as_str(),
                s3.key.as_str()
            ),
            (false, "127.0.0.1:17480", "glance", "abc-1")
        );
        assert_eq!(s3.credentials, Some(("AK".into(), "SK".into())));
        assert_eq!(loc.to_string(), "s3+http://127.0.0.1:17480/glance/abc-1");
        let https = Location::parse("s3+https://s3.example.com/b/k/with/slash").unwrap();
        assert_eq!(
            https.to_string(),
            "s3+https://s3.example.com/b/k/with/slash"
        );
        for bad in [
            "s3://host",
            "s3://host/bucket",
            "s3://host/bucket/",
            "s3://nocolon@host/b/k",
        ] {
            assert!(
                matches!(
                    Location::parse(bad),
                    Err(super::super::Error::BadLocation(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_swift_locations() {
        let loc = Location::parse(
            "swift+http://test:tester:testing@127.0.0.1:18080/auth/v1.0/glance/abc",
        )
        .unwrap();
        let Location::Swift(sw) = &loc else {
            panic!("{loc:?}")
        };
        assert_eq!(sw.auth_address, "http://127.0.0.1:18080/auth/v1.0");
        assert_eq!(
            (sw.container.as_str(), sw.object.as_str()),
            ("glance", "abc")
        );
        assert_eq!(
            loc.to_string(),
            "swift+http://127.0.0.1:18080/auth/v1.0/glance/abc"
        );
        let plain = Location::parse("swift://host/v1.0/c/o").unwrap();
        assert_eq!(plain.scheme(), "swift+https");
        assert!(Location::parse("swift://host/o").is_err());
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
