//! Evaluation + validation time for generated repositories of 10, 100 and 1,000 apps, against
//! the same programs evaluated natively (no wasm).
//!
//! Per size: the median of several runs of `spec::load` (sandboxed Nickel evaluation with the
//! Platform contract, deserialisation and validation) with the evaluator warm; the bare sandboxed
//! evaluation; and, when `SPINDLE_BENCH_NATIVE` names the evaluator's `native` example (as
//! `scripts/benchmarks` does), the same evaluation outside the sandbox. The repositories are
//! written to `target/bench-repos/apps-N` for it.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use spindle_config::evaluate::{Evaluator, Limits};
use spindle_config::spec;
use spindle_schema::NICKEL_LIBRARY;
use support::{
    ENTRY, median_and_fastest,
    report::{Section, ratio, time, verdict},
    repository, workspace,
};

mod support;

const SIZES: [usize; 3] = [10, 100, 1000];

fn main() {
    let cache = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    Evaluator::new(Some(cache.path().to_owned()), Limits::default()).expect("evaluator");
    let compile = started.elapsed();
    let started = Instant::now();
    let evaluator =
        Evaluator::new(Some(cache.path().to_owned()), Limits::default()).expect("evaluator");
    let cached = started.elapsed();

    let native = std::env::var_os("SPINDLE_BENCH_NATIVE");
    let library = [("spindle.ncl".to_owned(), NICKEL_LIBRARY.to_owned())];
    let mut rows = Vec::new();
    let mut at_1000 = (Duration::ZERO, Duration::ZERO, None);
    for apps in SIZES {
        let snapshot = repository(apps);
        let runs = if apps >= 1000 { 7 } else { 15 };
        let (load, _) = median_and_fastest(runs, || {
            let loaded = spec::load(&evaluator, &snapshot, None).expect("valid repository");
            assert_eq!(loaded.platform.apps.len(), apps);
        });
        let files: Vec<(String, String)> = snapshot
            .config_files()
            .map(|(path, text)| (path.to_owned(), text.to_owned()))
            .collect();
        let (sandboxed, _) = median_and_fastest(9, || {
            evaluator.eval(ENTRY, &files, &library).expect("evaluates");
        });
        let natively = native.as_ref().map(|binary| {
            let dir = workspace().join(format!("target/bench-repos/apps-{apps}"));
            for (path, text) in &files {
                let path = dir.join(path);
                std::fs::create_dir_all(path.parent().expect("file in a folder")).expect("mkdir");
                std::fs::write(path, text).expect("write bench repository");
            }
            run_native(Path::new(binary), &dir)
        });
        at_1000 = (load, sandboxed, natively);
        rows.push([
            apps.to_string(),
            time(load),
            time(sandboxed),
            natively.map_or("—".to_owned(), time),
        ]);
    }

    let mut section = Section::new(
        "evaluate",
        "Specs: evaluation and validation",
        "cargo bench --bench evaluate",
        "Generated repositories: N apps (image, replicas, a literal and a Secret-backed variable, \
         ingress host, readiness check), one runtime, one environment that overrides an app. \
         Medians; the evaluator is compiled and warm.",
    );
    section.table(
        [
            "apps",
            "load: evaluate + contract + validate",
            "bare sandboxed evaluation",
            "native evaluation (no wasm)",
        ],
        &rows,
    );
    let (load, sandboxed, natively) = at_1000;
    section.note(format!(
        "Target for 1,000 apps (under 1 s): {}, {}.",
        verdict(load, Duration::from_secs(1)),
        time(load)
    ));
    if let Some(natively) = natively {
        section.note(format!(
            "The sandbox costs {} over native Nickel at 1,000 apps (cranelift's code against \
             rustc's, plus copying the files in and the JSON out).",
            ratio(sandboxed, natively)
        ));
    }
    section.note(format!(
        "Preparing the evaluator: {} to compile the component on a first run, {} to load it from \
         the on-disk cache (`~/.cache/spindle/components`).",
        time(compile),
        time(cached)
    ));
    section.write();
}

/// The `native` example's median for the repository in `dir`.
fn run_native(binary: &Path, dir: &Path) -> Duration {
    let out = Command::new(binary)
        .arg(dir)
        .arg(ENTRY)
        .output()
        .expect("the native evaluator runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "native evaluator: {stdout}");
    let micros = stdout
        .strip_prefix("median ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output of the native evaluator: {stdout}"));
    Duration::from_micros(micros)
}
