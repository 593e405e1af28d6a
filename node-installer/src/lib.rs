//! spindle's node installer: puts the containerd shim on a node ([`shim`]; from the installer
//! image or [`download`]ed), registers it in containerd's config by parsing it ([`config`]) at
//! the path the node's distribution uses ([`distro`]), and restarts containerd only when the
//! config changed, verified and rolled back when it does not come back ([`node`]).

pub mod config;
pub mod distro;
pub mod download;
pub mod node;
pub mod shim;
