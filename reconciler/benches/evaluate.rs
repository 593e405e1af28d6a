//! Evaluation + validation time for generated repositories of 10, 100 and 1,000 apps.
//!
//! `cargo bench -p spindle --bench evaluate` prints, per size, the median and the fastest of
//! several runs of `spec::load` (sandboxed Nickel evaluation with the Platform contract,
//! deserialisation and validation), with the evaluator compiled and warm; then the bare sandboxed
//! evaluation of each repository, which it also writes to `target/bench-repos/apps-N`, so that the
//! evaluator's `native` example can time the same program outside wasm (see docs/testing.md).

use std::time::Instant;

use spindle::{
    evaluate::{Evaluator, Limits},
    spec,
};
use spindle_schema::NICKEL_LIBRARY;
use support::{ENTRY, median_and_fastest, repository};

mod support;

fn main() {
    let cache = std::env::temp_dir().join("spindle-bench-cache");
    let started = Instant::now();
    let evaluator = Evaluator::new(Some(cache), Limits::default()).expect("evaluator");
    println!(
        "evaluator ready in {:?} (compiled or loaded from cache)",
        started.elapsed()
    );
    println!("load (evaluate + contract + validate)");
    println!("{:>6}  {:>10}  {:>10}", "apps", "median", "fastest");
    for apps in [10, 100, 1000] {
        let snapshot = repository(apps);
        let runs = if apps >= 1000 { 7 } else { 15 };
        let (median, fastest) = median_and_fastest(runs, || {
            let loaded = spec::load(&evaluator, &snapshot, None).expect("valid repository");
            assert_eq!(loaded.platform.apps.len(), apps);
        });
        println!("{apps:>6}  {median:>10.1?}  {fastest:>10.1?}");
    }

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("reconciler/ sits in the workspace")
        .join("target/bench-repos");
    let library = [("spindle.ncl".to_owned(), NICKEL_LIBRARY.to_owned())];
    println!("bare evaluation in the sandbox (compare: the evaluator's `native` example)");
    for apps in [10, 100, 1000] {
        let snapshot = repository(apps);
        let files: Vec<(String, String)> = snapshot
            .config_files()
            .map(|(path, text)| (path.to_owned(), text.to_owned()))
            .collect();
        let dir = out.join(format!("apps-{apps}"));
        for (path, text) in &files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("file in a folder")).expect("mkdir");
            std::fs::write(path, text).expect("write bench repository");
        }
        let (median, fastest) = median_and_fastest(9, || {
            evaluator.eval(ENTRY, &files, &library).expect("evaluates");
        });
        println!(
            "wasm    {}: median {median:.1?}, fastest {fastest:.1?}",
            dir.display()
        );
    }
}
