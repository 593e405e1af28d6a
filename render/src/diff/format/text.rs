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
                inert(&diff.environment),
                inert(&diff.before),
                inert(&diff.after),
                summary(diff)
            )
        )
    );
    for rollout in &diff.runtimes {
        let _ = writeln!(out, "! {}", inert(&rollout.sentence()));
    }
    for refusal in &diff.refused {
        let _ = writeln!(out, "! would not run: {}", inert(refusal));
    }
    for conflict in &diff.conflicts {
        let _ = writeln!(out, "! conflict: {}", inert(conflict));
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
                    inert(&change.title()),
                    inert(&change.owner.to_string())
                )
            )
        );
        for line in change.diff.lines() {
            let styled = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => paint(GREEN, &inert(line)),
                Some('-') if !line.starts_with("---") => paint(RED, &inert(line)),
                Some('@') => paint(CYAN, &inert(line)),
                _ => inert(line),
            };
            let _ = writeln!(out, "{styled}");
        }
    }
    out
}

/// Text a repository controls, shown on one line with no terminal control sequences: an escape
/// character could recolour, move the cursor or erase what a reviewer reads.
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_from_a_repository_are_not_sent_to_the_terminal() {
        assert_eq!(inert("a\x1b[2Kb\nc\td"), "a\u{fffd}[2Kb\u{fffd}c\u{fffd}d");
        assert_eq!(inert("plain -> text"), "plain -> text");
    }
}
