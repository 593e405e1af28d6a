//! Components compiled once per node: runwasi keeps what [`SpindleCompiler`] returns in
//! containerd's content store, labelled with the shim's name and [`Compiler::cache_key`], and
//! hands it back (marked precompiled) on every later start of the same image. What it returns is
//! sealed with the node's key ([`compile_cache::Seal`]), and a start loads back only what carries
//! that seal.

use anyhow::Result;
use containerd_shim_wasm::{sandbox::context::WasmLayer, shim::Compiler};
use spindle_runtime::{artifact, compile_cache, componentize, runtime};
use wasmtime::Engine;

/// Where the node's key for compiled code is: root's, on the node.
pub const KEY: &str = "/var/lib/spindle/shim/compiled.key";

pub struct SpindleCompiler {
    engine: Engine,
    seal: &'static compile_cache::Seal,
}

impl SpindleCompiler {
    /// A compiler, when the node's key could be read (see [`open_seal`]) and the engine made.
    pub fn new() -> Option<Self> {
        let seal = compile_cache::seal()?;
        match runtime::compiling_engine() {
            Ok(engine) => Some(SpindleCompiler { engine, seal }),
            Err(err) => {
                log::warn!("components will not be precompiled: {err:#}");
                None
            }
        }
    }
}

/// Reads (or makes) the node's key and makes it the one precompiled components are checked
/// with; without it nothing is precompiled, and a precompiled layer is refused.
pub fn open_seal() {
    match compile_cache::Seal::open_or_create(std::path::Path::new(KEY)) {
        Ok(seal) => compile_cache::use_seal(seal),
        Err(err) => log::warn!("components will not be precompiled: {err:#}"),
    }
}

impl Compiler for SpindleCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        // The key's id: content sealed by another key (or none) is looked up under another
        // cache key, and compiled again instead of refused.
        (
            env!("CARGO_PKG_VERSION"),
            compile_cache::compatibility(&self.engine),
            self.seal.id(),
        )
    }

    async fn compile(&self, layers: &[WasmLayer]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut compiled = Vec::with_capacity(layers.len());
        for layer in layers {
            let digest = layer.config.digest();
            let wasm = artifact::is_wasm_layer(layer.config.media_type().as_ref());
            compiled.push(if wasm && !layer.precompiled {
                let component = componentize::component(&layer.layer);
                match component.and_then(|wasm| Ok(self.engine.precompile_component(&wasm)?)) {
                    Ok(bytes) => {
                        log::info!("precompiled component {digest}");
                        Some(self.seal.seal(bytes))
                    }
                    // The start of the container reports it, in the container's log.
                    Err(err) => {
                        log::warn!(
                            "layer {digest} is not a component spindle can compile: {err:#}"
                        );
                        None
                    }
                }
            } else {
                None
            });
        }
        Ok(compiled)
    }
}
