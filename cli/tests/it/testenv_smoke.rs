//! The test environment itself: a real kube-apiserver (server-side apply of a Namespace, a CRD and
//! a Deployment, read back), a real containerd and a real registry. These fail, never skip, when
//! the environment is missing.

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
