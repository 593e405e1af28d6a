//! The three ways a diff is shown: a terminal, a pull-request comment, a program.

mod markdown;
mod text;

use serde_json::json;
pub use text::inert;

use super::{Action, Diff};

/// Output format of `spindle diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Unified diff per object, coloured on a terminal.
    Text,
    /// A pull-request comment: summary tables, then a collapsible diff per object.
    Markdown,
    /// Machine-readable; the schema is in docs/diff.md.
    Json,
}

/// The diffs of one or more environments, as `format`.
pub fn show(diffs: &[Diff], format: Format, color: bool) -> String {
    match format {
        Format::Text => diffs.iter().map(|diff| text::show(diff, color)).collect(),
        Format::Markdown => markdown::show(diffs),
        Format::Json => json(diffs),
    }
}

const COUNTED: [Action; 5] = [
    Action::Added,
    Action::Changed,
    Action::Renamed,
    Action::Removed,
    Action::Pruned,
];

/// `2 added, 1 changed, 14 unchanged`: the non-zero counts.
fn summary(diff: &Diff) -> String {
    let mut parts: Vec<String> = COUNTED
        .iter()
        .map(|&action| (action, diff.count(action)))
        .filter(|&(_, n)| n > 0)
        .map(|(action, n)| format!("{n} {}", word(action)))
        .collect();
    parts.push(format!("{} unchanged", diff.unchanged));
    parts.join(", ")
}

fn word(action: Action) -> &'static str {
    match action {
        Action::Added => "added",
        Action::Changed => "changed",
        Action::Renamed => "renamed",
        Action::Removed => "removed",
        Action::Pruned => "to be pruned",
    }
}

fn json(diffs: &[Diff]) -> String {
    let environments: Vec<serde_json::Value> = diffs
        .iter()
        .map(|diff| {
            let runtimes: Vec<serde_json::Value> = diff
                .runtimes
                .iter()
                .map(|rollout| {
                    let mut value = serde_json::to_value(rollout).expect("serialises");
                    value["message"] = json!(rollout.sentence());
                    value
                })
                .collect();
            let mut environment = json!({
                "environment": diff.environment,
                "before": diff.before,
                "after": diff.after,
                "summary": {
                    "added": diff.count(Action::Added),
                    "changed": diff.count(Action::Changed),
                    "renamed": diff.count(Action::Renamed),
                    "removed": diff.count(Action::Removed),
                    "pruned": diff.count(Action::Pruned),
                    "unchanged": diff.unchanged,
                },
                "objects": diff.changes,
                "runtimes": runtimes,
            });
            if !diff.conflicts.is_empty() {
                environment["conflicts"] = json!(diff.conflicts);
            }
            if !diff.refused.is_empty() {
                environment["refused"] = json!(diff.refused);
            }
            environment
        })
        .collect();
    let document = json!({
        "schemaVersion": 1,
        "changed": diffs.iter().any(|diff| !diff.is_empty()),
        "environments": environments,
    });
    serde_json::to_string_pretty(&document).expect("serialises") + "\n"
}
