//! The query-string parser: `a=1&b=x%20y&a=2` into ordered pairs, with percent-decoding, `+` as a
//! space, repeated keys and empty values kept. Total: any input gives some pairs, never a panic.

/// Query parameters in the order they appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses the part of a URI after `?` (without the `?`). A pair without `=` has an empty value;
    /// empty pairs (`&&`) are skipped. Invalid percent escapes are kept literally and invalid UTF-8
    /// becomes U+FFFD.
    pub fn parse(query: &str) -> QueryParams {
        QueryParams(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode_component(k), decode_component(v))
                })
                .collect(),
        )
    }

    /// The value of `key`; when the key is repeated, the last one wins (as in WebOb).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Builds parameters from pairs (used by clients and tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> QueryParams {
        QueryParams(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Encodes the parameters as a query string (without `?`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            encode_component(k, &mut out);
            out.push('=');
            encode_component(v, &mut out);
        }
        out
    }
}

/// Decodes one `application/x-www-form-urlencoded` component.
pub fn decode_component(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Decodes `%XX` escapes only (no `+` for space): header values as python-glanceclient sends
/// them. Invalid escapes stay literal; invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Encodes `%`, spaces, controls and non-ASCII as `%XX`, keeping everything else: the inverse
/// of [`percent_decode`] for header values (spaces too, since header values are trimmed).
pub fn percent_encode_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c == b'%' || !(0x21..0x7f).contains(&c) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(c as char);
        }
    }
    out
}

fn encode_component(s: &str, out: &mut String) {
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        QueryParams::parse(q).0
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn parses_pairs_in_order() {
        assert_eq!(pairs("a=1&b=2"), vec![p("a", "1"), p("b", "2")]);
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("&&a=&b&"), vec![p("a", ""), p("b", "")]);
        assert_eq!(pairs("a=b=c"), vec![p("a", "b=c")]);
    }

    #[test]
    fn percent_and_plus_decoding() {
        assert_eq!(pairs("name=My+Image%21"), vec![p("name", "My Image!")]);
        assert_eq!(pairs("k%2Dx=%E2%82%AC"), vec![p("k-x", "€")]);
        assert_eq!(pairs("a=%zz&b=%4"), vec![p("a", "%zz"), p("b", "%4")]);
        assert_eq!(pairs("a=%"), vec![p("a", "%")]);
        assert_eq!(pairs("a=%41"), vec![p("a", "A")]);
        assert_eq!(pairs("a=%FF"), vec![p("a", "\u{FFFD}")]);
    }

    #[test]
    fn header_values_percent_round_trip() {
        assert_eq!(percent_decode("glint%20smoke"), "glint smoke");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("caf%C3%A9+x"), "café+x");
        for s in ["plain", "100% sure", "café ünï", "a%41b", "tab\there"] {
            assert_eq!(percent_decode(&percent_encode_header(s)), s);
        }
        assert_eq!(percent_encode_header("a b/c:d"), "a%20b/c:d");
        assert_eq!(
            percent_decode(&percent_encode_header(" padded ")),
            " padded "
        );
    }

    #[test]
    fn last_repeated_key_wins() {
        let q = QueryParams::parse("limit=1&limit=2");
        assert_eq!(q.get("limit"), Some("2"));
        assert_eq!(q.get("marker"), None);
        assert_eq!(q.iter().count(), 2);
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let q = QueryParams::from_pairs([("property-os type", "a&b=c+d%"), ("e", "")]);
        assert_eq!(QueryParams::parse(&q.encode()), q);
    }
}
