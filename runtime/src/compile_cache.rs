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
/// Without a `dir` (or when the cache cannot be written) it just compiles. A core module is
/// made a component first ([`crate::componentize`]); the entry is keyed by the module's bytes,
/// so a cached one is not adapted again.
///
/// Compiled code is native code: a cache entry is loaded only when its bytes hash to what spindle
/// recorded beside it (`KEY.sha256`) when it wrote it, so a file put in its place (another
/// component's, or anything else) is ignored and the component compiled again.
pub fn load_or_compile(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> Result<Component> {
    let Some(dir) = dir else {
        return Ok(Component::new(
            engine,
            &crate::componentize::component(wasm)?,
        )?);
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
    let compiled = engine.precompile_component(&crate::componentize::component(wasm)?)?;
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

/// A node's key for compiled code that leaves the process: the containerd shim hands what it
/// compiles to containerd's content store, and gets it back at a later start marked
/// "precompiled". Loading it is running native code, so the shim seals what it compiles (an
/// HMAC-SHA256 under a key only root on the node can read) and loads back only what carries its
/// seal: bytes from anywhere else are refused, never deserialised.
pub struct Seal {
    key: [u8; 32],
}

/// Ends sealed bytes, before the 32-byte tag.
const SEAL_MAGIC: &[u8; 8] = b"spindle1";

impl Seal {
    /// The key at `path`, created (random, mode 0600) when there is none.
    pub fn open_or_create(path: &Path) -> Result<Seal> {
        use anyhow::Context as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        if !path.exists() {
            let dir = path.parent().context("a key file has a folder")?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let temporary = dir.join(format!(".key.{}", std::process::id()));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)
                .with_context(|| format!("cannot write {}", temporary.display()))?;
            std::io::Write::write_all(&mut file, &rand::random::<[u8; 32]>())?;
            file.sync_all()?;
            // A link fails when another shim made the key first: then that one is the node's.
            let linked = std::fs::hard_link(&temporary, path);
            let _ = std::fs::remove_file(&temporary);
            if let Err(err) = linked
                && err.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(err).with_context(|| format!("cannot create {}", path.display()));
            }
        }
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} may be read or written by others (mode {:o}): not using it as a key",
                path.display(),
                mode & 0o777
            );
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} does not hold a 32-byte key", path.display()))?;
        Ok(Seal { key })
    }

    fn tag(&self, bytes: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// Names the key without giving it away: what a compile cache keys on, so that code sealed
    /// by a lost or replaced key is looked up under another key, and compiled again.
    pub fn id(&self) -> String {
        hex::encode(&self.tag(b"spindle compiled-code key id")[..8])
    }

    /// `compiled` with the seal appended.
    pub fn seal(&self, mut compiled: Vec<u8>) -> Vec<u8> {
        let tag = self.tag(&compiled);
        compiled.extend_from_slice(SEAL_MAGIC);
        compiled.extend_from_slice(&tag);
        compiled
    }

    /// The compiled bytes of `sealed`, if this key sealed them.
    pub fn unseal<'a>(&self, sealed: &'a [u8]) -> Result<&'a [u8]> {
        use hmac::Mac as _;
        let refused = || anyhow::anyhow!("it does not carry this node's seal");
        let split = sealed
            .len()
            .checked_sub(SEAL_MAGIC.len() + 32)
            .ok_or_else(refused)?;
        let (compiled, trailer) = sealed.split_at(split);
        let (magic, tag) = trailer.split_at(SEAL_MAGIC.len());
        if magic != SEAL_MAGIC {
            return Err(refused());
        }
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(compiled);
        mac.verify_slice(tag).map_err(|_| refused())?;
        Ok(compiled)
    }
}

/// The seal this process checks precompiled components with; set once by the containerd shim
/// before it starts anything (the container's process inherits it).
static SEAL: std::sync::OnceLock<Seal> = std::sync::OnceLock::new();

/// Makes `seal` the one [`load_precompiled`] checks with.
pub fn use_seal(seal: Seal) {
    let _ = SEAL.set(seal);
}

/// The seal set by [`use_seal`], if any.
pub fn seal() -> Option<&'static Seal> {
    SEAL.get()
}

/// Loads a component compiled ahead of time by [`crate::runtime::compiling_engine`] and sealed
/// by this node's [`Seal`] (kept for us by containerd, see the containerd shim's compiler).
pub fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component> {
    let sealed = std::fs::read(path)?;
    let seal = seal().ok_or_else(|| {
        anyhow::anyhow!(
            "{} is precompiled, and this process has no key to check that spindle compiled it",
            path.display()
        )
    })?;
    let compiled = seal.unseal(&sealed).map_err(|err| {
        anyhow::anyhow!(
            "{} is not code this node's spindle compiled ({err}): refusing to load it; remove \
             the image's compiled content from containerd (`ctr content rm`) to compile again",
            path.display()
        )
    })?;
    // SAFETY: these bytes carry this node's seal, which only `Seal::seal` in this node's shim
    // puts on what `Engine::precompile_component` of this build wrote; wasmtime also checks
    // their header and the engine's compatibility hash.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, compiled) };
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

    /// A core module is adapted once: the entry is keyed by the module, and loaded from then on.
    #[test]
    fn a_core_module_is_cached_under_its_own_bytes() {
        const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";
        let engine = crate::runtime::compiling_engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        load_or_compile(&engine, EMPTY_MODULE, Some(dir.path())).unwrap();
        let path = dir
            .path()
            .join(format!("{}.cwasm", key(&engine, EMPTY_MODULE)));
        let compiled = std::fs::read(&path).unwrap();
        let adapted = crate::componentize::component(EMPTY_MODULE).unwrap();
        assert_eq!(compiled, engine.precompile_component(&adapted).unwrap());
        assert!(
            recorded(
                &path,
                &dir.path()
                    .join(format!("{}.sha256", key(&engine, EMPTY_MODULE)))
            )
            .is_some()
        );
    }

    #[test]
    fn only_what_this_key_sealed_is_unsealed() {
        let dir = tempfile::tempdir().unwrap();
        let seal = Seal::open_or_create(&dir.path().join("k/key")).unwrap();
        let again = Seal::open_or_create(&dir.path().join("k/key")).unwrap();
        let sealed = seal.seal(b"native code".to_vec());
        assert_eq!(again.unseal(&sealed).unwrap(), b"native code");
        assert_eq!(seal.id(), again.id());

        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(seal.unseal(&tampered).is_err());
        let other = Seal::open_or_create(&dir.path().join("other")).unwrap();
        assert!(other.unseal(&sealed).is_err());
        assert_ne!(seal.id(), other.id());
        assert!(seal.unseal(b"short").is_err());
        assert!(
            seal.unseal(b"native code, unsealed, but long enough for a trailer...")
                .is_err()
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("k/key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A key others may read is no key.
        std::fs::set_permissions(
            dir.path().join("k/key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(Seal::open_or_create(&dir.path().join("k/key")).is_err());
    }
}
