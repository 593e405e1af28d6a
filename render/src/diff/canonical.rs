//! The form objects are compared in: keys sorted, spindle's revision and instance labels dropped
//! (they say who applied which commit, nothing about the object), Secret values replaced by hash
//! markers.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{DOMAIN, Object};

/// Hex digits of a value's sha256 shown in a Secret marker.
const MARKER_DIGITS: usize = 8;

/// `value` with every object's keys sorted, recursively.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), sorted(&map[key])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        scalar => scalar.clone(),
    }
}

/// The object without what never counts as a change.
pub fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(labels) = object
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(&format!("{DOMAIN}/revision"));
        labels.remove(crate::INSTANCE_LABEL);
        if labels.is_empty() {
            object["metadata"]
                .as_object_mut()
                .expect("metadata holds labels")
                .remove("labels");
        }
    }
    object
}

/// Replaces the values of a Secret pair (either side may be absent) with markers:
/// `<sha256 ab12cd34>` where nothing changed, `<changed: sha256 ab12cd34 -> 9f3e0a1b>` on the
/// after side of a changed key. Objects that are not Secrets are returned as they are.
pub fn mask_secrets(
    before: Option<&Value>,
    after: Option<&Value>,
) -> (Option<Value>, Option<Value>) {
    let is_secret = |v: Option<&Value>| v.is_some_and(|v| v["kind"] == "Secret");
    if !is_secret(before) && !is_secret(after) {
        return (before.cloned(), after.cloned());
    }
    let mut before = before.cloned();
    let mut after = after.cloned();
    for field in ["data", "stringData"] {
        let values = |side: &Option<Value>| -> Map<String, Value> {
            side.as_ref()
                .and_then(|v| v[field].as_object().cloned())
                .unwrap_or_default()
        };
        let (old, new) = (values(&before), values(&after));
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let mut old_masked = Map::new();
        let mut new_masked = Map::new();
        for key in keys {
            let old_hash = old.get(key).map(hash);
            let new_hash = new.get(key).map(hash);
            if let Some(old_hash) = &old_hash {
                old_masked.insert(key.clone(), Value::String(format!("<sha256 {old_hash}>")));
            }
            if let Some(new_hash) = &new_hash {
                let marker = match &old_hash {
                    Some(old_hash) if old_hash != new_hash => {
                        format!("<changed: sha256 {old_hash} -> {new_hash}>")
                    }
                    _ => format!("<sha256 {new_hash}>"),
                };
                new_masked.insert(key.clone(), Value::String(marker));
            }
        }
        for (side, masked) in [(&mut before, old_masked), (&mut after, new_masked)] {
            if let Some(object) = side.as_mut().and_then(Value::as_object_mut)
                && object.contains_key(field)
            {
                object.insert(field.to_owned(), Value::Object(masked));
            }
        }
    }
    (before, after)
}

fn hash(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut digest = hex::encode(Sha256::digest(text.as_bytes()));
    digest.truncate(MARKER_DIGITS);
    digest
}

/// The name an object keeps across content changes: a runtime-config Secret's name ends in a hash
/// of its content, so `counter-runtime-config-612baed46a` and `counter-runtime-config-9f3e...` are
/// one object that changed.
pub fn stable_name(object: &Object) -> &str {
    let name = object.name();
    if object.kind() == "Secret"
        && let Some((stem, hash)) = name.rsplit_once('-')
        && stem.ends_with("-runtime-config")
        && hash.len() == 10
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return stem;
    }
    name
}

/// `value` with every string equal to `from` replaced by `to`: how a renamed object compares with
/// its old self.
pub fn renamed(value: &Value, from: &str, to: &str) -> Value {
    match value {
        Value::String(text) if text == from => Value::String(to.to_owned()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| (key.clone(), renamed(inner, from, to)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| renamed(v, from, to)).collect()),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_show_that_a_key_changed_never_its_value() {
        let before = json!({"kind": "Secret", "data": {"a": "b2xk", "same": "eA=="}});
        let after =
            json!({"kind": "Secret", "data": {"a": "bmV3", "same": "eA==", "added": "eQ=="}});
        let (before, after) = mask_secrets(Some(&before), Some(&after));
        let (before, after) = (before.expect("before"), after.expect("after"));
        let text = format!("{before} {after}");
        for value in ["b2xk", "bmV3", "eA==", "eQ=="] {
            assert!(!text.contains(value), "{value} leaked: {text}");
        }
        let old = hash(&json!("b2xk"));
        let new = hash(&json!("bmV3"));
        assert_eq!(before["data"]["a"], format!("<sha256 {old}>"));
        assert_eq!(
            after["data"]["a"],
            format!("<changed: sha256 {old} -> {new}>")
        );
        assert_eq!(before["data"]["same"], after["data"]["same"]);
        assert!(
            after["data"]["added"]
                .as_str()
                .unwrap()
                .starts_with("<sha256 ")
        );
    }

    #[test]
    fn runtime_config_secrets_keep_a_stable_name() {
        let object = |kind: &str, name: &str| {
            Object::new(json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}))
        };
        assert_eq!(
            stable_name(&object("Secret", "counter-runtime-config-612baed46a")),
            "counter-runtime-config"
        );
        assert_eq!(
            stable_name(&object("Secret", "creds-612baed46a")),
            "creds-612baed46a"
        );
        assert_eq!(
            stable_name(&object("ConfigMap", "x-runtime-config-612baed46a")),
            "x-runtime-config-612baed46a"
        );
    }

    #[test]
    fn comparable_objects_ignore_the_revision_and_key_order() {
        let a = json!({"metadata": {"name": "x", "labels": {"spindle.dev/revision": "1"}}, "b": 1, "a": 2});
        let b = json!({"a": 2, "b": 1, "metadata": {"labels": {"spindle.dev/revision": "2"}, "name": "x"}});
        assert_eq!(sorted(&comparable(&a)), sorted(&comparable(&b)));
    }
}
