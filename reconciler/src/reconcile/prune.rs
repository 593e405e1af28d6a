//! Pruning: deleting what an earlier reconcile applied and the render no longer has. Only objects
//! the inventory lists are candidates, in reverse stage order (workloads before their namespace);
//! an object annotated `spindle.dev/prune: disabled` is left in place, and a render that would
//! delete more than a set share of the inventory is refused.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use kube::api::DeleteParams;
use serde_json::Value;

use super::inventory::{Inventory, ObjectRef};
use crate::cluster::{Cluster, retry};

/// The annotation that protects an object from pruning.
pub const PROTECT_ANNOTATION: &str = "spindle.dev/prune";
/// The value of [`PROTECT_ANNOTATION`] that leaves an object in place.
pub const PROTECT_VALUE: &str = "disabled";

/// What the inventory has and the render does not, in the order to delete it.
pub fn candidates(previous: &Inventory, desired: &BTreeSet<ObjectRef>) -> Vec<ObjectRef> {
    let listed = previous.objects.keys().chain(&previous.applying);
    let mut gone: Vec<ObjectRef> = listed
        .filter(|id| !desired.contains(*id))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    gone.sort_by(|a, b| b.stage().cmp(&a.stage()).then_with(|| a.cmp(b)));
    gone
}

/// Refuses a prune of more than `max_share` of the inventory (an emptied or broken render must
/// not wipe an environment), unless `allowed`.
pub fn check_share(
    prune: usize,
    inventory: usize,
    max_share: f64,
    allowed: bool,
) -> Result<(), String> {
    if allowed || prune == 0 || inventory == 0 {
        return Ok(());
    }
    let share = prune as f64 / inventory as f64;
    if share > max_share {
        return Err(format!(
            "this revision would prune {prune} of the {inventory} objects spindle manages \
             ({:.0}% > the {:.0}% limit); nothing was applied. If that is intended, run again \
             with --allow-mass-prune (or raise --max-prune-share)",
            share * 100.0,
            max_share * 100.0
        ));
    }
    Ok(())
}

/// What a prune did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The objects deleted, in order.
    pub deleted: Vec<ObjectRef>,
    /// Kept because of [`PROTECT_ANNOTATION`] or because they are not this instance's; they
    /// leave the inventory.
    pub protected: Vec<ObjectRef>,
    /// Namespaces kept because something that is not spindle's (or that spindle cannot see)
    /// may live in them, and why.
    pub kept: Vec<(ObjectRef, String)>,
}

/// Whether `live` carries the labels of `instance` and `environment`. Objects applied before
/// spindle recorded its instance carry only the environment's.
pub fn owned(live: &Value, instance: &str, environment: &str) -> bool {
    let label = |key: &str| live["metadata"]["labels"][key].as_str();
    label("app.kubernetes.io/managed-by") == Some(spindle_render::MANAGER)
        && label(&format!("{}/environment", spindle_render::DOMAIN)) == Some(environment)
        && label(spindle_render::INSTANCE_LABEL).is_none_or(|owner| owner == instance)
}

/// What in `objects` (a namespace's content) is someone else's: not in `known` (the inventory
/// and what is being applied) and not made by Kubernetes for the namespace or for spindle's own
/// objects (anything with an owner, Events, Endpoints, the default ServiceAccount and its token,
/// the root CA ConfigMap).
pub fn foreign(objects: &[Value], known: &BTreeSet<ObjectRef>) -> Vec<String> {
    let mut foreign: Vec<String> = objects
        .iter()
        .filter(|object| {
            let metadata = &object["metadata"];
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = metadata["name"].as_str().unwrap_or_default();
            let owned = metadata["ownerReferences"]
                .as_array()
                .is_some_and(|owners| !owners.is_empty());
            let made_by_kubernetes = owned
                || matches!(kind, "Event" | "Endpoints" | "EndpointSlice")
                || (kind == "ServiceAccount" && name == "default")
                || (kind == "ConfigMap" && name == "kube-root-ca.crt")
                || object["type"] == "kubernetes.io/service-account-token";
            !made_by_kubernetes
                && !known.contains(&ObjectRef::of(&spindle_render::Object::new(
                    (*object).clone(),
                )))
        })
        .map(|object| {
            format!(
                "{} {}",
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    foreign.sort();
    foreign
}

/// Deletes `candidates` in order, those carrying `instance`'s and `environment`'s labels. A
/// Namespace that still holds someone else's objects, or objects of kinds spindle may not list,
/// is kept (in [`Pruned::kept`]), whatever its labels.
pub async fn prune(
    cluster: &Cluster,
    candidates: &[ObjectRef],
    instance: &str,
    environment: &str,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    for id in candidates {
        let probe = id.probe();
        // A kind the cluster no longer serves has nothing left to delete.
        let Ok(api) = cluster.api(&probe) else {
            continue;
        };
        let what = id.to_string();
        let Some(live) = retry(&what, || api.get_opt(&id.name))
            .await
            .with_context(|| format!("could not read {id}"))?
        else {
            continue;
        };
        let live = serde_json::to_value(live)?;
        let annotation = format!(
            "/metadata/annotations/{}",
            PROTECT_ANNOTATION.replace('/', "~1")
        );
        if live.pointer(&annotation).and_then(Value::as_str) == Some(PROTECT_VALUE) {
            tracing::info!("{id}: not pruned ({PROTECT_ANNOTATION}: {PROTECT_VALUE})");
            pruned.protected.push(id.clone());
            continue;
        }
        // Only what carries this instance's labels is deleted: someone who took the object
        // over (the managed-by label is gone), or another instance, keeps it.
        if !owned(&live, instance, environment) {
            tracing::info!("{id}: not pruned (not labelled as this spindle instance's)");
            pruned.protected.push(id.clone());
            continue;
        }
        if id.kind == "Namespace" {
            let known: BTreeSet<ObjectRef> = candidates.iter().cloned().collect();
            let (objects, unlisted) = cluster.objects_in(&id.name).await?;
            let theirs = foreign(&objects, &known);
            let mut why = Vec::new();
            if !theirs.is_empty() {
                why.push(format!(
                    "it holds {}, which is not spindle's",
                    theirs.join(", ")
                ));
            }
            // What spindle may not see, it cannot tell apart from someone else's.
            if !unlisted.is_empty() {
                let shown = unlisted.len().min(3);
                let more = match unlisted.len() - shown {
                    0 => String::new(),
                    more => format!(" and {more} more kinds"),
                };
                why.push(format!(
                    "spindle may not list {}{more} there, so it cannot tell that it is empty",
                    unlisted[..shown].join(", ")
                ));
            }
            if !why.is_empty() {
                let why = why.join("; ");
                tracing::info!("{id}: not pruned: {why}");
                pruned.kept.push((id.clone(), why));
                pruned.protected.push(id.clone());
                continue;
            }
        }
        let params = DeleteParams::background();
        let deleted = retry(&what, || api.delete(&id.name, &params)).await;
        match deleted {
            Ok(_) => pruned.deleted.push(id.clone()),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(err).with_context(|| format!("could not delete {id}")),
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_namespace_with_someone_elses_objects_is_not_empty() {
        let made = |kind: &str, name: &str, extra: Value| {
            let mut object = json!({"apiVersion": "v1", "kind": kind,
                "metadata": {"name": name, "namespace": "web"}});
            if let (Some(object), Some(extra)) = (object.as_object_mut(), extra.as_object()) {
                object.extend(extra.clone());
            }
            object
        };
        let ours = made("Service", "web", json!({}));
        let known = BTreeSet::from([ObjectRef::of(&spindle_render::Object::new(ours.clone()))]);
        let kubernetes = [
            made("ConfigMap", "kube-root-ca.crt", json!({})),
            made("ServiceAccount", "default", json!({})),
            made(
                "Secret",
                "default-token-x",
                json!({"type": "kubernetes.io/service-account-token"}),
            ),
            made("Endpoints", "web", json!({})),
            made(
                "Pod",
                "web-abc",
                json!({"metadata": {"name": "web-abc", "namespace": "web",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1"}]}}),
            ),
        ];
        let mut objects = vec![ours];
        objects.extend(kubernetes);
        assert!(foreign(&objects, &known).is_empty());
        objects.push(made("ConfigMap", "theirs", json!({})));
        assert_eq!(foreign(&objects, &known), ["ConfigMap theirs"]);
    }

    #[test]
    fn only_this_instances_objects_are_prunable() {
        let labelled = |labels: Value| json!({"metadata": {"labels": labels}});
        let ours = labelled(json!({"app.kubernetes.io/managed-by": "spindle",
            "spindle.dev/environment": "prod", "spindle.dev/instance": "a"}));
        assert!(owned(&ours, "a", "prod"));
        assert!(!owned(&ours, "b", "prod"), "another instance's");
        assert!(!owned(&ours, "a", "staging"), "another environment's");
        let older = labelled(json!({"app.kubernetes.io/managed-by": "spindle",
            "spindle.dev/environment": "prod"}));
        assert!(
            owned(&older, "a", "prod"),
            "applied before instances were labelled"
        );
        let taken =
            labelled(json!({"spindle.dev/environment": "prod", "spindle.dev/instance": "a"}));
        assert!(!owned(&taken, "a", "prod"), "someone took it over");
    }
    use crate::reconcile::inventory::Entry;

    fn id(kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn candidates_are_listed_objects_gone_from_the_render_workloads_first() {
        let entry = Entry {
            hash: "h".into(),
            marker: "r1".into(),
        };
        let mut previous = Inventory::default();
        for object in [
            id("Namespace", None, "old"),
            id("Service", Some("old"), "web"),
            id("Service", Some("apps"), "kept"),
        ] {
            previous.objects.insert(object, entry.clone());
        }
        previous
            .applying
            .push(id("Secret", Some("apps"), "half-applied"));
        let desired = BTreeSet::from([id("Service", Some("apps"), "kept")]);
        let order: Vec<String> = candidates(&previous, &desired)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            order,
            [
                "Secret apps/half-applied",
                "Service old/web",
                "Namespace old"
            ]
        );
    }

    #[test]
    fn mass_prunes_need_permission() {
        assert!(check_share(1, 4, 0.5, false).is_ok());
        assert!(
            check_share(3, 4, 0.5, false)
                .unwrap_err()
                .contains("--allow-mass-prune")
        );
        assert!(check_share(4, 4, 0.5, true).is_ok());
        assert!(check_share(0, 0, 0.5, false).is_ok());
    }
}
