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

pub mod apply;
pub mod drift;
pub mod endpoints;
pub mod health;
pub mod inventory;
pub mod metrics;
pub mod observe;
pub mod prune;
pub mod rollout;
mod state_map;
pub mod status;
pub mod webhook;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use anyhow::Result;

use self::{
    health::State,
    inventory::{Inventory, ObjectRef},
    metrics::Metrics,
    status::{Reporter, Status},
};
use crate::{
    cluster::Cluster,
    evaluate::Evaluator,
    render::{self, Flavor, KubeVersion, Object, Options},
    snapshot::Snapshot,
    spec,
};

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
    pub flavor: Flavor,
    pub installer_image: Option<String>,
    /// Refuse a prune of more than this share of the inventory.
    pub max_prune_share: f64,
    pub allow_mass_prune: bool,
    /// How long to wait for Deployments and Jobs to become healthy; zero checks once.
    pub health_timeout: Duration,
    /// Only show what would be done.
    pub dry_run: bool,
    /// Where the revision comes from, for the status.
    pub source: String,
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub revision: String,
    /// The revision was applied (health aside).
    pub applied: bool,
    /// Applied and every Deployment and Job healthy.
    pub ready: bool,
    /// Why the pass stopped, or what is unhealthy.
    pub message: String,
    pub sent: Vec<ObjectRef>,
    pub unchanged: usize,
    pub pruned: Vec<ObjectRef>,
    pub drifted: Vec<drift::Drifted>,
    /// Something is still rolling out (installer Jobs, say): come back soon.
    pub progressing: bool,
}

/// One reconciler instance: a cluster, an evaluator, and what it knows from earlier passes.
pub struct Reconciler {
    cluster: Cluster,
    evaluator: Evaluator,
    settings: Settings,
    kube: KubeVersion,
    /// Where the inventory and status live, once the first pass named the environment.
    state: Option<(inventory::Store, Reporter)>,
    status: Status,
    inventory: Option<Inventory>,
    /// The last commit evaluated and its spec: a pass over the same commit (the interval's drift
    /// check) renders again but does not evaluate again.
    evaluated: Option<(String, spec::Spec)>,
    pub metrics: Arc<Metrics>,
}

impl Reconciler {
    pub async fn new(
        client: kube::Client,
        evaluator: Evaluator,
        settings: Settings,
    ) -> Result<Self> {
        let kube = crate::cluster::version(&client, Duration::from_secs(10)).await?;
        let cluster = Cluster::connect(client).await?;
        Ok(Reconciler {
            cluster,
            evaluator,
            kube,
            state: None,
            status: Status::default(),
            inventory: None,
            evaluated: None,
            settings,
            metrics: Arc::new(Metrics::default()),
        })
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Applies `snapshot`, the files of `commit`.
    pub async fn pass(&mut self, commit: &str, snapshot: &Snapshot) -> Result<Outcome> {
        let started = std::time::Instant::now();
        if self.state.is_none() {
            let (environment, _) =
                spec::environment(snapshot, self.settings.environment.as_deref())
                    .map_err(|err| anyhow::anyhow!(err.render(snapshot)))?;
            let instance = self.settings.instance.clone().unwrap_or(environment);
            let client = self.cluster.client().clone();
            let namespace = &self.settings.system_namespace;
            let store = inventory::Store::new(client.clone(), namespace, &instance);
            let reporter = Reporter::new(client, namespace, &instance);
            if !self.settings.dry_run {
                self.ensure_system_namespace().await?;
            }
            self.inventory = Some(store.load().await?);
            if let Some(status) = reporter.load().await? {
                self.status = status;
            }
            self.status.instance = instance;
            self.state = Some((store, reporter));
        }
        self.status.source = self.settings.source.clone();
        self.status.last_attempted_revision = Some(commit.to_owned());
        self.status.observed_generation += 1;
        let outcome = self.attempt(commit, snapshot).await;
        let elapsed = started.elapsed();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                self.fail("ReconciliationFailed", &format!("{err:#}"), false)
                    .await;
                self.metrics.record_failure(elapsed);
                return Err(err);
            }
        };
        if outcome.applied {
            self.metrics.record(&outcome, elapsed);
            self.status.last_reconcile = status::Counts {
                applied: outcome.sent.len(),
                unchanged: outcome.unchanged,
                pruned: outcome.pruned.len(),
                drift_corrected: outcome.drifted.len(),
                duration_ms: elapsed.as_millis() as u64,
            };
        } else {
            self.metrics.record_failure(elapsed);
        }
        if !self.settings.dry_run {
            self.reporter().save(&self.status).await?;
        }
        Ok(outcome)
    }

    async fn attempt(&mut self, commit: &str, snapshot: &Snapshot) -> Result<Outcome> {
        let mut outcome = Outcome {
            revision: commit.to_owned(),
            ..Outcome::default()
        };
        let mut clock = std::time::Instant::now();
        let desired = match self.render(commit, snapshot).await? {
            Ok(desired) => desired,
            Err(message) => {
                self.fail(
                    "ValidationFailed",
                    &format!(
                        "revision {} is invalid; nothing was applied:\n{message}",
                        short(commit)
                    ),
                    true,
                )
                .await;
                outcome.message = message;
                return Ok(outcome);
            }
        };
        lap(&mut clock, "render");
        let previous = self.inventory.clone().unwrap_or_default();
        let wanted: BTreeSet<ObjectRef> = desired.iter().map(ObjectRef::of).collect();
        // The system namespace holds the inventory itself: never pruned.
        let candidates: Vec<ObjectRef> = prune::candidates(&previous, &wanted)
            .into_iter()
            .filter(|id| !(id.kind == "Namespace" && id.name == self.settings.system_namespace))
            .collect();
        if let Err(message) = prune::check_share(
            candidates.len(),
            previous.objects.len(),
            self.settings.max_prune_share,
            self.settings.allow_mass_prune,
        ) {
            self.fail("PruneRefused", &message, true).await;
            outcome.message = message;
            return Ok(outcome);
        }
        let mut live = observe::list(&self.cluster, &desired, &self.status.environment).await?;
        let found = drift::detect(&self.cluster, &desired, &previous, &live).await?;
        lap(&mut clock, "drift");
        let mut basis = previous.clone();
        for drifted in &found.drifted {
            basis.objects.remove(&drifted.id);
        }
        for (id, marker) in &found.markers {
            if let Some(entry) = basis.objects.get_mut(id) {
                entry.marker = marker.clone();
            }
        }
        if self.settings.dry_run {
            let plan = apply::plan(&desired, &basis);
            outcome.unchanged = plan.unchanged.len();
            outcome.sent = plan.to_send.into_iter().map(|(id, _, _)| id).collect();
            outcome.pruned = candidates;
            outcome.drifted = found.drifted;
            outcome.applied = true;
            outcome.message = "dry run: nothing was sent".to_owned();
            return Ok(outcome);
        }

        // Record what is about to be applied, so a crash half-way still leaves it prunable.
        let new_objects: Vec<ObjectRef> = wanted
            .iter()
            .filter(|id| !previous.objects.contains_key(*id))
            .cloned()
            .collect();
        if !new_objects.is_empty() {
            let mut marked = previous.clone();
            marked.applying = new_objects
                .into_iter()
                .chain(previous.applying.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            self.store().save(&marked).await?;
        }
        let applied = match apply::apply(&self.cluster, &desired, &basis).await {
            Ok(applied) => applied,
            Err(err) => {
                let message = format!("applying revision {} failed: {err:#}", short(commit));
                self.fail("ApplyFailed", &message, false).await;
                outcome.message = message;
                return Ok(outcome);
            }
        };
        lap(&mut clock, "apply");
        live.extend(applied.stored);
        let pruned = prune::prune(&self.cluster, &candidates).await?;
        let inventory = Inventory {
            revision: Some(commit.to_owned()),
            objects: applied.entries,
            applying: Vec::new(),
        };
        if Some(&inventory) != self.inventory.as_ref() {
            self.store().save(&inventory).await?;
        }
        self.inventory = Some(inventory);
        outcome.applied = true;
        outcome.sent = applied.sent;
        outcome.unchanged = applied.unchanged;
        outcome.pruned = pruned.deleted;
        outcome.drifted = found.drifted;
        self.status.last_applied_revision = Some(commit.to_owned());
        self.report_changes(&outcome).await;
        lap(&mut clock, "prune and record");

        let report = health::wait(
            &self.cluster,
            &desired,
            &self.status.environment,
            self.settings.health_timeout,
            live,
        )
        .await?;
        self.status.apps = report
            .apps
            .iter()
            .map(|(app, health)| (app.clone(), health.into()))
            .collect();
        lap(&mut clock, "health");
        let rollout = rollout::advance(self.cluster.client(), &desired, &report).await?;
        if !rollout.provisioned.is_empty() {
            let message = format!("installed on {}", rollout.provisioned.join(", "));
            self.reporter()
                .event(false, "NodeProvisioned", &message)
                .await;
        }
        if !rollout.uninstalled.is_empty() {
            let message = format!("uninstalled from {}", rollout.uninstalled.join(", "));
            self.reporter()
                .event(false, "NodeUninstalled", &message)
                .await;
        }
        // The next wave of a rollout is planned by the next pass: come back soon.
        outcome.progressing = !rollout.provisioned.is_empty()
            || !rollout.uninstalled.is_empty()
            || report
                .unhealthy()
                .any(|(id, h)| h.state == State::Progressing && id.kind == "Job");
        let unhealthy: Vec<String> = report
            .unhealthy()
            .map(|(id, health)| format!("{id}: {}", health.reason))
            .collect();
        self.status.set("Stalled", false, "Applied", "");
        self.status
            .set("Reconciling", outcome.progressing, "Applied", "");
        if !rollout.failed.is_empty() {
            outcome.message = format!(
                "applied revision {}; the node runtime rollout stopped: {}",
                short(commit),
                rollout.failed.join("; ")
            );
            self.status
                .set("Ready", false, "RolloutFailed", &outcome.message);
            self.reporter()
                .event(true, "RolloutFailed", &outcome.message)
                .await;
        } else if unhealthy.is_empty() {
            outcome.ready = true;
            outcome.message = format!("applied revision {}", short(commit));
            self.status
                .set("Ready", true, "ReconciliationSucceeded", &outcome.message);
        } else {
            let reason = if report.any_failed() {
                "HealthCheckFailed"
            } else {
                "Progressing"
            };
            outcome.message = format!(
                "applied revision {}; not healthy yet: {}",
                short(commit),
                unhealthy.join("; ")
            );
            self.status.set("Ready", false, reason, &outcome.message);
            if report.any_failed() {
                self.reporter().event(true, reason, &outcome.message).await;
            }
        }
        Ok(outcome)
    }

    fn store(&self) -> &inventory::Store {
        &self.state.as_ref().expect("set by the first pass").0
    }

    fn reporter(&self) -> &Reporter {
        &self.state.as_ref().expect("set by the first pass").1
    }

    /// The desired objects of `commit`, or why there are none (file:line:col messages).
    async fn render(
        &mut self,
        commit: &str,
        snapshot: &Snapshot,
    ) -> Result<Result<Vec<Object>, String>> {
        let spec = match self.evaluated.take() {
            Some((evaluated, spec)) if evaluated == commit => spec,
            _ => {
                let evaluator = &self.evaluator;
                let wanted = self.settings.environment.clone();
                let loaded = tokio::task::block_in_place(|| {
                    spec::load(evaluator, snapshot, wanted.as_deref())
                });
                match loaded {
                    Ok(spec) => spec,
                    Err(err) => return Ok(Err(err.render(snapshot))),
                }
            }
        };
        self.status.environment = spec.environment.clone();
        let mut options = Options::new(&spec.environment);
        options.kube = self.kube;
        options.flavor = self.settings.flavor;
        options.revision = Some(commit.to_owned());
        options.system_namespace = self.settings.system_namespace.clone();
        if let Some(image) = &self.settings.installer_image {
            options.installer_image = image.clone();
        }
        if options.flavor == Flavor::Native && !spec.platform.runtimes.is_empty() {
            options.nodes = Some(render::nodes::list(self.cluster.client().clone()).await?);
        }
        let rendered = match render::render(&spec.platform, &options) {
            Ok(objects) => Ok(objects),
            Err(problems) => Err(spec
                .diagnostics(problems)
                .iter()
                .map(|d| d.render(snapshot))
                .collect::<Vec<_>>()
                .join("\n\n")),
        };
        self.evaluated = Some((commit.to_owned(), spec));
        Ok(rendered)
    }

    /// Reports a pass that stopped: conditions, an Event, the log. `stalled` when only a new
    /// revision can fix it.
    async fn fail(&mut self, reason: &str, message: &str, stalled: bool) {
        self.status.set("Ready", false, reason, message);
        self.status.set("Reconciling", false, reason, "");
        self.status.set(
            "Stalled",
            stalled,
            reason,
            if stalled { message } else { "" },
        );
        if !self.settings.dry_run {
            self.reporter().event(true, reason, message).await;
        }
    }

    async fn report_changes(&self, outcome: &Outcome) {
        if !outcome.drifted.is_empty() {
            let what: Vec<String> = outcome
                .drifted
                .iter()
                .map(|d| format!("{}: {}", d.id, d.what))
                .collect();
            let message = format!("put back what changed in the cluster: {}", what.join("; "));
            tracing::warn!("{message}");
            self.reporter()
                .event(true, "DriftCorrected", &message)
                .await;
        }
        if !outcome.sent.is_empty() {
            let message = format!(
                "revision {}: applied {} object(s), {} unchanged: {}",
                short(&outcome.revision),
                outcome.sent.len(),
                outcome.unchanged,
                list(&outcome.sent)
            );
            tracing::info!("{message}");
            self.reporter().event(false, "Applied", &message).await;
        }
        if !outcome.pruned.is_empty() {
            let message = format!("pruned {}", list(&outcome.pruned));
            tracing::info!("{message}");
            self.reporter().event(false, "Pruned", &message).await;
        }
    }

    /// The system namespace holds the inventory; it is created, never pruned.
    async fn ensure_system_namespace(&self) -> Result<()> {
        let namespace = Object::new(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.settings.system_namespace},
        }));
        self.cluster.apply(&namespace, false).await?;
        Ok(())
    }
}

/// Logs how long `phase` took since the last lap.
fn lap(clock: &mut std::time::Instant, phase: &str) {
    tracing::debug!(
        phase,
        ms = clock.elapsed().as_secs_f64() * 1000.0,
        "reconcile phase"
    );
    *clock = std::time::Instant::now();
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
