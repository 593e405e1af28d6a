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
    pub file: String,
    pub line: usize,
    pub column: usize,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spin_manifest_version: Spanned<toml::Value>,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Variable>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<Spanned<String>, Component>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub trigger: ApplicationTriggers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTriggers {
    #[serde(default)]
    pub http: Option<HttpTriggerSettings>,
    #[serde(default)]
    pub redis: Option<toml::Table>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTriggerSettings {
    #[serde(default)]
    pub base: Option<String>,
}

/// An application variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    /// Other trigger types: spindle serves HTTP only and says so.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: Spanned<Route>,
    pub component: Spanned<ComponentRef>,
    #[serde(default)]
    pub executor: Option<toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Route {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

/// A trigger's component: the id of a `[component.ID]`, or a component written inline.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ComponentRef {
    Id(String),
    Inline(Box<Component>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: Spanned<Source>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub files: Vec<Spanned<FileMount>>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Spanned<String>>,
    /// Spin 1's name for the same list.
    #[serde(default)]
    pub allowed_http_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub key_value_stores: Vec<Spanned<String>>,
    #[serde(default)]
    pub sqlite_databases: Vec<Spanned<String>>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub build: Option<Build>,
    #[serde(default)]
    pub tool: Option<toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Source {
    Path(String),
    Url {
        url: String,
        digest: String,
    },
    Registry {
        registry: Option<String>,
        package: String,
        version: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    /// A glob relative to the manifest's folder, mounted at the same relative path.
    Pattern(String),
    /// A file or folder, mounted at `destination`.
    Placement { source: String, destination: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub command: Commands,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Commands {
    One(String),
    Many(Vec<String>),
}

impl Default for Commands {
    fn default() -> Self {
        Commands::Many(Vec::new())
    }
}

impl Commands {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Commands::One(command) => vec![command.as_str()],
            Commands::Many(commands) => commands.iter().map(String::as_str).collect(),
        }
    }
}

/// Where problems are reported: the manifest's path and text, to turn byte spans into lines.
pub struct Locator<'a> {
    pub file: &'a str,
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
