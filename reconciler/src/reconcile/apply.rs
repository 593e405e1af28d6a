//! Server-side apply in stages, as Flux does it: Namespaces and CRDs first (CRDs waited for until
//! Established), then cluster-wide classes, then the rest. Within a stage objects go out
//! concurrently. An object whose rendered form hashes as it did at the last successful apply is
//! not sent at all, which is what makes a no-op reconcile cheap.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::inventory::{Entry, Inventory, ObjectRef, desired_hash, live_marker};
use crate::cluster::Cluster;
use spindle_render::{Object, Stage};

/// How many applies are in flight at once.
const CONCURRENCY: usize = 16;

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Every desired object with its inventory entry (sent or not).
    pub entries: BTreeMap<ObjectRef, Entry>,
    /// Objects sent to the apiserver.
    pub sent: Vec<ObjectRef>,
    /// Objects left alone because they had not changed.
    pub unchanged: usize,
    /// The sent objects as the apiserver stored them.
    pub stored: BTreeMap<ObjectRef, Value>,
}

/// What an apply would do: the objects to send (with the hash of what is sent), and the
/// inventory entries of those left alone because they hash as they did at the last apply.
pub struct Plan<'a> {
    /// The objects to send, each with its identity and the hash of its rendered form.
    pub to_send: Vec<(ObjectRef, String, &'a Object)>,
    /// The inventory entries of the objects left alone, by identity.
    pub unchanged: BTreeMap<ObjectRef, Entry>,
}

/// Splits `desired` into the objects to send and those that hash as they did in `previous`.
pub fn plan<'a>(desired: &'a [Object], previous: &Inventory) -> Plan<'a> {
    let mut plan = Plan {
        to_send: Vec::new(),
        unchanged: BTreeMap::new(),
    };
    for object in desired {
        let id = ObjectRef::of(object);
        let hash = desired_hash(object);
        match previous.objects.get(&id) {
            Some(entry) if entry.hash == hash => {
                plan.unchanged.insert(id, entry.clone());
            }
            _ => plan.to_send.push((id, hash, object)),
        }
    }
    plan
}

/// Applies `desired` (sorted in apply order) in stages; `previous` decides what is unchanged.
pub async fn apply(cluster: &Cluster, desired: &[Object], previous: &Inventory) -> Result<Applied> {
    let Plan { to_send, unchanged } = plan(desired, previous);
    let mut applied = Applied {
        unchanged: unchanged.len(),
        entries: unchanged,
        ..Applied::default()
    };
    for stage in [Stage::Definitions, Stage::Classes, Stage::Workloads] {
        let to_send = to_send
            .iter()
            .filter(|(_, _, object)| object.stage() == stage)
            .cloned();
        let results: Vec<(ObjectRef, Entry, Value)> = futures::stream::iter(to_send)
            .map(|(id, hash, object)| async move {
                let stored = cluster.apply(object, false).await?;
                let mut live = serde_json::to_value(&stored)?;
                live["apiVersion"] = Value::from(object.api_version());
                live["kind"] = Value::from(object.kind());
                let marker = live_marker(&live);
                anyhow::Ok((id, Entry { hash, marker }, live))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for (id, entry, live) in results {
            applied.sent.push(id.clone());
            applied.entries.insert(id.clone(), entry);
            applied.stored.insert(id, live);
        }
        if stage == Stage::Definitions {
            for crd in desired
                .iter()
                .filter(|o| o.kind() == "CustomResourceDefinition")
            {
                wait_established(cluster, crd).await?;
            }
        }
    }
    applied.sent.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(applied)
}

/// Waits until a CustomResourceDefinition is Established, so objects of its kind can follow.
async fn wait_established(cluster: &Cluster, crd: &Object) -> Result<()> {
    let api = cluster.api(crd)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let live = serde_json::to_value(api.get(crd.name()).await?)?;
        let established = live
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if established {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{} was not Established within 30 s", crd.display_name());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
