//! `spindle diff` between two commits of a 1,000-app repository where one app changed (the
//! binary, end to end: Git reads, two evaluations, two renders, comparison, text output), and
//! comparing + printing 10,000 changed objects.

use std::{path::Path, process::Command, time::Duration};

use serde_json::json;
use spindle_render::Object;
use spindle_render::diff::{self, Action, Diff, format::Format};
use support::{
    ENTRY, median_and_fastest,
    report::{Section, time, verdict},
    repository,
};

mod support;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=b@b",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success());
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = repository(1000);
    for (path, text) in snapshot.config_files() {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "base"]);
    let entry = dir.path().join(ENTRY);
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(
        &entry,
        text.replace("replicas | force = 5", "replicas | force = 6"),
    )
    .unwrap();
    git(dir.path(), &["commit", "-qam", "scale app-0"]);

    let cache = std::env::temp_dir().join("spindle-bench-cache");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args([
                "diff",
                dir.path().to_str().unwrap(),
                "--base",
                "HEAD~1",
                "--head",
                "HEAD",
            ])
            .args(["--offline", "--no-color"])
            .env("SPINDLE_CACHE", &cache)
            .output()
            .expect("spindle runs");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("1 changed"), "{stdout}");
    };
    run();
    let (whole, _) = median_and_fastest(7, run);

    let objects = |replicas: u32| -> Vec<Object> {
        (0..10_000)
            .map(|i| {
                Object::new(json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("app-{i}"), "namespace": "web",
                                 "labels": {"spindle.dev/app": format!("app-{i}")}},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"spindle.dev/app": format!("app-{i}")}},
                             "template": {"spec": {"containers": [{"name": "app", "image": format!("r/app-{i}:1")}]}}},
                }))
            })
            .collect()
    };
    let (before, after) = (objects(1), objects(2));
    let (compare, _) = median_and_fastest(5, || {
        let (changes, unchanged) = diff::compare(&before, &after, Action::Removed);
        assert_eq!((changes.len(), unchanged), (10_000, 0));
        let report = Diff {
            environment: "bench".into(),
            changes,
            unchanged,
            ..Diff::default()
        };
        let text = diff::format::show(&[report], Format::Text, false);
        assert!(text.len() > 10_000);
    });
    let mut section = Section::new(
        "diff",
        "Diff",
        "cargo bench --bench diff",
        "Medians of the `spindle` binary end to end, and of the comparison alone.",
    );
    section.table(
        ["what", "median"],
        &[
            [
                "`spindle diff --base HEAD~1 --head HEAD` on a 1,000-app Git repository where \
                 one app changed: Git reads, both revisions evaluated and rendered on two \
                 threads, comparison of every rendered object, text output"
                    .to_owned(),
                time(whole),
            ],
            [
                "comparing and printing 10,000 objects that all changed (text format)".to_owned(),
                time(compare),
            ],
        ],
    );
    section.note(format!(
        "Target for the 1,000-app diff, evaluation of both revisions included (under 1.5 s): \
         {}, {}.",
        verdict(whole, Duration::from_millis(1500)),
        time(whole)
    ));
    section.write();
}
