//! Conditional requests on image data (RFC 9110 §13): the validators of a representation, the
//! order in which the preconditions are evaluated (§13.2.2), and `If-Range` (§13.1.5).
//!
//! * `If-Match` (strong comparison, `*` matches any current representation), or when it is
//!   absent `If-Unmodified-Since`: false → 412.
//! * `If-None-Match` (weak comparison, `*`), or when it is absent and the method is GET or HEAD
//!   `If-Modified-Since`: false → 304 for GET and HEAD (412 for any other method).
//! * `If-Range`: an entity tag (strong comparison; a weak tag never matches) or a date (equal to
//!   `Last-Modified`); when it does not match, the `Range` is ignored and the whole
//!   representation is sent.
//!
//! An invalid date is ignored, as the RFC requires; an unparsable entity-tag list matches
//! nothing it does not spell out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::{
    HeaderMap, HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE,
};

/// The validators of the representation a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validators<'a> {
    /// The strong entity tag's opaque text, without its quotes (the image's MD5), if any.
    pub etag: Option<&'a str>,
    /// `Last-Modified`, whole seconds (what the header can carry), if any.
    pub last_modified: Option<SystemTime>,
}

impl Validators<'_> {
    /// The `ETag` header value: the tag in double quotes.
    pub fn etag_header(&self) -> Option<String> {
        self.etag.map(quote_etag)
    }

    /// The `Last-Modified` header value (IMF-fixdate).
    pub fn last_modified_header(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }
}

/// `"tag"`: an opaque tag as a strong entity-tag.
pub fn quote_etag(tag: &str) -> String {
    format!("\"{tag}\"")
}

/// Whole seconds since the epoch as a time (what `Last-Modified` can carry).
pub fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// What the preconditions of a request decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on with the request.
    Proceed,
    /// `304 Not Modified`: the client's copy is current (GET and HEAD only).
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` in the
/// order of RFC 9110 §13.2.2, for a request whose method is GET or HEAD when `safe`.
pub fn evaluate(safe: bool, headers: &HeaderMap, current: &Validators<'_>) -> Precondition {
    if let Some(list) = joined(headers, &IF_MATCH) {
        if !matches_list(&list, current.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(modified)) = (
        single_date(headers, &IF_UNMODIFIED_SINCE),
        current.last_modified,
    ) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    if let Some(list) = joined(headers, &IF_NONE_MATCH) {
        if matches_list(&list, current.etag, Comparison::Weak) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe {
        if let (Some(since), Some(modified)) = (
            single_date(headers, &IF_MODIFIED_SINCE),
            current.last_modified,
        ) {
            if modified <= since {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether a `Range` may be honoured: true without `If-Range`, else whether its validator is
/// the current one (RFC 9110 §13.1.5).
pub fn if_range_holds(headers: &HeaderMap, current: &Validators<'_>) -> bool {
    let mut fields = headers.get_all(IF_RANGE).iter();
    let value = match (fields.next(), fields.next()) {
        (None, _) => return true,
        (Some(v), None) => v,
        (Some(_), Some(_)) => return false,
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        let tags = entity_tags(text);
        return matches!(tags.as_slice(), [tag] if !tag.weak && Some(tag.opaque) == current.etag);
    }
    match (httpdate::parse_http_date(text), current.last_modified) {
        (Ok(date), Some(modified)) => date == modified,
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

/// Every field line of `name`, joined as one list (a list may be split over lines).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out: Option<String> = None;
    for value in headers.get_all(name) {
        let text = String::from_utf8_lossy(value.as_bytes());
        match &mut out {
            Some(all) => {
                all.push(',');
                all.push_str(&text);
            }
            None => out = Some(text.into_owned()),
        }
    }
    out
}

/// Whether an `If-Match` / `If-None-Match` value matches the current tag: `*` matches any
/// current representation (glint only evaluates these where one exists), a list when one of its
/// tags compares equal.
fn matches_list(list: &str, current: Option<&str>, how: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let Some(current) = current else {
        return false;
    };
    entity_tags(list)
        .iter()
        .any(|tag| tag.opaque == current && (how == Comparison::Weak || !tag.weak))
}

/// One entity-tag of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// The entity-tags of a comma-separated list, up to the first malformed element.
fn entity_tags(list: &str) -> Vec<EntityTag<'_>> {
    let mut tags = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return tags;
        }
        let (weak, after) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let Some(inner) = after.strip_prefix('"') else {
            return tags;
        };
        let Some(end) = inner.find('"') else {
            return tags;
        };
        let opaque = &inner[..end];
        // etagc: %x21 / %x23-7E / obs-text; anything else ends the list.
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return tags;
        }
        tags.push(EntityTag { weak, opaque });
        rest = &inner[end + 1..];
        let next = rest.trim_start_matches([' ', '\t']);
        if !next.is_empty() && !next.starts_with(',') {
            return tags;
        }
    }
}

/// The date of a field that must hold exactly one valid HTTP-date; `None` (the field is
/// ignored) otherwise.
fn single_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut fields = headers.get_all(name).iter();
    let (Some(value), None) = (fields.next(), fields.next()) else {
        return None;
    };
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "8a40c862b5735975d82605c1dd395796";
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const MODIFIED: u64 = 784_111_777;

    fn current() -> Validators<'static> {
        Validators {
            etag: Some(TAG),
            last_modified: Some(from_unix_seconds(MODIFIED)),
        }
    }

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in fields {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        h
    }

    fn date(seconds: u64) -> String {
        httpdate::fmt_http_date(from_unix_seconds(seconds))
    }

    #[test]
    fn validators_are_a_quoted_tag_and_an_imf_fixdate() {
        let v = current();
        assert_eq!(v.etag_header().unwrap(), format!("\"{TAG}\""));
        assert_eq!(
            v.last_modified_header().unwrap(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn preconditions_follow_rfc_9110_order_and_comparisons() {
        use Precondition::{Failed as F, NotModified as N, Proceed as P};
        let quoted = format!("\"{TAG}\"");
        let weak = format!("W/\"{TAG}\"");
        let listed = format!("\"other\", {quoted}");
        let garbage_first = format!("garbage, {quoted}");
        let (before, at, after) = (date(MODIFIED - 1), date(MODIFIED), date(MODIFIED + 1));
        let cases: Vec<(Vec<(&str, &str)>, Precondition)> = vec![
            (vec![], P),
            // If-Match: strong comparison, lists, *.
            (vec![("if-match", &quoted)], P),
            (vec![("if-match", &listed)], P),
            (vec![("if-match", "*")], P),
            (vec![("if-match", "\"other\"")], F),
            (vec![("if-match", &weak)], F),
            (vec![("if-match", TAG)], F),
            // If-Unmodified-Since, and If-Match before it.
            (vec![("if-unmodified-since", &at)], P),
            (vec![("if-unmodified-since", &after)], P),
            (vec![("if-unmodified-since", &before)], F),
            (vec![("if-unmodified-since", "yesterday")], P),
            (
                vec![("if-match", &quoted), ("if-unmodified-since", &before)],
                P,
            ),
            (
                vec![("if-match", "\"x\""), ("if-unmodified-since", &after)],
                F,
            ),
            // If-None-Match: weak comparison, lists, *.
            (vec![("if-none-match", &quoted)], N),
            (vec![("if-none-match", &weak)], N),
            (vec![("if-none-match", &listed)], N),
            (vec![("if-none-match", "*")], N),
            (vec![("if-none-match", "\"other\"")], P),
            // If-Modified-Since, and If-None-Match before it.
            (vec![("if-modified-since", &at)], N),
            (vec![("if-modified-since", &after)], N),
            (vec![("if-modified-since", &before)], P),
            (vec![("if-modified-since", "not a date")], P),
            (
                vec![
                    ("if-none-match", "\"other\""),
                    ("if-modified-since", &after),
                ],
                P,
            ),
            (
                vec![("if-none-match", &quoted), ("if-modified-since", &before)],
                N,
            ),
            // A 412 wins over a 304.
            (vec![("if-match", "\"x\""), ("if-none-match", &quoted)], F),
            // Split over two field lines: one list.
            (
                vec![("if-none-match", "\"a\""), ("if-none-match", &quoted)],
                N,
            ),
            // Two If-Modified-Since fields: ignored.
            (
                vec![("if-modified-since", &at), ("if-modified-since", &at)],
                P,
            ),
            // Obsolete date forms are accepted (RFC 850, asctime).
            (
                vec![("if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT")],
                N,
            ),
            (vec![("if-modified-since", "Sun Nov  6 08:49:37 1994")], N),
            // Malformed lists match nothing they do not spell out.
            (vec![("if-none-match", "\"unterminated")], P),
            (vec![("if-none-match", &garbage_first)], P),
        ];
        for (fields, want) in cases {
            let got = evaluate(true, &headers(&fields), &current());
            assert_eq!(got, want, "{fields:?}");
        }
    }

    #[test]
    fn if_none_match_on_an_unsafe_method_is_412_and_if_modified_since_is_ignored() {
        let quoted = format!("\"{TAG}\"");
        let h = headers(&[("if-none-match", &quoted)]);
        assert_eq!(evaluate(false, &h, &current()), Precondition::Failed);
        let h = headers(&[("if-modified-since", &date(MODIFIED))]);
        assert_eq!(evaluate(false, &h, &current()), Precondition::Proceed);
    }

    #[test]
    fn without_validators_only_star_matches_and_dates_are_ignored() {
        let none = Validators {
            etag: None,
            last_modified: None,
        };
        let check = |fields: &[(&str, &str)]| evaluate(true, &headers(fields), &none);
        assert_eq!(check(&[("if-match", "*")]), Precondition::Proceed);
        assert_eq!(check(&[("if-match", "\"x\"")]), Precondition::Failed);
        assert_eq!(check(&[("if-none-match", "*")]), Precondition::NotModified);
        assert_eq!(check(&[("if-none-match", "\"x\"")]), Precondition::Proceed);
        let at = date(MODIFIED);
        assert_eq!(check(&[("if-modified-since", &at)]), Precondition::Proceed);
        assert_eq!(
            check(&[("if-unmodified-since", &at)]),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_range_matches_the_strong_tag_or_the_exact_date_only() {
        let quoted = format!("\"{TAG}\"");
        let weak = format!("W/\"{TAG}\"");
        let check = |fields: &[(&str, &str)]| if_range_holds(&headers(fields), &current());
        assert!(check(&[]));
        assert!(check(&[("if-range", &quoted)]));
        assert!(check(&[("if-range", &date(MODIFIED))]));
        assert!(!check(&[("if-range", &weak)]));
        assert!(!check(&[("if-range", "\"other\"")]));
        assert!(!check(&[("if-range", &format!("{quoted}, \"other\""))]));
        assert!(!check(&[("if-range", &date(MODIFIED + 1))]));
        assert!(!check(&[("if-range", &date(MODIFIED - 1))]));
        assert!(!check(&[("if-range", "garbage")]));
        assert!(!check(&[("if-range", &quoted), ("if-range", &quoted)]));
    }
}
