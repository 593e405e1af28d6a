//! Drift: objects that someone else changed or deleted since spindle applied them.
//!
//! One list per kind ([`super::observe`]) finds every object; an object whose generation (or resourceVersion) moved
//! since the apply is a suspect, and a dry-run apply tells whether the fields spindle owns really
//! differ (an autoscaler changing `replicas` is not drift). What drifted is re-applied by the
//! reconcile that found it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde_json::Value;

use super::{
    inventory::{Inventory, ObjectRef, live_marker},
    observe::Live,
};
use crate::cluster::Cluster;
use crate::live::project_managed;
use spindle_render::Object;
use spindle_render::diff::canonical;

/// An object that is not as spindle left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drifted {
    /// The object that drifted.
    pub id: ObjectRef,
    /// `deleted`, or the fields that differ (`spec.ports, metadata.labels`).
    pub what: String,
}

/// What a drift check found.
#[derive(Debug, Default)]
pub struct Found {
    /// The objects whose managed fields differ from what spindle applied, or that are gone.
    pub drifted: Vec<Drifted>,
    /// New markers of objects that moved without drifting, for the inventory.
    pub markers: BTreeMap<ObjectRef, String>,
}

/// Compares the inventory's objects among `desired` with what the cluster holds (`live`).
pub async fn detect(
    cluster: &Cluster,
    desired: &[Object],
    inventory: &Inventory,
    live: &Live,
) -> Result<Found> {
    let mut found = Found::default();
    for object in desired {
        let id = ObjectRef::of(object);
        let Some(entry) = inventory.objects.get(&id) else {
            continue;
        };
        let Some(current) = live.get(&id) else {
            found.drifted.push(Drifted {
                id,
                what: "deleted (or its labels removed)".to_owned(),
            });
            continue;
        };
        let marker = live_marker(current);
        if marker == entry.marker {
            continue;
        }
        let answer = serde_json::to_value(cluster.apply(object, true).await?)?;
        let wanted = project_managed(&answer, &answer);
        let have = project_managed(current, &answer);
        let mut fields = Vec::new();
        differences(
            &without_metadata_noise(&have),
            &without_metadata_noise(&wanted),
            "",
            3,
            &mut fields,
        );
        if fields.is_empty() {
            found.markers.insert(id, marker);
        } else {
            found.drifted.push(Drifted {
                id,
                what: fields.join(", "),
            });
        }
    }
    Ok(found)
}

/// The object without the fields the server writes on every update, and without the revision
/// label (an object unchanged since an older revision still carries that revision).
fn without_metadata_noise(value: &Value) -> Value {
    let mut value = canonical::comparable(value);
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "resourceVersion",
            "generation",
            "managedFields",
            "uid",
            "creationTimestamp",
        ] {
            metadata.remove(key);
        }
    }
    value
}

/// Dotted paths (down to `depth` levels) where `a` and `b` differ.
fn differences(a: &Value, b: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(left), Value::Object(right)) if depth > 0 => {
            let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let null = Value::Null;
                differences(
                    left.get(key).unwrap_or(&null),
                    right.get(key).unwrap_or(&null),
                    &child,
                    depth - 1,
                    out,
                );
            }
        }
        _ => out.push(if path.is_empty() {
            "the object".to_owned()
        } else {
            path.to_owned()
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_name_the_fields_that_moved() {
        let a = json!({"spec": {"ports": [{"port": 80}], "type": "ClusterIP"}, "metadata": {"labels": {"a": "1"}}});
        let b = json!({"spec": {"ports": [{"port": 81}], "type": "ClusterIP"}, "metadata": {"labels": {"a": "1", "b": "2"}}});
        let mut out = Vec::new();
        differences(&a, &b, "", 3, &mut out);
        assert_eq!(out, ["metadata.labels.b", "spec.ports"]);
    }
}
