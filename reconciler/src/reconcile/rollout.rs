//! Node runtime rollouts. Rendering plans one wave of installer Jobs (the matching nodes not
//! provisioned with the current shim, `maxUnavailable` of them); when a node's Job completes, the
//! node is marked provisioned (the label the RuntimeClass selects on, and the shim's sha256 as an
//! annotation), so the next pass plans the next wave. A failed Job stops the rollout: its node
//! stays unprovisioned, so the wave does not move on until the cause is fixed. A new shim sha256
//! makes every node unprovisioned for it, so the rollout reinstalls node by node while running
//! apps keep their nodes. A provisioned node that leaves the runtime's selector gets an uninstall
//! Job; when it completes, the node's label and annotation go.

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::health::{Report, State};
use crate::cluster::retry;
use spindle_render::{Action, DOMAIN, Object, PROVISIONED, provisioned_key};

/// What a pass did for rollouts.
#[derive(Debug, Default)]
pub struct Progress {
    /// `runtime/node` pairs marked provisioned in this pass.
    pub provisioned: Vec<String>,
    /// `runtime/node` pairs the runtime was taken off in this pass.
    pub uninstalled: Vec<String>,
    /// `runtime/node: reason` of failed installs.
    pub failed: Vec<String>,
}

/// An installer Job's runtime, node, shim sha256 and action, read from its labels and
/// annotation.
fn installer(job: &Object) -> Option<(&str, &str, &str, Action)> {
    let value = job.value();
    let label = |key: &str| {
        value
            .pointer(&format!("/metadata/labels/{DOMAIN}~1{key}"))
            .and_then(Value::as_str)
    };
    let sha = value
        .pointer(&format!("/metadata/annotations/{DOMAIN}~1shim-sha256"))
        .and_then(Value::as_str)?;
    Some((
        label("runtime")?,
        label("node")?,
        sha,
        Action::from_label(label("action")),
    ))
}

/// Marks the nodes whose installer Job completed, and collects the failed ones.
pub async fn advance(
    client: &kube::Client,
    desired: &[Object],
    health: &Report,
) -> Result<Progress> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut progress = Progress::default();
    for job in desired.iter().filter(|o| o.kind() == "Job") {
        let Some((runtime, node, sha, action)) = installer(job) else {
            continue;
        };
        let Some(state) = health.objects.get(&super::inventory::ObjectRef::of(job)) else {
            continue;
        };
        match state.state {
            State::Healthy => {
                let key = provisioned_key(runtime);
                let (label, annotation) = match action {
                    Action::Install => (json!(PROVISIONED), json!(sha)),
                    Action::Uninstall => (Value::Null, Value::Null),
                };
                let patch = json!({
                    "metadata": {
                        "labels": {&key: label},
                        "annotations": {&key: annotation},
                    }
                });
                let params = PatchParams::default();
                let patch = Patch::Merge(patch);
                retry(node, || nodes.patch(node, &params, &patch))
                    .await
                    .with_context(|| {
                        let action = action.as_str();
                        format!("could not record the {action} of {runtime} on {node}")
                    })?;
                match action {
                    Action::Install => progress.provisioned.push(format!("{runtime}/{node}")),
                    Action::Uninstall => progress.uninstalled.push(format!("{runtime}/{node}")),
                }
            }
            State::Failed => progress
                .failed
                .push(format!("{runtime}/{node}: {}", state.reason)),
            State::Progressing => {}
        }
    }
    Ok(progress)
}
