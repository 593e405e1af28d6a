//! What the benchmarks share: generated repositories and a timer.
#![allow(dead_code)]

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use spindle_config::snapshot::Snapshot;

pub mod load;
pub mod report;

#[path = "../../tests/it/support/workspace.rs"]
mod workspace;

#[allow(unused_imports)]
pub use workspace::root as workspace;

/// The environment entry of the generated repositories.
pub const ENTRY: &str = "environments/production.ncl";

/// A repository of `apps` apps (image, replicas, a literal and a Secret-backed variable, ingress
/// host, readiness check), one runtime, one environment that overrides an app.
pub fn repository(apps: usize) -> Snapshot {
    repository_variant(apps, 0)
}

/// [`repository`] with the first app's greeting changed `variant` times.
pub fn repository_variant(apps: usize, variant: u32) -> Snapshot {
    let mut apps_ncl = String::from("{\n");
    for i in 0..apps {
        let greeting = if i == 0 && variant > 0 {
            format!("hello {i} v{variant}")
        } else {
            format!("hello {i}")
        };
        apps_ncl.push_str(&format!(
            "  app-{i} = {{ image = \"registry.example.com/team/app-{i}:1.{i}\", replicas = {}, \
             variables = {{ greeting = \"{greeting}\", token = {{ secretKeyRef = {{ name = \"app-{i}\", key = \"token\" }} }} }}, \
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
            (ENTRY.to_owned(), production.to_owned()),
        ],
    )
}

/// Runs `run` `runs` times; the median and the fastest time.
pub fn median_and_fastest(runs: usize, mut run: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[0])
}

/// The example repository's `hello` app, built.
pub fn hello() -> PathBuf {
    workspace::example_apps().join("hello")
}
