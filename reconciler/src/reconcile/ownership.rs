//! Whose an object is. spindle applies with force only what its inventory already holds; before
//! it first applies any other object, the object must not exist, or must be this instance's
//! (labelled with its instance), or its owner must have let spindle take it over with the
//! [`ADOPT_ANNOTATION`]. Anything else stops the pass: nothing of it is applied.

use std::fmt;

use anyhow::Result;
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;
use spindle_render::{ADOPT_ANNOTATION, DOMAIN, INSTANCE_LABEL, MANAGER, Object};

use super::inventory::ObjectRef;
use crate::cluster::{Cluster, readable, retry};

/// Objects read at once.
const CONCURRENCY: usize = 16;

/// The objects among `new` that exist in the cluster and are not `instance`'s (of `environment`)
/// to take.
pub async fn conflicts(
    cluster: &Cluster,
    new: &[&Object],
    instance: &str,
    environment: &str,
) -> Result<Vec<Conflict>> {
    let verdicts: Vec<Option<Verdict>> = futures::stream::iter(new.iter().copied())
        .map(|object| async move {
            // A kind the cluster does not serve yet (a CRD in this revision) has no objects.
            let Ok(api) = cluster.api(object) else {
                return anyhow::Ok(None);
            };
            let id = ObjectRef::of(object);
            let live = retry(&id.to_string(), || api.get_opt(object.name()))
                .await
                .map_err(|err| readable(err, &id.to_string(), "read"))?;
            Ok(match live {
                Some(live) => Some(verdict(
                    &id,
                    &serde_json::to_value(live)?,
                    instance,
                    environment,
                )),
                None => None,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut conflicts: Vec<Conflict> = verdicts
        .into_iter()
        .filter_map(|verdict| match verdict {
            Some(Verdict::Foreign(conflict)) => Some(conflict),
            _ => None,
        })
        .collect();
    conflicts.sort_by(|a, b| a.id.sort_key().cmp(&b.id.sort_key()));
    Ok(conflicts)
}

/// What may be done with a live object spindle is about to apply for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is this instance's already (a pass that stopped half-way created it).
    Ours,
    /// Its owner annotated it for spindle to take over.
    Adopted,
    /// Someone else's: spindle must leave it alone.
    Foreign(Conflict),
}

/// An existing object that is not spindle's to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The object.
    pub id: ObjectRef,
    /// Its field managers, as the apiserver records them (`kubectl-client-side-apply`, ...).
    pub managers: Vec<String>,
    /// The spindle instance that labelled it, when another one did.
    pub instance: Option<String>,
}

/// Judges `live`, the cluster's copy of `id`, for this `instance` of `environment`. An object
/// spindle applied before it labelled instances counts as this instance's when it carries this
/// environment's label.
pub fn verdict(id: &ObjectRef, live: &Value, instance: &str, environment: &str) -> Verdict {
    let metadata = &live["metadata"];
    let label = |key: &str| metadata["labels"][key].as_str();
    let environment_label = format!("{DOMAIN}/environment");
    let owner_matches = match label(INSTANCE_LABEL) {
        Some(owner) => owner == instance,
        None => label(&environment_label) == Some(environment),
    };
    if label("app.kubernetes.io/managed-by") == Some(MANAGER) && owner_matches {
        return Verdict::Ours;
    }
    if metadata["annotations"][ADOPT_ANNOTATION].as_str() == Some("true") {
        return Verdict::Adopted;
    }
    let mut managers: Vec<String> = metadata["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|field| field["manager"].as_str().map(str::to_owned))
        .collect();
    managers.sort();
    managers.dedup();
    Verdict::Foreign(Conflict {
        id: id.clone(),
        managers,
        instance: label(INSTANCE_LABEL).map(str::to_owned),
    })
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let managers = match self.managers.as_slice() {
            [] => "no field managers".to_owned(),
            managers => format!("field managers: {}", managers.join(", ")),
        };
        let whose = match &self.instance {
            Some(instance) => format!("spindle instance `{instance}`'s"),
            None => "not spindle's".to_owned(),
        };
        let namespace = self
            .id
            .namespace
            .as_deref()
            .map(|namespace| format!(" -n {namespace}"))
            .unwrap_or_default();
        write!(
            f,
            "{} exists and is {whose} ({managers}); to let spindle take it over, its owner can \
             run `kubectl annotate {}{namespace} {} {ADOPT_ANNOTATION}=true`",
            self.id,
            self.id.kind.to_ascii_lowercase(),
            self.id.name
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id() -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("team-b".into()),
            name: "web".into(),
        }
    }

    #[test]
    fn only_this_instances_objects_and_adopted_ones_may_be_applied() {
        let ours = json!({"metadata": {"labels": {
            "app.kubernetes.io/managed-by": "spindle", "spindle.dev/instance": "prod"}}});
        assert_eq!(verdict(&id(), &ours, "prod", "production"), Verdict::Ours);
        let legacy = json!({"metadata": {"labels": {
            "app.kubernetes.io/managed-by": "spindle", "spindle.dev/environment": "production"}}});
        assert_eq!(verdict(&id(), &legacy, "prod", "production"), Verdict::Ours);
        assert!(matches!(
            verdict(&id(), &legacy, "prod", "staging"),
            Verdict::Foreign(_)
        ));

        let other_instance = json!({"metadata": {"labels": {
            "app.kubernetes.io/managed-by": "spindle", "spindle.dev/instance": "staging"},
            "managedFields": [{"manager": "spindle"}]}});
        let Verdict::Foreign(conflict) = verdict(&id(), &other_instance, "prod", "production")
        else {
            panic!("another instance's object is foreign");
        };
        assert_eq!(conflict.instance.as_deref(), Some("staging"));
        assert!(
            conflict
                .to_string()
                .contains("spindle instance `staging`'s")
        );

        let foreign = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-client-side-apply"}, {"manager": "kube-controller-manager"},
            {"manager": "kubectl-client-side-apply"}]}});
        let Verdict::Foreign(conflict) = verdict(&id(), &foreign, "prod", "production") else {
            panic!("an unlabelled object is foreign");
        };
        assert_eq!(
            conflict.to_string(),
            "Deployment team-b/web exists and is not spindle's (field managers: \
             kube-controller-manager, kubectl-client-side-apply); to let spindle take it over, \
             its owner can run `kubectl annotate deployment -n team-b web spindle.dev/adopt=true`"
        );

        let adopted = json!({"metadata": {"annotations": {"spindle.dev/adopt": "true"}}});
        assert_eq!(
            verdict(&id(), &adopted, "prod", "production"),
            Verdict::Adopted
        );
        let not_quite = json!({"metadata": {"annotations": {"spindle.dev/adopt": "yes"}}});
        assert!(matches!(
            verdict(&id(), &not_quite, "prod", "production"),
            Verdict::Foreign(_)
        ));
    }
}
