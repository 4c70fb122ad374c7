//! The Glance-style INI parser: `[section]` headers, `key = value` or `key: value` lines and
//! `#`/`;` comments, and which sections apply to which program.

use std::fmt;

use super::App;

/// Sections in file order (a repeated header moves its section last), each with its entries in
/// file order.
pub(super) type Sections = Vec<(String, Vec<(String, String)>)>;

/// A line that is not INI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub kind: SyntaxErrorKind,
}

/// What is wrong with a line; each carries the line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxErrorKind {
    /// `[name` without the closing bracket.
    UnterminatedSection(String),
    /// Neither a header, a comment nor `option = value`.
    NotAnOption(String),
    /// `= value` with nothing before the separator.
    MissingName(String),
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.line)?;
        match &self.kind {
            SyntaxErrorKind::UnterminatedSection(l) => {
                write!(f, "unterminated section header '{l}'")
            }
            SyntaxErrorKind::NotAnOption(l) => write!(f, "expected 'option = value', got '{l}'"),
            SyntaxErrorKind::MissingName(l) => write!(f, "missing option name in '{l}'"),
        }
    }
}

impl std::error::Error for SyntaxError {}

/// Parses INI text. Keys before any header belong to `DEFAULT`.
pub(super) fn parse_ini(text: &str) -> Result<Sections, SyntaxError> {
    let mut sections: Sections = vec![("DEFAULT".to_string(), Vec::new())];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let error = |kind: fn(String) -> SyntaxErrorKind| SyntaxError {
            line: n + 1,
            kind: kind(line.to_string()),
        };
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| error(SyntaxErrorKind::UnterminatedSection))?
                .trim()
                .to_string();
            if !sections.iter().any(|(s, _)| *s == name) {
                sections.push((name.clone(), Vec::new()));
            }
            let idx = sections.iter().position(|(s, _)| *s == name).unwrap_or(0);
            let entry = sections.remove(idx);
            sections.push(entry);
            continue;
        }
        let split = line
            .find(['=', ':'])
            .ok_or_else(|| error(SyntaxErrorKind::NotAnOption))?;
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        if key.is_empty() {
            return Err(error(SyntaxErrorKind::MissingName));
        }
        if let Some((_, entries)) = sections.last_mut() {
            entries.push((key.to_string(), value.to_string()));
        }
    }
    Ok(sections)
}

/// The sections of `app`'s own program (beside `[DEFAULT]` and `[glint]`, which always apply).
pub(super) fn app_sections(app: App) -> &'static [&'static str] {
    match app {
        App::Registry => REGISTRY_SECTIONS,
        App::Serve => &[
            "app:glance-api",
            "glance-api",
            "api",
            "app:glance-registry",
            "glance-registry",
            "registry",
        ],
        App::Api => API_SECTIONS,
    }
}

/// The Registry API's sections, lowest precedence first.
pub(super) const REGISTRY_SECTIONS: &[&str] =
    &["app:glance-registry", "glance-registry", "registry"];

/// The Images API's sections, lowest precedence first.
pub(super) const API_SECTIONS: &[&str] = &["app:glance-api", "glance-api", "api"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_line_and_the_text() {
        let err = parse_ini("[DEFAULT]\n[broken\n").unwrap_err();
        assert_eq!(err.to_string(), "2: unterminated section header '[broken'");
        let err = parse_ini("a = 1\n = 2\n").unwrap_err();
        assert_eq!(err.kind, SyntaxErrorKind::MissingName("= 2".to_string()));
    }

    #[test]
    fn keys_before_a_header_are_default_and_a_repeated_header_moves_last() {
        let s = parse_ini("a = 1\n[x]\nb: 2\n[DEFAULT]\nc = 3\n").unwrap();
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x", "DEFAULT"]);
        assert_eq!(s[1].1.len(), 2);
    }
}
