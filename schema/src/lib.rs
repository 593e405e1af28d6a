//! The spec model of a spindle repository.
//!
//! An environment of a GitOps repo evaluates to one [`Platform`]: the Spin [`App`]s to run and the
//! node [`Runtime`]s that run them. This crate holds the Rust types (serde, unknown fields
//! rejected), the semantic checks the types cannot express ([`validate`]), the JSON Schema for
//! editors ([`json_schema`]) and the Nickel library users import ([`NICKEL_LIBRARY`]).
//!
//! It knows nothing of Kubernetes or of the language the specs were written in.

mod model;
mod names;
mod validate;

pub use model::{
    App, Autoscaling, HttpCheck, Ingress, KeyRef, KeyValueStore, Metadata, ObjectMetadata,
    Platform, Resources, Rollout, Runtime, RuntimeClass, RuntimeConfig, Shim, SqliteDatabase,
    Toleration, Variable, VariableFrom,
};
pub use names::{is_dns_label, is_image_reference, is_spin_variable_name};
pub use validate::{Problem, pointer_segment, validate};

/// The Nickel library users import as `import "spindle.ncl"`: the same model as contracts, with
/// defaults and documentation.
pub const NICKEL_LIBRARY: &str = include_str!("../spindle.ncl");

/// The JSON Schema of a [`Platform`], for editors and other tools.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Platform)).expect("a JSON Schema serialises")
}
