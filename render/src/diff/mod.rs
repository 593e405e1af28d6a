//! What changes between two sets of rendered objects (two revisions, or a revision and the live
//! cluster), object by object, and what that means for the nodes.
//!
//! Objects are paired by kind, namespace and [stable name](canonical::stable_name) and compared in
//! [`canonical`] form: sorted keys, no revision label, Secret values masked. Unpaired
//! objects that match after a rename are reported as renamed.

pub mod canonical;
pub mod format;
mod rollout;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use rollout::{RuntimeRollout, rollouts};

use crate::{DOMAIN, Object, yaml};

/// What happens to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Only on the new side.
    Added,
    /// On both sides (paired by stable name), with different content.
    Changed,
    /// Gone under one name and new under another, with the same content otherwise.
    Renamed,
    /// Only on the old side: the newer revision no longer renders it.
    Removed,
    /// Removed from the cluster by the next apply: spindle owns it, the render no longer has it.
    Pruned,
}

impl Action {
    /// The sign a line of text output starts with.
    pub fn sign(self) -> char {
        match self {
            Action::Added => '+',
            Action::Changed | Action::Renamed => '~',
            Action::Removed | Action::Pruned => '-',
        }
    }
}

/// Who an object belongs to, from its labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "name")]
pub enum Owner {
    /// One app's objects, by app name.
    App(String),
    /// One node runtime's objects, by runtime name.
    Runtime(String),
    /// Namespaces and other shared objects.
    Environment,
}

impl Owner {
    fn of(object: &Value) -> Owner {
        let label = |key: &str| {
            object["metadata"]["labels"][format!("{DOMAIN}/{key}")]
                .as_str()
                .map(str::to_owned)
        };
        match (label("app"), label("runtime")) {
            (Some(app), _) => Owner::App(app),
            (None, Some(runtime)) => Owner::Runtime(runtime),
            (None, None) => Owner::Environment,
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::App(name) => write!(f, "app {name}"),
            Owner::Runtime(name) => write!(f, "runtime {name}"),
            Owner::Environment => write!(f, "environment"),
        }
    }
}

/// One object that changes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    /// What happens to the object.
    pub action: Action,
    /// The object's `apiVersion`.
    pub api_version: String,
    /// The object's `kind`.
    pub kind: String,
    /// The object's namespace; `None` for cluster-scoped objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's name (the new one, when it changed).
    pub name: String,
    /// The name before, when it changed (a rename, or a Secret named after its content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_name: Option<String>,
    /// The app, runtime or environment the object belongs to.
    pub owner: Owner,
    /// Unified diff of the canonical YAML, Secret values masked.
    pub diff: String,
    /// Lines added in `diff`.
    pub lines_added: usize,
    /// Lines removed in `diff`.
    pub lines_removed: usize,
}

impl ObjectChange {
    /// `Kind namespace/name`, with `old -> new` for a name that changed.
    pub fn title(&self) -> String {
        let name = match &self.previous_name {
            Some(previous) => format!("{previous} -> {}", self.name),
            None => self.name.clone(),
        };
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }
}

/// The changes of one environment.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// Name of the environment.
    pub environment: String,
    /// What the two sides are (`base a1b2c3d`, `working tree`, `cluster`), for headers.
    pub before: String,
    /// What the other side is, in the same terms as `before`.
    pub after: String,
    /// The objects that change, ordered by owner, kind, namespace and name.
    pub changes: Vec<ObjectChange>,
    /// How many objects are the same on both sides.
    pub unchanged: usize,
    /// Runtimes whose shim is installed, upgraded or no longer managed.
    pub runtimes: Vec<RuntimeRollout>,
    /// Objects the render would create that exist and are not spindle's (live diffs only): an
    /// apply stops on them until their owner lets spindle adopt them.
    pub conflicts: Vec<String>,
    /// Apps of the `after` side that would not run on their runtime (an interface their
    /// components import that its shim lacks), as `file:line:col: message`.
    pub refused: Vec<String>,
}

impl Diff {
    /// Whether nothing changes: no object, no shim, no conflict, no refusal.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.runtimes.is_empty()
            && self.conflicts.is_empty()
            && self.refused.is_empty()
    }

    /// How many changes there are of `action`.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

type Key = (String, Option<String>, String);

fn key(object: &Object) -> Key {
    (
        object.kind().to_owned(),
        object.namespace().map(str::to_owned),
        canonical::stable_name(object).to_owned(),
    )
}

/// Compares `before` with `after`; objects only in `before` get `gone` (Removed, or Pruned for a
/// cluster).
pub fn compare(before: &[Object], after: &[Object], gone: Action) -> (Vec<ObjectChange>, usize) {
    let old: BTreeMap<Key, &Object> = before.iter().map(|o| (key(o), o)).collect();
    let new: BTreeMap<Key, &Object> = after.iter().map(|o| (key(o), o)).collect();
    let mut changes = Vec::new();
    let mut unchanged = 0;
    let mut added = Vec::new();
    for (key, object) in &new {
        match old.get(key) {
            Some(previous) => match change(Some(previous), Some(object), Action::Changed) {
                Some(change) => changes.push(change),
                None => unchanged += 1,
            },
            None => added.push(*object),
        }
    }
    let mut removed: Vec<&Object> = old
        .iter()
        .filter(|(key, _)| !new.contains_key(*key))
        .map(|(_, object)| *object)
        .collect();
    let app_renames = app_renames(&removed, &added);
    for object in added {
        let owner = Owner::of(object.value());
        let twin = removed.iter().position(|previous| {
            let pairs = match (&owner, Owner::of(previous.value())) {
                // An app's objects are renamed only along with the app itself.
                (Owner::App(new), Owner::App(old)) => app_renames.get(&old) == Some(new),
                (Owner::App(_), _) | (_, Owner::App(_)) => false,
                _ => true,
            };
            pairs && is_rename(previous, object)
        });
        match twin {
            Some(index) => {
                let previous = removed.remove(index);
                changes.extend(change(Some(previous), Some(object), Action::Renamed));
            }
            None => changes.extend(change(None, Some(object), Action::Added)),
        }
    }
    for object in removed {
        changes.extend(change(Some(object), None, gone));
    }
    changes.sort_by(|a, b| {
        (&a.owner, &a.kind, &a.namespace, &a.name).cmp(&(&b.owner, &b.kind, &b.namespace, &b.name))
    });
    (changes, unchanged)
}

/// Kinds whose rename is an app's rename: a Deployment (or SpinApp) that only changed its name.
const APP_ANCHORS: [&str; 2] = ["Deployment", "SpinApp"];

/// Old app name to new, for apps whose workload was renamed and nothing else.
fn app_renames(removed: &[&Object], added: &[&Object]) -> BTreeMap<String, String> {
    fn anchors<'a>(objects: &[&'a Object]) -> Vec<(String, &'a Object)> {
        objects
            .iter()
            .filter(|o| APP_ANCHORS.contains(&o.kind()))
            .filter_map(|o| match Owner::of(o.value()) {
                Owner::App(name) => Some((name, *o)),
                _ => None,
            })
            .collect()
    }
    let mut renames = BTreeMap::new();
    let mut targets = anchors(added);
    for (old, previous) in anchors(removed) {
        if let Some(index) = targets.iter().position(|(_, o)| is_rename(previous, o)) {
            let (new, _) = targets.remove(index);
            renames.insert(old, new);
        }
    }
    renames
}

/// Same kind and namespace, and the same content once the old name is read as the new one.
fn is_rename(previous: &Object, object: &Object) -> bool {
    previous.kind() == object.kind()
        && previous.namespace() == object.namespace()
        && canonical::sorted(&canonical::comparable(&canonical::renamed(
            previous.value(),
            previous.name(),
            object.name(),
        ))) == canonical::sorted(&canonical::comparable(object.value()))
}

/// The change from `before` to `after`, or `None` when they are the same.
fn change(before: Option<&Object>, after: Option<&Object>, action: Action) -> Option<ObjectChange> {
    let (old, new) = canonical::mask_secrets(
        before.map(|o| canonical::comparable(o.value())).as_ref(),
        after.map(|o| canonical::comparable(o.value())).as_ref(),
    );
    let renamed = match (before, after) {
        (Some(b), Some(a)) => b.name() != a.name(),
        _ => false,
    };
    // Maps compare regardless of key order: most objects are unchanged, and need no text.
    if old == new && !renamed {
        return None;
    }
    let text = |value: Option<Value>| {
        value
            .map(|v| yaml::to_string(&canonical::sorted(&v)))
            .unwrap_or_default()
    };
    let (old_text, new_text) = (text(old), text(new));
    if old_text == new_text && !renamed {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&old_text, &new_text);
    let (mut lines_added, mut lines_removed) = (0, 0);
    for op in diff.iter_all_changes() {
        match op.tag() {
            similar::ChangeTag::Insert => lines_added += 1,
            similar::ChangeTag::Delete => lines_removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let object = after.or(before).expect("one side exists");
    Some(ObjectChange {
        action,
        api_version: object.api_version().to_owned(),
        kind: object.kind().to_owned(),
        namespace: object.namespace().map(str::to_owned),
        name: object.name().to_owned(),
        previous_name: before
            .zip(after)
            .filter(|(b, a)| b.name() != a.name())
            .map(|(b, _)| b.name().to_owned()),
        owner: Owner::of(object.value()),
        diff: diff.unified_diff().context_radius(3).to_string(),
        lines_added,
        lines_removed,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, replicas: u32, revision: &str) -> Object {
        Object::new(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "web",
                         "labels": {"spindle.dev/app": name, "spindle.dev/revision": revision}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"spindle.dev/app": name}}},
        }))
    }

    #[test]
    fn a_changed_field_is_one_line_and_the_revision_is_no_change() {
        let (changes, unchanged) = compare(
            &[deployment("a", 1, "r1"), deployment("b", 1, "r1")],
            &[deployment("a", 1, "r2"), deployment("b", 3, "r2")],
            Action::Removed,
        );
        assert_eq!(unchanged, 1);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, Action::Changed);
        assert_eq!((changes[0].lines_added, changes[0].lines_removed), (1, 1));
        assert!(
            changes[0].diff.contains("-  replicas: 1\n+  replicas: 3"),
            "{}",
            changes[0].diff
        );
        assert_eq!(changes[0].owner, Owner::App("b".into()));
    }

    #[test]
    fn renames_adds_and_removals_are_told_apart() {
        let (changes, unchanged) = compare(
            &[deployment("old", 4, "r1"), deployment("gone", 1, "r1")],
            &[deployment("new", 4, "r2"), deployment("fresh", 2, "r2")],
            Action::Removed,
        );
        assert_eq!(unchanged, 0);
        let summary: Vec<(Action, String)> =
            changes.iter().map(|c| (c.action, c.title())).collect();
        assert!(
            summary.contains(&(Action::Renamed, "Deployment web/old -> new".into())),
            "{summary:?}"
        );
        assert!(
            summary.contains(&(Action::Added, "Deployment web/fresh".into())),
            "{summary:?}"
        );
        assert!(
            summary.contains(&(Action::Removed, "Deployment web/gone".into())),
            "{summary:?}"
        );
    }
}
