//! Evaluation + validation time for generated repositories of 10, 100 and 1,000 apps.
//!
//! `cargo bench -p spindle --bench evaluate` prints, per size, the median and the fastest of
//! several runs of `spec::load` (sandboxed Nickel evaluation with the Platform contract,
//! deserialisation and validation), with the evaluator compiled and warm.

use std::time::{Duration, Instant};

use spindle::{
    evaluate::{Evaluator, Limits},
    snapshot::Snapshot,
    spec,
};

fn repository(apps: usize) -> Snapshot {
    let mut apps_ncl = String::from("{\n");
    for i in 0..apps {
        apps_ncl.push_str(&format!(
            "  app-{i} = {{ image = \"registry.example.com/team/app-{i}:1.{i}\", replicas = {}, \
             variables = {{ greeting = \"hello {i}\", token = {{ secretKeyRef = {{ name = \"app-{i}\", key = \"token\" }} }} }}, \
             ingress.host = \"app-{i}.example.com\", readiness.path = \"/healthz\" }},\n",
            1 + i % 3
        ));
    }
    apps_ncl.push_str("}\n");
    let production = "let spindle = import \"spindle.ncl\" in\n\
        { apps = (import \"../apps.ncl\") & { app-0.replicas | force = 5 }, \
          runtimes.spin.shim = { version = \"1\", url = \"https://example.com/shim\", \
          sha256 = \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\" } } | spindle.Platform\n";
    Snapshot::from_files(
        "bench",
        [
            ("apps.ncl".to_owned(), apps_ncl),
            (
                "environments/production.ncl".to_owned(),
                production.to_owned(),
            ),
        ],
    )
}

fn main() {
    let cache = std::env::temp_dir().join("spindle-bench-cache");
    let started = Instant::now();
    let evaluator = Evaluator::new(Some(cache), Limits::default()).expect("evaluator");
    println!(
        "evaluator ready in {:?} (compiled or loaded from cache)",
        started.elapsed()
    );
    println!("{:>6}  {:>10}  {:>10}", "apps", "median", "fastest");
    for apps in [10, 100, 1000] {
        let snapshot = repository(apps);
        let runs = if apps >= 1000 { 7 } else { 15 };
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let loaded = spec::load(&evaluator, &snapshot, None).expect("valid repository");
                assert_eq!(loaded.platform.apps.len(), apps);
                start.elapsed()
            })
            .collect();
        times.sort();
        println!("{apps:>6}  {:>10.1?}  {:>10.1?}", times[runs / 2], times[0]);
    }
}
