//! Errors about a user's repository, shown like a compiler's: `file:line:col: message`, the
//! source line, a caret, and notes.

use std::fmt::Write as _;

use crate::snapshot::Snapshot;

/// A place in a repository file; lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// Path of the file, relative to the repository and `/`-separated.
    pub file: String,
    /// Line number, from 1.
    pub line: u32,
    /// Column number, from 1.
    pub column: u32,
}

/// One problem with the user's input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where the problem is, when it can be pinned to a place in a file.
    pub location: Option<Location>,
    /// Explanations and hints, printed after the source line.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with `message`, no location and no notes.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            notes: Vec::new(),
        }
    }

    /// Points the diagnostic at `location` (`None`: at no place).
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    /// `file:line:col: message` (the message alone when it has no place): the first line of
    /// [`Diagnostic::render`].
    pub fn headline(&self, snapshot: &Snapshot) -> String {
        self.headline_at(|file| snapshot.display_path(file))
    }

    /// The same with the file named from the repository's root, wherever spindle was run: for
    /// reports read beside the repository, such as a pull request's comment.
    pub fn headline_in_repository(&self) -> String {
        self.headline_at(str::to_owned)
    }

    fn headline_at(&self, path: impl Fn(&str) -> String) -> String {
        match &self.location {
            Some(at) => format!(
                "{}:{}:{}: {}",
                path(&at.file),
                at.line,
                at.column,
                self.message
            ),
            None => self.message.clone(),
        }
    }

    /// `file:line:col: message`, then the source line with a caret under the column, then notes.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut out = self.headline(snapshot);
        let Some(at) = &self.location else {
            self.render_notes(&mut out, "");
            return out;
        };
        let line = snapshot
            .text(&at.file)
            .and_then(|text| text.lines().nth(at.line.saturating_sub(1) as usize));
        let gutter = " ".repeat(at.line.to_string().len());
        if let Some(line) = line {
            let pad: String = line
                .chars()
                .take(at.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(out, "\n{gutter} |\n{} | {line}\n{gutter} | {pad}^", at.line);
        }
        self.render_notes(&mut out, &gutter);
        out
    }

    fn render_notes(&self, out: &mut String, gutter: &str) {
        for note in &self.notes {
            let note = note.replace('\n', &format!("\n{gutter}         "));
            let _ = write!(out, "\n{gutter} = note: {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_line_and_a_caret() {
        let snapshot = Snapshot::from_files(
            "repo",
            [(
                "environments/production.ncl".to_owned(),
                "{\n  apps.web.replicas = \"three\",\n}\n".to_owned(),
            )],
        );
        let diagnostic = Diagnostic {
            message: "replicas: expected Number".to_owned(),
            location: Some(Location {
                file: "environments/production.ncl".to_owned(),
                line: 2,
                column: 23,
            }),
            notes: vec!["a hint".to_owned()],
        };
        assert_eq!(
            diagnostic.render(&snapshot),
            "repo/environments/production.ncl:2:23: replicas: expected Number\n  |\n2 |   apps.web.replicas = \"three\",\n  |                       ^\n  = note: a hint"
        );
    }
}
