//! What a change of node runtimes means for the nodes: which shim goes where, and how fast.

use std::collections::BTreeMap;

use serde::Serialize;
use spindle_schema::{Platform, Runtime};

use crate::Node;

/// A runtime whose shim is installed, upgraded or no longer managed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRollout {
    /// Name of the runtime.
    pub runtime: String,
    /// Shim version before (`None`: a new runtime).
    pub from_version: Option<String>,
    /// Shim version after (`None`: the runtime is removed).
    pub to_version: Option<String>,
    /// Shim sha256 before (`None`: a new runtime).
    pub from_sha256: Option<String>,
    /// Shim sha256 after (`None`: the runtime is removed).
    pub to_sha256: Option<String>,
    /// Nodes the install reaches, when the nodes are known.
    pub nodes: Option<usize>,
    /// Labels of the nodes the install targets; empty means every node.
    pub node_selector: BTreeMap<String, String>,
    /// Nodes installed at once (the runtime's `rollout.maxUnavailable`).
    pub max_unavailable: u32,
}

impl RuntimeRollout {
    /// One sentence for people: `shim spindle 0.1.0 -> 0.2.0 will be rolled out to 3 nodes,
    /// maxUnavailable 1`.
    pub fn sentence(&self) -> String {
        let nodes = match self.nodes {
            Some(1) => "1 node".to_owned(),
            Some(n) => format!("{n} nodes"),
            None if self.node_selector.is_empty() => "every node".to_owned(),
            None => format!(
                "nodes matching {}",
                self.node_selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let pace = format!("maxUnavailable {}", self.max_unavailable);
        let runtime = &self.runtime;
        match (&self.from_version, &self.to_version) {
            (None, Some(to)) => {
                format!("shim {runtime} {to} will be installed on {nodes}, {pace}")
            }
            (Some(from), Some(to)) if from == to => format!(
                "shim {runtime} {to} (new sha256 {}) will be rolled out to {nodes}, {pace}",
                short(self.to_sha256.as_deref())
            ),
            (Some(from), Some(to)) => {
                format!("shim {runtime} {from} -> {to} will be rolled out to {nodes}, {pace}")
            }
            (Some(from), None) => format!(
                "runtime {runtime} ({from}) is removed: its RuntimeClass goes; nodes keep the shim"
            ),
            (None, None) => unreachable!("a rollout has at least one side"),
        }
    }
}

fn short(sha: Option<&str>) -> &str {
    sha.map_or("?", |sha| &sha[..sha.len().min(12)])
}

/// The runtimes whose shim changes between `before` and `after` (a changed installer, handler or
/// options reinstalls too, but only the shim itself is called out).
pub fn rollouts(
    before: &Platform,
    after: &Platform,
    nodes: Option<&[Node]>,
) -> Vec<RuntimeRollout> {
    let names: std::collections::BTreeSet<&String> = before
        .runtimes
        .keys()
        .chain(after.runtimes.keys())
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (old, new) = (before.runtimes.get(name), after.runtimes.get(name));
            if let (Some(old), Some(new)) = (old, new)
                && old.shim == new.shim
            {
                return None;
            }
            let current: &Runtime = new.or(old).expect("named by one side");
            Some(RuntimeRollout {
                runtime: name.clone(),
                from_version: old.map(|r| r.shim.version.clone()),
                to_version: new.map(|r| r.shim.version.clone()),
                from_sha256: old.map(|r| r.shim.sha256.clone()),
                to_sha256: new.map(|r| r.shim.sha256.clone()),
                nodes: nodes.map(|nodes| {
                    nodes
                        .iter()
                        .filter(|node| node.matches(&current.node_selector))
                        .count()
                }),
                node_selector: current.node_selector.clone(),
                max_unavailable: current.rollout.max_unavailable,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn platform(version: &str, sha: char) -> Platform {
        serde_json::from_value(json!({"runtimes": {"spin": {
            "shim": {"version": version, "url": "https://e/s", "sha256": sha.to_string().repeat(64)},
            "nodeSelector": {"wasm": "yes"},
        }}}))
        .expect("platform")
    }

    #[test]
    fn says_what_reaches_how_many_nodes() {
        let nodes = [
            Node {
                name: "a".into(),
                labels: [("wasm".into(), "yes".into())].into(),
                ..Node::default()
            },
            Node {
                name: "b".into(),
                ..Node::default()
            },
        ];
        let upgrade = rollouts(&platform("1.2", 'a'), &platform("1.3", 'b'), Some(&nodes));
        assert_eq!(
            upgrade[0].sentence(),
            "shim spin 1.2 -> 1.3 will be rolled out to 1 node, maxUnavailable 1"
        );
        let unknown = rollouts(&platform("1.2", 'a'), &platform("1.3", 'b'), None);
        assert!(unknown[0].sentence().contains("to nodes matching wasm=yes"));
        assert!(rollouts(&platform("1.2", 'a'), &platform("1.2", 'a'), None).is_empty());
        let new = rollouts(&Platform::default(), &platform("1.2", 'a'), Some(&nodes));
        assert_eq!(
            new[0].sentence(),
            "shim spin 1.2 will be installed on 1 node, maxUnavailable 1"
        );
    }
}
