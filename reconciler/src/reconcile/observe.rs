//! What the cluster holds of an environment: one list per kind and namespace (by spindle's
//! labels), read once per pass and shared by the drift check and the health check. Listing per
//! namespace, not cluster-wide, keeps what the reconciler must be allowed to read to the
//! namespaces it writes (its installer Jobs, say, only in its own).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use kube::api::ListParams;
use serde_json::Value;

use super::inventory::ObjectRef;
use crate::cluster::{Cluster, readable, retry};
use spindle_render::{self as render, Object};

/// Live objects by identity.
pub type Live = BTreeMap<ObjectRef, Value>;

/// Lists every kind among `objects`, keeping spindle's objects of `environment`.
pub async fn list(cluster: &Cluster, objects: &[Object], environment: &str) -> Result<Live> {
    let selector = render::environment_selector(environment);
    // Served from the apiserver's watch cache (resourceVersion 0), as informers list: cheap, and
    // at most moments behind.
    let params = ListParams::default().labels(&selector).match_any();
    let mut live = Live::new();
    let mut listed = BTreeSet::new();
    for object in objects {
        if !listed.insert((object.api_version(), object.kind(), object.namespace())) {
            continue;
        }
        let api = cluster.api(object)?;
        let listed = retry(object.kind(), || api.list(&params))
            .await
            .map_err(|err| readable(err, object.kind(), "list"))?;
        for item in listed.items {
            let mut value = serde_json::to_value(item)?;
            // Items of a list do not repeat their apiVersion and kind.
            value["apiVersion"] = Value::from(object.api_version());
            value["kind"] = Value::from(object.kind());
            live.insert(ObjectRef::of(&Object::new(value.clone())), value);
        }
    }
    Ok(live)
}
