//! Runs the evaluator natively on a repository folder, to compare with the sandboxed run.
//!
//! `cargo run --release --manifest-path schema/evaluator/Cargo.toml --example native -- \
//!     target/bench-repos/apps-1000 environments/production.ncl`
//!
//! The reconciler's `evaluate` benchmark writes those folders and runs this (built by
//! `scripts/benchmarks`) beside the same measurement of the wasm component; the difference is the
//! sandbox's overhead.

use std::{path::Path, time::Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(repo), Some(entry)) = (args.next(), args.next()) else {
        eprintln!("usage: native REPO ENTRY");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    collect(Path::new(&repo), Path::new(&repo), &mut files);
    let library = vec![(
        "spindle.ncl".to_owned(),
        include_str!("../../spindle.ncl").to_owned(),
    )];
    let runs = 9;
    let mut times: Vec<_> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            spindle_evaluator::evaluate(&entry, files.clone(), library.clone()).unwrap_or_else(
                |diagnostics| panic!("evaluation failed: {}", diagnostics[0].message),
            );
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "median {} us, fastest {} us",
        times[runs / 2].as_micros(),
        times[0].as_micros()
    );
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("readable repository") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "ncl") {
            let name = path.strip_prefix(root).expect("inside root");
            let text = std::fs::read_to_string(&path).expect("UTF-8 file");
            out.push((name.to_string_lossy().into_owned(), text));
        }
    }
}
