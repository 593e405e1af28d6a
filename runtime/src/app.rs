//! A Spin application ready to serve: the manifest checked and resolved against its folder.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use crate::{
    manifest::{self, ComponentRef, FileMount, Locator, ManifestError, Route, Source},
    routes::RoutePattern,
    trigger::{ComponentKind, Trigger, TriggerKind},
};

/// A loaded application.
#[derive(Debug, Clone)]
pub struct App {
    /// The application's name, from `[application]`.
    pub name: String,
    /// The folder of `spin.toml`: relative paths start here.
    pub dir: PathBuf,
    /// The app's manifest: its `spin.toml`, or the locked app written when unpacking an artifact.
    pub manifest_path: PathBuf,
    /// The HTTP trigger's base path (`/` unless set).
    pub base: String,
    /// Application variables by name, as declared under `[variables]`.
    pub variables: BTreeMap<String, manifest::Variable>,
    /// The app's components, by id.
    pub components: BTreeMap<String, ComponentSpec>,
    /// HTTP routes to components, in manifest order; private components have none.
    pub routes: Vec<(RoutePattern, String)>,
    /// The app's triggers other than HTTP (Redis, MQTT, cron, command), in manifest order.
    pub triggers: Vec<Trigger>,
}

/// One component of the application.
#[derive(Debug, Clone, Default)]
pub struct ComponentSpec {
    /// The component's id.
    pub id: String,
    /// The component's Wasm file.
    pub source: PathBuf,
    /// `source` holds code compiled by this runtime's engine (from containerd's cache), not Wasm.
    pub precompiled: bool,
    /// Files the guest sees, read-only: host path to guest path.
    pub files: Vec<(PathBuf, String)>,
    /// Environment variables given to the component.
    pub environment: BTreeMap<String, String>,
    /// Hosts the component may connect to: `allowed_outbound_hosts`, then `allowed_http_hosts`.
    pub allowed_outbound_hosts: Vec<String>,
    /// Labels of the key-value stores the component may use.
    pub key_value_stores: BTreeSet<String>,
    /// Labels of the SQLite databases the component may use.
    pub sqlite_databases: BTreeSet<String>,
    /// Variable templates by name, e.g. `message = "{{ greeting }}!"`.
    pub variables: BTreeMap<String, String>,
    /// Build commands and their folder, for `--build`.
    pub build: Option<(Vec<String>, PathBuf)>,
}

impl App {
    /// Loads `path`: a `spin.toml`, or a folder holding one.
    pub fn load(path: &Path) -> Result<App, ManifestError> {
        let manifest_path = if path.is_dir() {
            path.join("spin.toml")
        } else {
            path.to_path_buf()
        };
        let file = manifest_path.display().to_string();
        let text = std::fs::read_to_string(&manifest_path).map_err(|err| ManifestError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the manifest: {err}"),
        })?;
        let parsed = manifest::parse(&file, &text)?;
        let dir = manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        resolve(
            parsed,
            &Locator {
                file: &file,
                text: &text,
            },
            dir,
            manifest_path.clone(),
        )
    }

    /// The components the app keeps when only `retain` are asked for (SpinKube's
    /// `SPIN_COMPONENTS_TO_RETAIN`): routes to the others go.
    pub fn retain(&mut self, retain: &[String]) -> Result<(), String> {
        if let Some(unknown) = retain.iter().find(|id| !self.components.contains_key(*id)) {
            return Err(format!(
                "component `{unknown}` (asked to retain) is not in the app (have: {})",
                self.components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        self.components.retain(|id, _| retain.contains(id));
        self.routes.retain(|(_, id)| retain.contains(id));
        self.triggers
            .retain(|trigger| retain.contains(&trigger.component));
        Ok(())
    }

    /// Whether the app is a command: it runs its `[[trigger.command]]` components once and exits,
    /// instead of serving.
    pub fn is_command(&self) -> bool {
        self.triggers
            .iter()
            .any(|trigger| matches!(trigger.kind, TriggerKind::Command))
    }

    /// The trigger types the app uses (`http`, `redis`, `mqtt`, `cron`, `command`), each once.
    pub fn trigger_types(&self) -> BTreeSet<&'static str> {
        let http = self
            .components
            .keys()
            .any(|id| self.component_kind(id) == ComponentKind::Http);
        http.then_some("http")
            .into_iter()
            .chain(self.triggers.iter().map(|trigger| trigger.kind.name()))
            .collect()
    }

    /// What the component is run for: the trigger that names it, HTTP when only HTTP triggers
    /// (or none) do.
    pub fn component_kind(&self, id: &str) -> ComponentKind {
        self.triggers
            .iter()
            .find(|trigger| trigger.component == id)
            .map_or(ComponentKind::Http, |trigger| trigger.kind.component_kind())
    }
}

fn resolve(
    manifest: manifest::Manifest,
    at: &Locator,
    dir: PathBuf,
    manifest_path: PathBuf,
) -> Result<App, ManifestError> {
    if let Some(other) = manifest.trigger.other.keys().next() {
        // Spans do not survive serde's flatten: the trigger's table is found by its header.
        let offset = at.text.find(&format!("trigger.{other}")).unwrap_or(0);
        return Err(at.error(
            offset,
            format!(
                "trigger type `{other}` is not supported: spindle runs http, redis, mqtt, cron and \
                 command triggers"
            ),
        ));
    }
    let mut variables = BTreeMap::new();
    for (name, variable) in manifest.variables {
        if !crate::template::is_variable_name(name.get_ref()) {
            return Err(at.at(&name, format!(
                "variable name `{}` must be lower-case letters, digits and single underscores, starting with a letter",
                name.get_ref()
            )));
        }
        if variable.required == variable.default.is_some() {
            return Err(at.at(
                &name,
                format!(
                    "variable `{}` must be `required` or have a `default` (not both)",
                    name.get_ref()
                ),
            ));
        }
        variables.insert(name.into_inner(), variable);
    }

    let mut components = BTreeMap::new();
    for (id, component) in manifest.component {
        if !is_component_id(id.get_ref()) {
            return Err(at.at(&id, format!(
                "component id `{}` must be kebab-case: lower-case words of letters and digits separated by '-', starting with a letter",
                id.get_ref()
            )));
        }
        let spec = component_spec(id.get_ref(), component, at, &dir, &variables)?;
        components.insert(id.into_inner(), spec);
    }

    let base = manifest
        .application
        .trigger
        .http
        .as_ref()
        .and_then(|http| http.base.clone())
        .unwrap_or_else(|| "/".to_owned());
    let mut routes = Vec::new();
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    let mut components = Components {
        specs: components,
        at,
        dir: &dir,
        variables: &variables,
    };
    let triggers = crate::trigger::resolve(
        &manifest.trigger,
        &manifest.application.trigger,
        &mut components,
    )?;
    for (index, trigger) in manifest.trigger.http.into_iter().enumerate() {
        let id = components.of_trigger(
            &trigger.component,
            trigger
                .id
                .as_deref()
                .map_or_else(|| format!("trigger-{index}"), str::to_owned)
                .as_str(),
        )?;
        match trigger.route.get_ref() {
            Route::Private(private) if private.private => {}
            Route::Private(_) => {
                return Err(at.at(
                    &trigger.route,
                    "a route must be a path or `{ private = true }`",
                ));
            }
            Route::Path(path) => {
                let pattern = RoutePattern::parse_with_base(&base, path)
                    .map_err(|err| at.at(&trigger.route, err))?;
                if let Some(other) = served.insert(pattern.to_string(), id.clone()) {
                    return Err(at.at(
                        &trigger.route,
                        format!("route `{pattern}` is already served by component `{other}`"),
                    ));
                }
                routes.push((pattern, id));
            }
        }
    }
    let components = components.specs;
    Ok(App {
        name: manifest.application.name,
        dir,
        manifest_path,
        base,
        variables,
        components,
        routes,
        triggers,
    })
}

/// The app's components while triggers are read: those defined under `[component.ID]`, and
/// those written inline in triggers as they are met.
pub(crate) struct Components<'a> {
    specs: BTreeMap<String, ComponentSpec>,
    /// Where problems are reported.
    pub at: &'a Locator<'a>,
    dir: &'a Path,
    variables: &'a BTreeMap<String, manifest::Variable>,
}

impl Components<'_> {
    /// The id of a trigger's component; a component written inline is added under the
    /// trigger's id.
    pub fn of_trigger(
        &mut self,
        component: &toml::Spanned<ComponentRef>,
        trigger_id: &str,
    ) -> Result<String, ManifestError> {
        match component.get_ref() {
            ComponentRef::Id(id) => {
                if !self.specs.contains_key(id) {
                    return Err(self.at.at(
                        component,
                        format!(
                            "trigger refers to component `{id}`, which is not defined (have: {})",
                            self.specs.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                Ok(id.clone())
            }
            ComponentRef::Inline(inline) => {
                let id = trigger_id.to_owned();
                if self.specs.contains_key(&id) {
                    return Err(self.at.at(
                        component,
                        format!("the inline component's id `{id}` is taken: give the trigger another `id`"),
                    ));
                }
                let spec =
                    component_spec(&id, (**inline).clone(), self.at, self.dir, self.variables)?;
                self.specs.insert(id.clone(), spec);
                Ok(id)
            }
        }
    }

    /// Whether `template`'s references are all application variables.
    pub fn check_template(
        &self,
        template: &toml::Spanned<String>,
        what: &str,
    ) -> Result<(), ManifestError> {
        let references = crate::template::references(template.get_ref())
            .map_err(|err| self.at.at(template, format!("{what}: {err}")))?;
        match references
            .iter()
            .find(|name| !self.variables.contains_key(*name))
        {
            Some(unknown) => Err(self.at.at(
                template,
                format!(
                    "{what} uses `{unknown}`, which is not an application variable (declare it \
                     under [variables])"
                ),
            )),
            None => Ok(()),
        }
    }
}

fn component_spec(
    id: &str,
    component: manifest::Component,
    at: &Locator,
    dir: &Path,
    variables: &BTreeMap<String, manifest::Variable>,
) -> Result<ComponentSpec, ManifestError> {
    let source = match component.source.get_ref() {
        Source::Path(path) => dir.join(path),
        Source::Url { url, .. } => {
            return Err(at.at(&component.source, format!(
                "component `{id}`: sources from URLs ({url}) are not fetched by spindle yet; download the file and give its path"
            )));
        }
        Source::Registry { package, .. } => {
            return Err(at.at(&component.source, format!(
                "component `{id}`: registry sources ({package}) are not supported; give a file path"
            )));
        }
    };
    let mut files = Vec::new();
    for mount in &component.files {
        let found = match mount.get_ref() {
            FileMount::Pattern(pattern) => crate::files::glob(dir, pattern),
            FileMount::Placement {
                source,
                destination,
            } => crate::files::placement(dir, source, destination),
        }
        .map_err(|err| at.at(mount, format!("component `{id}`: files: {err}")))?;
        files.extend(found);
    }
    let mut templates = BTreeMap::new();
    for (name, template) in &component.variables {
        for reference in crate::template::references(template.get_ref()).map_err(|err| {
            at.at(
                template,
                format!("component `{id}` variable `{}`: {err}", name.get_ref()),
            )
        })? {
            if !variables.contains_key(&reference) {
                return Err(at.at(template, format!(
                    "component `{id}` variable `{}` uses `{reference}`, which is not an application variable (declare it under [variables])",
                    name.get_ref()
                )));
            }
        }
        templates.insert(name.get_ref().clone(), template.get_ref().clone());
    }
    let hosts = component
        .allowed_outbound_hosts
        .iter()
        .chain(&component.allowed_http_hosts);
    let mut allowed_outbound_hosts = Vec::new();
    for host in hosts {
        let entry = host.get_ref();
        let references = crate::template::references(entry).map_err(|err| {
            at.at(
                host,
                format!("component `{id}` allowed_outbound_hosts: {err}"),
            )
        })?;
        if let Some(unknown) = references.iter().find(|r| !variables.contains_key(*r)) {
            return Err(at.at(host, format!(
                "component `{id}` allowed_outbound_hosts entry `{entry}` uses `{unknown}`, which is not an application variable (declare it under [variables])"
            )));
        }
        // A templated entry is checked once its variables have values, when the app starts.
        if references.is_empty() {
            crate::allow_list::AllowedHost::parse(entry).map_err(|err| {
                at.at(
                    host,
                    format!("component `{id}` allowed_outbound_hosts: {err}"),
                )
            })?;
        }
        allowed_outbound_hosts.push(entry.clone());
    }
    let build = component.build.as_ref().map(|build| {
        let workdir = build
            .workdir
            .as_deref()
            .map_or(dir.to_path_buf(), |w| dir.join(w));
        (
            build
                .command
                .list()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            workdir,
        )
    });
    Ok(ComponentSpec {
        id: id.to_owned(),
        source,
        precompiled: false,
        files,
        environment: component.environment.clone(),
        allowed_outbound_hosts,
        key_value_stores: component
            .key_value_stores
            .iter()
            .map(|s| s.get_ref().clone())
            .collect(),
        sqlite_databases: component
            .sqlite_databases
            .iter()
            .map(|s| s.get_ref().clone())
            .collect(),
        variables: templates,
        build,
    })
}

/// Spin's rule for component ids: kebab-case words, the first starting with a letter.
fn is_component_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.split('-').all(|word| {
            !word.is_empty()
                && (word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    || word
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        })
}
