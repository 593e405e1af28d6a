//! evaluate → validate → render: the one composition of the pipeline's pure stages. Every command,
//! `spindle up` and the reconciler go through it, so a repository means the same thing to all of
//! them, and a broken one is reported the same way: a [`SpecError`], whose diagnostics point at
//! file:line:col and whose kind gives the exit code.

use spindle_config::evaluate::Evaluator;
use spindle_config::snapshot::Snapshot;
use spindle_config::spec::{self, Spec, SpecError};
use spindle_render::{self as render, NodePolicy, Object, Target};

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
    let objects = render(&spec, target)?;
    Ok(Rendered { spec, objects })
}

/// Renders a validated spec for `target`; what cannot be rendered is located in the repository
/// like a validation error. The second half of [`build`], for callers that look at the spec
/// before choosing the target (the nodes are only listed when there are runtimes).
pub fn render(spec: &Spec, target: &Target) -> Result<Vec<Object>, SpecError> {
    render::render(&spec.platform, &spec.environment, target)
        .map_err(|problems| SpecError::Invalid(spec.diagnostics(problems)))
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
