//! Core Wasm modules made components at load, as Spin does: what `cargo build --target
//! wasm32-wasip1` (or `wasm32-unknown-unknown`) makes of a Spin SDK app is a core module that
//! carries its component type in a custom section. It is encoded as a component, its WASI
//! preview 1 imports served by wasmtime's preview 1 adapter (the command adapter for a module
//! with a `_start`, the reactor adapter otherwise), as `wasm-tools component new` does; the
//! imports wasm-bindgen leaves in a `wasm32-unknown-unknown` build trap when called, as on Spin
//! ([`bindgen_stubs`]).

use std::borrow::Cow;

use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};

mod bindgen_stubs;

/// `wasm` as a component: itself when it is one (or not Wasm at all, which compiling it then
/// reports), a core module adapted to one otherwise.
pub fn component(wasm: &[u8]) -> Result<Cow<'_, [u8]>> {
    if !Parser::is_core_wasm(wasm) {
        return Ok(Cow::Borrowed(wasm));
    }
    let stubbed =
        bindgen_stubs::stubbed(wasm).context("this core Wasm module cannot be made a component")?;
    let wasm = stubbed.as_deref().unwrap_or(wasm);
    let adapter = if exports_start(wasm)? {
        WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
    } else {
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    };
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(wasm)
        .context("this core Wasm module cannot be made a component")?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)
        .context("the WASI preview 1 adapter does not fit")?
        .encode()
        .context("this core Wasm module cannot be made a component")?;
    Ok(Cow::Owned(component))
}

/// Whether the core module `wasm` exports `_start`, as a WASI command does.
fn exports_start(wasm: &[u8]) -> Result<bool> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ExportSection(exports) = payload.context("not a valid core Wasm module")? {
            for export in exports {
                if export.context("not a valid core Wasm module")?.name == "_start" {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The empty component, and bytes that are not Wasm, are left as they are.
    #[test]
    fn components_and_other_bytes_pass_through() {
        let empty_component = b"\0asm\x0d\0\x01\0";
        assert!(matches!(component(empty_component), Ok(Cow::Borrowed(_))));
        assert!(matches!(component(b"not wasm"), Ok(Cow::Borrowed(_))));
    }

    /// A core module without a component type section imports nothing and exports nothing a
    /// component needs: it is still encoded (an empty world), and a broken one is refused.
    #[test]
    fn core_modules_are_encoded_and_broken_ones_refused() {
        let empty_module = b"\0asm\x01\0\0\0";
        let encoded = component(empty_module).unwrap();
        assert!(Parser::is_component(&encoded));
        let truncated = b"\0asm\x01\0\0\0\x01\x05";
        assert!(component(truncated).is_err());
    }
}
