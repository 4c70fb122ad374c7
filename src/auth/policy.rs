//! Policy rules in oslo.policy's language, with Glance's rule names and defaults: `""` and `@`
//! (always), `!` (never), `role:R`, `rule:NAME`, `ATTR:VALUE` checks against the caller's
//! credentials (`project_id`, `user_id`, `is_admin`) where the value may be a literal or a
//! `%(key)s` taken from the target (the image), combined with `and`, `or`, `not` and
//! parentheses. Files are `policy.yaml` (a flat map of rule name to rule text) or `policy.json`.

use std::collections::HashMap;
use std::path::Path;

use super::{Context, SetupError};

/// Glance's rule names with their defaults (Queens policy-in-code): everything is allowed except
/// making an image public, which needs the admin role.
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    ("default", ""),
    ("add_image", ""),
    ("delete_image", ""),
    ("get_image", ""),
    ("get_images", ""),
    ("modify_image", ""),
    ("publicize_image", "role:admin"),
    ("communitize_image", ""),
    ("copy_from", ""),
    ("download_image", ""),
    ("upload_image", ""),
    ("delete_image_location", ""),
    ("get_image_location", ""),
    ("set_image_location", ""),
    ("add_member", ""),
    ("delete_member", ""),
    ("get_member", ""),
    ("get_members", ""),
    ("modify_member", ""),
    ("manage_image_cache", "role:admin"),
    ("deactivate", ""),
    ("reactivate", ""),
    ("add_image_tag", ""),
    ("delete_image_tag", ""),
    ("get_task", ""),
    ("add_task", ""),
];

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `""` or `@`.
    Always,
    /// `!`.
    Never,
    /// `role:NAME` (case-insensitive, as oslo.policy compares roles).
    Role(String),
    /// `rule:NAME`.
    Named(String),
    /// `ATTR:VALUE`: a credential attribute equals a literal or a `%(key)s` of the target.
    Generic {
        attr: String,
        value: Value,
    },
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

/// The right-hand side of a generic check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Literal(String),
    /// `%(key)s`: the target's value for `key`.
    Target(String),
}

/// The policy in force, and the file it came from: read again on SIGHUP, where a file that no
/// longer parses keeps the rules in force.
#[derive(Debug)]
pub struct PolicyFile {
    path: Option<std::path::PathBuf>,
    current: std::sync::RwLock<std::sync::Arc<Policy>>,
}

impl Default for PolicyFile {
    fn default() -> Self {
        PolicyFile {
            path: None,
            current: std::sync::RwLock::new(std::sync::Arc::new(Policy::default())),
        }
    }
}

impl PolicyFile {
    /// The defaults overlaid with the file at `path`, when given.
    pub fn open(path: Option<&Path>) -> Result<PolicyFile, SetupError> {
        let policy = match path {
            Some(p) => Policy::load(p)?,
            None => Policy::default(),
        };
        Ok(PolicyFile {
            path: path.map(Path::to_path_buf),
            current: std::sync::RwLock::new(std::sync::Arc::new(policy)),
        })
    }

    /// The rules in force now.
    pub fn current(&self) -> std::sync::Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the file again; on failure the rules in force stay.
    pub fn reload(&self) -> Result<(), SetupError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let policy = Policy::load(path)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(policy);
        Ok(())
    }
}

/// What a rule is checked against besides the caller: the image's attributes, by name
/// (`project_id` and `owner` are the image's owner).
pub type Target<'a> = &'a [(&'a str, Option<&'a str>)];

/// A set of named rules.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: HashMap<String, Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        let rules = DEFAULT_RULES
            .iter()
            .map(|(name, text)| {
                let rule = parse_rule(text).unwrap_or(Rule::Never);
                (name.to_string(), rule)
            })
            .collect();
        Policy { rules }
    }
}

impl Policy {
    /// The defaults overlaid with the rules of the file at `path` (YAML, or JSON when it starts
    /// with `{`).
    pub fn load(path: &Path) -> Result<Policy, SetupError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SetupError(format!("cannot read policy file {}: {e}", path.display())))?;
        Policy::from_text(&text).map_err(|e| SetupError(format!("{}: {e}", path.display())))
    }

    /// The defaults overlaid with the rules in `text`.
    pub fn from_text(text: &str) -> Result<Policy, SetupError> {
        let entries = if text.trim_start().starts_with('{') {
            parse_json_map(text)?
        } else {
            parse_yaml_map(text)?
        };
        let mut policy = Policy::default();
        for (name, text) in entries {
            let rule =
                parse_rule(&text).map_err(|e| SetupError(format!("rule \"{name}\": {e}")))?;
            policy.rules.insert(name, rule);
        }
        Ok(policy)
    }

    /// Whether `ctx` passes rule `name` on `target`; a rule the policy does not define falls
    /// back to `default`.
    pub fn allows(&self, name: &str, ctx: &Context, target: Target<'_>) -> bool {
        let rule = self
            .rules
            .get(name)
            .or_else(|| self.rules.get("default"))
            .unwrap_or(&Rule::Never);
        self.check(rule, ctx, target, 0)
    }

    fn check(&self, rule: &Rule, ctx: &Context, target: Target<'_>, depth: usize) -> bool {
        // A rule that names itself (directly or through others) denies rather than loops.
        if depth > 32 {
            return false;
        }
        match rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Role(role) => ctx.roles.iter().any(|r| r.eq_ignore_ascii_case(role)),
            Rule::Named(name) => match self.rules.get(name) {
                Some(r) => self.check(r, ctx, target, depth + 1),
                None => false,
            },
            Rule::Generic { attr, value } => {
                let want = match value {
                    Value::Literal(v) => Some(v.as_str()),
                    Value::Target(key) => {
                        target.iter().find(|(k, _)| k == key).and_then(|(_, v)| *v)
                    }
                };
                let have = match attr.as_str() {
                    "project_id" | "tenant" | "tenant_id" => ctx.project_id.as_deref(),
                    "user_id" | "user" => ctx.user_id.as_deref(),
                    "is_admin" => Some(if ctx.is_admin { "True" } else { "False" }),
                    _ => None,
                };
                match (have, want) {
                    (Some(h), Some(w)) if attr == "is_admin" => h.eq_ignore_ascii_case(w),
                    (Some(h), Some(w)) => h == w,
                    _ => false,
                }
            }
            Rule::Not(r) => !self.check(r, ctx, target, depth + 1),
            Rule::And(rs) => rs.iter().all(|r| self.check(r, ctx, target, depth + 1)),
            Rule::Or(rs) => rs.iter().any(|r| self.check(r, ctx, target, depth + 1)),
        }
    }
}

/// Parses one rule's text.
fn parse_rule(text: &str) -> Result<Rule, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Ok(Rule::Always);
    }
    let mut parser = Parser { tokens, at: 0 };
    let rule = parser.or()?;
    match parser.tokens.get(parser.at) {
        None => Ok(rule),
        Some(t) => Err(format!("unexpected \"{t}\"")),
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // Inside a word, parentheses belong to it: `project_id:%(project_id)s`.
            '(' if !word.is_empty() => word.push(c),
            ')' if word.matches('(').count() > word.matches(')').count() => word.push(c),
            '(' | ')' => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                out.push(c.to_string());
            }
            '\'' | '"' => {
                // A quoted literal on the right of a check: `role:'my role'`.
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(q) => word.push(q),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut parts = vec![self.and()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Rule::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut parts = vec![self.unary()?];
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.at += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Rule::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Rule, String> {
        let token = self
            .peek()
            .ok_or_else(|| "a check is missing at the end".to_string())?
            .to_string();
        self.at += 1;
        if token.eq_ignore_ascii_case("not") {
            return Ok(Rule::Not(Box::new(self.unary()?)));
        }
        if token == "(" {
            let inner = self.or()?;
            if self.peek() != Some(")") {
                return Err("a \")\" is missing".into());
            }
            self.at += 1;
            return Ok(inner);
        }
        check(&token)
    }
}

/// One check: `@`, `!`, `role:x`, `rule:x` or `attr:value`.
fn check(token: &str) -> Result<Rule, String> {
    match token {
        "@" => return Ok(Rule::Always),
        "!" => return Ok(Rule::Never),
        _ => {}
    }
    let (kind, value) = token
        .split_once(':')
        .ok_or_else(|| format!("\"{token}\" is not a check (expected KIND:VALUE)"))?;
    Ok(match kind {
        "role" => Rule::Role(value.to_string()),
        "rule" => Rule::Named(value.to_string()),
        attr => {
            let value = match value.strip_prefix("%(").and_then(|v| v.strip_suffix(")s")) {
                Some(key) => Value::Target(key.to_string()),
                None => Value::Literal(value.to_string()),
            };
            Rule::Generic {
                attr: attr.to_string(),
                value,
            }
        }
    })
}

fn parse_json_map(text: &str) -> Result<Vec<(String, String)>, SetupError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| SetupError(format!("not a JSON object: {e}")))?;
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(SetupError(format!("rule \"{k}\" is not a string"))),
        })
        .collect()
}

/// The subset of YAML a policy file uses: one `name: rule` per line, either side optionally
/// quoted, `#` comments and blank lines. Anything else (nesting, lists) is refused by line.
fn parse_yaml_map(text: &str) -> Result<Vec<(String, String)>, SetupError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let bad = |why: &str| SetupError(format!("line {}: {why}", n + 1));
        if trimmed.len() != line.len() {
            return Err(bad("nested entries are not policy rules"));
        }
        let (key, rest) = yaml_scalar(trimmed).map_err(|e| bad(&e))?;
        let rest = rest
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| bad("expected \"name: rule\""))?;
        let rest = rest.trim();
        let value = if rest.is_empty() || rest.starts_with('#') {
            String::new()
        } else {
            let (value, tail) = yaml_scalar(rest).map_err(|e| bad(&e))?;
            let tail = tail.trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err(bad("text after the rule"));
            }
            value
        };
        out.push((key, value));
    }
    Ok(out)
}

/// A quoted or plain scalar at the start of `s`, and what follows it.
fn yaml_scalar(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, q @ ('"' | '\''))) => {
            let mut out = String::new();
            let mut escaped = false;
            for (i, c) in chars {
                if escaped {
                    out.push(c);
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    return Ok((out, &s[i + 1..]));
                } else {
                    out.push(c);
                }
            }
            Err("unterminated quote".into())
        }
        _ => {
            // A plain key ends at ": "/":" + end; a plain value at " #".
            let end = s
                .find(": ")
                .or_else(|| s.strip_suffix(':').map(|t| t.len()))
                .or_else(|| s.find(" #"))
                .unwrap_or(s.len());
            Ok((s[..end].trim().to_string(), &s[end..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(project: &str, roles: &[&str]) -> Context {
        Context {
            user_id: Some("u1".into()),
            project_id: Some(project.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            is_admin: roles.contains(&"admin"),
            read_only: false,
            owner: Some(project.into()),
        }
    }

    #[test]
    fn defaults_allow_everything_but_publicize_for_non_admins() {
        let p = Policy::default();
        let member = ctx("p1", &["member"]);
        assert!(p.allows("add_image", &member, &[]));
        assert!(p.allows("download_image", &member, &[]));
        assert!(!p.allows("publicize_image", &member, &[]));
        assert!(p.allows("publicize_image", &ctx("p1", &["Admin"]), &[]));
        assert!(
            p.allows("some_future_rule", &member, &[]),
            "default is \"\""
        );
    }

    #[test]
    fn rules_combine_roles_targets_and_names() {
        let p = Policy::from_text(
            "# a comment\n\
             \"owner\": \"project_id:%(project_id)s\"\n\
             'admin_or_owner': 'rule:context_is_admin or rule:owner'\n\
             delete_image: \"rule:admin_or_owner and not role:reader\"\n\
             download_image: '!'\n\
             get_image: '@'\n\
             add_member: (role:a or role:b) and user_id:u1\n",
        )
        .unwrap();
        let target: Target<'_> = &[("project_id", Some("p1"))];
        assert!(p.allows("delete_image", &ctx("p1", &["member"]), target));
        assert!(!p.allows("delete_image", &ctx("p2", &["member"]), target));
        assert!(!p.allows("delete_image", &ctx("p1", &["reader"]), target));
        assert!(p.allows("delete_image", &ctx("p2", &["admin"]), target));
        assert!(!p.allows("download_image", &ctx("p1", &["admin"]), target));
        assert!(p.allows("get_image", &ctx("p1", &[]), target));
        assert!(p.allows("add_member", &ctx("p1", &["b"]), target));
        assert!(!p.allows("add_member", &ctx("p1", &["c"]), target));
        let missing: Target<'_> = &[("project_id", None)];
        assert!(!p.allows("delete_image", &ctx("p1", &["member"]), missing));
    }

    #[test]
    fn json_files_and_self_reference_are_handled() {
        let p = Policy::from_text(r#"{"a": "rule:a", "get_image": "role:x"}"#).unwrap();
        assert!(!p.allows("a", &ctx("p", &["x"]), &[]), "a loop denies");
        assert!(p.allows("get_image", &ctx("p", &["x"]), &[]));
    }

    #[test]
    fn bad_policies_say_where() {
        for (text, want) in [
            ("get_image: role:a or\n", "a check is missing"),
            ("get_image: (role:a\n", "\")\" is missing"),
            ("get_image: admin\n", "is not a check"),
            ("get_image:\n  nested: x\n", "line 2"),
            ("get_image 'x'\n", "expected \"name: rule\""),
            (r#"{"get_image": 1}"#, "is not a string"),
        ] {
            let err = Policy::from_text(text).unwrap_err();
            assert!(err.0.contains(want), "{text:?}: {err}");
        }
    }
}
