//! Spin's locked app: the JSON form of an app that a Spin artifact carries, with sources and
//! files named by content digest. Fields spindle does not use are kept out of the model; unknown
//! fields are ignored, as Spin ignores them, except what `must_understand` lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The newest `spin_lock_version` spindle reads.
pub const LOCK_VERSION: u64 = 1;

/// A Spin locked app: the JSON document a Spin OCI artifact carries as its last layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockedApp {
    /// `spin_lock_version`: the version of the locked app format; 0 when absent.
    #[serde(default)]
    pub spin_lock_version: u64,
    /// `must_understand`: features a host must support to run the app, e.g. `host_requirements`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_understand: Vec<String>,
    /// `metadata`: the application's name, version and per trigger type settings.
    #[serde(default)]
    pub metadata: Metadata,
    /// `host_requirements`: host features the app needs, e.g. `local_service_chaining`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_requirements: BTreeMap<String, serde_json::Value>,
    /// `variables`: application variables, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Variable>,
    /// `triggers`: the app's triggers, each naming the component it runs.
    pub triggers: Vec<Trigger>,
    /// `components`: the app's components.
    pub components: Vec<Component>,
}

/// The locked app's `metadata`: what `[application]` says in `spin.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// `name`: the application's name.
    #[serde(default)]
    pub name: String,
    /// `version`: the application's version, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Per trigger type settings; HTTP's `base` lives at `triggers.http.base`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, serde_json::Value>,
}

/// An application variable, as the locked app declares it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    /// No default: the variable is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// `secret`: the value is sensitive and must not be shown or logged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// One trigger of the locked app: its type and type-specific configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// `id`: the trigger's id, unique within the app.
    pub id: String,
    /// `trigger_type`: the kind of trigger, e.g. `http`; spindle runs `http` only.
    pub trigger_type: String,
    /// `trigger_config`: type-specific settings; for HTTP, `component` and `route`.
    pub trigger_config: serde_json::Value,
}

/// One component of the locked app: its Wasm, files, environment and capabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// `id`: the component's id, as triggers name it.
    pub id: String,
    /// `metadata`: the component's capabilities: outbound hosts, stores and databases.
    #[serde(default)]
    pub metadata: ComponentMetadata,
    /// `source`: the component's Wasm.
    pub source: Source,
    /// `env`: environment variables given to the component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `files`: files the guest sees, read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    /// Component variables: templates over the app's variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Component dependencies: Spin composes them into the component when pushing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, serde_json::Value>,
}

/// A component's `metadata`: what it may reach, from its capabilities in `spin.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentMetadata {
    /// `allowed_outbound_hosts`: the hosts the component may connect to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// `key_value_stores`: labels of the key-value stores the component may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_value_stores: Vec<String>,
    /// SQLite databases (`sqlite_databases` in `spin.toml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
}

/// A component's `source`: its Wasm and the media type of that content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `content_type`: the media type of the content, `application/wasm` for a component.
    pub content_type: String,
    /// Where the Wasm is: its digest, its bytes inline, or a source URL.
    #[serde(flatten)]
    pub content: Content,
}

/// Where content is: a digest naming a layer, and/or the bytes inline (base64 without padding).
/// A `source` URL is what Spin writes before pushing; spindle does not fetch it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// `source`: the URL of the content, as Spin writes it before pushing (often `file://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `inline`: the content itself, base64-encoded without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// `digest`: the content's digest, `sha256:<hex>`, naming the layer that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One file the guest sees, at `path` relative to its root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct File {
    /// The file's content: its digest and, for small files, its bytes inline.
    #[serde(flatten)]
    pub content: Content,
    /// `path`: where the guest sees the file, relative to its root.
    pub path: String,
}
