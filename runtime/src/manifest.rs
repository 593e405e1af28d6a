//! Spin's application manifest, `spin.toml` (manifest version 2), as written by users.
//!
//! Errors name the file, line, column and field: TOML and type errors come from the parser with
//! their span, rule violations (a trigger naming a missing component, a bad variable name) from
//! the spans kept on the fields they concern.

use std::{collections::BTreeMap, fmt};

use serde::Deserialize;
use toml::Spanned;

/// A manifest error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest's path, as errors name it.
    pub file: String,
    /// The 1-based line of the error; 0 when the file could not be read.
    pub line: usize,
    /// The 1-based column of the error, in bytes; 0 when the file could not be read.
    pub column: usize,
    /// What is wrong, without the location.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ManifestError {}

/// A parsed `spin.toml` (manifest version 2), before its rules are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `spin_manifest_version`: the version of the manifest format, which must be 2.
    pub spin_manifest_version: Spanned<toml::Value>,
    /// `[application]`: the app's name, metadata and app-wide trigger settings.
    pub application: Application,
    /// `[variables]`: application variables, by name.
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Variable>,
    /// `[[trigger.TYPE]]`: the app's triggers, by trigger type.
    #[serde(default)]
    pub trigger: Triggers,
    /// `[component.ID]`: the app's components, by id.
    #[serde(default)]
    pub component: BTreeMap<Spanned<String>, Component>,
}

/// The `[application]` table: the app's identity and app-wide trigger settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// `name`: the application's name.
    pub name: String,
    /// `version`: the application's version, free-form (usually semver).
    #[serde(default)]
    pub version: Option<String>,
    /// `description`: a short description of the application.
    #[serde(default)]
    pub description: Option<String>,
    /// `authors`: the application's authors, e.g. `"Jane Doe <jane@example.com>"`.
    #[serde(default)]
    pub authors: Vec<String>,
    /// `targets`: the environments the app must be deployable to, e.g. `spin-up:3.2`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// `[application.trigger.TYPE]`: settings shared by every trigger of a type.
    #[serde(default)]
    pub trigger: ApplicationTriggers,
}

/// The `[application.trigger]` table: app-wide settings per trigger type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTriggers {
    /// `[application.trigger.http]`: settings of every HTTP trigger.
    #[serde(default)]
    pub http: Option<HttpTriggerSettings>,
    /// `[application.trigger.redis]`: the Redis server of every Redis trigger without its own.
    #[serde(default)]
    pub redis: Option<RedisTriggerSettings>,
    /// `[application.trigger.mqtt]`: the MQTT broker and session of every MQTT trigger (the
    /// MQTT trigger plugin's settings).
    #[serde(default)]
    pub mqtt: Option<MqttTriggerSettings>,
}

/// The `[application.trigger.redis]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTriggerSettings {
    /// `address`: the Redis server, `redis://host[:port]` (or `rediss://`); may use
    /// `{{ variable }}` templates.
    pub address: Spanned<String>,
}

/// The `[application.trigger.mqtt]` table, as the MQTT trigger plugin reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTriggerSettings {
    /// `address`: the broker, `mqtt://host[:port]` (port 1883 by default); may use templates.
    pub address: Spanned<String>,
    /// `username`: the user to connect as, empty for none; may use templates.
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    /// `password`: the user's password; may use templates.
    #[serde(default)]
    pub password: Option<Spanned<String>>,
    /// `keep_alive_interval`: seconds between pings while the connection is idle.
    #[serde(default)]
    pub keep_alive_interval: Option<Spanned<String>>,
}

/// The `[application.trigger.http]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTriggerSettings {
    /// `base`: the path every HTTP route is relative to; `/` when absent.
    #[serde(default)]
    pub base: Option<String>,
}

/// An application variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// `default`: the value used when none is given; absent for a required variable.
    #[serde(default)]
    pub default: Option<String>,
    /// `required`: a value must be given when the app runs, as there is no default.
    #[serde(default)]
    pub required: bool,
    /// `secret`: the value is sensitive and must not be shown or logged.
    #[serde(default)]
    pub secret: bool,
}

/// The `[[trigger.TYPE]]` arrays of the manifest, by trigger type.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Triggers {
    /// `[[trigger.http]]`: the HTTP triggers, in manifest order.
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    /// `[[trigger.redis]]`: components run for each message published on a Redis channel.
    #[serde(default)]
    pub redis: Vec<RedisTrigger>,
    /// `[[trigger.mqtt]]`: components run for each message on an MQTT topic.
    #[serde(default)]
    pub mqtt: Vec<MqttTrigger>,
    /// `[[trigger.cron]]`: components run on a schedule.
    #[serde(default)]
    pub cron: Vec<CronTrigger>,
    /// `[[trigger.command]]`: components run once, as a command (`wasi:cli/run`).
    #[serde(default)]
    pub command: Vec<CommandTrigger>,
    /// Other trigger types, which spindle refuses by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// One `[[trigger.redis]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTrigger {
    /// `id`: the trigger's id.
    #[serde(default)]
    pub id: Option<String>,
    /// `address`: this trigger's Redis server, instead of `[application.trigger.redis]`'s.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    /// `channel`: the channel subscribed to; may use templates.
    pub channel: Spanned<String>,
    /// `component`: the component that handles each message.
    pub component: Spanned<ComponentRef>,
}

/// One `[[trigger.mqtt]]` entry, as the MQTT trigger plugin reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTrigger {
    /// `id`: the trigger's id.
    #[serde(default)]
    pub id: Option<String>,
    /// `topic`: the topic (filter) subscribed to; may use templates.
    pub topic: Spanned<String>,
    /// `qos`: the subscription's quality of service, `"0"`, `"1"` or `"2"`.
    pub qos: Spanned<String>,
    /// `component`: the component that handles each message.
    pub component: Spanned<ComponentRef>,
}

/// One `[[trigger.cron]]` entry, as the cron trigger plugin reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// `id`: the trigger's id.
    #[serde(default)]
    pub id: Option<String>,
    /// `cron_expression`: when the component runs, with seconds:
    /// `sec min hour day-of-month month day-of-week [year]`.
    pub cron_expression: Spanned<String>,
    /// `component`: the component run at each tick.
    pub component: Spanned<ComponentRef>,
}

/// One `[[trigger.command]]` entry, as the command trigger plugin reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandTrigger {
    /// `id`: the trigger's id.
    #[serde(default)]
    pub id: Option<String>,
    /// `component`: the component whose `wasi:cli/run` is run.
    pub component: Spanned<ComponentRef>,
}

/// One `[[trigger.http]]` entry: a route and the component that serves it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    /// `id`: the trigger's id; spindle also uses it as the id of a component written inline.
    #[serde(default)]
    pub id: Option<String>,
    /// `route`: the path pattern served, or `{ private = true }` for no public route.
    pub route: Spanned<Route>,
    /// `component`: the component that handles the route's requests.
    pub component: Spanned<ComponentRef>,
    /// `executor`: how the component is run (Spin or Wagi); accepted but not used by spindle.
    #[serde(default)]
    pub executor: Option<toml::Table>,
}

/// An HTTP trigger's `route`: a path pattern, or private.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Route {
    /// A path pattern such as `/api/...`, relative to the application's `base`.
    Path(String),
    /// `{ private = true }`: no public route; reachable only by local service chaining.
    Private(PrivateRoute),
}

/// The table form of a route, `{ private = true }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    /// `private`: whether the route is private; `false` is rejected.
    pub private: bool,
}

/// A trigger's component: the id of a `[component.ID]`, or a component written inline.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ComponentRef {
    /// The id of a `[component.ID]` table.
    Id(String),
    /// A component table written in the trigger itself.
    Inline(Box<Component>),
}

/// A `[component.ID]` table, or a component written inline in a trigger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// `source`: where the component's Wasm comes from.
    pub source: Spanned<Source>,
    /// `description`: a short description of the component.
    #[serde(default)]
    pub description: Option<String>,
    /// `files`: files and folders the guest sees, read-only.
    #[serde(default)]
    pub files: Vec<Spanned<FileMount>>,
    /// `exclude_files`: glob patterns of files to leave out of `files`.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    /// `environment`: environment variables given to the component.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `allowed_outbound_hosts`: the hosts (with scheme and port) the component may connect to.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Spanned<String>>,
    /// Spin 1's name for the same list.
    #[serde(default)]
    pub allowed_http_hosts: Vec<Spanned<String>>,
    /// `key_value_stores`: labels of the key-value stores the component may use.
    #[serde(default)]
    pub key_value_stores: Vec<Spanned<String>>,
    /// `sqlite_databases`: labels of the SQLite databases the component may use.
    #[serde(default)]
    pub sqlite_databases: Vec<Spanned<String>>,
    /// `ai_models`: the LLMs the component may use for inferencing.
    #[serde(default)]
    pub ai_models: Vec<String>,
    /// `[component.ID.variables]`: component variables, templates over application variables.
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Spanned<String>>,
    /// `[component.ID.build]`: how `spin build` builds the component.
    #[serde(default)]
    pub build: Option<Build>,
    /// `[component.ID.tool]`: settings for external tools, ignored by the runtime.
    #[serde(default)]
    pub tool: Option<toml::Table>,
    /// `dependencies_inherit_configuration`: whether the component's dependencies get its
    /// capabilities (outbound hosts, stores, variables) instead of none.
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
    /// `[component.ID.dependencies]`: components to compose into this one, by import name.
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
}

/// A component's `source`: a local Wasm file, a URL, or a registry package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A path to a Wasm file, relative to the manifest's folder.
    Path(String),
    /// `{ url, digest }`: a Wasm file to download, checked against its digest.
    Url {
        /// The URL of the Wasm file.
        url: String,
        /// The digest the file must have, `sha256:<hex>`.
        digest: String,
    },
    /// `{ registry, package, version }`: a component from a Wasm package registry.
    Registry {
        /// The registry to fetch from; the default registry when absent.
        registry: Option<String>,
        /// The package name, e.g. `example:hello`.
        package: String,
        /// The version of the package.
        version: String,
    },
}

/// One `files` entry: a glob pattern, or a file or folder placed at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    /// A glob relative to the manifest's folder, mounted at the same relative path.
    Pattern(String),
    /// A file or folder, mounted at `destination`.
    Placement {
        /// The file or folder, relative to the manifest's folder.
        source: String,
        /// Where the guest sees it: an absolute path.
        destination: String,
    },
}

/// The `[component.ID.build]` table: how `spin build` builds a component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// `command`: the build command, or commands run in order.
    pub command: Commands,
    /// `workdir`: the folder the commands run in, relative to the manifest's folder.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `watch`: glob patterns of the files whose changes make `spin watch` rebuild.
    #[serde(default)]
    pub watch: Vec<String>,
    /// `environment`: environment variables for the build commands.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A build `command`: one command line, or several run in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Commands {
    /// A single command line.
    One(String),
    /// Command lines run one after another.
    Many(Vec<String>),
}

impl Default for Commands {
    fn default() -> Self {
        Commands::Many(Vec::new())
    }
}

impl Commands {
    /// The command lines, in the order they run.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Commands::One(command) => vec![command.as_str()],
            Commands::Many(commands) => commands.iter().map(String::as_str).collect(),
        }
    }
}

/// Where problems are reported: the manifest's path and text, to turn byte spans into lines.
pub struct Locator<'a> {
    /// The manifest's path, as errors name it.
    pub file: &'a str,
    /// The manifest's text.
    pub text: &'a str,
}

impl Locator<'_> {
    /// An error at byte `offset`.
    pub fn error(&self, offset: usize, message: impl Into<String>) -> ManifestError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ManifestError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error at the start of a spanned value.
    pub fn at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> ManifestError {
        self.error(spanned.span().start, message)
    }
}

/// Parses a manifest's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    let locator = Locator { file, text };
    // The version decides the shape of everything else, so it is checked first.
    let probe: toml::Table = toml::from_str(text).map_err(|err| toml_error(&locator, &err))?;
    match probe.get("spin_manifest_version") {
        Some(toml::Value::Integer(2)) => {}
        Some(toml::Value::String(v)) if v == "1" => {
            return Err(locator.error(
                0,
                "manifest version 1 is not supported: run `spin doctor` (or `spin up` once) to \
                 upgrade it to version 2",
            ));
        }
        Some(other) => {
            return Err(locator.error(
                0,
                format!("spin_manifest_version: expected 2, found {other}"),
            ));
        }
        None => return Err(locator.error(0, "missing field `spin_manifest_version` (expected 2)")),
    }
    toml::from_str(text).map_err(|err| toml_error(&locator, &err))
}

fn toml_error(locator: &Locator, err: &toml::de::Error) -> ManifestError {
    let offset = err.span().map_or(0, |span| span.start);
    locator.error(offset, err.message().trim().replace('\n', "; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_manifest_with_every_common_field() {
        let text = r#"
spin_manifest_version = 2

[application]
name = "shop"
version = "1.0.0"
[application.trigger.http]
base = "/"

[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }

[[trigger.http]]
route = "/..."
component = "web"

[[trigger.http]]
route = { private = true }
component = "internal"

[component.web]
source = "web.wasm"
files = ["static/*", { source = "assets", destination = "/assets" }]
allowed_outbound_hosts = ["https://example.com"]
key_value_stores = ["default"]
[component.web.variables]
message = "{{ greeting }} there"
[component.web.build]
command = "cargo build"

[component.internal]
source = { url = "https://example.com/x.wasm", digest = "sha256:00" }
"#;
        let manifest = parse("spin.toml", text).expect("parses");
        assert_eq!(manifest.application.name, "shop");
        assert_eq!(manifest.trigger.http.len(), 2);
        assert_eq!(
            *manifest.trigger.http[1].route.get_ref(),
            Route::Private(PrivateRoute { private: true })
        );
        let web = manifest
            .component
            .iter()
            .find(|(id, _)| id.get_ref() == "web")
            .expect("web")
            .1;
        assert_eq!(web.files.len(), 2);
        assert_eq!(web.build.as_ref().unwrap().command.list(), ["cargo build"]);
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let text = "spin_manifest_version = 2\n[application]\nname = \"a\"\n\n[component.web]\nsource = \"a.wasm\"\nroutes = 1\n";
        let err = parse("apps/spin.toml", text).unwrap_err();
        assert_eq!(
            (err.file.as_str(), err.line),
            ("apps/spin.toml", 7),
            "{err}"
        );
        assert!(err.message.contains("unknown field `routes`"), "{err}");
        let v1 = parse("spin.toml", "spin_manifest_version = \"1\"\nname = \"x\"\n").unwrap_err();
        assert!(v1.message.contains("version 1 is not supported"), "{v1}");
        let syntax = parse("spin.toml", "spin_manifest_version = 2\n[application\n").unwrap_err();
        assert_eq!(syntax.line, 2, "{syntax}");
    }
}
