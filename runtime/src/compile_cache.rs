//! Compiled components on disk, keyed by the engine's compatibility hash and the component bytes,
//! so that only the first run of a given spindle build pays for compilation.

use std::{
    hash::{Hash, Hasher},
    path::Path,
};

use anyhow::Result;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, component::Component};

/// Loads the compiled form of `wasm` from `dir`, or compiles it and stores it there.
/// Without a `dir` (or when the cache cannot be written) it just compiles.
pub fn load_or_compile(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> Result<Component> {
    let Some(dir) = dir else {
        return Ok(Component::new(engine, wasm)?);
    };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    if path.exists() {
        // SAFETY: the file was written by `Engine::precompile_component` of an engine with the
        // same compatibility hash (it is in the file name) into spindle's own cache directory.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled component: {err:#}")
            }
        }
    }
    let compiled = engine.precompile_component(wasm)?;
    if let Err(err) = crate::atomic_file::write(&path, &compiled) {
        tracing::warn!(path = %path.display(), "could not cache the compiled component: {err:#}");
    }
    // SAFETY: these bytes were produced just now by `precompile_component` of this engine.
    #[allow(unsafe_code)]
    unsafe {
        Ok(Component::deserialize(engine, &compiled)?)
    }
}

/// Changes whenever code compiled by `engine` would not load into another engine of this build.
pub fn compatibility(engine: &Engine) -> u64 {
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hash);
    hash.finish()
}

/// Loads a component compiled ahead of time by [`crate::runtime::compiling_engine`] (kept for us
/// by containerd, see the containerd shim's compiler).
pub fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component> {
    // SAFETY: the file holds what `Engine::precompile_component` of this build wrote into
    // containerd's content store, which only root can write; wasmtime checks its header and the
    // engine's compatibility hash before using it.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.map_err(|err| {
        anyhow::anyhow!(
            "{} is not code compiled by this spindle: {err:#}",
            path.display()
        )
    })
}

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(compatibility(engine).to_le_bytes());
    digest.update(wasm);
    hex::encode(&digest.finalize()[..16])
}
