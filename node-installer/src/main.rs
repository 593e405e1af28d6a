//! `spindle-node-installer`: puts spindle's containerd shim on a node.
//!
//! Not written yet: see the node installer issue.

fn main() {
    eprintln!("spindle-node-installer: not implemented yet (see the node installer issue)");
    std::process::exit(2);
}
