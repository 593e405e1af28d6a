//! What an app becomes in the native flavor: Deployment, Service, and when asked for, Ingress,
//! runtime-config Secret, HorizontalPodAutoscaler and PodDisruptionBudget. An app without HTTP
//! triggers gets no Service; an app with Redis, MQTT or cron triggers probes the runtime's health
//! endpoint, ready once they receive; a command app is a Job, which completes or fails with the
//! command's status.

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use spindle_schema::{HttpCheck, Problem, Variable, pointer_segment};

use super::{AppInputs, Context, DOMAIN, Object, Owner, runtime_config, triggers};

/// The container port's name; the Service and the probes refer to it.
const PORT_NAME: &str = "http-app";
/// Where the runtime-config file is mounted: where SpinKube's shim (and spindle's) looks for it.
pub const RUNTIME_CONFIG_PATH: &str = "/runtime-config.toml";

pub fn render(context: &Context, inputs: &AppInputs) -> Result<Vec<Object>, Problem> {
    let app = inputs.app;
    let refuse = |field: &str, why: &str| {
        Err(Problem {
            pointer: format!("/apps/{}/{field}", pointer_segment(inputs.name)),
            message: format!("app `{}` {why}", inputs.name),
        })
    };
    if app.ingress.is_some() && !inputs.serves_http() {
        return refuse("ingress", "has no HTTP trigger for an Ingress to reach");
    }
    let secret = runtime_config::secret(context, inputs);
    if inputs.is_command() {
        if app.autoscaling.is_some() {
            return refuse(
                "autoscaling",
                "is a command, run once as a Job: it does not scale",
            );
        }
        let mut objects = vec![job(context, inputs, secret.as_ref().map(Object::name))];
        objects.extend(secret);
        return Ok(objects);
    }
    let mut objects = vec![deployment(
        context,
        inputs,
        secret.as_ref().map(Object::name),
    )];
    if inputs.serves_http() {
        objects.push(service(context, inputs));
    }
    objects.extend(secret);
    if app.ingress.is_some() {
        objects.push(ingress(context, inputs, json!({"name": "http"})));
    }
    if app.autoscaling.is_some() {
        objects.push(autoscaler(context, inputs));
    }
    if least_replicas(app) > 1 {
        objects.push(disruption_budget(context, inputs, selector(inputs.name)));
    }
    Ok(objects)
}

/// The smallest number of pods the app runs with.
pub(super) fn least_replicas(app: &spindle_schema::App) -> u32 {
    app.autoscaling
        .as_ref()
        .map_or(app.replicas, |scaling| scaling.min_replicas)
}

/// The labels that select the app's pods. Never changes for an app (selectors are immutable).
pub fn selector(name: &str) -> Value {
    json!({ format!("{DOMAIN}/app"): name })
}

/// The Spin environment of the app's container, in SpinKube's conventions.
pub fn environment(inputs: &AppInputs) -> Vec<Value> {
    let app = inputs.app;
    let mut env =
        vec![json!({"name": "SPIN_HTTP_LISTEN_ADDR", "value": format!("0.0.0.0:{}", app.port)})];
    for (name, variable) in &app.variables {
        env.push(variable_entry(&variable_env_name(name), variable));
    }
    if let Some(components) = &app.components {
        env.push(json!({"name": "SPIN_COMPONENTS_TO_RETAIN", "value": components.join(",")}));
    }
    if let Some(limit) = app.instance_memory_limit {
        env.push(json!({"name": "SPIN_MAX_INSTANCE_MEMORY", "value": limit.to_string()}));
    }
    env
}

/// `{name, value}` or `{name, valueFrom}`: the shape of both a container's env entry and a
/// SpinApp's variable.
pub(super) fn variable_entry(name: &str, variable: &Variable) -> Value {
    match variable {
        Variable::Value(value) => json!({"name": name, "value": value}),
        // `{secretKeyRef: {name, key}}` or `{configMapKeyRef: ..}`, as Kubernetes spells them.
        Variable::From(from) => json!({"name": name, "valueFrom": from}),
    }
}

/// Spin's environment-variable provider reads variable `api_token` from `SPIN_VARIABLE_API_TOKEN`.
pub fn variable_env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

/// Where the runtime says whether every trigger of the app receives.
const HEALTH_PATH: &str = "/.well-known/spin/health";
/// What the runtime answers whenever it serves: a liveness check that a broker outage does not
/// fail.
const INFO_PATH: &str = "/.well-known/spin/info";

/// The pod template of the app's Deployment or Job.
fn pod_template(inputs: &AppInputs, runtime_config: Option<&str>, command: bool) -> Value {
    let app = inputs.app;
    let mut container = Map::new();
    container.insert("name".into(), json!(inputs.name));
    container.insert("image".into(), json!(inputs.image));
    container.insert("command".into(), json!(["/"]));
    container.insert("env".into(), json!(environment(inputs)));
    if !command {
        container.insert(
            "ports".into(),
            json!([{"name": PORT_NAME, "containerPort": app.port, "protocol": "TCP"}]),
        );
    }
    if let Some(resources) = &app.resources {
        container.insert("resources".into(), json!(resources));
    }
    // An app with message triggers is ready once they receive, as the runtime says.
    let (readiness, liveness) = if command || !inputs.has_message_triggers() {
        (app.readiness.clone(), app.liveness.clone())
    } else {
        let default = |path: &str| HttpCheck {
            path: path.to_owned(),
            initial_delay_seconds: None,
            period_seconds: None,
        };
        (
            Some(
                app.readiness
                    .clone()
                    .unwrap_or_else(|| default(HEALTH_PATH)),
            ),
            Some(app.liveness.clone().unwrap_or_else(|| default(INFO_PATH))),
        )
    };
    if let Some(check) = &readiness {
        container.insert("readinessProbe".into(), http_check(check, Some(PORT_NAME)));
    }
    if let Some(check) = &liveness {
        container.insert("livenessProbe".into(), http_check(check, Some(PORT_NAME)));
    }
    if runtime_config.is_some() {
        container.insert(
            "volumeMounts".into(),
            json!([{
                "name": "spin-runtime-config",
                "mountPath": RUNTIME_CONFIG_PATH,
                "subPath": runtime_config::FILE_NAME,
                "readOnly": true,
            }]),
        );
    }

    let mut pod = Map::new();
    pod.insert("runtimeClassName".into(), json!(inputs.runtime_class));
    if let Some(account) = &app.service_account {
        pod.insert("serviceAccountName".into(), json!(account));
    }
    if !app.node_selector.is_empty() {
        pod.insert("nodeSelector".into(), json!(app.node_selector));
    }
    if !app.tolerations.is_empty() {
        pod.insert("tolerations".into(), json!(app.tolerations));
    }
    if let Some(affinity) = &app.affinity {
        pod.insert("affinity".into(), affinity.clone());
    }
    if command {
        pod.insert("restartPolicy".into(), json!("Never"));
    }
    pod.insert("containers".into(), json!([container]));
    if let Some(secret) = runtime_config {
        pod.insert(
            "volumes".into(),
            json!([{"name": "spin-runtime-config", "secret": {"secretName": secret}}]),
        );
    }

    let mut template_labels = selector(inputs.name);
    template_labels["app.kubernetes.io/name"] = json!(inputs.name);
    for (key, value) in &app.metadata.pod.labels {
        template_labels
            .as_object_mut()
            .expect("an object")
            .entry(key.clone())
            .or_insert_with(|| json!(value));
    }
    let mut template_metadata = json!({ "labels": template_labels });
    if !app.metadata.pod.annotations.is_empty() {
        template_metadata["annotations"] = json!(app.metadata.pod.annotations);
    }
    json!({"metadata": template_metadata, "spec": pod})
}

/// The app's object metadata, with its triggers when its manifest is known.
fn workload_metadata(context: &Context, inputs: &AppInputs, name: &str) -> Value {
    let mut metadata = context.metadata(
        Owner::App(inputs.name),
        name,
        Some(&inputs.app.namespace),
        Some(&inputs.app.metadata.deployment),
    );
    if let Some(types) = inputs.triggers {
        let listed = types.iter().cloned().collect::<Vec<_>>().join(",");
        let annotations = metadata
            .as_object_mut()
            .expect("an object")
            .entry("annotations")
            .or_insert_with(|| json!({}));
        annotations[triggers::ANNOTATION] = json!(listed);
    }
    metadata
}

fn deployment(context: &Context, inputs: &AppInputs, runtime_config: Option<&str>) -> Object {
    let app = inputs.app;
    let mut spec = Map::new();
    if app.autoscaling.is_none() {
        // With autoscaling the HorizontalPodAutoscaler owns the field; applying it would fight.
        spec.insert("replicas".into(), json!(app.replicas));
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": selector(inputs.name)}),
    );
    spec.insert(
        "template".into(),
        pod_template(inputs, runtime_config, false),
    );
    Object::new(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": workload_metadata(context, inputs, inputs.name),
        "spec": spec,
    }))
}

/// A command app's Job: its pod runs the command once, and the Job completes or fails with its
/// exit status (no retries). A Job's template cannot change, so the name carries a digest of
/// it: a new spec is a new Job, and the old one is pruned.
fn job(context: &Context, inputs: &AppInputs, runtime_config: Option<&str>) -> Object {
    let template = pod_template(inputs, runtime_config, true);
    let digest = Sha256::digest(template.to_string().as_bytes());
    let name = format!("{}-{}", inputs.name, &hex::encode(digest)[..10]);
    Object::new(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": workload_metadata(context, inputs, &name),
        "spec": {"backoffLimit": 0, "template": template},
    }))
}

/// A probe (or a SpinApp check, which has no port) that GETs `check.path`.
pub(super) fn http_check(check: &HttpCheck, port: Option<&str>) -> Value {
    let mut probe = json!({"httpGet": {"path": check.path}});
    if let Some(port) = port {
        probe["httpGet"]["port"] = json!(port);
    }
    if let Some(delay) = check.initial_delay_seconds {
        probe["initialDelaySeconds"] = json!(delay);
    }
    if let Some(period) = check.period_seconds {
        probe["periodSeconds"] = json!(period);
    }
    probe
}

fn service(context: &Context, inputs: &AppInputs) -> Object {
    Object::new(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": context.metadata(
            Owner::App(inputs.name),
            inputs.name,
            Some(&inputs.app.namespace),
            Some(&inputs.app.metadata.service),
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(inputs.name),
            "ports": [{"name": "http", "port": 80, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }))
}

/// An Ingress to the app's Service, whose port is `service_port` (`{"name": ..}` or `{"number": ..}`).
pub(super) fn ingress(context: &Context, inputs: &AppInputs, service_port: Value) -> Object {
    let ingress = inputs.app.ingress.as_ref().expect("checked by the caller");
    let mut spec = Map::new();
    if let Some(class) = &ingress.class_name {
        spec.insert("ingressClassName".into(), json!(class));
    }
    spec.insert(
        "rules".into(),
        json!([{
            "host": ingress.host,
            "http": {"paths": [{
                "path": ingress.path,
                "pathType": "Prefix",
                "backend": {"service": {"name": inputs.name, "port": service_port}},
            }]},
        }]),
    );
    if let Some(secret) = &ingress.tls_secret {
        spec.insert(
            "tls".into(),
            json!([{"hosts": [ingress.host], "secretName": secret}]),
        );
    }
    Object::new(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": context.metadata(Owner::App(inputs.name), inputs.name, Some(&inputs.app.namespace), None),
        "spec": spec,
    }))
}

pub(super) fn autoscaler(context: &Context, inputs: &AppInputs) -> Object {
    let scaling = inputs
        .app
        .autoscaling
        .as_ref()
        .expect("checked by the caller");
    Object::new(json!({
        "apiVersion": context.target.kube.horizontal_pod_autoscaler(),
        "kind": "HorizontalPodAutoscaler",
        "metadata": context.metadata(Owner::App(inputs.name), inputs.name, Some(&inputs.app.namespace), None),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": inputs.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization},
                },
            }],
        },
    }))
}

pub(super) fn disruption_budget(context: &Context, inputs: &AppInputs, pods: Value) -> Object {
    Object::new(json!({
        "apiVersion": context.target.kube.pod_disruption_budget(),
        "kind": "PodDisruptionBudget",
        "metadata": context.metadata(Owner::App(inputs.name), inputs.name, Some(&inputs.app.namespace), None),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": pods},
        },
    }))
}
