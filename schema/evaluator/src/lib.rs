//! The Nickel evaluator behind spindle's `spindle:evaluator` WIT world.
//!
//! Built for `wasm32-wasip2` and run by the reconciler inside wasmtime. Every input file arrives as
//! a string and is registered in Nickel's source cache as an in-memory file under a virtual root, so
//! imports between repository files resolve without touching a filesystem; an import that leaves
//! the set (say `../../etc/passwd`) falls through to Nickel's filesystem lookup, which the sandbox
//! answers with "not found".

use std::path::{Path, PathBuf};

use nickel_lang_core::{
    cache::{CacheHub, InputFormat, SourcePath},
    error::{Diagnostic as NickelDiagnostic, Error, IntoDiagnostics, LabelStyle, NullReporter},
    eval::{
        VirtualMachine, VmContext,
        cache::CacheImpl,
        value::{Container, NickelValue},
    },
    files::{FileId, Files},
    position::{PosTable, TermPos},
    serialize::{self, ExportFormat},
};

wit_bindgen::generate!({ world: "evaluator", path: "wit" });

/// Repository files live under this virtual directory inside the guest.
const ROOT: &str = "/repo";
/// Library files live here, and this directory is on the import path.
const LIBRARY: &str = "/library";

struct Evaluator;

export!(Evaluator);

impl Guest for Evaluator {
    fn eval(
        entry: String,
        files: Vec<(String, String)>,
        library: Vec<(String, String)>,
    ) -> Result<Evaluation, Vec<Diagnostic>> {
        evaluate(&entry, files, library)
    }
}

type Context = VmContext<CacheHub, CacheImpl>;

/// Evaluates `entry` among `files`, with `library` on the import path. Public so that the same code
/// can be run natively (`examples/native.rs`) to measure what the sandbox costs.
pub fn evaluate(
    entry: &str,
    files: Vec<(String, String)>,
    library: Vec<(String, String)>,
) -> Result<Evaluation, Vec<Diagnostic>> {
    let mut cache = CacheHub::new();
    for (name, text) in library {
        let format = InputFormat::from_path(&name).unwrap_or_default();
        cache.sources.add_string(
            SourcePath::Path(Path::new(LIBRARY).join(name), format),
            text,
        );
    }
    cache.sources.add_import_paths(std::iter::once(LIBRARY));
    let mut main_id = None;
    for (path, text) in files {
        let format = InputFormat::from_path(&path).unwrap_or_default();
        let id = cache
            .sources
            .add_string(SourcePath::Path(Path::new(ROOT).join(&path), format), text);
        if path == entry {
            main_id = Some(id);
        }
    }
    let Some(main_id) = main_id else {
        return Err(vec![Diagnostic {
            message: format!("entry file `{entry}` is not among the files given"),
            location: None,
            notes: Vec::new(),
        }]);
    };

    let mut ctx = Context::new(cache, std::io::sink(), NullReporter {});
    let value = ctx
        .prepare_eval(main_id)
        .and_then(|prepared| {
            VirtualMachine::new(&mut ctx)
                .eval_full_for_export(prepared)
                .map_err(Error::from)
        })
        .map_err(|err| diagnostics(&ctx, err))?;
    let json = serialize::to_string(ExportFormat::Json, &value)
        .map_err(|err| diagnostics(&ctx, Error::from(err.with_pos_table(ctx.pos_table.clone()))))?;
    let mut origins = Vec::new();
    collect_origins(&ctx, &value, &mut String::new(), &mut origins);
    Ok(Evaluation { json, origins })
}

fn files_of(ctx: &Context) -> Files {
    ctx.import_resolver.sources.files().clone()
}

fn diagnostics(ctx: &Context, err: Error) -> Vec<Diagnostic> {
    let mut files = files_of(ctx);
    err.into_diagnostics(&mut files)
        .into_iter()
        .map(|d| convert(&files, d))
        .collect()
}

fn convert(files: &Files, diagnostic: NickelDiagnostic<FileId>) -> Diagnostic {
    // The user can act on a place in their repository; the library and stdlib are context.
    let in_repo = |id: FileId| is_repo_file(files, id);
    let pick = |primary: bool, wanted: &dyn Fn(FileId) -> bool| {
        diagnostic
            .labels
            .iter()
            .find(|label| (label.style == LabelStyle::Primary) == primary && wanted(label.file_id))
    };
    let anywhere = |id: FileId| !files.is_stdlib(id);
    let main = pick(true, &in_repo)
        .or_else(|| pick(false, &in_repo))
        .or_else(|| pick(true, &anywhere));
    let message = diagnostic
        .message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
        .replace(&format!("{ROOT}/"), "");
    let location = main.and_then(|l| locate(files, l.file_id, l.range.start));
    let mut notes = Vec::new();
    for label in &diagnostic.labels {
        if Some(label) == main || label.message.is_empty() || files.is_stdlib(label.file_id) {
            continue;
        }
        match locate(files, label.file_id, label.range.start)
            .filter(|_| is_named(files, label.file_id))
        {
            Some(at) => notes.push(format!(
                "{} (at {}:{}:{})",
                label.message, at.file, at.line, at.column
            )),
            None => notes.push(label.message.clone()),
        }
    }
    notes.extend(diagnostic.notes.iter().cloned());
    Diagnostic {
        message,
        location,
        notes,
    }
}

/// A file of the user's repository (not the library, the stdlib or generated code).
fn is_repo_file(files: &Files, id: FileId) -> bool {
    !files.is_stdlib(id) && Path::new(files.name(id)).starts_with(ROOT)
}

/// A file with a name a user can open (not code generated during evaluation).
fn is_named(files: &Files, id: FileId) -> bool {
    let name = Path::new(files.name(id));
    name.starts_with(ROOT) || name.starts_with(LIBRARY)
}

fn locate(files: &Files, id: FileId, byte: usize) -> Option<Location> {
    if files.is_stdlib(id) {
        return None;
    }
    let name = PathBuf::from(files.name(id));
    let file = match (name.strip_prefix(ROOT), name.strip_prefix(LIBRARY)) {
        (Ok(relative), _) => relative.to_string_lossy().into_owned(),
        (_, Ok(library)) => format!("<spindle>/{}", library.to_string_lossy()),
        _ => name.to_string_lossy().into_owned(),
    };
    let source_len = files.source(id).len();
    let at = files
        .location(id, byte.min(source_len.saturating_sub(1) as usize) as u32)
        .ok()?;
    Some(Location {
        file,
        line: at.line.0 + 1,
        column: at.column.0 + 1,
    })
}

/// Records where each record field and array element of the result was defined, keyed by JSON
/// pointer, so that errors found after evaluation can still point at a line.
fn collect_origins(
    ctx: &Context,
    value: &NickelValue,
    pointer: &mut String,
    out: &mut Vec<Origin>,
) {
    walk(&files_of(ctx), &ctx.pos_table, value, pointer, out);
}

fn walk(
    files: &Files,
    table: &PosTable,
    value: &NickelValue,
    pointer: &mut String,
    out: &mut Vec<Origin>,
) {
    if let Some(Container::Alloc(record)) = value.as_record() {
        for (name, field) in &record.fields {
            let Some(child) = &field.value else { continue };
            if field.metadata.not_exported() {
                continue;
            }
            let segment = name.label().replace('~', "~0").replace('/', "~1");
            let positions = [child.pos(table), name.pos];
            visit(files, table, child, &segment, &positions, pointer, out);
        }
    } else if let Some(Container::Alloc(array)) = value.as_array() {
        for (index, child) in array.array.iter().enumerate() {
            let positions = [child.pos(table)];
            visit(
                files,
                table,
                child,
                &index.to_string(),
                &positions,
                pointer,
                out,
            );
        }
    }
}

/// Records the origin of `child`, found at `pointer/segment`: the first of `positions` that lies in
/// a repository file. Then walks into it.
fn visit(
    files: &Files,
    table: &PosTable,
    child: &NickelValue,
    segment: &str,
    positions: &[TermPos],
    pointer: &mut String,
    out: &mut Vec<Origin>,
) {
    let len = pointer.len();
    pointer.push('/');
    pointer.push_str(segment);
    let defined = positions
        .iter()
        .filter_map(|pos| pos.into_opt())
        .find(|span| is_repo_file(files, span.src_id));
    if let Some(location) =
        defined.and_then(|span| locate(files, span.src_id, span.start.to_usize()))
    {
        out.push(Origin {
            pointer: pointer.clone(),
            location,
        });
    }
    walk(files, table, child, pointer, out);
    pointer.truncate(len);
}
