//! The inventory: what the last successful reconcile applied, kept in the cluster as a ConfigMap
//! (`spindle-inventory-<instance>` in the system namespace).
//!
//! A ConfigMap rather than a CRD: it needs nothing installed before the first reconcile, RBAC can
//! scope it to one name, and `kubectl get configmap -o yaml` shows it. One entry per object
//! (identity, a hash of its rendered form, and a marker of the live object's version) keeps 1,000
//! apps (~3,700 objects) near 500 KB, under the 1 MiB a ConfigMap may hold.
//!
//! The objects a reconcile is about to apply are recorded first (as `applying`), so that if the
//! process dies half-way, the next reconcile still prunes what that attempt created.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use kube::api::Api;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::state_map;
use spindle_render::diff::canonical;
use spindle_render::{INSTANCE_LABEL, Object, Stage};

const KEY: &str = "inventory.json";

/// An object's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's API version, such as `apps/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// The object's kind, such as `Deployment`.
    pub kind: String,
    /// The object's namespace; `None` for a cluster-scoped object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// The identity of `object`.
    pub fn of(object: &Object) -> Self {
        ObjectRef {
            api_version: object.api_version().to_owned(),
            kind: object.kind().to_owned(),
            namespace: object.namespace().map(str::to_owned),
            name: object.name().to_owned(),
        }
    }

    /// A bare object with this identity, to find its API.
    pub fn probe(&self) -> Object {
        let mut value = json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.name},
        });
        if let Some(namespace) = &self.namespace {
            value["metadata"]["namespace"] = json!(namespace);
        }
        Object::new(value)
    }

    /// The stage objects of this kind are applied in.
    pub fn stage(&self) -> Stage {
        Stage::of(&self.kind)
    }

    /// The order objects are applied and printed in, as [`Object::sort_key`].
    pub fn sort_key(&self) -> (Stage, &str, &str, &str) {
        (
            self.stage(),
            &self.kind,
            self.namespace.as_deref().unwrap_or(""),
            &self.name,
        )
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What the inventory knows of one applied object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// [`desired_hash`] of what was applied.
    pub hash: String,
    /// [`live_marker`] of the object the apply left.
    pub marker: String,
}

/// The inventory's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The revision whose objects are `objects`.
    #[serde(default)]
    pub revision: Option<String>,
    /// Every object the last successful reconcile applied, with what the inventory knows of it.
    #[serde(default, with = "entries")]
    pub objects: BTreeMap<ObjectRef, Entry>,
    /// Objects of an apply that has begun and not finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applying: Vec<ObjectRef>,
}

/// Entries as a list (JSON maps need string keys).
mod entries {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Item {
        #[serde(flatten)]
        object: ObjectRef,
        #[serde(flatten)]
        entry: Entry,
    }

    pub fn serialize<S: serde::Serializer>(
        map: &BTreeMap<ObjectRef, Entry>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter().map(|(object, entry)| Item {
            object: object.clone(),
            entry: entry.clone(),
        }))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<ObjectRef, Entry>, D::Error> {
        let items = Vec::<Item>::deserialize(deserializer)?;
        Ok(items.into_iter().map(|i| (i.object, i.entry)).collect())
    }
}

/// A hash of what spindle would apply, without what never counts as a change (the revision
/// label): equal hashes mean there is nothing to send. Rendering is deterministic (the same
/// input gives the same bytes), so the object's own field order is stable enough to hash. The
/// instance label counts: objects applied before it existed are sent again once, to carry it.
pub fn desired_hash(object: &Object) -> String {
    let mut hasher = Sha256::new();
    serde_json::to_writer(
        HashWriter(&mut hasher),
        &canonical::comparable(object.value()),
    )
    .expect("JSON values serialise");
    let instance = format!("/metadata/labels/{}", INSTANCE_LABEL.replace('/', "~1"));
    if let Some(instance) = object.value().pointer(&instance).and_then(Value::as_str) {
        hasher.update(instance.as_bytes());
    }
    hex::encode(&hasher.finalize()[..12])
}

/// Feeds serialised JSON straight into a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What changes when someone else changes the object: its generation where the kind keeps one
/// (status updates do not move it), else its resourceVersion.
pub fn live_marker(live: &Value) -> String {
    match live.pointer("/metadata/generation").and_then(Value::as_i64) {
        Some(generation) if generation > 0 => format!("g{generation}"),
        _ => format!(
            "r{}",
            live.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    }
}

/// Where one reconciler instance keeps its inventory.
#[derive(Clone)]
pub struct Store {
    api: Api<k8s_openapi::api::core::v1::ConfigMap>,
    name: String,
    versions: state_map::Versions,
}

impl Store {
    /// The store of `instance`'s inventory: the ConfigMap `spindle-inventory-<instance>` in
    /// `namespace`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        instance: &str,
        versions: state_map::Versions,
    ) -> Self {
        Store {
            api: Api::namespaced(client, namespace),
            name: format!("spindle-inventory-{instance}"),
            versions,
        }
    }

    /// The name of the inventory's ConfigMap.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored inventory; empty before the first reconcile.
    pub async fn load(&self) -> Result<Inventory> {
        match state_map::read(&self.api, &self.name, KEY, &self.versions).await? {
            Some(text) => serde_json::from_str(&text)
                .with_context(|| format!("inventory {} is not spindle's format", self.name)),
            None => Ok(Inventory::default()),
        }
    }

    /// Writes `inventory` to the ConfigMap, in place of what it held.
    pub async fn save(&self, inventory: &Inventory) -> Result<()> {
        state_map::write(
            &self.api,
            &self.name,
            KEY,
            serde_json::to_string(inventory)?,
            &self.versions,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(labels: Value) -> Object {
        Object::new(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "apps", "labels": labels},
            "spec": {"ports": [{"port": 80}]},
        }))
    }

    #[test]
    fn the_revision_label_does_not_change_the_hash() {
        let a = object(json!({"spindle.dev/revision": "aaa", "app": "web"}));
        let b = object(json!({"spindle.dev/revision": "bbb", "app": "web"}));
        let c = object(json!({"spindle.dev/revision": "bbb", "app": "other"}));
        assert_eq!(desired_hash(&a), desired_hash(&b));
        assert_ne!(desired_hash(&b), desired_hash(&c));
    }

    #[test]
    fn markers_prefer_generation() {
        assert_eq!(
            live_marker(&json!({"metadata": {"generation": 3, "resourceVersion": "99"}})),
            "g3"
        );
        assert_eq!(
            live_marker(&json!({"metadata": {"resourceVersion": "99"}})),
            "r99"
        );
    }

    #[test]
    fn inventories_round_trip_through_json() {
        let mut inventory = Inventory {
            revision: Some("abc".into()),
            ..Inventory::default()
        };
        let web = ObjectRef::of(&object(json!({})));
        inventory.objects.insert(
            web.clone(),
            Entry {
                hash: "h".into(),
                marker: "r1".into(),
            },
        );
        inventory.applying.push(web);
        let text = serde_json::to_string(&inventory).unwrap();
        assert!(
            text.contains(r#""kind":"Service","namespace":"apps","name":"web","hash":"h""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Inventory>(&text).unwrap(), inventory);
    }
}
