//! For terminals: a header per environment, the node runtime rollouts, then a unified diff per
//! object; coloured when asked.

use std::fmt::Write as _;

use super::summary;
use crate::diff::Diff;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

pub fn show(diff: &Diff, color: bool) -> String {
    let paint = |style: &str, text: &str| {
        if color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        paint(
            BOLD,
            &format!(
                "environment {}: {} -> {}: {}",
                diff.environment,
                diff.before,
                diff.after,
                summary(diff)
            )
        )
    );
    for rollout in &diff.runtimes {
        let _ = writeln!(out, "! {}", rollout.sentence());
    }
    for refusal in &diff.refused {
        let _ = writeln!(out, "! would not run: {refusal}");
    }
    for conflict in &diff.conflicts {
        let _ = writeln!(out, "! conflict: {conflict}");
    }
    for change in &diff.changes {
        let _ = writeln!(
            out,
            "\n{}",
            paint(
                BOLD,
                &format!(
                    "{} {} ({})",
                    change.action.sign(),
                    change.title(),
                    change.owner
                )
            )
        );
        for line in change.diff.lines() {
            let styled = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => paint(GREEN, line),
                Some('-') if !line.starts_with("---") => paint(RED, line),
                Some('@') => paint(CYAN, line),
                _ => line.to_owned(),
            };
            let _ = writeln!(out, "{styled}");
        }
    }
    out
}
