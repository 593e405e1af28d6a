//! The cluster's nodes, as far as planning shim installs needs them: names, labels, annotations.
//! Read from a file here; the reconciler asks a cluster for them.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

/// A node of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Its labels, which runtimes' node selectors match.
    pub labels: BTreeMap<String, String>,
    /// Its annotations, where rollouts record what is installed.
    pub annotations: BTreeMap<String, String>,
}

impl Node {
    /// Whether the node carries every label of `selector` (an empty selector matches all).
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector
            .iter()
            .all(|(key, value)| self.labels.get(key) == Some(value))
    }
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl From<Metadata> for Node {
    fn from(metadata: Metadata) -> Self {
        Node {
            name: metadata.name,
            labels: metadata.labels,
            annotations: metadata.annotations,
        }
    }
}

/// Reads nodes from what `kubectl get nodes -o yaml` (or `-o json`) prints: a `List` of Nodes, a
/// single Node, or a stream of YAML documents.
pub fn parse(text: &str) -> Result<Vec<Node>> {
    #[derive(Deserialize)]
    struct Item {
        kind: Option<String>,
        metadata: Option<Metadata>,
        #[serde(default)]
        items: Vec<Item>,
    }
    fn collect(item: Item, out: &mut Vec<Node>) -> Result<()> {
        match item.kind.as_deref() {
            Some("List" | "NodeList") => {
                for inner in item.items {
                    collect(inner, out)?;
                }
                Ok(())
            }
            Some("Node") => {
                let metadata = item.metadata.context("a Node without metadata")?;
                out.push(metadata.into());
                Ok(())
            }
            other => bail!(
                "expected Node objects (as `kubectl get nodes -o yaml` prints), found kind {}",
                other.unwrap_or("<none>")
            ),
        }
    }
    let mut nodes = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        collect(serde_yaml::from_value(value)?, &mut nodes)?;
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_single_nodes_and_streams() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: b\n    labels: {x: y}\n- kind: Node\n  metadata: {name: a}\n";
        let nodes = parse(list).expect("parses");
        assert_eq!(
            nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(nodes[1].labels["x"], "y");
        let stream = "kind: Node\nmetadata: {name: n1}\n---\nkind: Node\nmetadata: {name: n2}\n";
        assert_eq!(parse(stream).expect("parses").len(), 2);
        assert!(
            parse("kind: Pod\nmetadata: {name: p}\n")
                .unwrap_err()
                .to_string()
                .contains("found kind Pod")
        );
    }

    #[test]
    fn empty_selectors_match_every_node() {
        let node = Node {
            name: "n".into(),
            labels: BTreeMap::from([("a".into(), "1".into())]),
            ..Node::default()
        };
        assert!(node.matches(&BTreeMap::new()));
        assert!(node.matches(&BTreeMap::from([("a".into(), "1".into())])));
        assert!(!node.matches(&BTreeMap::from([("a".into(), "2".into())])));
    }
}
