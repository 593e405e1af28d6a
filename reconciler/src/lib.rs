//! spindle's pipeline and controller: what turns a followed repository into a cluster's state.
//!
//! The stages it builds on are crates of their own: `spindle_config` (files → evaluated,
//! validated spec) and `spindle_render` (spec → objects, and diffs between object sets), neither of
//! which can reach a cluster. This crate adds:
//!
//! - [`pipeline`]: evaluate → validate → render, the one composition every command and the
//!   reconciler use. Start at [`pipeline::build`].
//! - [`revisions`]: where revisions come from (Git, remotes, the working tree) and when there is
//!   a new one.
//! - [`cluster`]: discovery, server-side apply with retries, the cluster's nodes; [`live`]: the
//!   cluster's side of `spindle diff --live`.
//! - [`reconcile`]: one pass of a revision against a cluster (inventory, pruning, health, drift,
//!   status) and the [`reconcile::Controller`] loop around passes.
//! - [`up`]: `spindle up`, an environment's apps served on this machine with spindle's runtime.
//! - [`registry`]: Spin OCI artifacts pushed to and pulled from registries.

pub mod capabilities;
pub mod cluster;
pub mod live;
pub mod pipeline;
pub mod reconcile;
pub mod registry;
pub mod revisions;
pub mod up;
