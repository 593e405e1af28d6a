//! spindle's Spin runtime: loads a `spin.toml` app and serves its HTTP trigger on wasmtime, with
//! Spin's host interfaces. Used by `spindle run`, `spindle up` and the containerd shim.
//!
//! - [`app`]: the manifest ([`manifest`]) checked and resolved: components, routes, variables,
//!   files (`files`).
//! - [`runtime`]: the app prepared to serve: one engine, components compiled once (and cached,
//!   [`compile_cache`]), stores ([`stores`]) and variables (`variables`) resolved at start;
//!   [`epoch`] advances the engine's clock for deadlines.
//! - [`server`]: the HTTP trigger: routes (`routes`), `spin-*` headers, an instance per request,
//!   the outbound allow-list (`outbound`, `allow_list`); `server::run` is the one serve path of
//!   `spindle run` and the containerd shim.
//! - `host`: Spin's platform interfaces for guests; `telemetry`: request spans exported over
//!   OTLP when the `OTEL_*` variables ask for it.
//! - [`trigger`]: the triggers besides HTTP (Redis, MQTT, cron, command), started beside the
//!   HTTP server by `server::serve`; `handler` checks each component exports its trigger's entry.
//! - [`accept`]: how every HTTP server of spindle accepts connections (limits, `TCP_NODELAY`).
//! - [`artifact`]: apps as Spin OCI artifacts, packed for a registry and unpacked to run.

pub mod accept;
mod allow_list;
pub mod app;
pub mod artifact;
pub mod atomic_file;
pub mod compile_cache;
pub mod componentize;
pub mod cpu_share;
pub mod epoch;
mod files;
mod guest_log;
mod handler;
mod host;
pub mod interfaces;
pub mod manifest;
mod outbound;
mod routes;
pub mod runtime;
pub mod server;
pub mod stores;
mod telemetry;
mod template;
pub mod trigger;
mod variables;

pub use allow_list::redact;
pub use app::App;
pub use runtime::{Options, Runtime, ServingEngine};
