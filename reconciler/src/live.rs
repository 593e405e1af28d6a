//! The cluster side of `spindle diff --live`.
//!
//! Each rendered object is server-side applied as a dry run (field manager `spindle`): the answer
//! is the object as the server would store it, defaults included, and its managed fields say which
//! fields spindle owns. Both that answer and the live object are cut down to those fields before
//! they are compared, so defaulted and server-written fields make no noise. Objects labelled as
//! spindle's for this environment that the render no longer has are the ones a prune would delete.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use kube::api::ListParams;
use serde_json::{Map, Value, json};

use crate::{
    cluster::Cluster,
    reconcile::{
        inventory::ObjectRef,
        ownership::{Verdict, verdict},
    },
};
use spindle_render::{self as render, MANAGER, Object};

/// The live and the would-be objects, both cut to the fields spindle manages.
pub struct Sides {
    /// The objects in the cluster: the rendered ones that exist, and those a prune would delete.
    pub live: Vec<Object>,
    /// The rendered objects as a dry-run apply says the server would store them (as rendered when
    /// their namespace does not exist yet).
    pub desired: Vec<Object>,
    /// Rendered objects that exist and are not the instance's to change: an apply would stop on
    /// them.
    pub conflicts: Vec<String>,
}

/// Reads the cluster's side for `rendered`, an environment's objects, for reconciler `instance`.
pub async fn sides(
    cluster: &Cluster,
    rendered: &[Object],
    environment: &str,
    instance: &str,
) -> Result<Sides> {
    let mut live = Vec::new();
    let mut desired = Vec::new();
    let mut conflicts = Vec::new();
    for object in rendered {
        let api = cluster.api(object)?;
        let current = api
            .get_opt(object.name())
            .await
            .with_context(|| format!("could not read {}", object.display_name()))?
            .map(|found| serde_json::to_value(found).expect("objects serialise"));
        let answer = match cluster.apply(object, true).await {
            Ok(stored) => Some(serde_json::to_value(stored).expect("objects serialise")),
            // Its namespace does not exist yet, so the server cannot dry-run it: show it as
            // rendered.
            Err(err) if is_not_found(&err) => None,
            Err(err) => return Err(err),
        };
        let desired_value = match &answer {
            Some(answer) => project_managed(answer, answer),
            None => object.value().clone(),
        };
        if let Some(current) = &current
            && let Verdict::Foreign(conflict) =
                verdict(&ObjectRef::of(object), current, instance, environment)
        {
            conflicts.push(conflict.to_string());
        }
        if let Some(current) = current {
            // The fields spindle would own after the apply decide what is compared on both sides.
            let owner = answer.as_ref().unwrap_or(&current);
            live.push(Object::new(project_managed(&current, owner)));
        }
        desired.push(Object::new(desired_value));
    }
    live.extend(owned_but_not_rendered(cluster, rendered, environment).await?);
    Ok(Sides {
        live,
        desired,
        conflicts,
    })
}

fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<kube::Error>(), Some(kube::Error::Api(status)) if status.code == 404)
    })
}

/// Objects labelled as spindle's for `environment` that are not among `rendered`: what a prune
/// deletes.
async fn owned_but_not_rendered(
    cluster: &Cluster,
    rendered: &[Object],
    environment: &str,
) -> Result<Vec<Object>> {
    let wanted: BTreeSet<(String, Option<String>, String)> = rendered
        .iter()
        .map(|o| {
            (
                o.kind().to_owned(),
                o.namespace().map(str::to_owned),
                o.name().to_owned(),
            )
        })
        .collect();
    let selector = render::environment_selector(environment);
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for (api_version, kind) in render::KINDS {
        let probe = Object::new(
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "-"}}),
        );
        // A kind the cluster does not serve (a CRD not installed) has nothing to prune.
        let Ok(api) = cluster.api_all(&probe) else {
            continue;
        };
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .with_context(|| format!("could not list {kind} objects"))?;
        for item in list.items {
            let mut value = serde_json::to_value(item).expect("objects serialise");
            // Items of a list do not repeat their apiVersion and kind.
            value["apiVersion"] = json!(api_version);
            value["kind"] = json!(kind);
            let object = Object::new(project_managed(&value, &value));
            let identity = (
                object.kind().to_owned(),
                object.namespace().map(str::to_owned),
                object.name().to_owned(),
            );
            // A kind served in two versions is listed twice.
            if !wanted.contains(&identity) && seen.insert(identity) {
                found.push(object);
            }
        }
    }
    Ok(found)
}

/// `object` cut down to the fields that spindle's apply owns according to `owner`'s managed
/// fields; identity (apiVersion, kind, name, namespace) is always kept.
pub fn project_managed(object: &Value, owner: &Value) -> Value {
    let fields = owner["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["manager"] == MANAGER && entry["operation"] == "Apply")
        .map(|entry| entry["fieldsV1"].clone())
        .unwrap_or_else(|| json!({}));
    let mut projected = project(object, &fields);
    if !projected.is_object() {
        projected = json!({});
    }
    projected["apiVersion"] = object["apiVersion"].clone();
    projected["kind"] = object["kind"].clone();
    if !projected["metadata"].is_object() {
        projected["metadata"] = json!({});
    }
    projected["metadata"]["name"] = object["metadata"]["name"].clone();
    if let Some(namespace) = object["metadata"]["namespace"].as_str() {
        projected["metadata"]["namespace"] = json!(namespace);
    }
    projected
}

/// The part of `value` named by a `fieldsV1` set: `f:name` for a field, `k:{...}` for the item
/// of an associative list with those keys, `v:...` for a set item, `.` for the node itself.
pub fn project(value: &Value, fields: &Value) -> Value {
    let Some(fields) = fields.as_object().filter(|f| f.keys().any(|k| k != ".")) else {
        return value.clone();
    };
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, inner) in map {
                if let Some(sub) = fields.get(&format!("f:{key}")) {
                    out.insert(key.clone(), project(inner, sub));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|item| {
                    fields
                        .iter()
                        .find(|(key, _)| item_matches(item, key))
                        .map(|(_, sub)| project(item, sub))
                })
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

fn item_matches(item: &Value, key: &str) -> bool {
    if let Some(keys) = key.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(keys) else {
            return false;
        };
        keys.iter().all(|(k, v)| item.get(k) == Some(v))
    } else if let Some(literal) = key.strip_prefix("v:") {
        serde_json::from_str::<Value>(literal).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_fields_spindle_owns() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "web", "uid": "123", "resourceVersion": "9",
                "labels": {"spindle.dev/app": "a", "other": "x"},
                "managedFields": [
                    {"manager": "spindle", "operation": "Apply", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:spindle.dev/app": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}}
                ]},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {
                "containers": [{"name": "a", "image": "i", "imagePullPolicy": "IfNotPresent"},
                               {"name": "sidecar", "image": "s"}]}}},
            "status": {"replicas": 2},
        });
        assert_eq!(
            project_managed(&live, &live),
            json!({
                "metadata": {"labels": {"spindle.dev/app": "a"}, "name": "a", "namespace": "web"},
                "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}},
                "apiVersion": "apps/v1", "kind": "Deployment",
            })
        );
    }

    #[test]
    fn set_items_match_by_value() {
        let value = json!({"finalizers": ["a", "b"]});
        let fields = json!({"f:finalizers": {"v:\"b\"": {}}});
        assert_eq!(project(&value, &fields), json!({"finalizers": ["b"]}));
    }
}
