//! evaluate → validate → render: the one composition of the pipeline's pure stages. Every command,
//! `spindle up` and the reconciler go through it, so a repository means the same thing to all of
//! them, and a broken one is reported the same way: a [`SpecError`], whose diagnostics point at
//! file:line:col and whose kind gives the exit code.

use std::collections::{BTreeMap, BTreeSet};

use spindle_config::evaluate::Evaluator;
use spindle_config::snapshot::Snapshot;
use spindle_config::spec::{self, Spec, SpecError};
use spindle_render::{self as render, NodePolicy, Object, Target};

use crate::capabilities;

/// An environment, validated and rendered.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The validated spec the objects came from.
    pub spec: Spec,
    /// The objects, sorted into apply order.
    pub objects: Vec<Object>,
}

/// Evaluates, validates and renders `environment` of `snapshot` (the only one when `None`).
pub fn build(
    evaluator: &Evaluator,
    snapshot: &Snapshot,
    environment: Option<&str>,
    target: &Target,
) -> Result<Rendered, SpecError> {
    let spec = spec::load(evaluator, snapshot, environment)?;
    let objects = render(&spec, snapshot, target)?;
    Ok(Rendered { spec, objects })
}

/// Renders a validated spec of `snapshot` for `target`, with the triggers of the apps whose
/// `spin.toml` the snapshot holds; what cannot be rendered is located in the repository like a
/// validation error. The second half of [`build`], for callers that look at the spec before
/// choosing the target (the nodes are only listed when there are runtimes).
pub fn render(spec: &Spec, snapshot: &Snapshot, target: &Target) -> Result<Vec<Object>, SpecError> {
    let mut target = target.clone();
    target.app_triggers = app_triggers(spec, snapshot);
    render::render(&spec.platform, &spec.environment, &target)
        .map_err(|problems| SpecError::Invalid(spec.diagnostics(problems)))
}

/// Refuses apps whose `spin.toml` has a trigger their runtime's shim does not run, located at the
/// app's `source` (rendering refuses them too; this needs no target). The apps' trigger types,
/// by `source`, when none is refused.
pub fn check_triggers(
    spec: &Spec,
    snapshot: &Snapshot,
) -> Result<BTreeMap<String, BTreeSet<String>>, SpecError> {
    let triggers = app_triggers(spec, snapshot);
    let problems = render::triggers::check_platform(&spec.platform, &triggers);
    if problems.is_empty() {
        Ok(triggers)
    } else {
        Err(SpecError::Invalid(spec.diagnostics(problems)))
    }
}

/// Refuses the apps of `spec` whose components import an interface their runtime's shim does
/// not provide, located in the repository; the imports are read as [`capabilities::read`]
/// does (built sources under `repo`, images with `pulling`). Returns the warnings of the apps
/// whose imports could not be read. Without `pulling` it reads files only; with it, it blocks on
/// a runtime of its own, so it is not for async callers then.
pub fn check_imports(
    spec: &Spec,
    repo: Option<&std::path::Path>,
    pulling: Option<&capabilities::Pulling>,
) -> Result<Vec<String>, SpecError> {
    let (imports, warnings) = match pulling {
        None => {
            let (read, unread) = capabilities::read_built(&spec.platform, repo);
            (
                read,
                unread
                    .iter()
                    .map(|name| capabilities::not_read(name))
                    .collect(),
            )
        }
        Some(pulling) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| {
                SpecError::Usage(format!("cannot start a runtime to pull images: {err}"))
            })?
            .block_on(capabilities::read(&spec.platform, repo, Some(pulling))),
    };
    let problems = capabilities::check(&spec.platform, &imports);
    if problems.is_empty() {
        Ok(warnings)
    } else {
        Err(SpecError::Invalid(spec.diagnostics(problems)))
    }
}

/// The trigger types of each app whose `spin.toml` (its `source`, a file or a folder holding
/// one) is in `snapshot`, by `source`. A manifest that does not parse is left out: `spindle up`
/// and `spindle build` report it where it is run.
pub fn app_triggers(spec: &Spec, snapshot: &Snapshot) -> BTreeMap<String, BTreeSet<String>> {
    spec.platform
        .apps
        .values()
        .filter_map(|app| app.source.as_ref())
        .filter_map(|source| {
            let file = if source.ends_with(".toml") {
                source.clone()
            } else {
                format!("{}/spin.toml", source.trim_end_matches('/'))
            };
            let manifest = spindle_runtime::manifest::parse(&file, snapshot.text(&file)?).ok()?;
            let triggers = &manifest.trigger;
            let mut types: BTreeSet<String> = [
                ("http", !triggers.http.is_empty()),
                ("redis", !triggers.redis.is_empty()),
                ("mqtt", !triggers.mqtt.is_empty()),
                ("cron", !triggers.cron.is_empty()),
                ("command", !triggers.command.is_empty()),
            ]
            .into_iter()
            .filter(|(_, used)| *used)
            .map(|(kind, _)| kind.to_owned())
            .collect();
            types.extend(triggers.other.keys().cloned());
            Some((source.clone(), types))
        })
        .collect()
}

/// Refuses what the spec's node runtimes ask for beyond `policy`, located in the repository. The
/// same check runs in [`render`] when the target carries the policy; this one needs no target.
pub fn check_node_policy(spec: &Spec, policy: &NodePolicy) -> Result<(), SpecError> {
    let problems = policy.check_platform(&spec.platform);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError::Invalid(spec.diagnostics(problems)))
    }
}
