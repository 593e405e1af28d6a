//! wasm-bindgen's placeholder imports, turned into functions that trap. A Spin SDK app built for
//! `wasm32-unknown-unknown` links crates that reach for JavaScript on that target (spin-sdk's
//! `chrono` does, for the clock): their calls become imports from `__wbindgen_placeholder__` and
//! `__wbindgen_externref_xform__`, which only wasm-bindgen's CLI resolves, for a browser. Nothing
//! on a Spin host provides them, and the component encoder refuses a module that imports them.
//! Spin links them to traps (its issue 1051); so does spindle: the module keeps working until
//! one of them is called, which fails that request.

use anyhow::{Result, bail};
use wasm_encoder::reencode::{Error, Reencode, RoundtripReencoder, utils};
use wasmparser::{Imports, Parser, Payload, TypeRef};

/// The modules of the imports that wasm-bindgen's CLI would resolve.
const BINDGEN_MODULES: &[&str] = &["__wbindgen_placeholder__", "__wbindgen_externref_xform__"];

/// `wasm` with its wasm-bindgen function imports defined as functions that trap; `None` when it
/// has none.
pub fn stubbed(wasm: &[u8]) -> Result<Option<Vec<u8>>> {
    let Some(mut stubber) = Stubber::plan(wasm)? else {
        return Ok(None);
    };
    let mut module = wasm_encoder::Module::new();
    stubber
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|err| anyhow::anyhow!("cannot stub its wasm-bindgen imports: {err:?}"))?;
    if !stubber.placed {
        bail!("cannot stub its wasm-bindgen imports: the module defines no functions");
    }
    Ok(Some(module.finish()))
}

fn is_bindgen(module: &str, ty: &TypeRef) -> Option<u32> {
    match ty {
        TypeRef::Func(ty) | TypeRef::FuncExact(ty) if BINDGEN_MODULES.contains(&module) => {
            Some(*ty)
        }
        _ => None,
    }
}

/// Re-encodes a module with its wasm-bindgen imports removed and defined after its own
/// functions, every function index moved to match.
struct Stubber {
    /// The new index of each imported function, by its old index.
    imported: Vec<u32>,
    /// The type of each stub, in the order they are defined.
    stubs: Vec<u32>,
    /// Whether the stubs were added to the function and code sections.
    placed: bool,
}

impl Stubber {
    /// The plan for `wasm`: `None` when it imports nothing from wasm-bindgen. Nothing is sized by
    /// the counts a section claims (the module is validated only once it is encoded): only by
    /// the imports actually read.
    fn plan(wasm: &[u8]) -> Result<Option<Stubber>> {
        // Each imported function: the type of its stub when it is one of wasm-bindgen's.
        let mut imported: Vec<Option<u32>> = Vec::new();
        let mut defined = 0u32;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::ImportSection(section) => {
                    for group in section {
                        match group? {
                            Imports::Single(_, import) => {
                                if matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                                    imported.push(is_bindgen(import.module, &import.ty));
                                } else if BINDGEN_MODULES.contains(&import.module) {
                                    bail!(
                                        "it imports `{}::{}`, which is not a function, from wasm-bindgen",
                                        import.module,
                                        import.name
                                    );
                                }
                            }
                            Imports::Compact1 { module, .. } | Imports::Compact2 { module, .. }
                                if BINDGEN_MODULES.contains(&module) =>
                            {
                                bail!("it imports from `{module}` in the compact encoding");
                            }
                            Imports::Compact1 { items, .. } => {
                                for item in items {
                                    if matches!(item?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_))
                                    {
                                        imported.push(None);
                                    }
                                }
                            }
                            Imports::Compact2 { ty, names, .. } => {
                                if matches!(ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                                    for name in names {
                                        name?;
                                        imported.push(None);
                                    }
                                }
                            }
                        }
                    }
                }
                Payload::FunctionSection(section) => defined = section.count(),
                _ => {}
            }
        }
        let stubs: Vec<u32> = imported.iter().flatten().copied().collect();
        if stubs.is_empty() {
            return Ok(None);
        }
        let kept = u32::try_from(imported.len() - stubs.len())?;
        let too_many = || anyhow::anyhow!("it declares more functions than a module can hold");
        let first_stub = kept.checked_add(defined).ok_or_else(too_many)?;
        first_stub
            .checked_add(u32::try_from(stubs.len())?)
            .ok_or_else(too_many)?;
        let (mut next_kept, mut next_stub) = (0u32, first_stub);
        let imported = imported
            .iter()
            .map(|stub| {
                let counter = if stub.is_some() {
                    &mut next_stub
                } else {
                    &mut next_kept
                };
                *counter += 1;
                *counter - 1
            })
            .collect();
        Ok(Some(Stubber {
            imported,
            stubs,
            placed: false,
        }))
    }
}

impl Reencode for Stubber {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, Error<Self::Error>> {
        // The module's own functions move down past the imports that became stubs.
        Ok(match self.imported.get(func as usize) {
            Some(moved) => *moved,
            None => func - self.stubs.len() as u32,
        })
    }

    fn parse_imports(
        &mut self,
        section: &mut wasm_encoder::ImportSection,
        imports: Imports<'_>,
    ) -> Result<(), Error<Self::Error>> {
        match imports {
            Imports::Single(_, import) if is_bindgen(import.module, &import.ty).is_some() => Ok(()),
            imports => utils::parse_imports(self, section, imports),
        }
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        utils::parse_function_section(self, functions, section)?;
        for ty in &self.stubs {
            functions.function(*ty);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        utils::parse_code_section(self, code, section)?;
        for _ in &self.stubs {
            let mut body = wasm_encoder::Function::new([]);
            body.instruction(&wasm_encoder::Instruction::Unreachable);
            body.instruction(&wasm_encoder::Instruction::End);
            code.function(&body);
        }
        self.placed = true;
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        // Debug information points into the code as it was; the rest (the component type
        // above all) is kept as it is.
        if section.name() == "name" || section.name().starts_with(".debug") {
            return Ok(());
        }
        RoundtripReencoder.parse_custom_section(module, section)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module importing `log` from the host and one function from wasm-bindgen, calling both.
    fn module() -> Vec<u8> {
        use wasm_encoder::*;
        let mut types = TypeSection::new();
        types.ty().function([], []);
        types.ty().function([], [ValType::I32]);
        let mut imports = ImportSection::new();
        imports.import("host", "log", EntityType::Function(0));
        imports.import(
            "__wbindgen_placeholder__",
            "__wbindgen_describe",
            EntityType::Function(0),
        );
        imports.import("host", "answer", EntityType::Function(1));
        let mut functions = FunctionSection::new();
        functions.function(1);
        let mut exports = ExportSection::new();
        exports.export("run", ExportKind::Func, 3);
        exports.export("describe", ExportKind::Func, 1);
        let mut code = CodeSection::new();
        let mut run = Function::new([]);
        run.instruction(&Instruction::Call(0));
        run.instruction(&Instruction::Call(1));
        run.instruction(&Instruction::Call(2));
        run.instruction(&Instruction::End);
        code.function(&run);
        let mut module = Module::new();
        module
            .section(&types)
            .section(&imports)
            .section(&functions)
            .section(&exports)
            .section(&code);
        module.finish()
    }

    #[test]
    fn wasm_bindgen_imports_become_traps_and_calls_follow_their_functions() {
        let stubbed = stubbed(&module())
            .unwrap()
            .expect("it imports from wasm-bindgen");
        wasmparser::Validator::new().validate_all(&stubbed).unwrap();
        let mut imports = Vec::new();
        let mut calls = Vec::new();
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(&stubbed) {
            match payload.unwrap() {
                Payload::ImportSection(section) => {
                    for import in section.into_imports() {
                        let import = import.unwrap();
                        imports.push(format!("{}::{}", import.module, import.name));
                    }
                }
                Payload::ExportSection(section) => {
                    for export in section {
                        let export = export.unwrap();
                        exports.push((export.name.to_owned(), export.index));
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let mut ops = body.get_operators_reader().unwrap();
                    while !ops.eof() {
                        if let wasmparser::Operator::Call { function_index } = ops.read().unwrap() {
                            calls.push(function_index);
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(imports, ["host::log", "host::answer"]);
        // `run` (now 2) calls log (0), the stub (3, after `run`) and answer (1).
        assert_eq!(calls, [0, 3, 1]);
        assert_eq!(exports, [("run".to_owned(), 2), ("describe".to_owned(), 3)]);
    }

    /// A function section that claims four billion functions, after one wasm-bindgen import:
    /// refused without sizing anything by the claim.
    #[test]
    fn a_module_claiming_more_functions_than_it_has_is_refused_cheaply() {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend_from_slice(b"\x01\x04\x01\x60\x00\x00"); // one type: [] -> []
        let module = b"__wbindgen_placeholder__";
        let mut imports = vec![1u8, module.len() as u8];
        imports.extend_from_slice(module);
        imports.extend_from_slice(b"\x01f\x00\x00"); // `f`, a function of type 0
        wasm.push(2);
        wasm.push(imports.len() as u8);
        wasm.extend_from_slice(&imports);
        wasm.extend_from_slice(b"\x03\x05\xff\xff\xff\xff\x0f"); // 0xffffffff functions
        assert!(stubbed(&wasm).is_err());
    }

    #[test]
    fn a_module_without_wasm_bindgen_imports_is_left_alone() {
        assert!(stubbed(b"\0asm\x01\0\0\0").unwrap().is_none());
    }
}
