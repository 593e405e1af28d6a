//! spindle's integration tests, one module per command or subsystem, in one test binary (one link
//! of wasmtime, kube and the rest instead of one per file). Most run the built `spindle` binary
//! against real servers that `scripts/testenv` starts; see docs/testing.md.

mod support;

mod check;
mod containerd_shim;
mod core_modules;
mod diff;
mod golden;
mod hostile;
mod model_agreement;
mod oci;
mod reconcile;
mod render;
mod run;
mod sdk_apps;
mod test_command;
mod testenv_smoke;
mod triggers;
mod up;
