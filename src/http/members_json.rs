//! Decodes member request bodies (§5.8): `{"memberships": [{"member_id": "t1", "can_share":
//! true}, ...]}` for a replace, and the optional `{"member": {"can_share": bool}}` for one member.

use serde_json::Value;

use crate::model::Invalid;

fn invalid(why: impl std::fmt::Display) -> Invalid {
    Invalid(format!("Invalid membership association: {why}"))
}

fn can_share(v: Option<&Value>) -> Result<Option<bool>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(format!(
            "can_share must be true or false, got {other}"
        ))),
    }
}

/// The member list of a replace request: `(member id, can_share if given)`.
pub fn decode_memberships(body: &[u8]) -> Result<Vec<(String, Option<bool>)>, Invalid> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
    let list = value
        .get("memberships")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("expected {\"memberships\": [...]}"))?;
    list.iter()
        .map(|entry| {
            let member = entry
                .get("member_id")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("entry without a member_id: {entry}")))?;
            Ok((member.to_string(), can_share(entry.get("can_share"))?))
        })
        .collect()
}

/// The optional `can_share` of an add-member request; an empty body gives `None`.
pub fn decode_member(body: &[u8]) -> Result<Option<bool>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
    let member = value
        .get("member")
        .filter(|m| m.is_object())
        .ok_or_else(|| invalid("expected {\"member\": {\"can_share\": ...}}"))?;
    can_share(member.get("can_share"))
}

/// The `status` of an add-member request (a glint extension of the Registry API that carries
/// v2 member status to a remote registry); absent gives `None`.
pub fn decode_member_status(body: &[u8]) -> Result<Option<String>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
    match value.get("member").and_then(|m| m.get("status")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!("status must be a string, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_memberships() {
        let got = decode_memberships(
            br#"{"memberships": [{"member_id": "t1", "can_share": true}, {"member_id": "t2"}]}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![("t1".to_string(), Some(true)), ("t2".to_string(), None)]
        );
        for bad in [
            &b"{}"[..],
            b"[]",
            b"{\"memberships\": [{}]}",
            b"{\"memberships\": [{\"member_id\": \"t\", \"can_share\": 1}]}",
            b"x",
        ] {
            assert!(decode_memberships(bad)
                .unwrap_err()
                .0
                .starts_with("Invalid membership association"));
        }
    }

    #[test]
    fn decodes_one_member() {
        assert_eq!(decode_member(b"").unwrap(), None);
        assert_eq!(
            decode_member(br#"{"member": {"can_share": true}}"#).unwrap(),
            Some(true)
        );
        assert_eq!(decode_member(br#"{"member": {}}"#).unwrap(), None);
        assert!(decode_member(br#"{"other": 1}"#).is_err());
        assert_eq!(
            decode_member_status(br#"{"member": {"status": "accepted"}}"#).unwrap(),
            Some("accepted".into())
        );
        assert_eq!(decode_member_status(b"").unwrap(), None);
        assert!(decode_member_status(br#"{"member": {"status": 1}}"#).is_err());
    }
}
