//! What a node runtime becomes: a RuntimeClass that schedules onto provisioned nodes only, the
//! installer Jobs of the rollout's first wave, and uninstall Jobs for provisioned nodes that no
//! longer match the runtime's selector.
//!
//! A node is provisioned for runtime `R` when it carries the label `runtime.spindle.dev/R:
//! provisioned` and the annotation `runtime.spindle.dev/R: <sha256 of the shim>`. The reconciler
//! sets both after the node's installer Job succeeds; the RuntimeClass selects on the label, so no
//! pod lands on a node whose install failed.

use serde_json::{Value, json};
use spindle_schema::Runtime;

use super::{
    Context, DOMAIN, Object, Owner,
    node_policy::{CONTROL_PLANE_LABELS, NodePolicy},
    nodes::Node,
    short_hash,
};

/// The value of the provisioned label.
pub const PROVISIONED: &str = "provisioned";
/// Where the host's root is mounted in the installer's container.
const HOST_ROOT: &str = "/host";
/// Where installer images built by spindle carry the shim binary.
const SHIM_IN_IMAGE: &str = "/usr/share/spindle/containerd-shim-spindle-v1";

/// The label (and annotation) key that records runtime `name`'s install on a node.
pub fn provisioned_key(name: &str) -> String {
    format!("runtime.{DOMAIN}/{name}")
}

/// The RuntimeClass, and, when the nodes are known and a node policy lets anything be installed,
/// the installer Jobs for the nodes the policy admits.
pub fn render(context: &Context, name: &str, runtime: &Runtime) -> Vec<Object> {
    let mut objects = vec![runtime_class(context, name, runtime)];
    if let (Some(nodes), Some(policy)) = (&context.target.nodes, &context.target.node_policy) {
        let admitted: Vec<Node> = nodes
            .iter()
            .filter(|node| policy.admits(node))
            .cloned()
            .collect();
        let job = |node: &Node, action| installer_job(context, name, runtime, node, action, policy);
        objects.extend(
            first_wave(name, runtime, &admitted)
                .into_iter()
                .map(|node| job(node, Action::Install)),
        );
        objects.extend(
            leaving(name, runtime, &admitted)
                .into_iter()
                .map(|node| job(node, Action::Uninstall)),
        );
    }
    objects
}

fn runtime_class(context: &Context, name: &str, runtime: &Runtime) -> Object {
    Object::new(json!({
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": context.metadata(Owner::Runtime(name), runtime.class_name(name), None, None),
        "handler": runtime.handler,
        "scheduling": {"nodeSelector": {provisioned_key(name): PROVISIONED}},
    }))
}

/// Whether `node` runs this runtime's current shim.
pub fn is_provisioned(name: &str, runtime: &Runtime, node: &Node) -> bool {
    let key = provisioned_key(name);
    node.labels.get(&key).map(String::as_str) == Some(PROVISIONED)
        && node.annotations.get(&key) == Some(&runtime.shim.sha256)
}

/// The nodes the rollout installs on first: matching nodes that are not provisioned with the
/// current shim, by name, at most `maxUnavailable` of them.
pub fn first_wave<'a>(name: &str, runtime: &Runtime, nodes: &'a [Node]) -> Vec<&'a Node> {
    nodes
        .iter()
        .filter(|node| node.matches(&runtime.node_selector))
        .filter(|node| !is_provisioned(name, runtime, node))
        .take(runtime.rollout.max_unavailable as usize)
        .collect()
}

/// Provisioned nodes that no longer match the runtime's selector: the runtime is taken off them,
/// at most `maxUnavailable` at a time.
pub fn leaving<'a>(name: &str, runtime: &Runtime, nodes: &'a [Node]) -> Vec<&'a Node> {
    let key = provisioned_key(name);
    nodes
        .iter()
        .filter(|node| node.labels.contains_key(&key) && !node.matches(&runtime.node_selector))
        .take(runtime.rollout.max_unavailable as usize)
        .collect()
}

/// What an installer Job does on its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Install the shim and register it with containerd.
    Install,
    /// Remove the runtime from containerd's config and the shim from the node.
    Uninstall,
}

impl Action {
    /// The value of the Job's `spindle.dev/action` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Uninstall => "uninstall",
        }
    }

    /// The action a Job's label names; Jobs from before the label existed install.
    pub fn from_label(label: Option<&str>) -> Action {
        match label {
            Some("uninstall") => Action::Uninstall,
            _ => Action::Install,
        }
    }
}

/// What the installer is told; a change to any of it means a new install (and a new Job name).
fn installer_args(name: &str, runtime: &Runtime, action: Action) -> Vec<String> {
    let mut args = vec![
        action.as_str().to_owned(),
        format!("--host-root={HOST_ROOT}"),
    ];
    // Restart and check containerd in the host's namespaces (the pod has hostPID).
    if runtime.containerd.as_ref().is_none_or(|c| c.enter_host) {
        args.push("--enter-host".to_owned());
    }
    if action == Action::Install {
        args.push(format!("--runtime={name}"));
    }
    args.push(format!("--handler={}", runtime.handler));
    if action == Action::Install {
        args.extend([
            format!("--runtime-type={}", runtime.runtime_type),
            format!("--shim-version={}", runtime.shim.version),
            format!("--shim-sha256={}", runtime.shim.sha256),
        ]);
        args.push(match &runtime.shim.url {
            Some(url) => format!("--shim-url={url}"),
            // Validation guarantees the other source: an installer image that carries the shim.
            None => format!("--shim-file={SHIM_IN_IMAGE}"),
        });
    }
    if let Some(containerd) = &runtime.containerd {
        let on_host = |path: &str| format!("{HOST_ROOT}/{}", path.trim_start_matches('/'));
        if let Some(config) = &containerd.config {
            args.push(format!("--config={}", on_host(config)));
        }
        if let Some(socket) = &containerd.socket {
            // Checked in the node's namespaces, or in the installer's container under /host.
            let socket = if containerd.enter_host {
                socket.clone()
            } else {
                on_host(socket)
            };
            args.push(format!("--socket={socket}"));
        }
        if let Some(command) = &containerd.restart_command {
            args.push(format!("--restart-command={command}"));
        }
        if let Some(dir) = &containerd.shim_dir {
            args.push(format!("--shim-dir={}", dir.trim_start_matches('/')));
        }
    }
    if action == Action::Install && !runtime.options.is_empty() {
        args.push(format!(
            "--options={}",
            serde_json::to_string(&runtime.options).expect("JSON values serialise")
        ));
    }
    args
}

/// `<action>-<runtime>-<node>-<hash of what runs>`, shortened to fit the 63 characters a Job's
/// name may use in its pods' `job-name` label. Jobs are immutable: another install is another Job.
fn job_name(action: Action, runtime: &str, node: &str, image: &str, args: &[String]) -> String {
    let hash = short_hash(format!("{image}\n{}", args.join("\n")).as_bytes(), 8);
    let mut stem = format!("{}-{runtime}-{node}", action.as_str());
    stem.truncate(63 - hash.len() - 1);
    format!("{}-{hash}", stem.trim_end_matches(['-', '.']))
}

fn installer_job(
    context: &Context,
    name: &str,
    runtime: &Runtime,
    node: &Node,
    action: Action,
    policy: &NodePolicy,
) -> Object {
    let args = installer_args(name, runtime, action);
    let image = runtime
        .shim
        .image
        .as_deref()
        .unwrap_or(&context.target.installer_image);
    let mut metadata = context.metadata(
        Owner::Runtime(name),
        &job_name(action, name, &node.name, image, &args),
        Some(&context.target.system_namespace),
        None,
    );
    metadata["labels"][format!("{DOMAIN}/node")] = json!(node.name);
    metadata["labels"][format!("{DOMAIN}/action")] = json!(action.as_str());
    metadata["annotations"] = json!({ format!("{DOMAIN}/shim-sha256"): runtime.shim.sha256 });
    Object::new(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {format!("{DOMAIN}/runtime"): name, format!("{DOMAIN}/node"): node.name}},
                "spec": pod_spec(&node.name, image, args, policy),
            },
        },
    }))
}

/// A privileged pod on `node` with the host's root mounted: containerd's config and the shim
/// directory live in different places per distribution (k3s, rke2, microk8s, k0s, ...), and the
/// installer restarts containerd through the host's PID 1. Unless the policy allows
/// control-plane nodes, the kubelet refuses the pod on one (node affinity is checked at admission
/// even for a pod bound by `nodeName`), whatever labels the plan saw.
fn pod_spec(node: &str, image: &str, args: Vec<String>, policy: &NodePolicy) -> Value {
    let mut spec = json!({
        "nodeName": node,
        "restartPolicy": "Never",
        "hostPID": true,
        "automountServiceAccountToken": false,
        "tolerations": [{"operator": "Exists"}],
        "containers": [{
            "name": "installer",
            "image": image,
            "command": ["spindle-node-installer"],
            "args": args,
            "securityContext": {"privileged": true},
            "volumeMounts": [{"name": "host-root", "mountPath": HOST_ROOT}],
        }],
        "volumes": [{"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}}],
    });
    if !policy.allow_control_plane {
        let not_control_plane: Vec<Value> = CONTROL_PLANE_LABELS
            .iter()
            .map(|label| json!({"key": label, "operator": "DoesNotExist"}))
            .collect();
        spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": not_control_plane}],
        }}});
    }
    spec
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn runtime(max_unavailable: u32) -> Runtime {
        serde_json::from_value(json!({
            "shim": {"version": "1", "url": "https://example.com/shim", "sha256": "a".repeat(64)},
            "nodeSelector": {"wasm": "yes"},
            "rollout": {"maxUnavailable": max_unavailable},
        }))
        .expect("a runtime")
    }

    fn node(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Node {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Node {
            name: name.into(),
            labels: map(labels),
            annotations: map(annotations),
        }
    }

    #[test]
    fn the_first_wave_skips_provisioned_and_unmatched_nodes() {
        let key = provisioned_key("spin");
        let sha = "a".repeat(64);
        let nodes = [
            node(
                "a",
                &[("wasm", "yes"), (&key, PROVISIONED)],
                &[(&key, &sha)],
            ),
            node("b", &[("wasm", "no")], &[]),
            node(
                "c",
                &[("wasm", "yes"), (&key, PROVISIONED)],
                &[(&key, "old")],
            ),
            node("d", &[("wasm", "yes")], &[]),
            node("e", &[("wasm", "yes")], &[]),
        ];
        let names = |wave: Vec<&Node>| wave.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(first_wave("spin", &runtime(2), &nodes)), ["c", "d"]);
        assert_eq!(
            names(first_wave("spin", &runtime(5), &nodes)),
            ["c", "d", "e"]
        );
    }

    #[test]
    fn job_names_fit_a_label_and_change_with_the_install() {
        let long = "n".repeat(80);
        let name = job_name(Action::Install, "spin", &long, "img", &["x".to_owned()]);
        assert_eq!(name.len(), 63);
        assert_ne!(
            name,
            job_name(Action::Install, "spin", &long, "img", &["y".to_owned()])
        );
        assert_ne!(
            name,
            job_name(Action::Install, "spin", &long, "img2", &["x".to_owned()])
        );
        assert!(
            job_name(Action::Install, "spin", "node-1", "img", &[])
                .starts_with("install-spin-node-1-")
        );
        assert!(
            job_name(Action::Uninstall, "spin", "node-1", "img", &[])
                .starts_with("uninstall-spin-node-1-")
        );
    }
}
