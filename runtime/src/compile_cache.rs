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
///
/// Compiled code is native code: a cache entry is loaded only when its bytes hash to what spindle
/// recorded beside it (`KEY.sha256`) when it wrote it, so a file put in its place (another
/// component's, or anything else) is ignored and the component compiled again.
pub fn load_or_compile(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> Result<Component> {
    let Some(dir) = dir else {
        return Ok(Component::new(engine, wasm)?);
    };
    let key = key(engine, wasm);
    let path = dir.join(format!("{key}.cwasm"));
    let record = dir.join(format!("{key}.sha256"));
    if let Some(bytes) = recorded(&path, &record) {
        // SAFETY: these bytes hash to what spindle recorded when `Engine::precompile_component`
        // of an engine with the same compatibility hash (it is in the key) wrote them.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => return Ok(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled component: {err:#}")
            }
        }
    }
    let compiled = engine.precompile_component(wasm)?;
    // The record first: a reader that finds the entry finds its record (compilation is
    // deterministic, so writers racing on one entry write the same bytes).
    let written =
        crate::atomic_file::write(&record, hex::encode(Sha256::digest(&compiled)).as_bytes())
            .and_then(|()| crate::atomic_file::write(&path, &compiled));
    if let Err(err) = written {
        tracing::warn!(path = %path.display(), "could not cache the compiled component: {err:#}");
    }
    // SAFETY: these bytes were produced just now by `precompile_component` of this engine.
    #[allow(unsafe_code)]
    unsafe {
        Ok(Component::deserialize(engine, &compiled)?)
    }
}

/// The bytes of `path` if they hash to the digest in `record`; `None` (with a warning for a
/// mismatch) otherwise.
fn recorded(path: &Path, record: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let Ok(expected) = std::fs::read_to_string(record) else {
        // An entry of a spindle from before records, or one being written: compiled again.
        tracing::debug!(path = %path.display(), "no record of this compiled component");
        return None;
    };
    if hex::encode(Sha256::digest(&bytes)) == expected.trim() {
        Some(bytes)
    } else {
        tracing::warn!(
            path = %path.display(),
            "ignoring a compiled component spindle did not record (its bytes do not match {}): \
             compiling again",
            record.display()
        );
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: no imports, no exports.
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_compiled_component_spindle_did_not_record_is_not_loaded() {
        let engine = crate::runtime::compiling_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        load_or_compile(&engine, EMPTY, Some(dir.path())).unwrap();
        let key = key(&engine, EMPTY);
        let (path, record) = (
            dir.path().join(format!("{key}.cwasm")),
            dir.path().join(format!("{key}.sha256")),
        );
        let genuine = std::fs::read(&path).unwrap();
        assert!(recorded(&path, &record).is_some());

        // Bytes swapped in under the expected name are refused, and compiled over.
        let mut forged = genuine.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0xff;
        std::fs::write(&path, &forged).unwrap();
        assert!(recorded(&path, &record).is_none());
        load_or_compile(&engine, EMPTY, Some(dir.path())).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), genuine);

        // So is an entry without a record (a cache filled by something else).
        std::fs::remove_file(&record).unwrap();
        assert!(recorded(&path, &record).is_none());
    }
}
