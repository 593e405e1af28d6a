//! `spindle render` beyond the golden files: determinism, the YAML and JSON forms agreeing, and
//! the rendered example applying cleanly to the real test apiserver (the Kubernetes of
//! scripts/tools/kube).

use crate::support::{EXAMPLE, kube_client, required_env, spindle};
use spindle_reconciler::cluster::Cluster;
use spindle_render::Object;

const NODES: &str = "../tests/golden/render/example-production/nodes.yaml";
/// The node policy that lets the example's runtime be installed.
const NODE_POLICY: &str = "../tests/golden/render/example-production/node-policy.yaml";

fn render(extra: &[&str]) -> String {
    let mut args = vec!["render", EXAMPLE, "--env", "production", "--revision", "r1"];
    args.extend_from_slice(extra);
    let out = spindle(&args);
    assert_eq!(out.code, 0, "render failed:\n{}", out.stderr);
    out.stdout
}

#[test]
fn two_runs_give_identical_bytes() {
    for format in ["yaml", "json"] {
        let args = ["--offline", "--nodes", NODES, "-o", format];
        assert_eq!(render(&args), render(&args), "{format} output differs");
    }
}

#[test]
fn yaml_and_json_output_hold_the_same_objects() {
    let yaml = render(&["--offline", "--nodes", NODES]);
    let json: serde_json::Value =
        serde_json::from_str(&render(&["--offline", "--nodes", NODES, "-o", "json"]))
            .expect("JSON output parses");
    let from_yaml: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| serde::Deserialize::deserialize(document).expect("YAML output parses"))
        .collect();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"].as_array().expect("items"), &from_yaml);
    assert!(from_yaml.len() > 10, "the example renders many objects");
}

#[test]
fn output_dir_refuses_a_folder_with_files_in_it() {
    let dir = crate::support::Repo::new();
    dir.write("stale.yaml", "kind: Old\n");
    let out = spindle(&[
        "render",
        EXAMPLE,
        "--env",
        "production",
        "--offline",
        "--output-dir",
        dir.path_str(),
    ]);
    assert_eq!(out.code, 2);
    out.assert_stderr_contains("is not empty");
}

#[test]
fn kube_version_is_checked() {
    let out = spindle(&[
        "render",
        EXAMPLE,
        "--env",
        "production",
        "--kube-version",
        "1.12",
    ]);
    assert_eq!(out.code, 2);
    out.assert_stderr_contains("not supported: spindle renders for 1.20 to 1.37");
}

#[tokio::test]
async fn the_example_applies_cleanly_to_the_test_apiserver() {
    required_env("KUBECONFIG");
    // No --kube-version: it is discovered from the cluster (1.23 or later), which picks
    // autoscaling/v2 and policy/v1.
    let out = spindle(&[
        "render",
        EXAMPLE,
        "--env",
        "production",
        "--revision",
        "r1",
        "--nodes",
        NODES,
        "--node-policy",
        NODE_POLICY,
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "render failed:\n{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let objects: Vec<Object> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .cloned()
        .map(Object::new)
        .collect();
    let api_versions: Vec<&str> = objects.iter().map(Object::api_version).collect();
    assert!(api_versions.contains(&"autoscaling/v2"), "{api_versions:?}");
    assert!(api_versions.contains(&"policy/v1"), "{api_versions:?}");
    assert!(
        objects.iter().any(|o| o.kind() == "Job"),
        "the first wave installs on node-b"
    );

    let cluster = Cluster::connect(kube_client().await)
        .await
        .expect("discovery");
    // Namespaced objects can only be dry-run into namespaces that exist.
    for namespace in objects.iter().filter(|o| o.kind() == "Namespace") {
        cluster
            .apply(namespace, false)
            .await
            .expect("namespace applies");
    }
    for object in &objects {
        let stored = cluster
            .apply(object, true)
            .await
            .unwrap_or_else(|err| panic!("{err:#}"));
        assert_eq!(stored.metadata.name.as_deref(), Some(object.name()));
        // The server kept every field spindle set: nothing was pruned as unknown.
        let labels = stored.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("spindle.dev/revision").map(String::as_str),
            Some("r1"),
            "{}",
            object.display_name()
        );
    }
    let deployment = objects
        .iter()
        .find(|o| o.kind() == "Deployment" && o.name() == "greeter")
        .expect("greeter");
    let stored = cluster.apply(deployment, true).await.expect("dry-run");
    let pod = &stored.data["spec"]["template"]["spec"];
    assert_eq!(pod["runtimeClassName"], "spindle");
    assert_eq!(pod["containers"][0]["command"][0], "/");
}
