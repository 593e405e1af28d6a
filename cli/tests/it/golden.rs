//! Golden tests of `spindle render`: every folder of `tests/golden/render/` is a case.
//!
//! A case has `case.toml` (`repo`: the repository, relative to the case folder, default `repo`;
//! `args`: further arguments; `exit`: the expected exit code, default 0) and `expected/`: one file
//! per rendered object, or `stderr.txt` for a case that must fail. The harness always adds
//! `--offline` and, unless the case gives one, `--revision golden`, so results do not depend on the
//! machine. `SPINDLE_UPDATE_GOLDEN=1 cargo test -p spindle golden::` rewrites `expected/`: review the
//! change before committing it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::support::spindle_in;
use spindle_render::golden;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code)]
    description: String,
    #[serde(default = "default_repo")]
    repo: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    exit: i32,
}

fn default_repo() -> String {
    "repo".to_owned()
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/render");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|err| panic!("{}: {err}", root.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.join("case.toml").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", root.display());
    cases
}

/// Runs one case; returns what differs from its expected files.
fn run(case_dir: &Path, update: bool) -> Vec<String> {
    let case: Case = toml::from_str(
        &std::fs::read_to_string(case_dir.join("case.toml")).expect("case.toml is readable"),
    )
    .unwrap_or_else(|err| panic!("{}/case.toml: {err}", case_dir.display()));
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_path = out_dir.path().join("out");
    let mut args = vec![
        "render".to_owned(),
        case.repo.clone(),
        "--offline".to_owned(),
    ];
    if !case.args.iter().any(|arg| arg.starts_with("--revision")) {
        args.push("--revision=golden".to_owned());
    }
    args.extend(case.args.iter().cloned());
    args.push(format!("--output-dir={}", out_path.display()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = spindle_in(case_dir, &args);
    assert_eq!(
        output.code,
        case.exit,
        "{}: exit code; stderr:\n{}",
        case_dir.display(),
        output.stderr
    );
    let actual = if case.exit == 0 {
        golden::read(&out_path).expect("rendered files")
    } else {
        BTreeMap::from([("stderr.txt".to_owned(), output.stderr)])
    };

    let expected_dir = case_dir.join("expected");
    if update {
        golden::write(&expected_dir, &actual).expect("write golden files");
        return Vec::new();
    }
    golden::compare(&golden::read(&expected_dir).expect("golden files"), &actual)
}

#[test]
fn render_matches_the_golden_files() {
    let update = std::env::var_os("SPINDLE_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in cases() {
        let differences = run(&case, update);
        if !differences.is_empty() {
            failures.push(format!("== {}\n{}", case.display(), differences.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "render output differs from tests/golden (if the change is intended, rerun with \
         SPINDLE_UPDATE_GOLDEN=1 and review the files):\n{}",
        failures.join("\n\n")
    );
}
