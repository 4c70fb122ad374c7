//! The body of a v2 image update, `application/openstack-images-v2.1-json-patch`: a JSON array
//! of `{"op", "path", "value"}` changes (RFC 6902, the `add`, `remove` and `replace` operations
//! Glance takes), each on one top-level attribute. Pure: every malformed body is a typed error
//! naming what was wrong.

use serde_json::Value;

use crate::model::Invalid;

/// The media type of the patch body.
pub const MEDIA_TYPE: &str = "application/openstack-images-v2.1-json-patch";

/// What one change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Set an attribute, creating a custom property if needed.
    Add,
    /// Delete a custom property.
    Remove,
    /// Set an attribute that exists.
    Replace,
}

/// One change of a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The operation.
    pub op: Op,
    /// The attribute, JSON-pointer escapes undone (`/a~1b` is `a/b`).
    pub attr: String,
    /// The new value (`None` for `remove`).
    pub value: Option<Value>,
}

/// Parses a patch body.
pub fn parse(body: &[u8]) -> Result<Vec<Change>, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Invalid(format!("Malformed JSON in request body: {e}")))?;
    let Value::Array(items) = value else {
        return Err(Invalid(
            "Request body must be a JSON array of operation objects.".into(),
        ));
    };
    items.into_iter().map(change).collect()
}

fn change(item: Value) -> Result<Change, Invalid> {
    let Value::Object(mut obj) = item else {
        return Err(Invalid("Operations must be JSON objects.".into()));
    };
    let op = match obj.remove("op") {
        Some(Value::String(s)) => match s.as_str() {
            "add" => Op::Add,
            "remove" => Op::Remove,
            "replace" => Op::Replace,
            other => {
                return Err(Invalid(format!(
                    "Invalid operation: `{other}`: operations are add, remove and replace"
                )))
            }
        },
        _ => return Err(Invalid("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.".into())),
    };
    let path = match obj.remove("path") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(Invalid(
                "Unable to find 'path' in JSON Schema change".into(),
            ))
        }
    };
    let attr = pointer(&path)?;
    let value = match op {
        Op::Remove => None,
        Op::Add | Op::Replace => Some(obj.remove("value").ok_or_else(|| {
            Invalid(format!(
                "Operation \"{}\" requires a member named \"value\".",
                if op == Op::Add { "add" } else { "replace" }
            ))
        })?),
    };
    Ok(Change { op, attr, value })
}

/// The attribute a JSON pointer names; only one-segment pointers name an image attribute.
fn pointer(path: &str) -> Result<String, Invalid> {
    let bad = || Invalid(format!("Invalid JSON pointer for this resource: '{path}'"));
    let rest = path.strip_prefix('/').ok_or_else(bad)?;
    if rest.is_empty() || rest.contains('/') {
        return Err(bad());
    }
    // `~1` is `/`, `~0` is `~`; any other `~` escape is malformed.
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(bad()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_three_operations() {
        let body = br#"[{"op": "replace", "path": "/name", "value": "x"},
                        {"op": "add", "path": "/os~1distro~0", "value": "ubuntu"},
                        {"op": "remove", "path": "/kernel_id"}]"#;
        let changes = parse(body).unwrap();
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].op, Op::Replace);
        assert_eq!(changes[0].value, Some(json!("x")));
        assert_eq!(changes[1].attr, "os/distro~");
        assert_eq!(
            changes[2],
            Change {
                op: Op::Remove,
                attr: "kernel_id".into(),
                value: None
            }
        );
    }

    #[test]
    fn refuses_malformed_patches_with_a_message() {
        for (body, want) in [
            ("", "Malformed JSON"),
            ("{}", "JSON array"),
            ("[1]", "JSON objects"),
            (r#"[{"path": "/a"}]"#, "`op`"),
            (r#"[{"op": "move", "path": "/a"}]"#, "Invalid operation"),
            (r#"[{"op": "add"}]"#, "'path'"),
            (
                r#"[{"op": "add", "path": "a", "value": 1}]"#,
                "JSON pointer",
            ),
            (
                r#"[{"op": "add", "path": "/a/b", "value": 1}]"#,
                "JSON pointer",
            ),
            (
                r#"[{"op": "add", "path": "/", "value": 1}]"#,
                "JSON pointer",
            ),
            (
                r#"[{"op": "add", "path": "/a~2", "value": 1}]"#,
                "JSON pointer",
            ),
            (
                r#"[{"op": "replace", "path": "/a"}]"#,
                "requires a member named \"value\"",
            ),
        ] {
            let err = parse(body.as_bytes()).expect_err(body).0;
            assert!(err.contains(want), "{body}: {err}");
        }
    }
}
