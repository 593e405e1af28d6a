//! `containerd-shim-spindle-v1`: containerd starts it for runtime type `io.containerd.spindle.v1`.
//! It runs the Spin app of a container's image (a Spin OCI artifact, or an image whose files hold
//! a `spin.toml`) on spindle's runtime, inside the container's namespaces and cgroup.

mod compiler;
mod pod;
mod sandbox;

use containerd_shim_wasm::shim::{Cli as _, Config, Shim, Version, version};

struct SpindleShim;

impl Shim for SpindleShim {
    type Sandbox = sandbox::SpindleSandbox;

    fn name() -> &'static str {
        "spindle"
    }

    fn version() -> Version {
        version!()
    }

    async fn compiler() -> Option<impl containerd_shim_wasm::shim::Compiler> {
        compiler::SpindleCompiler::new()
    }

    fn supported_layers_types() -> &'static [&'static str] {
        spindle_runtime::artifact::LAYER_MEDIA_TYPES
    }
}

fn main() {
    // Before anything is started: the container's process inherits the key.
    compiler::open_seal();
    SpindleShim::run(Config {
        default_log_level: "info".into(),
        ..Config::default()
    });
}
