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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

/// Counts of the last reconcile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub applied: usize,
    pub unchanged: usize,
    pub pruned: usize,
    pub drift_corrected: usize,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub instance: String,
    pub environment: String,
    pub source: String,
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    /// Counts reconcile attempts: which attempt the conditions describe.
    pub observed_generation: u64,
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub apps: BTreeMap<String, AppHealth>,
    #[serde(default)]
    pub last_reconcile: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHealth {
    pub state: String,
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
}

impl Reporter {
    pub fn new(client: kube::Client, namespace: &str, instance: &str) -> Self {
        Reporter {
            maps: Api::namespaced(client.clone(), namespace),
            events: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: status_name(instance),
        }
    }

    pub async fn load(&self) -> Result<Option<Status>> {
        read(&self.maps, &self.name).await
    }

    pub async fn save(&self, status: &Status) -> Result<()> {
        state_map::write(
            &self.maps,
            &self.name,
            KEY,
            serde_json::to_string_pretty(status)?,
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

pub fn status_name(instance: &str) -> String {
    format!("spindle-status-{instance}")
}

/// Reads a status ConfigMap, for `spindle status`.
pub async fn read(maps: &Api<ConfigMap>, name: &str) -> Result<Option<Status>> {
    state_map::read(maps, name, KEY)
        .await?
        .map(|text| {
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
