//! Health after an apply: Deployments rolled out (the controller saw the new generation, every
//! replica updated and available), Jobs complete. Waits up to a timeout and reports every object
//! that is not healthy by name, with the reason.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::inventory::ObjectRef;
use super::observe::{self, Live};
use crate::cluster::Cluster;
use spindle_render::{DOMAIN, Object};

/// How healthy an object is, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Rolled out (a Deployment) or complete (a Job).
    Healthy,
    /// Not there yet: still rolling out, running, or not found.
    Progressing,
    /// The rollout stalled or the Job failed.
    Failed,
}

/// One object's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Whether the object is healthy, progressing or failed.
    pub state: State,
    /// Why it is in that state, for people (`2/2 available`, `not found`).
    pub reason: String,
}

/// The health of every Deployment and Job among the desired objects.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Each Deployment and Job's health, by identity.
    pub objects: BTreeMap<ObjectRef, Health>,
    /// App name to the worst state among its objects.
    pub apps: BTreeMap<String, Health>,
}

impl Report {
    /// The objects that are not healthy.
    pub fn unhealthy(&self) -> impl Iterator<Item = (&ObjectRef, &Health)> {
        self.objects
            .iter()
            .filter(|(_, h)| h.state != State::Healthy)
    }

    /// Whether every object is healthy (true when there are none).
    pub fn all_healthy(&self) -> bool {
        self.unhealthy().next().is_none()
    }

    /// Whether some object has failed.
    pub fn any_failed(&self) -> bool {
        self.unhealthy().any(|(_, h)| h.state == State::Failed)
    }

    /// Installer Jobs are among the objects and all of them have finished: the node rollout can
    /// go on, and the apps that wait for a provisioned node cannot become healthy before it does.
    pub fn rollout_can_advance(&self) -> bool {
        let mut jobs = self
            .objects
            .iter()
            .filter(|(id, _)| id.kind == "Job")
            .peekable();
        jobs.peek().is_some() && jobs.all(|(_, health)| health.state != State::Progressing)
    }
}

/// How many names a summary shows per reason.
const SHOWN: usize = 3;

/// Unhealthy objects for people, grouped by reason with counts and the first few names, so that
/// a thousand Deployments waiting for the same thing make one short line:
/// `waiting for the controller to see the new spec: 120 objects (Deployment web/a, Deployment
/// web/b, Deployment web/c and 117 more)`. `spindle status -o json` has every app.
pub fn summary<'a>(unhealthy: impl Iterator<Item = (&'a ObjectRef, &'a Health)>) -> String {
    let mut by_reason: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, health) in unhealthy {
        by_reason
            .entry(health.reason.as_str())
            .or_default()
            .push(id.to_string());
    }
    let mut groups: Vec<(&str, Vec<String>)> = by_reason.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    groups
        .into_iter()
        .map(|(reason, names)| {
            let mut shown = names[..names.len().min(SHOWN)].join(", ");
            if names.len() > SHOWN {
                shown.push_str(&format!(" and {} more", names.len() - SHOWN));
            }
            let objects = match names.len() {
                1 => "1 object".to_owned(),
                n => format!("{n} objects"),
            };
            format!("{reason}: {objects} ({shown})")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks the objects that have a health until all are healthy, one fails, the node rollout can
/// advance, `timeout` passes, or a newer revision may be waiting (`superseded`: a push or a
/// webhook came in since the pass began, and waiting on would hold it up); the first look is at
/// `live`, later ones list again.
pub async fn wait(
    cluster: &Cluster,
    desired: &[Object],
    environment: &str,
    timeout: Duration,
    live: Live,
    superseded: &(dyn Fn() -> bool + Sync),
) -> Result<Report> {
    let deadline = tokio::time::Instant::now() + timeout;
    let watched: Vec<Object> = desired
        .iter()
        .filter(|o| matches!(o.kind(), "Deployment" | "Job"))
        .cloned()
        .collect();
    let mut live = live;
    loop {
        let report = assess(&watched, &live);
        if report.all_healthy()
            || report.any_failed()
            || report.rollout_can_advance()
            || tokio::time::Instant::now() >= deadline
            || superseded()
        {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        live = observe::list(cluster, &watched, environment).await?;
    }
}

/// The health of every Deployment and Job among `desired`, as `live` has them.
pub fn assess(desired: &[Object], live: &Live) -> Report {
    let mut report = Report::default();
    for object in desired
        .iter()
        .filter(|o| matches!(o.kind(), "Deployment" | "Job"))
    {
        let id = ObjectRef::of(object);
        let health = match live.get(&id) {
            None => Health {
                state: State::Progressing,
                reason: "not found".to_owned(),
            },
            Some(live) if object.kind() == "Deployment" => deployment(live),
            Some(live) => job(live),
        };
        if let Some(app) = object
            .value()
            .pointer(&format!("/metadata/labels/{DOMAIN}~1app"))
            .and_then(Value::as_str)
        {
            let worst = report.apps.entry(app.to_owned()).or_insert(Health {
                state: State::Healthy,
                reason: "ready".to_owned(),
            });
            if health.state > worst.state {
                *worst = health.clone();
            }
        }
        report.objects.insert(id, health);
    }
    report
}

fn int(value: &Value, pointer: &str) -> i64 {
    value.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(value: &'a Value, kind: &str) -> Option<&'a Value> {
    value
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// A Deployment is healthy when the controller has seen its generation and every wanted replica
/// is updated and available, with no old ones left.
pub fn deployment(live: &Value) -> Health {
    let progressing = |reason: String| Health {
        state: State::Progressing,
        reason,
    };
    if let Some(c) = condition(live, "Progressing")
        && c["reason"] == "ProgressDeadlineExceeded"
    {
        return Health {
            state: State::Failed,
            reason: format!(
                "rollout stalled: {}",
                c["message"]
                    .as_str()
                    .unwrap_or("progress deadline exceeded")
            ),
        };
    }
    let generation = int(live, "/metadata/generation");
    if int(live, "/status/observedGeneration") < generation {
        return progressing("waiting for the controller to see the new spec".to_owned());
    }
    let wanted = live
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let updated = int(live, "/status/updatedReplicas");
    let available = int(live, "/status/availableReplicas");
    let total = int(live, "/status/replicas");
    if updated < wanted {
        return progressing(format!("{updated} of {wanted} replicas updated"));
    }
    if total > updated {
        return progressing(format!("{} old replicas still running", total - updated));
    }
    if available < wanted {
        return progressing(format!("{available} of {wanted} replicas available"));
    }
    Health {
        state: State::Healthy,
        reason: format!("{available}/{wanted} available"),
    }
}

/// A Job is healthy once complete, failed once the controller gives up on it.
pub fn job(live: &Value) -> Health {
    if let Some(c) = condition(live, "Complete")
        && c["status"] == "True"
    {
        return Health {
            state: State::Healthy,
            reason: "complete".to_owned(),
        };
    }
    if let Some(c) = condition(live, "Failed")
        && c["status"] == "True"
    {
        return Health {
            state: State::Failed,
            reason: format!(
                "failed: {}",
                c["message"]
                    .as_str()
                    .or(c["reason"].as_str())
                    .unwrap_or("the job failed")
            ),
        };
    }
    Health {
        state: State::Progressing,
        reason: format!("{} pods running", int(live, "/status/active")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn many_unhealthy_objects_make_a_short_summary() {
        let ids: Vec<ObjectRef> = (0..1000)
            .map(|i| ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("web".into()),
                name: format!("app-{i:04}"),
            })
            .collect();
        let waiting = Health {
            state: State::Progressing,
            reason: "waiting for the controller".into(),
        };
        let failed = Health {
            state: State::Failed,
            reason: "0/1 available".into(),
        };
        let report: Vec<(&ObjectRef, &Health)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id, if i == 7 { &failed } else { &waiting }))
            .collect();
        assert_eq!(
            summary(report.into_iter()),
            "waiting for the controller: 999 objects (Deployment web/app-0000, Deployment \
             web/app-0001, Deployment web/app-0002 and 996 more); 0/1 available: 1 object \
             (Deployment web/app-0007)"
        );
    }

    #[test]
    fn a_finished_installer_job_lets_the_rollout_advance_before_the_apps_are_healthy() {
        let entry = |kind: &str, state: State| {
            let id = ObjectRef {
                api_version: "v1".into(),
                kind: kind.into(),
                namespace: Some("ns".into()),
                name: format!("{kind}-{state:?}"),
            };
            (
                id,
                Health {
                    state,
                    reason: String::new(),
                },
            )
        };
        let report = |entries: Vec<(ObjectRef, Health)>| Report {
            objects: entries.into_iter().collect(),
            apps: BTreeMap::new(),
        };
        let waiting_app = entry("Deployment", State::Progressing);
        assert!(
            report(vec![waiting_app.clone(), entry("Job", State::Healthy)]).rollout_can_advance()
        );
        assert!(
            !report(vec![waiting_app.clone(), entry("Job", State::Progressing)])
                .rollout_can_advance()
        );
        assert!(
            !report(vec![waiting_app]).rollout_can_advance(),
            "no rollout"
        );
    }

    #[test]
    fn deployments_are_healthy_once_every_replica_is_new_and_available() {
        let rolled = json!({
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
        });
        assert_eq!(deployment(&rolled).state, State::Healthy);
        let mut unseen = rolled.clone();
        unseen["metadata"]["generation"] = json!(3);
        assert_eq!(deployment(&unseen).state, State::Progressing);
        let mut old_left = rolled.clone();
        old_left["status"]["replicas"] = json!(3);
        assert_eq!(deployment(&old_left).reason, "1 old replicas still running");
        let mut unavailable = rolled.clone();
        unavailable["status"]["availableReplicas"] = json!(0);
        assert_eq!(deployment(&unavailable).reason, "0 of 2 replicas available");
        let mut stalled = rolled;
        stalled["status"]["conditions"] = json!([{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]);
        assert_eq!(deployment(&stalled).state, State::Failed);
    }

    #[test]
    fn jobs_complete_or_fail() {
        let complete = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(job(&complete).state, State::Healthy);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        assert_eq!(job(&failed).reason, "failed: BackoffLimitExceeded");
        assert_eq!(
            job(&json!({"status": {"active": 1}})).state,
            State::Progressing
        );
    }
}
