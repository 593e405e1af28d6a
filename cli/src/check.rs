//! `spindle check`: evaluate, validate, summarise.

use std::io::Write as _;

use anyhow::Result;
use spindle_schema::Platform;

use super::{CheckArgs, exit, load, rejected};
use spindle_config::snapshot::Snapshot;
use spindle_config::spec::Spec;

pub fn check(args: &CheckArgs) -> Result<i32> {
    let (snapshot, spec) = load(&args.repo)?;
    if let Some(policy) = args.node_policy.read()? {
        spindle_reconciler::pipeline::check_node_policy(&spec, &policy)
            .map_err(|err| rejected(&snapshot, err))?;
    }
    let triggers = spindle_reconciler::pipeline::check_triggers(&spec, &snapshot)
        .map_err(|err| rejected(&snapshot, err))?;
    let warnings = spindle_reconciler::pipeline::check_imports(
        &spec,
        Some(&args.repo.repo),
        args.imports.pulling().as_ref(),
    )
    .map_err(|err| rejected(&snapshot, err))?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", summary(&snapshot, &spec))?;
    for line in describe(&spec.platform, &triggers) {
        writeln!(out, "{line}")?;
    }
    Ok(exit::OK)
}

fn summary(snapshot: &Snapshot, spec: &Spec) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}: environment {} is valid: {}, {}",
        snapshot.display_root().display(),
        spec.environment,
        plural(spec.platform.apps.len(), "app"),
        plural(spec.platform.runtimes.len(), "runtime"),
    )
}

/// One line per app (with its triggers, when its `spin.toml` is in the repository) and runtime.
fn describe(
    platform: &Platform,
    triggers: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, app) in &platform.apps {
        let scale = match &app.autoscaling {
            Some(a) => format!(
                "replicas {}-{} (cpu {}%)",
                a.min_replicas, a.max_replicas, a.target_cpu_utilization
            ),
            None => format!("replicas {}", app.replicas),
        };
        let from = match (&app.image, &app.source) {
            (Some(image), _) => format!("image {image}"),
            (None, Some(source)) => format!("source {source}"),
            (None, None) => String::new(),
        };
        let runtime = platform.runtime_of(app).map_or("-", |(name, _)| name);
        let kinds = app
            .source
            .as_ref()
            .and_then(|source| triggers.get(source))
            .map(|kinds| {
                format!(
                    " (triggers {})",
                    kinds.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .unwrap_or_default();
        lines.push(format!(
            "  app      {name:<20} {:<12} {scale:<24} runtime {runtime:<12} {from}{kinds}",
            app.namespace
        ));
    }
    for (name, runtime) in &platform.runtimes {
        let nodes = if runtime.node_selector.is_empty() {
            "all nodes".to_owned()
        } else {
            runtime
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        lines.push(format!(
            "  runtime  {name:<20} shim {:<10} handler {:<12} nodes {nodes} (maxUnavailable {})",
            runtime.shim.version, runtime.handler, runtime.rollout.max_unavailable
        ));
    }
    lines
}
