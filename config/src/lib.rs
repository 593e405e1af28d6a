//! A spindle repository's configuration, from files to a validated spec:
//!
//! 1. [`snapshot`]: the repository's files at one moment, read once.
//! 2. [`evaluate`]: the configuration language, run inside a wasm sandbox.
//! 3. [`spec`]: the environment's evaluated value, deserialised into `spindle_schema` types and
//!    validated; every error carries a file, line and column ([`diagnostic`]).
//!
//! Start at [`spec::load`]. Nothing here knows of Kubernetes.

pub mod diagnostic;
pub mod evaluate;
pub mod snapshot;
pub mod spec;
