//! The `spinkube` flavor: spin-operator's SpinApp and SpinAppExecutor and runtime-class-manager's
//! Shim (all `v1alpha1`), so that spindle can be the GitOps layer of a SpinKube cluster.
//!
//! spin-operator makes the Deployment and Service from a SpinApp; spindle adds what the operator
//! leaves to its users: Ingress, HorizontalPodAutoscaler, PodDisruptionBudget, and the
//! runtime-config Secret (handed over through `loadFromSecret`). A spec field that a SpinApp
//! cannot express is an error, never dropped in silence.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use spindle_schema::{Runtime, pointer_segment};

use super::{AppInputs, Context, Object, Owner, Problem, app, runtime_config};

const API: &str = "core.spinkube.dev/v1alpha1";
const SHIM_API: &str = "runtime.spinkube.dev/v1alpha1";
/// The label spin-operator puts on an app's Deployment and pods.
const APP_NAME_LABEL: &str = "core.spinkube.dev/app-name";

pub fn app(context: &Context, inputs: &AppInputs) -> Result<Vec<Object>, Problem> {
    unsupported(inputs)?;
    let app = inputs.app;
    let secret = runtime_config::secret(context, inputs);
    let mut spec = Map::new();
    spec.insert("image".into(), json!(inputs.image));
    spec.insert("executor".into(), json!(inputs.runtime_name));
    match &app.autoscaling {
        Some(_) => spec.insert("enableAutoscaling".into(), json!(true)),
        None => spec.insert("replicas".into(), json!(app.replicas)),
    };
    if !app.variables.is_empty() {
        let variables: Vec<Value> = app
            .variables
            .iter()
            .map(|(name, variable)| app::variable_entry(name, variable))
            .collect();
        spec.insert("variables".into(), json!(variables));
    }
    if let Some(secret) = &secret {
        spec.insert(
            "runtimeConfig".into(),
            json!({"loadFromSecret": secret.name()}),
        );
    }
    if let Some(resources) = &app.resources {
        spec.insert("resources".into(), json!(resources));
    }
    if let Some(components) = &app.components {
        spec.insert("components".into(), json!(components));
    }
    let mut checks = Map::new();
    for (name, check) in [("readiness", &app.readiness), ("liveness", &app.liveness)] {
        if let Some(check) = check {
            checks.insert(name.into(), app::http_check(check, None));
        }
    }
    if !checks.is_empty() {
        spec.insert("checks".into(), Value::Object(checks));
    }
    let metadata = &app.metadata;
    for (field, map) in [
        ("deploymentAnnotations", &metadata.deployment.annotations),
        ("podAnnotations", &metadata.pod.annotations),
        ("podLabels", &metadata.pod.labels),
        ("serviceAnnotations", &metadata.service.annotations),
    ] {
        if !map.is_empty() {
            spec.insert(field.into(), json!(map));
        }
    }
    if let Some(account) = &app.service_account {
        spec.insert("serviceAccountName".into(), json!(account));
    }

    let mut objects = vec![Object::new(json!({
        "apiVersion": API,
        "kind": "SpinApp",
        "metadata": context.metadata(Owner::App(inputs.name), inputs.name, Some(&app.namespace), None),
        "spec": spec,
    }))];
    objects.extend(secret);
    if app.ingress.is_some() {
        // spin-operator's Service has one unnamed port, 80.
        objects.push(app::ingress(context, inputs, json!({"number": 80})));
    }
    if app.autoscaling.is_some() {
        objects.push(app::autoscaler(context, inputs));
    }
    if app::least_replicas(app) > 1 {
        objects.push(app::disruption_budget(
            context,
            inputs,
            json!({ APP_NAME_LABEL: inputs.name }),
        ));
    }
    Ok(objects)
}

/// Spec fields that a SpinApp has no place for.
fn unsupported(inputs: &AppInputs) -> Result<(), Problem> {
    let app = inputs.app;
    let found = [
        ("nodeSelector", !app.node_selector.is_empty()),
        ("tolerations", !app.tolerations.is_empty()),
        ("affinity", app.affinity.is_some()),
        (
            "metadata/deployment/labels",
            !app.metadata.deployment.labels.is_empty(),
        ),
        (
            "metadata/service/labels",
            !app.metadata.service.labels.is_empty(),
        ),
        ("instanceMemoryLimit", app.instance_memory_limit.is_some()),
        ("port", app.port != 80),
    ];
    match found.iter().find(|(_, set)| *set) {
        None => Ok(()),
        Some((field, _)) => Err(Problem {
            pointer: format!("/apps/{}/{field}", pointer_segment(inputs.name)),
            message: format!(
                "app `{}` sets `{}`, which a SpinApp (core.spinkube.dev/v1alpha1) cannot express; \
                 render with --flavor native, or drop the field for this environment",
                inputs.name,
                field.replace('/', ".")
            ),
        }),
    }
}

/// One SpinAppExecutor per namespace and runtime that apps use: a SpinApp names its executor, and
/// executors are namespaced.
pub fn executors(context: &Context) -> Vec<Object> {
    let used: BTreeSet<(&str, &str)> = context
        .platform
        .apps
        .values()
        .filter_map(|app| {
            let (name, _) = context.platform.runtime_of(app)?;
            Some((app.namespace.as_str(), name))
        })
        .collect();
    used.into_iter()
        .map(|(namespace, name)| {
            let runtime = &context.platform.runtimes[name];
            Object::new(json!({
                "apiVersion": API,
                "kind": "SpinAppExecutor",
                "metadata": context.metadata(Owner::Runtime(name), name, Some(namespace), None),
                "spec": {
                    "createDeployment": true,
                    "deploymentConfig": {
                        "runtimeClassName": runtime.class_name(name),
                        "installDefaultCACerts": true,
                    },
                },
            }))
        })
        .collect()
}

pub fn runtime(context: &Context, name: &str, runtime: &Runtime) -> Result<Vec<Object>, Problem> {
    let Some(url) = &runtime.shim.url else {
        return Err(Problem {
            pointer: format!("/runtimes/{}/shim", pointer_segment(name)),
            message: format!(
                "runtime `{name}` takes its shim from an image; runtime-class-manager only \
                 downloads shims over HTTP: give `shim.url`, or render with --flavor native"
            ),
        });
    };
    // runtime-class-manager's options are strings.
    let options: Map<String, Value> = runtime
        .options
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), json!(text))
        })
        .collect();
    let mut spec = Map::new();
    if !runtime.node_selector.is_empty() {
        spec.insert("nodeSelector".into(), json!(runtime.node_selector));
    }
    spec.insert(
        "fetchStrategy".into(),
        json!({"type": "anonymousHttp", "anonHttp": {"location": url}}),
    );
    spec.insert(
        "runtimeClass".into(),
        json!({"name": runtime.class_name(name), "handler": runtime.handler}),
    );
    // runtime-class-manager has not implemented `rolling`; it rejects it.
    spec.insert("rolloutStrategy".into(), json!({"type": "recreate"}));
    spec.insert("containerdRuntimeOptions".into(), Value::Object(options));
    Ok(vec![Object::new(json!({
        "apiVersion": SHIM_API,
        "kind": "Shim",
        "metadata": context.metadata(Owner::Runtime(name), name, None, None),
        "spec": spec,
    }))])
}
