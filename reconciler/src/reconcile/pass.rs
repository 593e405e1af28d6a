//! One reconcile pass, in three steps: **plan** (render the revision, refuse a mass prune, find
//! drift), **execute** (mark what is about to be applied, apply, prune, write the inventory) and
//! **assess** (health, node rollouts). Each step returns what it found; the pass's conditions,
//! Events and metrics are recorded from the resulting [`Outcome`] in [`Reconciler::record`], and
//! nowhere else.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use anyhow::Result;

use super::{
    Outcome, Settings, Stopped, apply, drift, health,
    health::State,
    inventory::{self, Inventory, ObjectRef},
    list,
    metrics::Metrics,
    observe, prune, rollout, short,
    status::{self, Reporter, Status},
};
use crate::{cluster::Cluster, pipeline};
use spindle_config::evaluate::Evaluator;
use spindle_config::snapshot::Snapshot;
use spindle_config::spec;
use spindle_render::{Flavor, KubeVersion, Object, Target};

/// One reconciler instance: a cluster, an evaluator, and what it knows from earlier passes.
pub struct Reconciler {
    cluster: Cluster,
    evaluator: Evaluator,
    settings: Settings,
    kube: KubeVersion,
    /// Where the inventory and status live, once the first pass named the environment.
    places: Option<Places>,
    status: Status,
    inventory: Inventory,
    /// The last commit evaluated and its spec: a pass over the same commit (the interval's drift
    /// check) renders again but does not evaluate again.
    evaluated: Option<(String, spec::Spec)>,
    /// Counters and timings of the passes, for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// Where one instance keeps its inventory and reports its status.
#[derive(Clone)]
struct Places {
    store: inventory::Store,
    reporter: Reporter,
}

/// What the plan step found: the objects to apply, against what, and what to prune.
struct Plan {
    desired: Vec<Object>,
    /// The inventory as the cluster really is (drifted objects taken out, live markers updated).
    basis: Inventory,
    /// Objects of the last revision that this one no longer has.
    prune: Vec<ObjectRef>,
    found: drift::Found,
    live: observe::Live,
}

impl Reconciler {
    /// A reconciler for `client`'s cluster; asks for its version and discovers its resources.
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
            places: None,
            status: Status::default(),
            inventory: Inventory::default(),
            evaluated: None,
            settings,
            metrics: Arc::new(Metrics::default()),
        })
    }

    /// The status as of the last pass.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Applies `snapshot`, the files of `commit`.
    pub async fn pass(&mut self, commit: &str, snapshot: &Snapshot) -> Result<Outcome> {
        let started = std::time::Instant::now();
        let places = self.places(snapshot).await?;
        self.status.source = self.settings.source.clone();
        self.status.last_attempted_revision = Some(commit.to_owned());
        self.status.observed_generation += 1;
        let outcome = self.attempt(&places, commit, snapshot).await;
        let elapsed = started.elapsed();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                self.stop(&places, "ReconciliationFailed", &format!("{err:#}"), false)
                    .await;
                self.metrics.record_failure(elapsed);
                return Err(err);
            }
        };
        self.record(&places, &outcome, elapsed).await;
        if !self.settings.dry_run {
            places.reporter.save(&self.status).await?;
        }
        Ok(outcome)
    }

    /// The inventory store and status reporter of this instance, opened by the first pass (which
    /// also loads the inventory and status that earlier runs left).
    async fn places(&mut self, snapshot: &Snapshot) -> Result<Places> {
        if let Some(places) = &self.places {
            return Ok(places.clone());
        }
        let (environment, _) = spec::environment(snapshot, self.settings.environment.as_deref())
            .map_err(|err| anyhow::anyhow!(err.render(snapshot)))?;
        let instance = self.settings.instance.clone().unwrap_or(environment);
        let client = self.cluster.client().clone();
        let namespace = &self.settings.system_namespace;
        let places = Places {
            store: inventory::Store::new(client.clone(), namespace, &instance),
            reporter: Reporter::new(client, namespace, &instance),
        };
        if !self.settings.dry_run {
            self.ensure_system_namespace().await?;
        }
        self.inventory = places.store.load().await?;
        if let Some(status) = places.reporter.load().await? {
            self.status = status;
        }
        self.status.instance = instance;
        self.places = Some(places.clone());
        Ok(places)
    }

    async fn attempt(
        &mut self,
        places: &Places,
        commit: &str,
        snapshot: &Snapshot,
    ) -> Result<Outcome> {
        let mut clock = std::time::Instant::now();
        let mut plan = match self.plan(commit, snapshot).await? {
            Ok(plan) => plan,
            Err(stopped) => return Ok(stopped),
        };
        lap(&mut clock, "plan");
        if self.settings.dry_run {
            let to_send = apply::plan(&plan.desired, &plan.basis);
            return Ok(Outcome {
                revision: commit.to_owned(),
                unchanged: to_send.unchanged.len(),
                sent: to_send.to_send.into_iter().map(|(id, _, _)| id).collect(),
                pruned: plan.prune,
                drifted: plan.found.drifted,
                applied: true,
                message: "dry run: nothing was sent".to_owned(),
                ..Outcome::default()
            });
        }
        let (outcome, live) = match self.execute(places, commit, &mut plan).await? {
            Ok(executed) => executed,
            Err(stopped) => return Ok(stopped),
        };
        lap(&mut clock, "apply, prune and record");
        let outcome = self.assess(commit, &plan.desired, outcome, live).await?;
        lap(&mut clock, "health");
        Ok(outcome)
    }

    /// Renders the revision, refuses a mass prune, and finds drift. Nothing is sent.
    async fn plan(&mut self, commit: &str, snapshot: &Snapshot) -> Result<Result<Plan, Outcome>> {
        let desired = match self.render(commit, snapshot).await? {
            Ok(desired) => desired,
            Err(message) => {
                return Ok(Err(stopped(
                    commit,
                    "ValidationFailed",
                    true,
                    format!(
                        "revision {} is invalid; nothing was applied:\n{message}",
                        short(commit)
                    ),
                )));
            }
        };
        let previous = &self.inventory;
        let wanted: BTreeSet<ObjectRef> = desired.iter().map(ObjectRef::of).collect();
        // The system namespace holds the inventory itself: never pruned.
        let prune: Vec<ObjectRef> = prune::candidates(previous, &wanted)
            .into_iter()
            .filter(|id| !(id.kind == "Namespace" && id.name == self.settings.system_namespace))
            .collect();
        if let Err(message) = prune::check_share(
            prune.len(),
            previous.objects.len(),
            self.settings.max_prune_share,
            self.settings.allow_mass_prune,
        ) {
            return Ok(Err(stopped(commit, "PruneRefused", true, message)));
        }
        let live = observe::list(&self.cluster, &desired, &self.status.environment).await?;
        let found = drift::detect(&self.cluster, &desired, previous, &live).await?;
        let mut basis = previous.clone();
        for drifted in &found.drifted {
            basis.objects.remove(&drifted.id);
        }
        for (id, marker) in &found.markers {
            if let Some(entry) = basis.objects.get_mut(id) {
                entry.marker = marker.clone();
            }
        }
        Ok(Ok(Plan {
            desired,
            basis,
            prune,
            found,
            live,
        }))
    }

    /// Records what is about to be applied (so a crash half-way still leaves it prunable),
    /// applies, prunes and writes the new inventory.
    async fn execute(
        &mut self,
        places: &Places,
        commit: &str,
        plan: &mut Plan,
    ) -> Result<Result<(Outcome, observe::Live), Outcome>> {
        let previous = &self.inventory;
        let new_objects: Vec<ObjectRef> = plan
            .desired
            .iter()
            .map(ObjectRef::of)
            .filter(|id| !previous.objects.contains_key(id))
            .collect();
        if !new_objects.is_empty() {
            let mut marked = previous.clone();
            marked.applying = new_objects
                .into_iter()
                .chain(previous.applying.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            places.store.save(&marked).await?;
        }
        let applied = match apply::apply(&self.cluster, &plan.desired, &plan.basis).await {
            Ok(applied) => applied,
            Err(err) => {
                let message = format!("applying revision {} failed: {err:#}", short(commit));
                return Ok(Err(stopped(commit, "ApplyFailed", false, message)));
            }
        };
        let mut live = std::mem::take(&mut plan.live);
        live.extend(applied.stored);
        let pruned = prune::prune(&self.cluster, &plan.prune).await?;
        let inventory = Inventory {
            revision: Some(commit.to_owned()),
            objects: applied.entries,
            applying: Vec::new(),
        };
        if inventory != self.inventory {
            places.store.save(&inventory).await?;
        }
        self.inventory = inventory;
        self.status.last_applied_revision = Some(commit.to_owned());
        Ok(Ok((
            Outcome {
                revision: commit.to_owned(),
                applied: true,
                sent: applied.sent,
                unchanged: applied.unchanged,
                pruned: pruned.deleted,
                drifted: std::mem::take(&mut plan.found.drifted),
                ..Outcome::default()
            },
            live,
        )))
    }

    /// Waits for health, advances node rollouts, and says whether the revision is ready.
    async fn assess(
        &mut self,
        commit: &str,
        desired: &[Object],
        mut outcome: Outcome,
        live: observe::Live,
    ) -> Result<Outcome> {
        let report = health::wait(
            &self.cluster,
            desired,
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
        let rollout = rollout::advance(self.cluster.client(), desired, &report).await?;
        outcome.provisioned = rollout.provisioned;
        outcome.uninstalled = rollout.uninstalled;
        // The next wave of a rollout is planned by the next pass: come back soon.
        outcome.progressing = !outcome.provisioned.is_empty()
            || !outcome.uninstalled.is_empty()
            || report
                .unhealthy()
                .any(|(id, h)| h.state == State::Progressing && id.kind == "Job");
        let unhealthy: Vec<String> = report
            .unhealthy()
            .map(|(id, health)| format!("{id}: {}", health.reason))
            .collect();
        if !rollout.failed.is_empty() {
            outcome.reason = "RolloutFailed";
            outcome.failing = true;
            outcome.message = format!(
                "applied revision {}; the node runtime rollout stopped: {}",
                short(commit),
                rollout.failed.join("; ")
            );
        } else if unhealthy.is_empty() {
            outcome.ready = true;
            outcome.reason = "ReconciliationSucceeded";
            outcome.message = format!("applied revision {}", short(commit));
        } else {
            outcome.failing = report.any_failed();
            outcome.reason = if outcome.failing {
                "HealthCheckFailed"
            } else {
                "Progressing"
            };
            outcome.message = format!(
                "applied revision {}; not healthy yet: {}",
                short(commit),
                unhealthy.join("; ")
            );
        }
        Ok(outcome)
    }

    /// The pass's conditions, Events and metrics, from its outcome.
    async fn record(&mut self, places: &Places, outcome: &Outcome, elapsed: Duration) {
        if let Some(stopped) = &outcome.stopped {
            self.stop(places, stopped.reason, &outcome.message, stopped.stalled)
                .await;
        }
        if !outcome.applied {
            self.metrics.record_failure(elapsed);
            return;
        }
        self.metrics.record(outcome, elapsed);
        self.status.last_reconcile = status::Counts {
            applied: outcome.sent.len(),
            unchanged: outcome.unchanged,
            pruned: outcome.pruned.len(),
            drift_corrected: outcome.drifted.len(),
            duration_ms: elapsed.as_millis() as u64,
        };
        if self.settings.dry_run {
            return;
        }
        let events = changes(outcome);
        for (warning, reason, message) in &events {
            if *warning {
                tracing::warn!("{message}");
            } else {
                tracing::info!("{message}");
            }
            places.reporter.event(*warning, reason, message).await;
        }
        self.status.set("Stalled", false, "Applied", "");
        self.status
            .set("Reconciling", outcome.progressing, "Applied", "");
        self.status
            .set("Ready", outcome.ready, outcome.reason, &outcome.message);
        if outcome.failing {
            places
                .reporter
                .event(true, outcome.reason, &outcome.message)
                .await;
        }
    }

    /// Reports a pass that stopped: conditions, an Event. `stalled` when only a new revision can
    /// fix it.
    async fn stop(&mut self, places: &Places, reason: &str, message: &str, stalled: bool) {
        self.status.set("Ready", false, reason, message);
        self.status.set("Reconciling", false, reason, "");
        self.status.set(
            "Stalled",
            stalled,
            reason,
            if stalled { message } else { "" },
        );
        if !self.settings.dry_run {
            places.reporter.event(true, reason, message).await;
        }
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
        let mut target = Target {
            kube: self.kube,
            flavor: self.settings.flavor,
            revision: Some(commit.to_owned()),
            system_namespace: self.settings.system_namespace.clone(),
            ..Target::default()
        };
        if let Some(image) = &self.settings.installer_image {
            target.installer_image = image.clone();
        }
        if target.flavor == Flavor::Native && !spec.platform.runtimes.is_empty() {
            target.nodes = Some(crate::cluster::nodes(self.cluster.client().clone()).await?);
        }
        let rendered = pipeline::render(&spec, &target).map_err(|err| err.render(snapshot));
        self.evaluated = Some((commit.to_owned(), spec));
        Ok(rendered)
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

/// An outcome of a pass that stopped.
fn stopped(commit: &str, reason: &'static str, stalled: bool, message: String) -> Outcome {
    Outcome {
        revision: commit.to_owned(),
        message,
        stopped: Some(Stopped { reason, stalled }),
        ..Outcome::default()
    }
}

/// The Events an applied pass records, in order: `(warning, reason, message)`.
fn changes(outcome: &Outcome) -> Vec<(bool, &'static str, String)> {
    let mut events = Vec::new();
    if !outcome.drifted.is_empty() {
        let what: Vec<String> = outcome
            .drifted
            .iter()
            .map(|d| format!("{}: {}", d.id, d.what))
            .collect();
        events.push((
            true,
            "DriftCorrected",
            format!("put back what changed in the cluster: {}", what.join("; ")),
        ));
    }
    if !outcome.sent.is_empty() {
        events.push((
            false,
            "Applied",
            format!(
                "revision {}: applied {} object(s), {} unchanged: {}",
                short(&outcome.revision),
                outcome.sent.len(),
                outcome.unchanged,
                list(&outcome.sent)
            ),
        ));
    }
    if !outcome.pruned.is_empty() {
        events.push((false, "Pruned", format!("pruned {}", list(&outcome.pruned))));
    }
    if !outcome.provisioned.is_empty() {
        events.push((
            false,
            "NodeProvisioned",
            format!("installed on {}", outcome.provisioned.join(", ")),
        ));
    }
    if !outcome.uninstalled.is_empty() {
        events.push((
            false,
            "NodeUninstalled",
            format!("uninstalled from {}", outcome.uninstalled.join(", ")),
        ));
    }
    events
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_what_the_pass_did() {
        let id = |name: &str| ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("web".into()),
            name: name.into(),
        };
        let outcome = Outcome {
            revision: "0123456789abcdef".into(),
            applied: true,
            sent: vec![id("a")],
            unchanged: 3,
            pruned: vec![id("b")],
            provisioned: vec!["wasm/node-1".into()],
            ..Outcome::default()
        };
        let events = changes(&outcome);
        let reasons: Vec<&str> = events.iter().map(|(_, reason, _)| *reason).collect();
        assert_eq!(reasons, ["Applied", "Pruned", "NodeProvisioned"]);
        assert!(
            events[0]
                .2
                .starts_with("revision 0123456789ab: applied 1 object(s), 3 unchanged")
        );
        assert!(events.iter().all(|(warning, _, _)| !warning));
        assert!(changes(&Outcome::default()).is_empty());
    }
}
