//! The test environment itself: a real kube-apiserver of the pinned release (server-side apply of
//! a Namespace, a CRD and a Deployment, read back), a real containerd, a real registry, the real
//! `helm` and `kustomize`, and a real Gitea forge whose REST API takes pull requests, comments and
//! commit statuses. These fail, never skip, when the environment is missing.

use std::{process::Command, time::Duration};

use crate::support::{kube_client as client, required_env};
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Namespace},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

fn apply() -> PatchParams {
    PatchParams::apply("spindle").force()
}

#[tokio::test]
async fn server_side_apply_against_the_real_apiserver() {
    let client = client().await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spindle-smoke"}});
    namespaces
        .patch("spindle-smoke", &apply(), &Patch::Apply(&ns))
        .await
        .expect("namespace applies");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.smoke.spindle.dev"},
        "spec": {
            "group": "smoke.spindle.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    crds.patch("widgets.smoke.spindle.dev", &apply(), &Patch::Apply(&crd))
        .await
        .expect("CRD applies");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "spindle-smoke");
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hello", "namespace": "spindle-smoke", "labels": {"app": "hello"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "hello"}},
            "template": {
                "metadata": {"labels": {"app": "hello"}},
                "spec": {"containers": [{"name": "hello", "image": "registry.example.com/hello:1", "command": ["/"]}]}
            }
        }
    });
    deployments
        .patch("hello", &apply(), &Patch::Apply(&deployment))
        .await
        .expect("deployment applies");

    let read = deployments
        .get("hello")
        .await
        .expect("deployment reads back");
    let spec = read.spec.expect("deployment has a spec");
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.expect("pod spec").containers[0];
    assert_eq!(container.command.as_deref(), Some(&["/".to_owned()][..]));
    let managers: Vec<String> = read
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.manager)
        .collect();
    assert!(
        managers.contains(&"spindle".to_owned()),
        "field managers: {managers:?}"
    );

    let crd = crds
        .get("widgets.smoke.spindle.dev")
        .await
        .expect("CRD reads back");
    assert_eq!(crd.spec.names.kind, "Widget");
    assert!(namespaces.get("spindle-smoke").await.is_ok());

    // The controller-manager is part of the environment: the Deployment gets a ReplicaSet.
    let mut observed = None;
    for _ in 0..100 {
        let status = deployments.get("hello").await.expect("reads").status;
        observed = status.and_then(|s| s.observed_generation);
        if observed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        observed,
        Some(1),
        "kube-controller-manager never observed the Deployment"
    );
}

#[test]
fn containerd_answers_ctr_version() {
    let socket = required_env("SPINDLE_TEST_CONTAINERD");
    let out = Command::new("ctr")
        .args(["--address", &socket, "version"])
        .output()
        .expect("ctr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ctr version failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = stdout
        .split("Server:")
        .nth(1)
        .expect("ctr printed a server section");
    assert!(server.contains("Version:"), "{stdout}");
}

#[test]
fn the_registry_speaks_the_distribution_api() {
    let registry = required_env("SPINDLE_TEST_REGISTRY");
    let out = Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{registry}/v2/"),
        ])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

/// The version `require`d by one of the tool modules under `scripts/tools`.
fn pinned(tool: &str, module: &str) -> String {
    let path = format!(
        "{}/../scripts/tools/{tool}/go.mod",
        env!("CARGO_MANIFEST_DIR")
    );
    let go_mod = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    // `require M V` or, in a require block, `M V // indirect` (tool dependencies are indirect).
    go_mod
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            let (name, version) = if first == "require" {
                (words.next()?, words.next()?)
            } else {
                (first, words.next()?)
            };
            (name == module && version.starts_with('v')).then(|| version.to_owned())
        })
        .unwrap_or_else(|| panic!("{path} requires no {module}"))
}

#[tokio::test]
async fn the_apiserver_is_the_pinned_kubernetes() {
    let version = client().await.apiserver_version().await.expect("/version");
    assert_eq!(version.git_version, pinned("kube", "k8s.io/kubernetes"));
}

fn output(program: &str, args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("{program} (scripts/testenv env puts it on PATH): {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn helm_and_kustomize_are_the_pinned_releases_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(
        output("helm", &["version", "--short"], root)
            .starts_with(&pinned("helm", "helm.sh/helm/v4")),
        "helm's version"
    );
    assert!(
        output("kustomize", &["version"], root)
            .contains(&pinned("kustomize", "sigs.k8s.io/kustomize/kustomize/v5")),
        "kustomize's version"
    );

    std::fs::create_dir_all(root.join("chart/templates")).unwrap();
    std::fs::write(
        root.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: smoke\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(root.join("chart/values.yaml"), "greeting: hello\n").unwrap();
    std::fs::write(
        root.join("chart/templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  \
         namespace: {{ .Release.Namespace }}\ndata:\n  greeting: {{ .Values.greeting }}\n",
    )
    .unwrap();
    let rendered = output(
        "helm",
        &[
            "template",
            "chart",
            "--name-template",
            "smoke",
            "--namespace",
            "ns",
            "--set",
            "greeting=hi",
        ],
        root,
    );
    assert!(
        rendered.contains("name: smoke") && rendered.contains("greeting: hi"),
        "{rendered}"
    );

    std::fs::write(
        root.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n",
    )
    .unwrap();
    std::fs::write(
        root.join("kustomization.yaml"),
        "resources: [cm.yaml]\nnamePrefix: team-\nnamespace: apps\n",
    )
    .unwrap();
    let built = output("kustomize", &["build", "."], root);
    assert!(
        built.contains("name: team-base") && built.contains("namespace: apps"),
        "{built}"
    );
}

/// One call to the forge's REST API with the admin token: the JSON it answers, after checking the
/// HTTP status.
fn forge(method: &str, path: &str, body: serde_json::Value, status: u16) -> serde_json::Value {
    let url = format!("{}/api/v1{path}", required_env("SPINDLE_TEST_FORGE"));
    let token = std::fs::read_to_string(required_env("SPINDLE_TEST_FORGE_TOKEN_FILE")).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            method,
            &url,
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-H", &format!("Authorization: token {}", token.trim())])
        .args(["-d", &body.to_string(), "-w", "\n%{http_code}"])
        .output()
        .expect("curl runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let (answer, code) = text.rsplit_once('\n').expect("a status line");
    assert_eq!(code, status.to_string(), "{method} {path}: {answer}");
    serde_json::from_str(answer).unwrap_or(serde_json::Value::Null)
}

#[test]
fn the_forge_takes_pull_requests_comments_and_statuses() {
    let repo = format!("smoke-{}", std::process::id());
    let created = forge(
        "POST",
        "/user/repos",
        json!({"name": repo, "auto_init": true, "default_branch": "main"}),
        201,
    );
    let full = created["full_name"].as_str().expect("full_name").to_owned();
    forge(
        "POST",
        &format!("/repos/{full}/branches"),
        json!({"new_branch_name": "change", "old_branch_name": "main"}),
        201,
    );
    use base64::Engine as _;
    let file = forge(
        "POST",
        &format!("/repos/{full}/contents/app.yaml"),
        json!({"branch": "change", "message": "an app",
               "content": base64::engine::general_purpose::STANDARD.encode("replicas: 2\n")}),
        201,
    );
    let head = file["commit"]["sha"]
        .as_str()
        .expect("commit sha")
        .to_owned();
    let pull = forge(
        "POST",
        &format!("/repos/{full}/pulls"),
        json!({"head": "change", "base": "main", "title": "an app"}),
        201,
    );
    let index = pull["number"].as_u64().expect("number");

    let comment = forge(
        "POST",
        &format!("/repos/{full}/issues/{index}/comments"),
        json!({"body": "<!-- spindle:smoke -->\nfirst"}),
        201,
    );
    let id = comment["id"].as_u64().expect("comment id");
    forge(
        "PATCH",
        &format!("/repos/{full}/issues/comments/{id}"),
        json!({"body": "<!-- spindle:smoke -->\nedited"}),
        200,
    );
    let comments = forge(
        "GET",
        &format!("/repos/{full}/issues/{index}/comments"),
        json!({}),
        200,
    );
    let bodies: Vec<&str> = comments
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(bodies, ["<!-- spindle:smoke -->\nedited"]);

    forge(
        "POST",
        &format!("/repos/{full}/statuses/{head}"),
        json!({"state": "failure", "context": "spindle/diff", "description": "2 objects change"}),
        201,
    );
    let statuses = forge(
        "GET",
        &format!("/repos/{full}/commits/{head}/statuses"),
        json!({}),
        200,
    );
    assert_eq!(statuses[0]["context"], "spindle/diff");
    assert_eq!(statuses[0]["status"], "failure");

    // Without the token the API refuses to write.
    let url = format!(
        "{}/api/v1/repos/{full}/issues/{index}/comments",
        required_env("SPINDLE_TEST_FORGE")
    );
    let anonymous = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &url,
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"body":"x"}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");
}
