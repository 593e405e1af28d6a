//! A benchmark's results as one Markdown section of BENCHMARKS.md. Each bench prints its section
//! and writes it to `target/benchmarks/NAME.md`, where `scripts/benchmarks` collects them.
#![allow(dead_code)] // each bench uses part of it

use std::{fmt::Write as _, time::Duration};

pub struct Section {
    name: &'static str,
    markdown: String,
    in_list: bool,
}

impl Section {
    /// `## title`, the command that produces the figures, and what is measured.
    pub fn new(name: &'static str, title: &str, command: &str, setup: &str) -> Section {
        Section {
            name,
            markdown: format!("## {title}\n\n`{command}`\n\n{setup}\n"),
            in_list: false,
        }
    }

    pub fn table<const N: usize>(&mut self, header: [&str; N], rows: &[[String; N]]) {
        let line = |cells: &[&str]| format!("| {} |\n", cells.join(" | "));
        self.markdown.push('\n');
        self.in_list = false;
        self.markdown.push_str(&line(&header));
        self.markdown.push_str(&line(&["---"; N]));
        for row in rows {
            self.markdown
                .push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
        }
    }

    /// A bullet under the table: a target met or missed, the comparison with the peer.
    pub fn note(&mut self, text: impl AsRef<str>) {
        if !self.in_list {
            self.markdown.push('\n');
            self.in_list = true;
        }
        let _ = writeln!(self.markdown, "- {}", text.as_ref());
    }

    pub fn write(self) {
        print!("{}", self.markdown);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/benchmarks");
        std::fs::create_dir_all(&dir).expect("target/benchmarks");
        std::fs::write(dir.join(format!("{}.md", self.name)), &self.markdown)
            .expect("writes the section");
    }
}

/// A duration with the precision its size deserves: 0.09 ms, 9.8 ms, 298 ms, 1.25 s.
pub fn time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    match ms {
        ms if ms < 1.0 => format!("{ms:.2} ms"),
        ms if ms < 10.0 => format!("{ms:.1} ms"),
        ms if ms < 1000.0 => format!("{ms:.0} ms"),
        ms => format!("{:.2} s", ms / 1000.0),
    }
}

/// "met" or "missed", for a figure against its target.
pub fn verdict(figure: Duration, target: Duration) -> &'static str {
    if figure <= target { "met" } else { "missed" }
}

/// `a` over `b`, as "3.7x".
pub fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.1}x", a.as_secs_f64() / b.as_secs_f64())
}

/// How `ours` compares with the peer's `theirs`: "3.7x faster" or "1.2x slower".
pub fn faster(ours: Duration, theirs: Duration) -> String {
    if ours <= theirs {
        format!("{} faster", ratio(theirs, ours))
    } else {
        format!("{} slower", ratio(ours, theirs))
    }
}
