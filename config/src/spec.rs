//! From a repository snapshot to a validated [`Platform`]: pick the environment, evaluate its entry
//! file in the sandbox (with the spindle library's `Platform` contract applied), deserialise into
//! the spec types, and run the semantic checks. Every error points at a file, line and column.

use std::collections::HashMap;

use spindle_schema::{NICKEL_LIBRARY, Platform, pointer_segment, validate};

use crate::{
    diagnostic::{Diagnostic, Location},
    evaluate::{self, Evaluator},
    snapshot::{ENVIRONMENTS_DIR, Snapshot},
};

/// The generated program that applies the library's contract to an environment's entry file.
const ENTRY: &str = ".spindle-entry.ncl";

/// A validated environment.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The environment's name (its file in `environments/`).
    pub environment: String,
    /// Its value, validated.
    pub platform: Platform,
    /// Where the platform's values were defined, by JSON pointer.
    origins: HashMap<String, evaluate::Location>,
}

impl Spec {
    /// Rendering problems as diagnostics at their definitions.
    pub fn diagnostics(&self, problems: Vec<spindle_schema::Problem>) -> Vec<Diagnostic> {
        problems
            .into_iter()
            .map(|problem| self.diagnostic(&problem.pointer, problem.message))
            .collect()
    }

    /// An error about the value at `pointer`, located at its definition (or its nearest
    /// ancestor's).
    pub fn diagnostic(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message).at(Origins(&self.origins).find(pointer))
    }
}

/// Why a snapshot did not give a [`Spec`].
#[derive(Debug)]
pub enum SpecError {
    /// The request itself cannot be served (no such environment, ...): exit code 2.
    Usage(String),
    /// The repository's contents are wrong: exit code 1.
    Invalid(Vec<Diagnostic>),
}

impl SpecError {
    /// The exit code of a command that stops on this error: 1 invalid, 2 usage.
    pub fn exit_code(&self) -> i32 {
        match self {
            SpecError::Usage(_) => 2,
            SpecError::Invalid(_) => 1,
        }
    }

    /// Prints the error on stderr, with the number of errors when the repository is invalid.
    pub fn print(&self, snapshot: &Snapshot) {
        eprintln!("{}", self.render(snapshot));
        if let SpecError::Invalid(diagnostics) = self {
            let errors = diagnostics.len();
            eprintln!(
                "\n{errors} error{} in environment",
                if errors == 1 { "" } else { "s" }
            );
        }
    }

    /// One `file:line:col: message` line per problem, the file named from the repository's
    /// root, for reports read beside the repository (a pull request's comment).
    pub fn lines(&self) -> Vec<String> {
        match self {
            SpecError::Usage(message) => vec![message.clone()],
            SpecError::Invalid(diagnostics) => diagnostics
                .iter()
                .map(Diagnostic::headline_in_repository)
                .collect(),
        }
    }

    /// Renders the error as the user should see it.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        match self {
            SpecError::Usage(message) => message.clone(),
            SpecError::Invalid(diagnostics) => diagnostics
                .iter()
                .map(|d| d.render(snapshot))
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }
}

/// Picks the environment to load: the one named, or the only one there is.
pub fn environment(
    snapshot: &Snapshot,
    wanted: Option<&str>,
) -> Result<(String, String), SpecError> {
    let environments = snapshot.environments();
    let names = || environments.keys().cloned().collect::<Vec<_>>().join(", ");
    if environments.is_empty() {
        return Err(SpecError::Usage(format!(
            "{} has no environments: expected {ENVIRONMENTS_DIR}/NAME.ncl (or .yaml, .yml, .json)",
            snapshot.display_root().display()
        )));
    }
    match wanted {
        Some(name) => environments
            .get(name)
            .map(|entry| (name.to_owned(), entry.clone()))
            .ok_or_else(|| {
                SpecError::Usage(format!("no environment `{name}` (have: {})", names()))
            }),
        None if environments.len() == 1 => {
            let (name, entry) = environments.into_iter().next().expect("one environment");
            Ok((name, entry))
        }
        None => Err(SpecError::Usage(format!(
            "several environments ({}): choose one with --env NAME",
            names()
        ))),
    }
}

/// Evaluates and validates one environment of `snapshot`.
pub fn load(
    evaluator: &Evaluator,
    snapshot: &Snapshot,
    wanted: Option<&str>,
) -> Result<Spec, SpecError> {
    let (environment, entry) = environment(snapshot, wanted)?;
    let mut files: Vec<(String, String)> = snapshot
        .config_files()
        .map(|(path, text)| (path.to_owned(), text.to_owned()))
        .collect();
    files.push((
        ENTRY.to_owned(),
        format!("(import {entry:?}) | (import \"spindle.ncl\").Platform\n"),
    ));
    let library = [("spindle.ncl".to_owned(), NICKEL_LIBRARY.to_owned())];
    let output = evaluator
        .eval(ENTRY, &files, &library)
        .map_err(|diagnostics| {
            SpecError::Invalid(diagnostics.into_iter().map(from_guest).collect())
        })?;
    let origins = Origins(&output.origins);

    let platform: Platform = serde_path_to_error::deserialize(&output.value).map_err(|err| {
        let pointer = pointer_of(err.path());
        let message = format!("{}: {}", display_path(err.path()), err.inner());
        SpecError::Invalid(vec![Diagnostic::new(message).at(origins.find(&pointer))])
    })?;

    let problems = validate(&platform, &|path| snapshot.contains(path));
    if !problems.is_empty() {
        return Err(SpecError::Invalid(
            problems
                .into_iter()
                .map(|problem| Diagnostic::new(problem.message).at(origins.find(&problem.pointer)))
                .collect(),
        ));
    }
    Ok(Spec {
        environment,
        platform,
        origins: output.origins,
    })
}

fn from_guest(diagnostic: evaluate::Diagnostic) -> Diagnostic {
    Diagnostic {
        message: diagnostic.message,
        location: diagnostic.location.map(location),
        notes: diagnostic.notes,
    }
}

fn location(at: evaluate::Location) -> Location {
    Location {
        file: at.file,
        line: at.line,
        column: at.column,
    }
}

struct Origins<'a>(&'a HashMap<String, evaluate::Location>);

impl Origins<'_> {
    /// The definition site of `pointer`; failing that, the first definition inside it (a record
    /// that a contract rebuilt has lost its own position, not its fields'); failing that, the
    /// nearest ancestor's.
    fn find(&self, pointer: &str) -> Option<Location> {
        if let Some(at) = self.0.get(pointer) {
            return Some(location(at.clone()));
        }
        let inside = format!("{pointer}/");
        let first_inside = self
            .0
            .iter()
            .filter(|(key, _)| key.starts_with(&inside))
            .map(|(_, at)| at)
            .min_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        if let Some(at) = first_inside {
            return Some(location(at.clone()));
        }
        let mut pointer = pointer;
        loop {
            pointer = &pointer[..pointer.rfind('/')?];
            if let Some(at) = self.0.get(pointer) {
                return Some(location(at.clone()));
            }
        }
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(pointer_segment(key)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .fold(String::new(), |pointer, segment| {
            format!("{pointer}/{segment}")
        })
}

fn display_path(path: &serde_path_to_error::Path) -> String {
    let shown = path.to_string();
    if shown == "." {
        "the environment".to_owned()
    } else {
        shown
    }
}
