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

/// What render promises for the Kubernetes it is tested on, proven live: every case that renders
/// is rendered again for the test apiserver's own version and sent to it as a server-side apply
/// with `dryRun=All`; the apiserver must accept every object. Each case's namespaces are renamed
/// to namespaces of its own (made for real, since a namespaced dry run needs its namespace, and
/// deleted after), so nothing here meets another test's objects.
#[tokio::test]
async fn every_case_renders_what_the_test_apiserver_accepts() {
    use serde_json::json;
    use spindle_reconciler::cluster::Cluster;
    use spindle_render::Object;

    let client = crate::support::kube_client().await;
    let version = client
        .apiserver_version()
        .await
        .expect("the apiserver's /version");
    let kube_version = format!("1.{}", version.minor.trim_end_matches('+'));
    let cluster = Cluster::connect(client).await.expect("discovery");
    let mut refused = Vec::new();
    let mut unserved = Vec::new();
    let mut accepted = 0;
    for case_dir in cases() {
        let case: Case =
            toml::from_str(&std::fs::read_to_string(case_dir.join("case.toml")).unwrap()).unwrap();
        if case.exit != 0 {
            continue;
        }
        let name = case_dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut args = vec![
            "render".to_owned(),
            case.repo.clone(),
            "--offline".to_owned(),
        ];
        let mut given = case.args.iter();
        while let Some(arg) = given.next() {
            if arg == "--kube-version" {
                given.next();
            } else {
                args.push(arg.clone());
            }
        }
        args.extend(
            [
                "--revision=golden",
                "--kube-version",
                kube_version.as_str(),
                "-o",
                "json",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = spindle_in(&case_dir, &args);
        assert_eq!(
            out.code, 0,
            "{name}: render for {kube_version} failed:\n{}",
            out.stderr
        );
        let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        let own = |namespace: &str| format!("golden-{}-{name}-{namespace}", std::process::id());
        let objects: Vec<Object> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .cloned()
            .map(|mut value| {
                if value["kind"] == "Namespace" {
                    value["metadata"]["name"] =
                        json!(own(value["metadata"]["name"].as_str().unwrap()));
                } else if let Some(namespace) = value["metadata"]["namespace"].as_str() {
                    value["metadata"]["namespace"] = json!(own(namespace));
                }
                Object::new(value)
            })
            .collect();
        let namespaces: std::collections::BTreeSet<String> = objects
            .iter()
            .filter_map(|o| o.namespace().map(str::to_owned))
            .chain(
                objects
                    .iter()
                    .filter(|o| o.kind() == "Namespace")
                    .map(|o| o.name().to_owned()),
            )
            .collect();
        for namespace in &namespaces {
            let object = Object::new(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            );
            cluster
                .apply(&object, false)
                .await
                .unwrap_or_else(|err| panic!("{namespace}: {err:#}"));
        }
        for object in &objects {
            let what = format!("{name}: {}", object.display_name());
            if cluster.api(object).is_err() {
                unserved.push((what, object.api_version().to_owned()));
                continue;
            }
            match cluster.apply(object, true).await {
                Ok(_) => accepted += 1,
                Err(err) => refused.push(format!("{what}: {err:#}")),
            }
        }
        for namespace in &namespaces {
            let object = Object::new(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            );
            let api = cluster.api(&object).unwrap();
            let _ = api.delete(namespace, &Default::default()).await;
        }
    }
    assert!(
        refused.is_empty(),
        "the apiserver {kube_version} refused:\n{}",
        refused.join("\n")
    );
    // Only SpinKube's own resources need an API the test apiserver lacks (its CRDs are
    // spin-operator's, not spindle's); anything else unserved is a render bug.
    let foreign: Vec<_> = unserved
        .iter()
        .filter(|(_, api_version)| {
            !api_version
                .split('/')
                .next()
                .unwrap_or("")
                .ends_with(".spinkube.dev")
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "APIs the apiserver {kube_version} does not serve: {foreign:?}"
    );
    assert!(accepted > 50, "only {accepted} objects were sent");
}
