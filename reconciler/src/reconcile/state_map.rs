//! The ConfigMaps a reconciler keeps its state in (inventory, status): one JSON document under one
//! key, written with server-side apply.

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use spindle_render::MANAGER;

/// The text under `key` of ConfigMap `name`; `None` when either is missing.
pub async fn read(maps: &Api<ConfigMap>, name: &str, key: &str) -> Result<Option<String>> {
    let map = maps
        .get_opt(name)
        .await
        .with_context(|| format!("could not read ConfigMap {name}"))?;
    Ok(map.and_then(|map| map.data?.remove(key)))
}

/// Writes `text` under `key` of ConfigMap `name`, labelled as spindle's.
pub async fn write(maps: &Api<ConfigMap>, name: &str, key: &str, text: String) -> Result<()> {
    let map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGER}},
        "data": {key: text},
    });
    maps.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(map),
    )
    .await
    .with_context(|| format!("could not write ConfigMap {name}"))?;
    Ok(())
}
