//! What a pass asks of the cluster, behind one narrow trait: a [`Reconciler`](super::Reconciler)
//! reaches the cluster only through a [`Backend`]. [`Kube`] is the real one, built on the modules
//! that talk to the apiserver ([`super::observe`], [`super::drift`], [`super::apply`],
//! [`super::prune`], [`super::health`], [`super::rollout`], [`super::inventory`],
//! [`super::status`]); the pass's unit tests use an in-memory one, so the pass's own logic (what
//! stops it, what it records, in which order it writes) is tested without an apiserver. The
//! futures need not be `Send`: a reconciler runs on the task that drives its loop.

use std::{future::Future, time::Duration};

use anyhow::Result;
use spindle_render::{Node, Object};

use super::{
    apply::{self, Applied},
    drift::{self, Found},
    health::{self, Report},
    inventory::{self, Inventory, ObjectRef},
    observe::{self, Live},
    ownership::{self, Conflict},
    prune::{self, Pruned},
    rollout::{self, Progress},
    state_map,
    status::{Reporter, Status},
};
use crate::cluster::Cluster;

/// The cluster as a pass sees it. `instance` names a reconciler's inventory and status.
pub trait Backend {
    /// The cluster's nodes, to plan installer Jobs for.
    fn nodes(&self) -> impl Future<Output = Result<Vec<Node>>>;
    /// Creates spindle's own namespace if it is missing.
    fn ensure_namespace(&self, name: &str) -> impl Future<Output = Result<()>>;
    /// The live objects of `environment` of the kinds among `desired`.
    fn observe(&self, desired: &[Object], environment: &str) -> impl Future<Output = Result<Live>>;
    /// What someone else changed since spindle applied it.
    fn drift(
        &self,
        desired: &[Object],
        inventory: &Inventory,
        live: &Live,
    ) -> impl Future<Output = Result<Found>>;
    /// Server-side applies, in stages, what differs from `basis`.
    fn apply(&self, desired: &[Object], basis: &Inventory)
    -> impl Future<Output = Result<Applied>>;
    /// What a pass may not do to `objects` (which of `verbs` it lacks, per resource and
    /// namespace), asked before anything is read or sent.
    fn forbidden(
        &self,
        objects: &[&Object],
        verbs: &[&str],
    ) -> impl Future<Output = Result<Vec<String>>>;
    /// The objects among `new` (about to be applied for the first time) that exist and are not
    /// `instance`'s (of `environment`) to take.
    fn conflicts(
        &self,
        new: &[&Object],
        instance: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Vec<Conflict>>>;
    /// Deletes `candidates` that carry `instance`'s and `environment`'s labels, unless protected.
    fn prune(
        &self,
        candidates: &[ObjectRef],
        instance: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Pruned>>;
    /// Waits up to `timeout` for the Deployments and Jobs among `desired` to become healthy,
    /// and no longer once `superseded` says a newer revision may be waiting.
    fn health(
        &self,
        desired: &[Object],
        environment: &str,
        timeout: Duration,
        live: Live,
        superseded: &(dyn Fn() -> bool + Sync),
    ) -> impl Future<Output = Result<Report>>;
    /// Marks the nodes whose installer Job completed.
    fn advance(
        &self,
        desired: &[Object],
        report: &Report,
    ) -> impl Future<Output = Result<Progress>>;
    /// The inventory `instance` left, empty if none.
    fn load_inventory(&self, instance: &str) -> impl Future<Output = Result<Inventory>>;
    /// Records the inventory of `instance`.
    fn save_inventory(
        &self,
        instance: &str,
        inventory: &Inventory,
    ) -> impl Future<Output = Result<()>>;
    /// The status `instance` last recorded, if any.
    fn load_status(&self, instance: &str) -> impl Future<Output = Result<Option<Status>>>;
    /// Records the status of `instance`.
    fn save_status(&self, instance: &str, status: &Status) -> impl Future<Output = Result<()>>;
    /// Records an Event about `instance`; failures are logged, never fatal.
    fn event(
        &self,
        instance: &str,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> impl Future<Output = ()>;
}

/// A real cluster: its apiserver, with spindle's state in `namespace`.
pub struct Kube {
    /// As the reconciler itself: its state, nodes and rollouts.
    cluster: Cluster,
    /// As the environment's ServiceAccount, when it has one: every apply, dry run, read and
    /// prune of the rendered objects.
    acting: Option<Cluster>,
    namespace: String,
    /// The resourceVersions of the state ConfigMaps as last read or written.
    versions: state_map::Versions,
}

impl Kube {
    /// The cluster behind `cluster`, keeping inventories and status in `namespace`.
    pub fn new(cluster: Cluster, namespace: &str) -> Self {
        Kube {
            cluster,
            acting: None,
            namespace: namespace.to_owned(),
            versions: state_map::Versions::default(),
        }
    }

    /// Applies, reads and prunes the rendered objects through `acting` (a client impersonating a
    /// ServiceAccount) instead.
    pub fn acting_as(mut self, acting: Cluster) -> Self {
        self.acting = Some(acting);
        self
    }

    /// Where the rendered objects are applied, read and pruned.
    fn objects(&self) -> &Cluster {
        self.acting.as_ref().unwrap_or(&self.cluster)
    }

    fn store(&self, instance: &str) -> inventory::Store {
        inventory::Store::new(
            self.cluster.client().clone(),
            &self.namespace,
            instance,
            self.versions.clone(),
        )
    }

    fn reporter(&self, instance: &str) -> Reporter {
        Reporter::new(
            self.cluster.client().clone(),
            &self.namespace,
            instance,
            self.versions.clone(),
        )
    }
}

impl Backend for Kube {
    async fn nodes(&self) -> Result<Vec<Node>> {
        crate::cluster::nodes(self.cluster.client().clone()).await
    }

    async fn ensure_namespace(&self, name: &str) -> Result<()> {
        crate::cluster::ensure_namespace(self.cluster.client(), name).await
    }

    async fn observe(&self, desired: &[Object], environment: &str) -> Result<Live> {
        observe::list(self.objects(), desired, environment).await
    }

    async fn drift(&self, desired: &[Object], inventory: &Inventory, live: &Live) -> Result<Found> {
        drift::detect(self.objects(), desired, inventory, live).await
    }

    async fn apply(&self, desired: &[Object], basis: &Inventory) -> Result<Applied> {
        apply::apply(self.objects(), desired, basis).await
    }

    async fn forbidden(&self, objects: &[&Object], verbs: &[&str]) -> Result<Vec<String>> {
        self.objects().forbidden(objects, verbs).await
    }

    async fn conflicts(
        &self,
        new: &[&Object],
        instance: &str,
        environment: &str,
    ) -> Result<Vec<Conflict>> {
        ownership::conflicts(self.objects(), new, instance, environment).await
    }

    async fn prune(
        &self,
        candidates: &[ObjectRef],
        instance: &str,
        environment: &str,
    ) -> Result<Pruned> {
        prune::prune(self.objects(), candidates, instance, environment).await
    }

    async fn health(
        &self,
        desired: &[Object],
        environment: &str,
        timeout: Duration,
        live: Live,
        superseded: &(dyn Fn() -> bool + Sync),
    ) -> Result<Report> {
        health::wait(
            self.objects(),
            desired,
            environment,
            timeout,
            live,
            superseded,
        )
        .await
    }

    async fn advance(&self, desired: &[Object], report: &Report) -> Result<Progress> {
        rollout::advance(self.cluster.client(), desired, report).await
    }

    async fn load_inventory(&self, instance: &str) -> Result<Inventory> {
        self.store(instance).load().await
    }

    async fn save_inventory(&self, instance: &str, inventory: &Inventory) -> Result<()> {
        self.store(instance).save(inventory).await
    }

    async fn load_status(&self, instance: &str) -> Result<Option<Status>> {
        self.reporter(instance).load().await
    }

    async fn save_status(&self, instance: &str, status: &Status) -> Result<()> {
        self.reporter(instance).save(status).await
    }

    async fn event(&self, instance: &str, warning: bool, reason: &str, message: &str) {
        self.reporter(instance)
            .event(warning, reason, message)
            .await;
    }
}
