//! What the benchmarks share: generated repositories and a timer.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use spindle::snapshot::Snapshot;

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

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Builds the example apps; returns the hello app's folder.
pub fn hello() -> PathBuf {
    let apps = workspace().join("examples/gitops-repo/apps");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .current_dir(&apps);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOC"
        {
            cargo.env_remove(key);
        }
    }
    assert!(
        cargo.status().expect("cargo runs").success(),
        "building the example apps failed"
    );
    apps.join("hello")
}
