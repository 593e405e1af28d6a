//! The interfaces a component imports, and which of them spindle's runtime serves: what linking
//! provides, and what `spindle check` holds an app against before it reaches a node.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use wasmparser::{Parser, Payload};

/// The Spin interfaces that spindle's runtime links but does not serve yet: a call answers the
/// interface's own "not supported" error.
const ANSWERED_UNSUPPORTED: &[&str] = &["fermyon:spin/llm@2.0.0"];

/// The interfaces of types only that trigger handlers import, because their exports use the
/// types: Spin's Redis trigger, the MQTT and cron trigger plugins. Served by being defined.
const TRIGGER_TYPES: &[&str] = &[
    "fermyon:spin/redis-types",
    "spin:mqtt-trigger/spin-mqtt-types",
    "fermyon:spin-cron/cron-types@2.0.0",
];

/// The instances a component (or a core module, once made one, see [`crate::componentize`])
/// imports, by name: `wasi:http/types@0.2.0`, `fermyon:spin/key-value@2.0.0`.
pub fn imports(wasm: &[u8]) -> Result<BTreeSet<String>> {
    let component = crate::componentize::component(wasm)?;
    let mut imports = BTreeSet::new();
    // Nested modules and components have imports of their own, which their parent satisfies.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&component) {
        match payload.context("not a valid Wasm component")? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.context("not a valid Wasm component")?;
                    if matches!(import.ty, wasmparser::ComponentTypeRef::Instance(_)) {
                        imports.insert(import.name.name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// Whether spindle's runtime links `import` to host functions of its own; everything else a
/// component imports is linked to functions that fail when called, so that the app still
/// starts, as it does on Spin with those features unused.
pub fn linked(import: &str) -> bool {
    import.starts_with("wasi:")
        || import.starts_with("fermyon:spin/")
        || import == "spin:postgres/postgres@4.0.0"
        || import == "spin:postgres/postgres@3.0.0"
        || import == "spin:sqlite/sqlite@3.0.0"
}

/// Whether spindle's runtime serves `import`: links it, and its calls do what the interface
/// says (or, for the types trigger handlers use, defines them). WASI is served in its 0.2 versions (wasmtime 48's) and Spin 3's `wasi:keyvalue` and
/// `wasi:config` drafts, Spin's `fermyon:spin@2.0.0` interfaces but those in
/// [`ANSWERED_UNSUPPORTED`], `spin:postgres@4.0.0` and `spin:sqlite@3.0.0`.
pub fn served(import: &str) -> bool {
    if TRIGGER_TYPES.contains(&import) {
        return true;
    }
    if !linked(import) || ANSWERED_UNSUPPORTED.contains(&import) {
        return false;
    }
    match import.split_once('@') {
        Some((name, version)) if name.starts_with("wasi:keyvalue/") => version == "0.2.0-draft2",
        Some((name, version)) if name.starts_with("wasi:config/") => {
            version == "0.2.0-draft-2024-09-27"
        }
        Some((name, version)) if name.starts_with("wasi:") => version.starts_with("0.2."),
        Some((name, version)) if name.starts_with("fermyon:spin/") => version == "2.0.0",
        Some(_) => true,
        // Unversioned `fermyon:spin` interfaces are Spin 1's, served through its own adapter.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_spindle_serves() {
        for served_import in [
            "wasi:http/types@0.2.0",
            "wasi:sockets/tcp@0.2.3",
            "fermyon:spin/key-value@2.0.0",
            "fermyon:spin/postgres@2.0.0",
            "fermyon:spin/mqtt@2.0.0",
            "fermyon:spin/mysql@2.0.0",
            "spin:postgres/postgres@4.0.0",
            "spin:sqlite/sqlite@3.0.0",
            "spin:postgres/postgres@3.0.0",
            "wasi:keyvalue/store@0.2.0-draft2",
            "wasi:keyvalue/atomics@0.2.0-draft2",
            "wasi:config/store@0.2.0-draft-2024-09-27",
            "fermyon:spin/redis-types",
            "spin:mqtt-trigger/spin-mqtt-types",
            "fermyon:spin-cron/cron-types@2.0.0",
        ] {
            assert!(served(served_import), "{served_import}");
        }
        for refused in [
            "fermyon:spin/llm@2.0.0",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:http/types@0.3.0-rc-2025-09-16",
            "spin:key-value/key-value@3.0.0",
            "spin:postgres/postgres@2.0.0",
            "fermyon:spin/inbound-http",
            "example:app/thing@1.0.0",
        ] {
            assert!(!served(refused), "{refused}");
        }
        assert!(linked("fermyon:spin/llm@2.0.0"));
        assert!(!linked("spin:key-value/key-value@3.0.0"));
    }

    #[test]
    fn the_empty_component_and_a_core_module_import_nothing() {
        assert!(imports(b"\0asm\x0d\0\x01\0").unwrap().is_empty());
        assert!(imports(b"\0asm\x01\0\0\0").unwrap().is_empty());
        assert!(imports(b"not wasm").is_err());
    }
}
