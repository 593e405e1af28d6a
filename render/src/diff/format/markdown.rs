//! A pull-request comment: what changes per app and runtime, the node rollouts, then one
//! collapsible block per object with its diff. Long diffs are cut per object and the whole
//! comment is kept under what code hosts accept (GitHub: 65,536 characters).

use std::{collections::BTreeMap, fmt::Write as _};

use super::{COUNTED, summary, word};
use crate::diff::{Action, Diff, Owner};

/// Lines of one object's diff shown before the rest is cut.
const MAX_LINES_PER_OBJECT: usize = 200;
/// Characters the whole comment may use.
const MAX_COMMENT: usize = 60_000;

pub fn show(diffs: &[Diff]) -> String {
    let mut out = String::new();
    let mut cut_objects = 0;
    for diff in diffs {
        let _ = writeln!(
            out,
            "### spindle: environment <code>{}</code>\n\n<code>{}</code> → <code>{}</code>: {}\n",
            escape(&diff.environment),
            escape(&diff.before),
            escape(&diff.after),
            summary(diff)
        );
        if diff.is_empty() {
            let _ = writeln!(out, "No changes.\n");
            continue;
        }
        if !diff.refused.is_empty() {
            let _ = writeln!(
                out,
                "**Would not run: these apps import what their runtime does not provide**\n"
            );
            for refusal in &diff.refused {
                let _ = writeln!(out, "- {}", escape(refusal));
            }
            out.push('\n');
        }
        if !diff.conflicts.is_empty() {
            let _ = writeln!(out, "**Conflicts: an apply would stop here**\n");
            for conflict in &diff.conflicts {
                let _ = writeln!(out, "- {}", escape(conflict));
            }
            out.push('\n');
        }
        if !diff.runtimes.is_empty() {
            let _ = writeln!(out, "**Node runtimes**\n");
            for rollout in &diff.runtimes {
                let _ = writeln!(out, "- {}", escape(&rollout.sentence()));
            }
            out.push('\n');
        }
        table(&mut out, diff);
        for change in &diff.changes {
            let mut block = String::new();
            let _ = writeln!(
                block,
                "<details><summary>{} <code>{}</code> (+{} −{})</summary>\n\n```diff",
                word(change.action),
                escape(&change.title()),
                change.lines_added,
                change.lines_removed
            );
            let lines: Vec<&str> = change.diff.lines().collect();
            for line in lines.iter().take(MAX_LINES_PER_OBJECT) {
                let _ = writeln!(block, "{}", line.replace("```", "``\u{200b}`"));
            }
            if lines.len() > MAX_LINES_PER_OBJECT {
                let _ = writeln!(
                    block,
                    "# … {} more lines cut",
                    lines.len() - MAX_LINES_PER_OBJECT
                );
            }
            block.push_str("```\n\n</details>\n\n");
            if out.len() + block.len() > MAX_COMMENT {
                cut_objects += 1;
                continue;
            }
            out.push_str(&block);
        }
    }
    if cut_objects > 0 {
        let _ = writeln!(
            out,
            "_{cut_objects} more object diffs cut to fit a comment; run `spindle diff` to see them._"
        );
    }
    out
}

/// One row per app, runtime and the environment's shared objects, with a count per action.
fn table(out: &mut String, diff: &Diff) {
    let mut rows: BTreeMap<&Owner, [usize; COUNTED.len()]> = BTreeMap::new();
    for change in &diff.changes {
        let row = rows.entry(&change.owner).or_default();
        let column = COUNTED
            .iter()
            .position(|&a| a == change.action)
            .expect("every action is counted");
        row[column] += 1;
    }
    let shown: Vec<(usize, Action)> = COUNTED
        .iter()
        .enumerate()
        .filter(|(_, action)| diff.count(**action) > 0)
        .map(|(i, a)| (i, *a))
        .collect();
    let _ = write!(out, "| |");
    for (_, action) in &shown {
        let _ = write!(out, " {} |", word(*action));
    }
    let _ = write!(out, "\n|---|");
    for _ in &shown {
        out.push_str("---:|");
    }
    out.push('\n');
    for (owner, counts) in rows {
        let _ = write!(out, "| {} |", escape(&owner.to_string()));
        for (i, _) in &shown {
            let _ = write!(out, " {} |", counts[*i]);
        }
        out.push('\n');
    }
    out.push('\n');
}

/// Text a repository controls (names, versions, selectors, messages), made inert: it opens no
/// HTML element or comment (which could hide the rest of the comment from a reviewer), no code
/// span, link, image, emphasis or table cell, escapes nothing of spindle's own, and stays on its
/// line (a line break could start a heading or a fence). ASCII punctuation that Markdown reads
/// is written as numeric character references, which mean the same in Markdown text and inside
/// HTML blocks such as `<summary>`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' | '<' | '>' | '`' | '|' | '\\' | '[' | ']' | '*' | '_' | '~' | '#' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{ObjectChange, RuntimeRollout};

    const HOSTILE: &str = "1\n\n<!-- `x` </details> | ```\r\n# heading [a](b) *c* \\";

    #[test]
    fn repository_text_hides_nothing_from_a_reviewer() {
        let change = |name: &str| ObjectChange {
            action: Action::Added,
            api_version: "v1".to_owned(),
            kind: "ConfigMap".to_owned(),
            namespace: Some(HOSTILE.to_owned()),
            name: name.to_owned(),
            previous_name: None,
            owner: Owner::App(HOSTILE.to_owned()),
            diff: format!("+name: {HOSTILE}\n+```\n+</details>"),
            lines_added: 3,
            lines_removed: 0,
        };
        let diff = Diff {
            environment: HOSTILE.to_owned(),
            before: HOSTILE.to_owned(),
            after: HOSTILE.to_owned(),
            changes: vec![change("first"), change("second")],
            unchanged: 0,
            runtimes: vec![RuntimeRollout {
                runtime: HOSTILE.to_owned(),
                from_version: Some(HOSTILE.to_owned()),
                to_version: Some(format!("{HOSTILE}2")),
                from_sha256: None,
                to_sha256: None,
                nodes: None,
                node_selector: [(HOSTILE.to_owned(), HOSTILE.to_owned())].into(),
                max_unavailable: 1,
            }],
            refused: vec![HOSTILE.to_owned()],
            conflicts: vec![HOSTILE.to_owned()],
        };
        let comment = show(&[diff]);
        // What the comment says outside the object diffs' fences (inside them, HTML and Markdown
        // are inert, and a fence is only closed by one of spindle's).
        let mut prose = String::new();
        let mut fenced = false;
        for line in comment.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if !fenced {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        assert!(!fenced, "every fence is closed: {comment}");
        for markup in ["<!--", "\n#", "`", "[", "\\", "\r"] {
            assert!(!prose.contains(markup), "{markup:?} in {prose}");
        }
        // Every block spindle opens is its own, and closed: two objects, two <details>.
        assert_eq!(prose.matches("<details>").count(), 2, "{prose}");
        assert_eq!(prose.matches("</details>").count(), 2, "{prose}");
        assert_eq!(comment.matches("\n```diff\n").count(), 2, "{comment}");
        for object in ["first", "second"] {
            assert!(
                prose.contains(&format!("/{object}</code>")),
                "{object}: {prose}"
            );
        }
    }
}
