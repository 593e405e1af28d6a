//! spindle's Spin runtime: loads a `spin.toml` app and serves its HTTP trigger on wasmtime, with
//! Spin's host interfaces. Used by `spindle run`, `spindle up` and the containerd shim.
//!
//! - [`app`]: the manifest ([`manifest`]) checked and resolved: components, routes, variables,
//!   files ([`files`]).
//! - [`runtime`]: the app prepared to serve: one engine, components compiled once (and cached,
//!   [`compile_cache`]), stores ([`stores`]) and variables ([`variables`]) resolved at start.
//! - [`server`]: the HTTP trigger: [`routes`], `spin-*` headers, an instance per request, the
//!   outbound allow-list ([`outbound`]).
//! - [`host`]: Spin's platform interfaces for guests.
//! - [`telemetry`]: request spans exported over OTLP when the `OTEL_*` variables ask for it.
//! - [`artifact`]: apps as Spin OCI artifacts, packed for a registry and unpacked to run.

pub mod allow_list;
pub mod app;
pub mod artifact;
pub mod atomic_file;
pub mod compile_cache;
pub mod epoch;
pub mod files;
mod guest_log;
mod host;
pub mod manifest;
pub mod outbound;
pub mod routes;
pub mod runtime;
pub mod server;
pub mod stores;
pub mod telemetry;
mod template;
pub mod variables;

pub use app::App;
pub use runtime::{Options, Runtime, ServingEngine};
