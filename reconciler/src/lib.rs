//! spindle: GitOps for WebAssembly on Kubernetes.
//!
//! A repository of specs goes through a pipeline, one module per stage:
//!
//! 1. [`snapshot`]: the repository's files at one moment, read once.
//! 2. [`evaluate`]: the configuration language, run inside a wasm sandbox.
//! 3. [`spec`]: the environment's evaluated value, deserialised into `spindle_schema` types and
//!    validated; every error carries a file, line and column ([`diagnostic`]).
//! 4. [`render`]: the Kubernetes objects an environment becomes, for a cluster's API versions.
//! 5. [`diff`]: what changes between two revisions, or between a revision and the cluster.
//!
//! Around them: [`git`] reads revisions and names where a working tree came from, [`cluster`]
//! talks to a cluster, [`yaml`] writes objects, [`golden`] keeps them in folders. [`reconcile`]
//! applies a revision (inventory, pruning, health, drift) and [`source`] fetches revisions to
//! apply. Start at [`spec::load`].

pub mod cli;
pub mod cluster;
pub mod diagnostic;
pub mod diff;
pub mod evaluate;
pub mod git;
pub mod golden;
mod known_hosts;
pub mod reconcile;
pub mod registry;
pub mod render;
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod up;
pub mod watch;
pub mod yaml;
