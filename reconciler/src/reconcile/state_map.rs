//! The ConfigMaps a reconciler keeps its state in (inventory, status): one JSON document under one
//! key. Every write carries the `resourceVersion` this process last read or wrote (optimistic
//! concurrency): a ConfigMap that someone else changed in between is read again, with a warning,
//! before it is written, instead of being overwritten blind.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::api::{Api, PostParams};

use spindle_render::MANAGER;

/// The `resourceVersion` of each state ConfigMap as this process last saw it, by name.
#[derive(Clone, Default)]
pub struct Versions(Arc<Mutex<BTreeMap<String, String>>>);

impl Versions {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn set(&self, name: &str, version: Option<String>) {
        let mut versions = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match version {
            Some(version) => versions.insert(name.to_owned(), version),
            None => versions.remove(name),
        };
    }
}

/// The text under `key` of ConfigMap `name`; `None` when either is missing.
pub async fn read(
    maps: &Api<ConfigMap>,
    name: &str,
    key: &str,
    versions: &Versions,
) -> Result<Option<String>> {
    let map = maps
        .get_opt(name)
        .await
        .with_context(|| format!("could not read ConfigMap {name}"))?;
    versions.set(
        name,
        map.as_ref()
            .and_then(|map| map.metadata.resource_version.clone()),
    );
    Ok(map.and_then(|map| map.data?.remove(key)))
}

/// Writes `text` under `key` of ConfigMap `name`, labelled as spindle's, if it is as this process
/// last saw it; if someone else changed it since, reads its version again and writes.
pub async fn write(
    maps: &Api<ConfigMap>,
    name: &str,
    key: &str,
    text: String,
    versions: &Versions,
) -> Result<()> {
    for _ in 0..3 {
        let known = versions.get(name);
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    MANAGER.to_owned(),
                )])),
                resource_version: known.clone(),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(key.to_owned(), text.clone())])),
            ..ConfigMap::default()
        };
        let params = PostParams::default();
        let written = match &known {
            Some(_) => maps.replace(name, &params, &map).await,
            None => maps.create(&params, &map).await,
        };
        match written {
            Ok(written) => {
                versions.set(name, written.metadata.resource_version);
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::warn!(
                    "ConfigMap {name} changed since this reconciler read it (another writer?); \
                     reading it again"
                );
                let current = maps
                    .get_opt(name)
                    .await
                    .with_context(|| format!("could not read ConfigMap {name}"))?;
                versions.set(name, current.and_then(|map| map.metadata.resource_version));
            }
            Err(err) => {
                return Err(crate::cluster::readable(
                    err,
                    &format!("ConfigMap {name}"),
                    "write",
                ));
            }
        }
    }
    bail!("ConfigMap {name} kept changing while spindle wrote it")
}
