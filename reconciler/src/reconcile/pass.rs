//! One reconcile pass, in three steps: **plan** (render the revision, refuse a mass prune, find
//! drift), **execute** (mark what is about to be applied, apply, prune, write the inventory) and
//! **assess** (health, node rollouts). Each step returns what it found; the pass's conditions,
//! Events and metrics are recorded from the resulting [`Outcome`] in [`Reconciler::record`], and
//! nowhere else.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};

use super::{
    Outcome, Settings, Stopped, apply,
    backend::{Backend, Kube},
    drift, health,
    health::State,
    inventory::{Inventory, ObjectRef},
    list,
    metrics::Metrics,
    observe, prune, short,
    status::{self, Status},
};
use crate::{cluster::Cluster, pipeline};
use spindle_config::evaluate::Evaluator;
use spindle_config::snapshot::Snapshot;
use spindle_config::spec;
use spindle_render::{Flavor, KubeVersion, Object, Target};

/// One reconciler instance: a cluster (behind a [`Backend`]), an evaluator, and what it knows
/// from earlier passes.
pub struct Reconciler<B = Kube> {
    backend: B,
    evaluator: Evaluator,
    settings: Settings,
    kube: KubeVersion,
    /// The name of the inventory and status, once the first pass named the environment.
    instance: Option<String>,
    status: Status,
    inventory: Inventory,
    /// The last commit evaluated and its spec: a pass over the same commit (the interval's drift
    /// check) renders again but does not evaluate again.
    evaluated: Option<(String, spec::Spec)>,
    /// Counters and timings of the passes, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Counts the pushes and webhooks seen, when a loop tells: a pass stops waiting for health
    /// once it moves, so that a newer revision is not held up.
    arrivals: Option<tokio::sync::watch::Receiver<u64>>,
    /// [`Self::arrivals`] when the current pass began.
    arrivals_at_start: u64,
}

/// What [`Reconciler::conclude`] records: a pass over a revision's files, or the revision's
/// refusal (the condition reason and why) without reading them.
enum Attempt<'a> {
    Pass(&'a Snapshot),
    Refuse(&'static str, String),
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

impl Reconciler<Kube> {
    /// A reconciler for `client`'s cluster; asks for its version and discovers its resources.
    pub async fn new(
        client: kube::Client,
        evaluator: Evaluator,
        settings: Settings,
    ) -> Result<Self> {
        let kube = crate::cluster::version(&client, Duration::from_secs(10)).await?;
        let cluster = Cluster::connect(client).await?;
        let mut backend = Kube::new(cluster, &settings.system_namespace);
        if let Some(account) = &settings.service_account {
            let acting = crate::cluster::client_as(account).await?;
            let acting = Cluster::connect(acting).await.with_context(|| {
                format!("could not discover the cluster's resources as ServiceAccount {account}")
            })?;
            backend = backend.acting_as(acting);
        }
        Ok(Reconciler::with_backend(backend, kube, evaluator, settings))
    }
}

impl<B: Backend> Reconciler<B> {
    /// A reconciler that reaches its cluster (of Kubernetes version `kube`) through `backend`.
    pub fn with_backend(
        backend: B,
        kube: KubeVersion,
        evaluator: Evaluator,
        settings: Settings,
    ) -> Self {
        Reconciler {
            backend,
            evaluator,
            kube,
            instance: None,
            status: Status::default(),
            inventory: Inventory::default(),
            evaluated: None,
            settings,
            metrics: Arc::new(Metrics::default()),
            arrivals: None,
            arrivals_at_start: 0,
        }
    }

    /// Makes passes stop waiting for health when `arrivals` (a count of pushes and webhooks)
    /// moves during them.
    pub fn yield_to(&mut self, arrivals: tokio::sync::watch::Receiver<u64>) {
        self.arrivals = Some(arrivals);
    }

    /// The status as of the last pass.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Records `identity` as the replica holding the Lease, in the status the next pass writes.
    pub fn set_leader(&mut self, identity: Option<String>) {
        self.status.leader = identity;
    }

    /// Takes `spec` as the evaluation of `commit`, so that the next pass over `commit` does not
    /// evaluate it again: for callers that looked at the spec first, as `spindle apply` checks
    /// its apps' imports.
    pub fn remember_evaluation(&mut self, commit: &str, spec: spec::Spec) {
        self.evaluated = Some((commit.to_owned(), spec));
    }

    /// Applies `snapshot`, the files of `commit`.
    pub async fn pass(&mut self, commit: &str, snapshot: &Snapshot) -> Result<Outcome> {
        let instance = self.instance(snapshot).await?;
        self.conclude(&instance, commit, Attempt::Pass(snapshot))
            .await
    }

    /// Records that `commit` is not to be used (`reason`, `message`: an untrusted signature, say):
    /// nothing of it is read, evaluated or applied, the last applied revision stays, and the
    /// status says why until a new revision comes. The instance comes from `--instance`,
    /// `--env` or an earlier pass, never from the refused revision's files; when none names it
    /// yet, the refusal is only logged.
    pub async fn refuse(
        &mut self,
        commit: &str,
        reason: &'static str,
        message: String,
    ) -> Result<Outcome> {
        let named = self
            .instance
            .clone()
            .or_else(|| self.settings.instance.clone())
            .or_else(|| self.settings.environment.clone());
        let Some(instance) = named else {
            tracing::error!(
                "{message} (no status is recorded: give --instance or --env to name it before a \
                 first trusted revision)"
            );
            return Ok(stopped(commit, reason, true, message));
        };
        self.load_instance(&instance).await?;
        self.conclude(&instance, commit, Attempt::Refuse(reason, message))
            .await
    }

    /// A pass over `commit`, or its refusal, recorded in the status of `instance`.
    async fn conclude(
        &mut self,
        instance: &str,
        commit: &str,
        attempt: Attempt<'_>,
    ) -> Result<Outcome> {
        let started = std::time::Instant::now();
        self.arrivals_at_start = self.arrivals.as_ref().map_or(0, |a| *a.borrow());
        self.status.source = self.settings.source.clone();
        self.status.last_attempted_revision = Some(commit.to_owned());
        self.status.observed_generation += 1;
        let outcome = match attempt {
            Attempt::Pass(snapshot) => self.attempt(instance, commit, snapshot).await,
            Attempt::Refuse(reason, message) => Ok(stopped(commit, reason, true, message)),
        };
        let elapsed = started.elapsed();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                self.stop(instance, "ReconciliationFailed", &format!("{err:#}"), false)
                    .await;
                self.metrics.record_failure(elapsed);
                return Err(err);
            }
        };
        self.record(instance, &outcome, elapsed).await;
        if !self.settings.dry_run {
            self.backend.save_status(instance, &self.status).await?;
        }
        Ok(outcome)
    }

    /// The name of this instance's inventory and status, found by the first pass (which also
    /// loads the inventory and status that earlier runs left).
    async fn instance(&mut self, snapshot: &Snapshot) -> Result<String> {
        if let Some(instance) = &self.instance {
            return Ok(instance.clone());
        }
        let (environment, _) = spec::environment(snapshot, self.settings.environment.as_deref())
            .map_err(|err| anyhow::anyhow!(err.render(snapshot)))?;
        let instance = self.settings.instance.clone().unwrap_or(environment);
        self.load_instance(&instance).await?;
        Ok(instance)
    }

    /// Makes `instance` this reconciler's, loading the inventory and status earlier runs left
    /// (once: later calls change nothing).
    async fn load_instance(&mut self, instance: &str) -> Result<()> {
        if self.instance.is_some() {
            return Ok(());
        }
        if !self.settings.dry_run {
            self.backend
                .ensure_namespace(&self.settings.system_namespace)
                .await?;
        }
        self.inventory = self.backend.load_inventory(instance).await?;
        if let Some(status) = self.backend.load_status(instance).await? {
            self.status = status;
        }
        self.status.instance = instance.to_owned();
        self.instance = Some(instance.to_owned());
        Ok(())
    }

    async fn attempt(
        &mut self,
        instance: &str,
        commit: &str,
        snapshot: &Snapshot,
    ) -> Result<Outcome> {
        let mut clock = std::time::Instant::now();
        let mut plan = match self.plan(instance, commit, snapshot).await? {
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
        let (outcome, live) = match self.execute(instance, commit, &mut plan).await? {
            Ok(executed) => executed,
            Err(stopped) => return Ok(stopped),
        };
        lap(&mut clock, "apply, prune and record");
        let outcome = self.assess(commit, &plan.desired, outcome, live).await?;
        lap(&mut clock, "health");
        Ok(outcome)
    }

    /// Renders the revision, refuses a mass prune and objects that are not spindle's to take, and
    /// finds drift. Nothing is sent.
    async fn plan(
        &mut self,
        instance: &str,
        commit: &str,
        snapshot: &Snapshot,
    ) -> Result<Result<Plan, Outcome>> {
        let desired = match self.render(instance, commit, snapshot).await? {
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
        // spindle's own namespace holds the inventory itself (never pruned), and is shared by every
        // instance (each may apply it).
        let system = ObjectRef {
            api_version: "v1".to_owned(),
            kind: "Namespace".to_owned(),
            namespace: None,
            name: self.settings.system_namespace.clone(),
        };
        let prune: Vec<ObjectRef> = prune::candidates(previous, &wanted)
            .into_iter()
            .filter(|id| id.kind != system.kind || id.name != system.name)
            .collect();
        if let Err(message) = prune::check_share(
            prune.len(),
            previous.objects.len(),
            self.settings.max_prune_share,
            self.settings.allow_mass_prune,
        ) {
            return Ok(Err(stopped(commit, "PruneRefused", true, message)));
        }
        // Nothing is read or sent that the pass may not do all of: what it applied before it
        // reads and patches, what is new it also creates.
        let (known, new): (Vec<&Object>, Vec<&Object>) = desired
            .iter()
            .partition(|object| previous.objects.contains_key(&ObjectRef::of(object)));
        let mut denied = self
            .backend
            .forbidden(&known, &["get", "list", "patch"])
            .await?;
        denied.extend(
            self.backend
                .forbidden(&new, &["get", "list", "create", "patch"])
                .await?,
        );
        denied.sort();
        denied.dedup();
        if !denied.is_empty() {
            let who = match &self.settings.service_account {
                Some(account) => format!("ServiceAccount {account}"),
                None => "the reconciler".to_owned(),
            };
            let message = format!(
                "revision {} was not applied: {who} may not {}",
                short(commit),
                denied.join("; ")
            );
            return Ok(Err(stopped(commit, "Forbidden", false, message)));
        }
        // Objects applied for the first time must not be someone else's (objects a stopped pass
        // was applying are this instance's already).
        let new: Vec<&Object> = desired
            .iter()
            .filter(|object| {
                let id = ObjectRef::of(object);
                id != system
                    && !previous.objects.contains_key(&id)
                    && !previous.applying.contains(&id)
            })
            .collect();
        let conflicts = self
            .backend
            .conflicts(&new, instance, &self.status.environment)
            .await?;
        if !conflicts.is_empty() {
            let mut message = format!(
                "revision {} was not applied: {} object(s) it would create exist and are not \
                 this spindle instance's to change:",
                short(commit),
                conflicts.len()
            );
            for conflict in conflicts.iter().take(10) {
                message.push_str(&format!("\n- {conflict}"));
            }
            if conflicts.len() > 10 {
                message.push_str(&format!("\n- and {} more", conflicts.len() - 10));
            }
            return Ok(Err(stopped(commit, "OwnershipConflict", false, message)));
        }
        let live = self
            .backend
            .observe(&desired, &self.status.environment)
            .await?;
        let found = self.backend.drift(&desired, previous, &live).await?;
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
        instance: &str,
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
            self.backend.save_inventory(instance, &marked).await?;
        }
        let applied = match self.backend.apply(&plan.desired, &plan.basis).await {
            Ok(applied) => applied,
            Err(err) => {
                let message = format!("applying revision {} failed: {err:#}", short(commit));
                return Ok(Err(stopped(commit, "ApplyFailed", false, message)));
            }
        };
        let mut live = std::mem::take(&mut plan.live);
        live.extend(applied.stored);
        let pruned = self
            .backend
            .prune(&plan.prune, instance, &self.status.environment)
            .await?;
        let inventory = Inventory {
            revision: Some(commit.to_owned()),
            objects: applied.entries,
            applying: Vec::new(),
        };
        if inventory != self.inventory {
            self.backend.save_inventory(instance, &inventory).await?;
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
                kept: pruned
                    .kept
                    .iter()
                    .map(|(id, why)| format!("{id}: {why}"))
                    .collect(),
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
        let (arrivals, at_start) = (self.arrivals.clone(), self.arrivals_at_start);
        let superseded = move || arrivals.as_ref().is_some_and(|a| *a.borrow() != at_start);
        let report = self
            .backend
            .health(
                desired,
                &self.status.environment,
                self.settings.health_timeout,
                live,
                &superseded,
            )
            .await?;
        self.status.apps = report
            .apps
            .iter()
            .map(|(app, health)| (app.clone(), health.into()))
            .collect();
        let rollout = self.backend.advance(desired, &report).await?;
        outcome.provisioned = rollout.provisioned;
        outcome.uninstalled = rollout.uninstalled;
        // The next wave of a rollout is planned by the next pass: come back soon.
        outcome.progressing = !outcome.provisioned.is_empty()
            || !outcome.uninstalled.is_empty()
            || report
                .unhealthy()
                .any(|(id, h)| h.state == State::Progressing && id.kind == "Job");
        let unhealthy = health::summary(report.unhealthy());
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
                "applied revision {}; not healthy yet: {unhealthy}",
                short(commit)
            );
        }
        if let Some(note) = self.not_installed() {
            outcome.message.push_str(&note);
        }
        Ok(outcome)
    }

    /// Why the revision's node runtimes are not installed, when the reconciler has no node
    /// policy: the RuntimeClasses are applied, but no installer runs on any node.
    fn not_installed(&self) -> Option<String> {
        let (_, spec) = self.evaluated.as_ref()?;
        if self.settings.node_policy.is_some()
            || self.settings.flavor != Flavor::Native
            || spec.platform.runtimes.is_empty()
        {
            return None;
        }
        let names: Vec<&str> = spec.platform.runtimes.keys().map(String::as_str).collect();
        Some(format!(
            "; node runtimes not installed ({}): this reconciler has no node policy \
             (--node-policy)",
            names.join(", ")
        ))
    }

    /// The pass's conditions, Events and metrics, from its outcome.
    async fn record(&mut self, instance: &str, outcome: &Outcome, elapsed: Duration) {
        if let Some(stopped) = &outcome.stopped {
            self.stop(instance, stopped.reason, &outcome.message, stopped.stalled)
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
            self.backend
                .event(instance, *warning, reason, message)
                .await;
        }
        self.status.set("Stalled", false, "Applied", "");
        self.status
            .set("Reconciling", outcome.progressing, "Applied", "");
        self.status
            .set("Ready", outcome.ready, outcome.reason, &outcome.message);
        if outcome.failing {
            self.backend
                .event(instance, true, outcome.reason, &outcome.message)
                .await;
        }
    }

    /// Reports a pass that stopped: conditions, an Event. `stalled` when only a new revision can
    /// fix it.
    async fn stop(&mut self, instance: &str, reason: &str, message: &str, stalled: bool) {
        self.status.set("Ready", false, reason, message);
        self.status.set("Reconciling", false, reason, "");
        self.status.set(
            "Stalled",
            stalled,
            reason,
            if stalled { message } else { "" },
        );
        if !self.settings.dry_run {
            self.backend.event(instance, true, reason, message).await;
        }
    }

    /// The desired objects of `commit`, or why there are none (file:line:col messages).
    async fn render(
        &mut self,
        instance: &str,
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
            instance: Some(instance.to_owned()),
            allowed_namespaces: self.settings.allowed_namespaces.clone(),
            allow_default_namespace: self.settings.allow_default_namespace,
            system_namespace: self.settings.system_namespace.clone(),
            node_policy: self.settings.node_policy.clone(),
            ..Target::default()
        };
        if let Some(image) = &self.settings.installer_image {
            target.installer_image = image.clone();
        }
        if target.flavor == Flavor::Native && !spec.platform.runtimes.is_empty() {
            target.nodes = Some(self.backend.nodes().await?);
        }
        let rendered =
            pipeline::render(&spec, snapshot, &target).map_err(|err| err.render(snapshot));
        self.evaluated = Some((commit.to_owned(), spec));
        Ok(rendered)
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
    for kept in &outcome.kept {
        events.push((false, "NamespaceKept", format!("not pruned: {kept}")));
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
    use std::sync::Mutex;

    use spindle_config::evaluate::Limits;
    use spindle_render::Node;

    use super::*;
    use crate::reconcile::{
        apply::Applied, drift::Found, health::Report, inventory::Entry, observe::Live,
        ownership::Conflict, prune::Pruned, rollout::Progress,
    };

    /// A cluster in memory: records what a pass sends and writes.
    #[derive(Default)]
    struct Fake {
        fail_apply: Mutex<bool>,
        /// Names of Deployments that exist and are someone else's.
        foreign: Mutex<Vec<String>>,
        sent: Mutex<Vec<ObjectRef>>,
        pruned: Mutex<Vec<ObjectRef>>,
        inventories: Mutex<Vec<Inventory>>,
        events: Mutex<Vec<(bool, String)>>,
    }

    impl Backend for &Fake {
        async fn nodes(&self) -> Result<Vec<Node>> {
            Ok(Vec::new())
        }
        async fn ensure_namespace(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn observe(&self, _: &[Object], _: &str) -> Result<Live> {
            Ok(Live::new())
        }
        async fn drift(&self, _: &[Object], _: &Inventory, _: &Live) -> Result<Found> {
            Ok(Found::default())
        }
        async fn apply(&self, desired: &[Object], basis: &Inventory) -> Result<Applied> {
            if *self.fail_apply.lock().unwrap() {
                anyhow::bail!("the apiserver refused it");
            }
            let plan = apply::plan(desired, basis);
            let mut applied = Applied {
                unchanged: plan.unchanged.len(),
                entries: plan.unchanged,
                ..Applied::default()
            };
            for (id, hash, _) in plan.to_send {
                let marker = "1".to_owned();
                applied.entries.insert(id.clone(), Entry { hash, marker });
                applied.sent.push(id.clone());
                self.sent.lock().unwrap().push(id);
            }
            Ok(applied)
        }
        async fn forbidden(&self, _: &[&Object], _: &[&str]) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
        async fn conflicts(&self, new: &[&Object], _: &str, _: &str) -> Result<Vec<Conflict>> {
            let foreign = self.foreign.lock().unwrap();
            Ok(new
                .iter()
                .map(|object| ObjectRef::of(object))
                .filter(|id| id.kind == "Deployment" && foreign.contains(&id.name))
                .map(|id| Conflict {
                    id,
                    managers: vec!["kubectl".to_owned()],
                    instance: None,
                })
                .collect())
        }
        async fn prune(&self, candidates: &[ObjectRef], _: &str, _: &str) -> Result<Pruned> {
            self.pruned.lock().unwrap().extend_from_slice(candidates);
            Ok(Pruned {
                deleted: candidates.to_vec(),
                protected: Vec::new(),
                kept: Vec::new(),
            })
        }
        async fn health(
            &self,
            _: &[Object],
            _: &str,
            _: Duration,
            _: Live,
            _: &(dyn Fn() -> bool + Sync),
        ) -> Result<Report> {
            Ok(Report::default())
        }
        async fn advance(&self, _: &[Object], _: &Report) -> Result<Progress> {
            Ok(Progress::default())
        }
        async fn load_inventory(&self, _: &str) -> Result<Inventory> {
            Ok(self
                .inventories
                .lock()
                .unwrap()
                .last()
                .cloned()
                .unwrap_or_default())
        }
        async fn save_inventory(&self, _: &str, inventory: &Inventory) -> Result<()> {
            self.inventories.lock().unwrap().push(inventory.clone());
            Ok(())
        }
        async fn load_status(&self, _: &str) -> Result<Option<Status>> {
            Ok(None)
        }
        async fn save_status(&self, _: &str, _: &Status) -> Result<()> {
            Ok(())
        }
        async fn event(&self, _: &str, warning: bool, reason: &str, _: &str) {
            self.events
                .lock()
                .unwrap()
                .push((warning, reason.to_owned()));
        }
    }

    fn reconciler(fake: &Fake) -> Reconciler<&Fake> {
        let cache = std::env::temp_dir().join("spindle-unit-test-cache");
        let evaluator = Evaluator::new(Some(cache), Limits::default()).expect("evaluator");
        let settings = Settings {
            health_timeout: Duration::ZERO,
            source: "test".to_owned(),
            ..Settings::default()
        };
        Reconciler::with_backend(fake, KubeVersion::NEWEST, evaluator, settings)
    }

    /// A repository whose one environment has `apps` (or a broken value).
    fn revision(apps: &[&str]) -> Snapshot {
        let apps: Vec<String> = apps
            .iter()
            .map(|app| {
                format!("{app} = {{ namespace = \"web\", image = \"ghcr.io/acme/{app}:1\" }},")
            })
            .collect();
        let environment = format!(
            "{{ apps = {{ {} }}, runtimes.spin = {{ shim = {{ version = \"1.0.0\", \
             url = \"https://example.com/shim\", sha256 = \"{}\" }} }} }}\n",
            apps.join(" "),
            "a".repeat(64)
        );
        Snapshot::from_files("repo", [("environments/prod.ncl".to_owned(), environment)])
    }

    fn condition(reconciler: &Reconciler<&Fake>, kind: &str) -> (String, String) {
        let found = reconciler.status().condition(kind).expect("condition set");
        (found.status.clone(), found.reason.clone())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_pass_marks_applies_records_and_reports_in_that_order() {
        let fake = Fake::default();
        let mut reconciler = reconciler(&fake);
        let outcome = reconciler.pass("c1", &revision(&["a", "b"])).await.unwrap();
        assert!(outcome.applied && outcome.ready, "{outcome:?}");
        assert_eq!(outcome.stopped, None);
        let sent = fake.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), outcome.sent.len());
        assert!(
            sent.iter()
                .any(|id| id.kind == "Deployment" && id.name == "a")
        );
        // The new objects are recorded before anything is sent, then the whole inventory.
        let inventories = fake.inventories.lock().unwrap().clone();
        assert_eq!(inventories.len(), 2);
        assert_eq!(inventories[0].applying.len(), sent.len());
        assert!(inventories[0].objects.is_empty());
        assert!(inventories[1].applying.is_empty());
        assert_eq!(inventories[1].revision.as_deref(), Some("c1"));
        assert_eq!(inventories[1].objects.len(), sent.len());
        let events = fake.events.lock().unwrap().clone();
        assert_eq!(events, [(false, "Applied".to_owned())]);
        assert_eq!(
            condition(&reconciler, "Ready"),
            ("True".to_owned(), "ReconciliationSucceeded".to_owned())
        );

        // The same revision again sends nothing and writes nothing.
        let again = reconciler.pass("c1", &revision(&["a", "b"])).await.unwrap();
        assert!(again.sent.is_empty() && again.ready);
        assert_eq!(fake.inventories.lock().unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_invalid_revision_sends_nothing_and_stalls() {
        let fake = Fake::default();
        let mut reconciler = reconciler(&fake);
        let broken = Snapshot::from_files(
            "repo",
            [(
                "environments/prod.ncl".to_owned(),
                "{ apps.a = { image = 3 } }\n".to_owned(),
            )],
        );
        let outcome = reconciler.pass("c1", &broken).await.unwrap();
        let stopped = outcome.stopped.expect("stopped");
        assert_eq!(
            (stopped.reason, stopped.stalled),
            ("ValidationFailed", true)
        );
        assert!(
            outcome.message.contains("environments/prod.ncl:1:"),
            "{}",
            outcome.message
        );
        assert!(fake.sent.lock().unwrap().is_empty());
        assert!(fake.inventories.lock().unwrap().is_empty());
        assert_eq!(
            fake.events.lock().unwrap().clone(),
            [(true, "ValidationFailed".to_owned())]
        );
        assert_eq!(condition(&reconciler, "Stalled").0, "True");
        assert_eq!(condition(&reconciler, "Ready").0, "False");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_mass_prune_is_refused_and_a_failed_apply_keeps_the_last_inventory() {
        let fake = Fake::default();
        let mut reconciler = reconciler(&fake);
        reconciler
            .pass("c1", &revision(&["a", "b", "c", "d"]))
            .await
            .unwrap();
        let applied = fake.inventories.lock().unwrap().last().cloned().unwrap();

        let emptied = reconciler.pass("c2", &revision(&[])).await.unwrap();
        assert_eq!(emptied.stopped.map(|s| s.reason), Some("PruneRefused"));
        assert!(fake.pruned.lock().unwrap().is_empty());

        *fake.fail_apply.lock().unwrap() = true;
        let failed = reconciler
            .pass("c3", &revision(&["a", "b", "c", "d", "e"]))
            .await
            .unwrap();
        let stopped = failed.stopped.expect("stopped");
        assert_eq!((stopped.reason, stopped.stalled), ("ApplyFailed", false));
        assert!(
            failed.message.contains("the apiserver refused it"),
            "{}",
            failed.message
        );
        assert!(fake.pruned.lock().unwrap().is_empty());
        // What was about to be applied is marked, so a later pass can still prune it; what was
        // applied before is kept as it was.
        let last = fake.inventories.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.objects, applied.objects);
        assert_eq!(last.revision.as_deref(), Some("c1"));
        assert!(last.applying.iter().any(|id| id.name == "e"));
        assert_eq!(condition(&reconciler, "Stalled").0, "False");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn someone_elses_object_stops_the_pass_until_it_is_adopted() {
        let fake = Fake::default();
        fake.foreign.lock().unwrap().push("b".to_owned());
        let mut reconciler = reconciler(&fake);
        let outcome = reconciler.pass("c1", &revision(&["a", "b"])).await.unwrap();
        let stopped = outcome.stopped.expect("stopped");
        assert_eq!(
            (stopped.reason, stopped.stalled),
            ("OwnershipConflict", false)
        );
        assert!(
            outcome.message.contains("Deployment web/b exists"),
            "{}",
            outcome.message
        );
        assert!(
            fake.sent.lock().unwrap().is_empty(),
            "nothing of the pass is applied"
        );
        assert!(fake.inventories.lock().unwrap().is_empty());
        assert_eq!(
            fake.events.lock().unwrap().clone(),
            [(true, "OwnershipConflict".to_owned())]
        );

        fake.foreign.lock().unwrap().clear();
        let adopted = reconciler.pass("c1", &revision(&["a", "b"])).await.unwrap();
        assert!(adopted.applied && adopted.ready, "{adopted:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_remembered_evaluation_is_not_evaluated_again() {
        let fake = Fake::default();
        let mut reconciler = reconciler(&fake);
        let evaluated = spec::load(&reconciler.evaluator, &revision(&["a", "b"]), None).unwrap();
        reconciler.remember_evaluation("c1", evaluated);
        // The files no longer evaluate: the pass applies the remembered spec all the same.
        let broken = Snapshot::from_files(
            "repo",
            [("environments/prod.ncl".to_owned(), "{ apps = ".to_owned())],
        );
        let outcome = reconciler.pass("c1", &broken).await.unwrap();
        assert!(outcome.applied, "{outcome:?}");
        assert!(outcome.sent.iter().any(|id| id.name == "b"), "{outcome:?}");
        // Another commit is evaluated from its files.
        let outcome = reconciler.pass("c2", &broken).await.unwrap();
        assert!(!outcome.applied, "{outcome:?}");
        assert!(outcome.message.contains("prod.ncl"), "{}", outcome.message);
    }

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
