//! Components compiled once per node: runwasi keeps what [`SpindleCompiler`] returns in
//! containerd's content store, labelled with the shim's name and [`Compiler::cache_key`], and
//! hands it back (marked precompiled) on every later start of the same image.

use anyhow::Result;
use containerd_shim_wasm::{sandbox::context::WasmLayer, shim::Compiler};
use spindle_runtime::{artifact, compile_cache, runtime};
use wasmtime::Engine;

pub struct SpindleCompiler {
    engine: Engine,
}

impl SpindleCompiler {
    pub fn new() -> Option<Self> {
        match runtime::compiling_engine() {
            Ok(engine) => Some(SpindleCompiler { engine }),
            Err(err) => {
                log::warn!("components will not be precompiled: {err:#}");
                None
            }
        }
    }
}

impl Compiler for SpindleCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        (
            env!("CARGO_PKG_VERSION"),
            compile_cache::compatibility(&self.engine),
        )
    }

    async fn compile(&self, layers: &[WasmLayer]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut compiled = Vec::with_capacity(layers.len());
        for layer in layers {
            let digest = layer.config.digest();
            let wasm = artifact::is_wasm_layer(layer.config.media_type().as_ref());
            compiled.push(if wasm && !layer.precompiled {
                match self.engine.precompile_component(&layer.layer) {
                    Ok(bytes) => {
                        log::info!("precompiled component {digest}");
                        Some(bytes)
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
