//! Server-side apply in stages, as Flux does it: Namespaces and CRDs first (CRDs waited for until
//! Established), then cluster-wide classes, then the rest. Within a stage objects go out
//! concurrently. An object whose rendered form hashes as it did at the last successful apply is
//! not sent at all, which is what makes a no-op reconcile cheap.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::inventory::{Entry, Inventory, ObjectRef, desired_hash, live_marker};
use crate::{
    cluster::Cluster,
    render::{Object, Stage},
};

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

/// Applies `desired` (sorted in apply order) in stages; `previous` decides what is unchanged.
/// `force` sends every object (after drift, or when the inventory is not trusted).
pub async fn apply(
    cluster: &Cluster,
    desired: &[Object],
    previous: &Inventory,
    force: bool,
) -> Result<Applied> {
    let mut applied = Applied::default();
    for stage in [Stage::Definitions, Stage::Classes, Stage::Workloads] {
        let mut to_send = Vec::new();
        for object in desired.iter().filter(|o| o.stage() == stage) {
            let id = ObjectRef::of(object);
            let hash = desired_hash(object);
            match previous.objects.get(&id) {
                Some(entry) if entry.hash == hash && !force => {
                    applied.entries.insert(id, entry.clone());
                    applied.unchanged += 1;
                }
                _ => to_send.push((id, hash, object)),
            }
        }
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
    applied
        .sent
        .sort_by(|a, b| a.probe().sort_key().cmp(&b.probe().sort_key()));
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
