//! The spec types. Field names are camelCase, as in Kubernetes; unknown fields are errors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything one environment of a repository declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Platform {
    /// Spin apps, keyed by name (a DNS-1123 label).
    #[serde(default)]
    pub apps: BTreeMap<String, App>,
    /// Node runtimes (containerd shims), keyed by name.
    #[serde(default)]
    pub runtimes: BTreeMap<String, Runtime>,
}

impl Platform {
    /// The node runtime that runs `app`: the one it names, or the environment's only one.
    pub fn runtime_of(&self, app: &App) -> Option<(&str, &Runtime)> {
        match &app.runtime {
            Some(name) => self
                .runtimes
                .get_key_value(name)
                .map(|(name, runtime)| (name.as_str(), runtime)),
            None if self.runtimes.len() == 1 => self
                .runtimes
                .iter()
                .next()
                .map(|(name, runtime)| (name.as_str(), runtime)),
            None => None,
        }
    }
}

/// A Spin app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    /// Namespace the app's objects go to.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// OCI reference of the app's Spin artifact: what a cluster runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Path of the app's `spin.toml`, relative to the repository: what `spindle up` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Fixed number of pods; ignored when `autoscaling` is set.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Scale the app's pods with a HorizontalPodAutoscaler instead of running `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// Spin variables, by Spin variable name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Variable>,
    /// Backing stores of the app's key-value stores and SQLite databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<RuntimeConfig>,
    /// CPU and memory requests and limits of the app's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Run only these components of the app (Spin's selective deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// Expose the app through an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
    /// Readiness probe: a pod gets traffic only while this check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<HttpCheck>,
    /// Liveness probe: a pod's container is restarted when this check keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<HttpCheck>,
    /// The node runtime that runs the app; may be left out when the environment has exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Node labels the app's pods must match to be scheduled (Kubernetes `nodeSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints of nodes the app's pods may still be scheduled onto.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// A Kubernetes affinity, passed through as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<serde_json::Value>,
    /// Extra labels and annotations for the app's Deployment, pods and Service.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// ServiceAccount the app's pods run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Memory limit of one component instance, in bytes (SpinKube's `SPIN_MAX_INSTANCE_MEMORY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_memory_limit: Option<u64>,
    /// The port the app listens on inside the pod.
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn default_replicas() -> u32 {
    1
}

fn default_port() -> u16 {
    80
}

/// Horizontal scaling of an app's pods on CPU utilisation (a HorizontalPodAutoscaler).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Autoscaling {
    /// Fewest pods to run.
    pub min_replicas: u32,
    /// Most pods to run; at least `minReplicas`.
    pub max_replicas: u32,
    /// Average CPU utilisation to aim for, in percent of the request.
    #[serde(default = "default_cpu_target")]
    pub target_cpu_utilization: u32,
}

fn default_cpu_target() -> u32 {
    80
}

/// A Spin variable's value: a literal, or a key of a Secret or ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Variable {
    /// A literal value.
    Value(String),
    /// The value of a key of a Secret or ConfigMap.
    From(VariableFrom),
}

/// Where a Spin variable's value is read from: a key of a Secret or of a ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum VariableFrom {
    /// A key of a Secret in the app's namespace.
    SecretKeyRef(KeyRef),
    /// A key of a ConfigMap in the app's namespace.
    ConfigMapKeyRef(KeyRef),
}

/// A key inside a named Secret or ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRef {
    /// Name of the Secret or ConfigMap.
    pub name: String,
    /// Key inside the Secret or ConfigMap.
    pub key: String,
}

impl Variable {
    /// The Secret or ConfigMap key this variable reads, if it is not a literal.
    pub fn key_ref(&self) -> Option<(&'static str, &KeyRef)> {
        match self {
            Variable::Value(_) => None,
            Variable::From(VariableFrom::SecretKeyRef(r)) => Some(("Secret", r)),
            Variable::From(VariableFrom::ConfigMapKeyRef(r)) => Some(("ConfigMap", r)),
        }
    }
}

/// Backing stores of the app's key-value stores and SQLite databases (Spin's runtime config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Key-value stores, by the store label the app's components use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_value_stores: BTreeMap<String, KeyValueStore>,
    /// SQLite databases, by the database label the app's components use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sqlite_databases: BTreeMap<String, SqliteDatabase>,
}

/// Backing store of one key-value store, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum KeyValueStore {
    /// A SQLite file (Spin's default store), at `path` inside the pod or in memory when absent.
    Spin {
        /// File of the store inside the pod; the store is in memory when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// A Redis server.
    Redis {
        /// Connection URL of the Redis server.
        url: String,
    },
}

/// Backing store of one SQLite database, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SqliteDatabase {
    /// A SQLite file, at `path` inside the pod or in memory when absent.
    Spin {
        /// File of the database inside the pod; the database is in memory when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// A remote libSQL database.
    Libsql {
        /// URL of the libSQL database.
        url: String,
        /// Authentication token for the libSQL database.
        token: String,
    },
}

/// Kubernetes resource quantities, as strings (`"100m"`, `"128Mi"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves for the container, by resource name (`cpu`, `memory`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    /// The most the container may use, by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

/// An Ingress that routes HTTP requests for a host and path prefix to the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    /// Host name whose requests go to the app.
    pub host: String,
    /// Path prefix whose requests go to the app; `/` by default.
    #[serde(default = "default_ingress_path")]
    pub path: String,
    /// IngressClass that serves the Ingress; the cluster's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Secret holding the TLS certificate for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
}

fn default_ingress_path() -> String {
    "/".to_owned()
}

/// An HTTP GET check of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCheck {
    /// Path the check GETs on the app's port.
    pub path: String,
    /// Seconds after the container starts before the first check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    /// Seconds between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
}

/// A Kubernetes toleration: lets the app's pods be scheduled onto nodes with a matching taint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Toleration {
    /// Taint key to match; left out with operator `Exists`, every taint matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` (the default: the taint's value must be `value`) or `Exists` (any value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Taint value to match when the operator is `Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Taint effect to match (`NoSchedule`, `PreferNoSchedule`, `NoExecute`); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// Seconds a pod stays on a node after a matching `NoExecute` taint appears; forever if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// Extra labels and annotations for the objects an app becomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Labels and annotations of the app's Deployment.
    #[serde(default, skip_serializing_if = "ObjectMetadata::is_empty")]
    pub deployment: ObjectMetadata,
    /// Labels and annotations of the app's pods (the Deployment's pod template).
    #[serde(default, skip_serializing_if = "ObjectMetadata::is_empty")]
    pub pod: ObjectMetadata,
    /// Labels and annotations of the app's Service.
    #[serde(default, skip_serializing_if = "ObjectMetadata::is_empty")]
    pub service: ObjectMetadata,
}

impl Metadata {
    /// Whether no object gets any label or annotation.
    pub fn is_empty(&self) -> bool {
        self.deployment.is_empty() && self.pod.is_empty() && self.service.is_empty()
    }
}

/// Extra labels and annotations for one object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMetadata {
    /// Labels to add, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMetadata {
    /// Whether there are no labels and no annotations.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// A node runtime: a containerd shim installed on matching nodes, and the RuntimeClass that
/// schedules pods onto the nodes where the install succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Runtime {
    /// The shim binary to install on the nodes, and where it comes from.
    pub shim: Shim,
    /// containerd's runtime handler name (the key under `containerd.runtimes`).
    #[serde(default = "default_handler")]
    pub handler: String,
    /// containerd's runtime type, which names the shim binary.
    #[serde(default = "default_runtime_type")]
    pub runtime_type: String,
    /// containerd runtime options for the handler.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, serde_json::Value>,
    /// Nodes to install on; empty means every node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// How fast the shim is installed across the nodes.
    #[serde(default)]
    pub rollout: Rollout,
    /// The RuntimeClass the runtime provides; named after the runtime when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class: Option<RuntimeClass>,
    /// Where containerd is on the nodes, when not where their distribution puts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerd: Option<Containerd>,
}

impl Runtime {
    /// The name of the RuntimeClass that runtime `name` provides.
    pub fn class_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.runtime_class
            .as_ref()
            .and_then(|class| class.name.as_deref())
            .unwrap_or(name)
    }
}

fn enter_host() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn default_handler() -> String {
    "spindle".to_owned()
}

fn default_runtime_type() -> String {
    "io.containerd.spindle.v1".to_owned()
}

/// The shim artifact; exactly one of `image` and `url`, always with its sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shim {
    /// Version of the shim, shown in rollout plans and passed to the node installer.
    pub version: String,
    /// Installer image that carries the shim binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// URL of the shim binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// sha256 of the shim binary, as 64 hex digits.
    pub sha256: String,
}

/// How the installer rolls a shim out across a runtime's nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// Nodes installed at once.
    #[serde(default = "default_max_unavailable")]
    pub max_unavailable: u32,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            max_unavailable: default_max_unavailable(),
        }
    }
}

fn default_max_unavailable() -> u32 {
    1
}

/// containerd on nodes set up their own way; every path is the node's. Left out, the installer
/// detects the distribution (k3s, RKE2, MicroK8s, k0s, plain containerd) and uses its paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Containerd {
    /// containerd's config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// containerd's socket, checked after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// A shell command that restarts containerd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_command: Option<String>,
    /// Run the restart and the check in the node's namespaces, through its PID 1 (the default);
    /// `false`: in the installer's container, which sees the node's processes and has the node's
    /// root at `/host`.
    #[serde(default = "enter_host", skip_serializing_if = "is_true")]
    pub enter_host: bool,
    /// Where the shim binary goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_dir: Option<String>,
}

/// The Kubernetes RuntimeClass that schedules apps' pods onto the runtime's nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeClass {
    /// Name of the RuntimeClass; defaults to the runtime's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
