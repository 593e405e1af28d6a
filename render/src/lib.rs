//! From a validated [`Platform`] to the Kubernetes objects spindle applies, and what changes
//! between two sets of them. Pure: this crate has no cluster client and no runtime, so nothing
//! here can reach a cluster (Cargo enforces it).
//!
//! Rendering is a pure function of the spec, the environment's name and the [`Target`]: no clock, no randomness, maps
//! iterated in key order, so the same input gives the same bytes everywhere. Two flavors:
//! [`Flavor::Native`] (Deployments, Services, ... run by spindle's shim) and [`Flavor::Spinkube`]
//! (SpinApp, SpinAppExecutor and Shim resources for a cluster that runs spin-operator).

mod app;
pub mod diff;
pub mod golden;
mod kube_version;
pub mod node_policy;
pub mod nodes;
mod object;
mod runtime;
mod runtime_config;
mod spinkube;
pub mod triggers;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use spindle_schema::{App, Platform, pointer_segment};

/// Something in the spec that cannot be rendered, at a JSON pointer into the environment: the
/// same shape as a validation problem.
pub use spindle_schema::Problem;

pub use kube_version::KubeVersion;
pub use node_policy::NodePolicy;
pub use nodes::Node;
pub use object::{Object, Stage, sort};
pub use runtime::{Action, PROVISIONED, provisioned_key};

/// Label and annotation prefix of everything spindle writes.
pub const DOMAIN: &str = "spindle.dev";
/// The label naming the reconciler instance that applied an object.
pub const INSTANCE_LABEL: &str = "spindle.dev/instance";
/// The annotation by which an object's owner lets spindle take it over (value `"true"`).
pub const ADOPT_ANNOTATION: &str = "spindle.dev/adopt";

/// The field manager of spindle's server-side applies, and the `managed-by` label.
pub const MANAGER: &str = "spindle";

/// The label selector of spindle's objects of `environment`.
pub fn environment_selector(environment: &str) -> String {
    format!("app.kubernetes.io/managed-by={MANAGER},{DOMAIN}/environment={environment}")
}

/// Every kind spindle renders, in each API version it may use: what a prune looks for.
pub const KINDS: [(&str, &str); 14] = [
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("policy/v1beta1", "PodDisruptionBudget"),
    ("core.spinkube.dev/v1alpha1", "SpinApp"),
    ("core.spinkube.dev/v1alpha1", "SpinAppExecutor"),
    ("runtime.spinkube.dev/v1alpha1", "Shim"),
];

/// What to render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Flavor {
    /// Deployments, Services, Secrets, RuntimeClasses and installer Jobs.
    #[default]
    Native,
    /// spin-operator's SpinApp and SpinAppExecutor, runtime-class-manager's Shim.
    Spinkube,
}

/// What objects are rendered for, besides the spec and the environment's name: the cluster's
/// version and nodes, the flavor, spindle's own settings. Built once per command or reconciler
/// (`Target { kube, ..Target::default() }`) and shared by every environment it renders.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Kubernetes version whose API versions are used.
    pub kube: KubeVersion,
    /// Native objects or SpinKube's resources.
    pub flavor: Flavor,
    /// The source revision recorded on every object (`spindle.dev/revision`), when known.
    pub revision: Option<String>,
    /// The reconciler instance recorded on every object (`spindle.dev/instance`), when one
    /// applies them: what tells its objects from another instance's in the same cluster.
    pub instance: Option<String>,
    /// The namespaces apps may be placed in; `None`: any but the cluster's own, spindle's own,
    /// and `default`.
    pub allowed_namespaces: Option<Vec<String>>,
    /// Whether apps may be placed in `default` (where Kubernetes puts what names no namespace).
    /// Previews allow it; a reconciler refuses it unless told otherwise.
    pub allow_default_namespace: bool,
    /// The cluster's nodes, when known; installer Jobs are planned for them when a node policy
    /// is given too.
    pub nodes: Option<Vec<Node>>,
    /// What the repository may install on nodes; `None`: nothing (runtimes get their
    /// RuntimeClass, but no installer Jobs are planned).
    pub node_policy: Option<NodePolicy>,
    /// Namespace of spindle's own objects (installer Jobs).
    pub system_namespace: String,
    /// The image that runs `spindle-node-installer` for runtimes whose shim comes from a URL.
    pub installer_image: String,
    /// The trigger types of each app's `spin.toml` (`http`, `redis`, `mqtt`, `cron`, `command`,
    /// or others the app's manifest names), by the app's `source`: read from the repository by
    /// the pipeline. An app whose manifest is not known (an `image` only) is an HTTP app.
    pub app_triggers: BTreeMap<String, BTreeSet<String>>,
}

impl Default for Target {
    /// The newest Kubernetes, native objects, no revision or instance, no nodes and no node
    /// policy, any namespace but the cluster's and `spindle-system`, and the installer image of
    /// this spindle version.
    fn default() -> Self {
        Target {
            kube: KubeVersion::NEWEST,
            flavor: Flavor::Native,
            revision: None,
            instance: None,
            allowed_namespaces: None,
            allow_default_namespace: true,
            nodes: None,
            node_policy: None,
            system_namespace: "spindle-system".to_owned(),
            installer_image: format!(
                "ghcr.io/spindle-dev/spindle-node-installer:{}",
                env!("CARGO_PKG_VERSION")
            ),
            app_triggers: BTreeMap::new(),
        }
    }
}

/// Renders every object of `environment`, sorted into apply order.
pub fn render(
    platform: &Platform,
    environment: &str,
    target: &Target,
) -> Result<Vec<Object>, Vec<Problem>> {
    let context = Context {
        platform,
        environment,
        target,
    };
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    let mut keep = |rendered: Result<Vec<Object>, Problem>| match rendered {
        Ok(rendered) => objects.extend(rendered),
        Err(problem) => problems.push(problem),
    };
    for (name, app) in &platform.apps {
        keep(
            context
                .app_inputs(name, app)
                .and_then(|inputs| match target.flavor {
                    Flavor::Native => app::render(&context, &inputs),
                    Flavor::Spinkube => spinkube::app(&context, &inputs),
                }),
        );
    }
    for (name, runtime) in &platform.runtimes {
        keep(match target.flavor {
            Flavor::Native => Ok(runtime::render(&context, name, runtime)),
            Flavor::Spinkube => match &target.node_policy {
                // Nothing for runtime-class-manager to install without a policy.
                None => Ok(Vec::new()),
                Some(policy) if !policy.allow_control_plane => Err(Problem {
                    pointer: format!("/runtimes/{}", pointer_segment(name)),
                    message: format!(
                        "runtime `{name}`: runtime-class-manager cannot keep its installs off \
                         control-plane nodes; with --flavor spinkube the node policy must allow \
                         them (allowControlPlane)"
                    ),
                }),
                Some(_) => spinkube::runtime(&context, name, runtime),
            },
        });
    }
    if let Some(policy) = &target.node_policy {
        problems.extend(policy.check_platform(platform));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if target.flavor == Flavor::Spinkube {
        objects.extend(spinkube::executors(&context));
    }
    objects.extend(context.namespaces(&objects));
    sort(&mut objects);
    Ok(objects)
}

/// What every renderer of one environment shares.
struct Context<'a> {
    platform: &'a Platform,
    environment: &'a str,
    target: &'a Target,
}

/// An app together with what it was resolved to.
struct AppInputs<'a> {
    name: &'a str,
    app: &'a App,
    image: &'a str,
    runtime_class: &'a str,
    runtime_name: &'a str,
    /// The app's trigger types, when its manifest is known.
    triggers: Option<&'a BTreeSet<String>>,
}

impl AppInputs<'_> {
    /// Whether the app serves HTTP (or may: its manifest is not known).
    fn serves_http(&self) -> bool {
        self.triggers.is_none_or(|types| types.contains("http"))
    }

    /// Whether the app has Redis, MQTT or cron triggers: it is ready once they receive.
    fn has_message_triggers(&self) -> bool {
        self.triggers.is_some_and(|types| {
            types
                .iter()
                .any(|kind| !["http", "command"].contains(&kind.as_str()))
        })
    }

    /// Whether the app is a command, run once to completion.
    fn is_command(&self) -> bool {
        self.triggers.is_some_and(|types| types.contains("command"))
    }
}

impl<'a> Context<'a> {
    fn app_inputs(&self, name: &'a str, app: &'a App) -> Result<AppInputs<'a>, Problem> {
        let at = format!("/apps/{}", pointer_segment(name));
        self.check_namespace(name, app, &at)?;
        let image = app.image.as_deref().ok_or_else(|| Problem {
            pointer: at.clone(),
            message: format!(
                "app `{name}` has no `image`: a cluster runs the app from an OCI registry; push it \
                 (`spin registry push` or `spindle push`) and set `image` to the reference"
            ),
        })?;
        let (runtime_name, runtime) = self.platform.runtime_of(app).ok_or_else(|| Problem {
            pointer: at,
            message: format!(
                "app `{name}` has no node runtime to run on: define one under `runtimes`"
            ),
        })?;
        let triggers = app
            .source
            .as_ref()
            .and_then(|source| self.target.app_triggers.get(source));
        if let Some(triggers) = triggers {
            triggers::check_runtime(name, app, triggers, runtime_name, runtime)?;
        }
        Ok(AppInputs {
            name,
            app,
            image,
            runtime_class: runtime.class_name(runtime_name),
            runtime_name,
            triggers,
        })
    }

    /// Refuses a namespace the target does not let apps use: spindle's own, `default` unless
    /// allowed, one outside the allowed list.
    fn check_namespace(&self, name: &str, app: &App, at: &str) -> Result<(), Problem> {
        let namespace = app.namespace.as_str();
        let refuse = |why: String| {
            Err(Problem {
                pointer: format!("{at}/namespace"),
                message: format!("app `{name}` may not run in `{namespace}`: {why}"),
            })
        };
        if namespace == self.target.system_namespace {
            return refuse("spindle keeps its own state there".to_owned());
        }
        if namespace == "default" && !self.target.allow_default_namespace {
            return refuse(
                "give the app a `namespace` of its own (a reconciler run with \
                 --allow-default-namespace accepts `default`)"
                    .to_owned(),
            );
        }
        match &self.target.allowed_namespaces {
            Some(allowed) if !allowed.iter().any(|a| a == namespace) => refuse(format!(
                "this reconciler may only write {}",
                allowed.join(", ")
            )),
            _ => Ok(()),
        }
    }

    /// Labels on the top-level metadata of every object spindle renders.
    fn labels(&self, owner: Owner<'_>) -> Map<String, Value> {
        let mut labels = Map::new();
        labels.insert("app.kubernetes.io/managed-by".into(), json!(MANAGER));
        match owner {
            Owner::App(name) => {
                labels.insert("app.kubernetes.io/name".into(), json!(name));
                labels.insert(format!("{DOMAIN}/app"), json!(name));
            }
            Owner::Runtime(name) => {
                labels.insert(format!("{DOMAIN}/runtime"), json!(name));
            }
            Owner::Environment => {}
        }
        labels.insert(format!("{DOMAIN}/environment"), json!(self.environment));
        if let Some(revision) = &self.target.revision {
            labels.insert(format!("{DOMAIN}/revision"), json!(revision));
        }
        if let Some(instance) = &self.target.instance {
            labels.insert(INSTANCE_LABEL.to_owned(), json!(instance));
        }
        labels
    }

    /// `metadata` with name, optional namespace, spindle's labels plus `extra_labels`, and
    /// annotations when there are any.
    fn metadata(
        &self,
        owner: Owner<'_>,
        name: &str,
        namespace: Option<&str>,
        extra: Option<&spindle_schema::ObjectMetadata>,
    ) -> Value {
        let mut labels = self.labels(owner);
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        if let Some(namespace) = namespace {
            metadata.insert("namespace".into(), json!(namespace));
        }
        if let Some(extra) = extra {
            for (key, value) in &extra.labels {
                labels.entry(key.clone()).or_insert_with(|| json!(value));
            }
        }
        metadata.insert("labels".into(), Value::Object(labels));
        if let Some(extra) = extra.filter(|extra| !extra.annotations.is_empty()) {
            metadata.insert("annotations".into(), json!(extra.annotations));
        }
        Value::Object(metadata)
    }

    /// A Namespace for every namespace the objects use, except the ones every cluster has.
    fn namespaces(&self, objects: &[Object]) -> Vec<Object> {
        let used: BTreeSet<&str> = objects.iter().filter_map(Object::namespace).collect();
        used.into_iter()
            .filter(|namespace| !is_builtin_namespace(namespace))
            .map(|namespace| {
                Object::new(json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": self.metadata(Owner::Environment, namespace, None, None),
                }))
            })
            .collect()
    }
}

/// Whose object it is, for its labels.
#[derive(Clone, Copy)]
enum Owner<'a> {
    App(&'a str),
    Runtime(&'a str),
    Environment,
}

/// Namespaces that exist in every cluster and must never be created or pruned by spindle.
pub fn is_builtin_namespace(namespace: &str) -> bool {
    matches!(
        namespace,
        "default" | "kube-system" | "kube-public" | "kube-node-lease"
    )
}

/// The first `len` hex digits of the sha256 of `bytes`: names that change with content.
fn short_hash(bytes: &[u8], len: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut hex = hex::encode(Sha256::digest(bytes));
    hex.truncate(len);
    hex
}
