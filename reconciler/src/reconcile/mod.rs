//! Keeping a cluster equal to one revision of the repository.
//!
//! A pass takes one exact commit and:
//! 1. evaluates, validates and renders the whole environment; any error stops the pass before
//!    anything is sent, and the last good revision keeps running;
//! 2. finds drift (objects changed or deleted by someone else since spindle applied them);
//! 3. refuses a prune of more than a set share of the inventory;
//! 4. records what it is about to apply, server-side applies in stages only what changed or
//!    drifted ([`apply`]), prunes what left the render ([`prune`]), and then writes the new
//!    [`inventory`];
//! 5. waits for Deployments and Jobs to become healthy ([`health`]) and reports it all in a
//!    status ConfigMap and Events ([`status`]) and in [`metrics`].
//!
//! [`Reconciler`] runs passes (planned, executed and assessed in turn; its conditions and Events
//! are recorded from the pass's [`Outcome`] in one place). [`Controller`] is the loop around them:
//! it fetches the followed revision and runs a pass at start, on every interval, on a webhook or a
//! push, and soon again while something rolls out or after a failure.

pub mod apply;
pub mod backend;
pub mod controller;
pub mod drift;
pub mod endpoints;
pub mod health;
pub mod inventory;
pub mod lease;
pub mod metrics;
pub mod observe;
pub mod ownership;
mod pass;
pub mod prune;
pub mod rollout;
pub mod state_map;
pub mod status;
pub mod webhook;

use std::time::Duration;

use self::inventory::ObjectRef;
use spindle_render::{Flavor, NodePolicy};

pub use controller::Controller;
pub use pass::Reconciler;

/// How a reconciler instance behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The environment to apply; `None` when the repository has only one.
    pub environment: Option<String>,
    /// Names this reconciler's inventory and status (several may share a cluster); default: the
    /// environment's name.
    pub instance: Option<String>,
    /// Where the inventory, status and installer Jobs live.
    pub system_namespace: String,
    /// Native objects or SpinKube's resources.
    pub flavor: Flavor,
    /// The node installer's image, instead of this version's default.
    pub installer_image: Option<String>,
    /// Refuse a prune of more than this share of the inventory.
    pub max_prune_share: f64,
    /// Prune however much a revision removes.
    pub allow_mass_prune: bool,
    /// The namespaces apps may be placed in; `None`: any but the cluster's and spindle's own.
    pub allowed_namespaces: Option<Vec<String>>,
    /// Whether apps may be placed in `default`.
    pub allow_default_namespace: bool,
    /// The ServiceAccount (`NAMESPACE/NAME`) every apply, read and prune of the rendered objects
    /// is made as, so that its RBAC bounds what the repository can do.
    pub service_account: Option<String>,
    /// How long to wait for Deployments and Jobs to become healthy; zero checks once.
    pub health_timeout: Duration,
    /// Only show what would be done.
    pub dry_run: bool,
    /// What the repository may install on nodes; `None`: nothing.
    pub node_policy: Option<NodePolicy>,
    /// Where the revision comes from, for the status.
    pub source: String,
}

impl Default for Settings {
    /// The only environment, named after it, in `spindle-system`, native objects, prunes of up
    /// to half the inventory, no namespace list, `default` refused, no ServiceAccount to act as,
    /// two minutes for health, for real, no node policy.
    fn default() -> Self {
        Settings {
            environment: None,
            instance: None,
            system_namespace: "spindle-system".to_owned(),
            flavor: Flavor::Native,
            installer_image: None,
            max_prune_share: 0.5,
            allow_mass_prune: false,
            allowed_namespaces: None,
            allow_default_namespace: false,
            service_account: None,
            health_timeout: Duration::from_secs(120),
            dry_run: false,
            node_policy: None,
            source: String::new(),
        }
    }
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The commit the pass was about.
    pub revision: String,
    /// The revision was applied (health aside).
    pub applied: bool,
    /// Applied and every Deployment and Job healthy.
    pub ready: bool,
    /// Why the pass stopped, or what is unhealthy.
    pub message: String,
    /// What was sent (or, in a dry run, would be).
    pub sent: Vec<ObjectRef>,
    /// How many objects were already as desired.
    pub unchanged: usize,
    /// What was pruned (or, in a dry run, would be).
    pub pruned: Vec<ObjectRef>,
    /// What someone else had changed, and was put back.
    pub drifted: Vec<drift::Drifted>,
    /// Namespaces left out of the prune, and why (`Namespace web: it holds ConfigMap theirs`).
    pub kept: Vec<String>,
    /// Something is still rolling out (installer Jobs, say): come back soon.
    pub progressing: bool,
    /// Why the pass stopped before applying, when it did.
    pub stopped: Option<Stopped>,
    /// `runtime/node` pairs where a shim was installed in this pass.
    pub provisioned: Vec<String>,
    /// `runtime/node` pairs where a shim was removed in this pass.
    pub uninstalled: Vec<String>,
    /// The reason of the Ready condition of an applied revision.
    pub reason: &'static str,
    /// Whether what was applied is failing (a failed Job or rollout), worth a Warning Event.
    pub failing: bool,
}

/// A pass that stopped before applying (or while applying), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The condition reason: `ValidationFailed`, `PruneRefused`, `ApplyFailed`.
    pub reason: &'static str,
    /// Whether only a new revision can fix it (the Stalled condition).
    pub stalled: bool,
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Up to ten objects by name, and how many more.
fn list(objects: &[ObjectRef]) -> String {
    let mut names: Vec<String> = objects.iter().take(10).map(ToString::to_string).collect();
    if objects.len() > 10 {
        names.push(format!("and {} more", objects.len() - 10));
    }
    names.join(", ")
}
