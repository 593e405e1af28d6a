//! A rendered Kubernetes object, and the order objects are applied and printed in.

use serde_json::Value;

/// One Kubernetes object as spindle would apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object(Value);

/// When an object is applied: objects that others depend on come first (as in Flux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Namespaces and CustomResourceDefinitions.
    Definitions,
    /// Cluster-wide classes: RuntimeClass, the spinkube Shim.
    Classes,
    /// Everything else.
    Workloads,
}

impl Stage {
    /// The stage objects of `kind` are applied in.
    pub fn of(kind: &str) -> Stage {
        match kind {
            "Namespace" | "CustomResourceDefinition" => Stage::Definitions,
            "RuntimeClass" | "Shim" => Stage::Classes,
            _ => Stage::Workloads,
        }
    }
}

impl Object {
    /// Wraps a complete object; it must have `apiVersion`, `kind` and `metadata.name`.
    pub fn new(value: Value) -> Self {
        debug_assert!(value["apiVersion"].is_string() && value["kind"].is_string());
        debug_assert!(value["metadata"]["name"].is_string());
        Object(value)
    }

    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.0["apiVersion"].as_str().unwrap_or_default()
    }

    /// The object's `kind`.
    pub fn kind(&self) -> &str {
        self.0["kind"].as_str().unwrap_or_default()
    }

    /// The object's `metadata.name`.
    pub fn name(&self) -> &str {
        self.0["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// The namespace, or `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.0["metadata"]["namespace"].as_str()
    }

    /// The object as JSON.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The object as JSON, unwrapped.
    pub fn into_value(self) -> Value {
        self.0
    }

    /// The stage the object is applied in, from its kind.
    pub fn stage(&self) -> Stage {
        Stage::of(self.kind())
    }

    /// The order objects are printed and applied in: by stage, then kind, namespace and name.
    pub fn sort_key(&self) -> (Stage, &str, &str, &str) {
        (
            self.stage(),
            self.kind(),
            self.namespace().unwrap_or(""),
            self.name(),
        )
    }

    /// `kind.namespace.name` (or `kind.name` when cluster-scoped), lower-case kind: how the object
    /// is named in output folders and golden files.
    pub fn file_stem(&self) -> String {
        let kind = self.kind().to_ascii_lowercase();
        match self.namespace() {
            Some(namespace) => format!("{kind}.{namespace}.{}", self.name()),
            None => format!("{kind}.{}", self.name()),
        }
    }

    /// `Kind namespace/name`, for messages.
    pub fn display_name(&self) -> String {
        match self.namespace() {
            Some(namespace) => format!("{} {namespace}/{}", self.kind(), self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }
}

/// Sorts objects into apply order.
pub fn sort(objects: &mut [Object]) {
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(kind: &str, namespace: Option<&str>, name: &str) -> Object {
        let mut value = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        if let Some(namespace) = namespace {
            value["metadata"]["namespace"] = json!(namespace);
        }
        Object::new(value)
    }

    #[test]
    fn namespaces_and_classes_sort_before_workloads() {
        let mut objects = vec![
            object("Service", Some("b"), "x"),
            object("Deployment", Some("b"), "x"),
            object("RuntimeClass", None, "spin"),
            object("Deployment", Some("a"), "y"),
            object("Namespace", None, "b"),
        ];
        sort(&mut objects);
        let order: Vec<String> = objects.iter().map(Object::display_name).collect();
        assert_eq!(
            order,
            [
                "Namespace b",
                "RuntimeClass spin",
                "Deployment a/y",
                "Deployment b/x",
                "Service b/x"
            ]
        );
    }

    #[test]
    fn file_stems_name_kind_namespace_and_name() {
        assert_eq!(
            object("Deployment", Some("web"), "hello").file_stem(),
            "deployment.web.hello"
        );
        assert_eq!(
            object("RuntimeClass", None, "spin").file_stem(),
            "runtimeclass.spin"
        );
    }
}
