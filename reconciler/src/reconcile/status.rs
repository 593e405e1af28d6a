//! Status for people and machines: a ConfigMap (`spindle-status-<instance>`) with the last applied
//! and attempted revisions, Flux-style conditions (Ready, Reconciling, Stalled), per-app health
//! and the last reconcile's counts; Kubernetes Events on that ConfigMap for what happened.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Event},
    jiff::Timestamp,
};
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{health::Health, state_map};
use spindle_render::MANAGER;

const KEY: &str = "status.json";

/// One condition, as Kubernetes and Flux write them: `Ready`, `Reconciling` or `Stalled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type: `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the condition holds: `True` or `False`.
    pub status: String,
    /// Why, in CamelCase: `ReconciliationSucceeded`, `PruneRefused`.
    pub reason: String,
    /// What happened, for people.
    pub message: String,
    /// When `status` last changed, as an RFC 3339 timestamp.
    pub last_transition_time: String,
}

/// Counts of the last reconcile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Objects sent with server-side apply.
    pub applied: usize,
    /// Objects left alone because they had not changed.
    pub unchanged: usize,
    /// Objects deleted because they left the render.
    pub pruned: usize,
    /// Objects put back after someone else changed them.
    pub drift_corrected: usize,
    /// How long the pass took, in milliseconds.
    pub duration_ms: u64,
}

/// What a reconciler instance reports in its status ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The reconciler instance, which names the inventory and status ConfigMaps.
    pub instance: String,
    /// The environment being applied.
    pub environment: String,
    /// The repository the revisions come from: its URL or path.
    pub source: String,
    /// The last commit applied.
    pub last_applied_revision: Option<String>,
    /// The commit of the last pass, applied or not.
    pub last_attempted_revision: Option<String>,
    /// Counts reconcile attempts: which attempt the conditions describe.
    pub observed_generation: u64,
    /// The conditions, sorted by type.
    pub conditions: Vec<Condition>,
    /// The replica that holds the Lease and wrote this status, with leader election.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Each app's health: the worst among its Deployments and Jobs.
    #[serde(default)]
    pub apps: BTreeMap<String, AppHealth>,
    /// The counts of the last pass that applied its revision.
    #[serde(default)]
    pub last_reconcile: Counts,
}

/// An app's health, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHealth {
    /// The worst state among the app's objects: `healthy`, `progressing` or `failed`.
    pub state: String,
    /// Why, from an object in that state.
    pub reason: String,
}

impl From<&Health> for AppHealth {
    fn from(health: &Health) -> Self {
        AppHealth {
            state: serde_json::to_value(health.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            reason: health.reason.clone(),
        }
    }
}

impl Status {
    /// Sets a condition, keeping its transition time when its status did not change.
    pub fn set(&mut self, kind: &str, status: bool, reason: &str, message: &str) {
        let status = if status { "True" } else { "False" };
        let now = Timestamp::now().to_string();
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(existing) => {
                if existing.status != status {
                    existing.last_transition_time = now;
                }
                existing.status = status.to_owned();
                existing.reason = reason.to_owned();
                existing.message = message.to_owned();
            }
            None => self.conditions.push(Condition {
                kind: kind.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                last_transition_time: now,
            }),
        }
        self.conditions.sort_by(|a, b| a.kind.cmp(&b.kind));
    }

    /// The condition of type `kind`, if it is set.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// Where one reconciler instance reports.
#[derive(Clone)]
pub struct Reporter {
    maps: Api<ConfigMap>,
    events: Api<Event>,
    namespace: String,
    name: String,
    versions: state_map::Versions,
}

impl Reporter {
    /// The reporter of `instance`: the ConfigMap `spindle-status-<instance>` in `namespace`, and
    /// Events on it.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        instance: &str,
        versions: state_map::Versions,
    ) -> Self {
        Reporter {
            maps: Api::namespaced(client.clone(), namespace),
            events: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: status_name(instance),
            versions,
        }
    }

    /// The status in the ConfigMap; `None` before the first report.
    pub async fn load(&self) -> Result<Option<Status>> {
        parse(
            state_map::read(&self.maps, &self.name, KEY, &self.versions).await?,
            &self.name,
        )
    }

    /// Writes `status` to the ConfigMap.
    pub async fn save(&self, status: &Status) -> Result<()> {
        state_map::write(
            &self.maps,
            &self.name,
            KEY,
            serde_json::to_string_pretty(status)?,
            &self.versions,
        )
        .await
    }

    /// Records an Event on the status ConfigMap; failures are logged, never fatal.
    pub async fn event(&self, warning: bool, reason: &str, message: &str) {
        let now = Timestamp::now().to_string();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{}.", self.name), "namespace": self.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": self.namespace, "name": self.name},
            "reason": reason,
            // The apiserver refuses event messages over 1 KiB.
            "message": truncate(message, 1000),
            "type": if warning { "Warning" } else { "Normal" },
            "source": {"component": MANAGER},
            "reportingComponent": MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let created = match serde_json::from_value::<Event>(event) {
            Ok(event) => self
                .events
                .create(&PostParams::default(), &event)
                .await
                .err()
                .map(|e| e.to_string()),
            Err(err) => Some(err.to_string()),
        };
        if let Some(err) = created {
            tracing::warn!("could not record event {reason}: {err}");
        }
    }
}

/// The name of `instance`'s status ConfigMap: `spindle-status-<instance>`.
pub fn status_name(instance: &str) -> String {
    format!("spindle-status-{instance}")
}

/// Reads a status ConfigMap, for `spindle status`.
pub async fn read(maps: &Api<ConfigMap>, name: &str) -> Result<Option<Status>> {
    let versions = state_map::Versions::default();
    parse(state_map::read(maps, name, KEY, &versions).await?, name)
}

/// A status document, as stored.
fn parse(text: Option<String>, name: &str) -> Result<Option<Status>> {
    text.map(|text| {
        serde_json::from_str(&text)
            .with_context(|| format!("status {name} is not spindle's format"))
    })
    .transpose()
}

fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_transition_time_while_their_status_holds() {
        let mut status = Status::default();
        status.set("Ready", false, "Progressing", "applying");
        let first = status
            .condition("Ready")
            .unwrap()
            .last_transition_time
            .clone();
        status.conditions[0].last_transition_time = "earlier".to_owned();
        status.set("Ready", false, "HealthCheckFailed", "web: 0 of 1 available");
        assert_eq!(
            status.condition("Ready").unwrap().last_transition_time,
            "earlier"
        );
        assert_eq!(
            status.condition("Ready").unwrap().reason,
            "HealthCheckFailed"
        );
        status.set("Ready", true, "ReconciliationSucceeded", "applied abc");
        assert_ne!(
            status.condition("Ready").unwrap().last_transition_time,
            "earlier"
        );
        assert!(!first.is_empty());
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("short", 10), "short");
    }
}
