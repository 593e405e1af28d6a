//! spindle: GitOps for WebAssembly on Kubernetes.
//!
//! A repository of specs goes through a pipeline, one module per stage:
//!
//! 1. [`snapshot`]: the repository's files at one moment, read once.
//! 2. [`evaluate`]: the configuration language, run inside a wasm sandbox.
//! 3. [`spec`]: the environment's evaluated value, deserialised into `spindle_schema` types and
//!    validated; every error carries a file, line and column ([`diagnostic`]).
//!
//! 4. [`render`]: the Kubernetes objects an environment becomes, for a cluster's API versions.
//!
//! Around them: [`revision`] names where a snapshot came from, [`cluster`] connects to one.
//! Diffing and applying come next. Start at [`spec::load`].

pub mod cli;
pub mod cluster;
pub mod diagnostic;
pub mod evaluate;
pub mod render;
pub mod revision;
pub mod snapshot;
pub mod spec;
pub mod yaml;
