//! spindle's Spin runtime (wasmtime, the HTTP trigger and Spin's host interfaces).
//!
//! Not written yet: see the runtime issue. The containerd shim, `spindle up` and `spindle run`
//! will all serve apps through this crate.
