//! Spin variables: application variables get their values from providers (explicit values,
//! `SPIN_VARIABLE_<NAME>` in the environment, as SpinKube sets them) or their defaults; components
//! see their own variables, rendered from templates like `"{{ greeting }}, world"`.
//!
//! Everything is resolved when the app starts: a missing required variable stops the start, not
//! the first request.

use std::collections::BTreeMap;

use crate::{app::App, template};

/// Where values come from, by application variable name.
pub trait Provider {
    fn get(&self, name: &str) -> Option<String>;
}

/// `SPIN_VARIABLE_<NAME>` from an environment (the process's, or a pod's).
pub struct EnvProvider<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Provider for EnvProvider<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()))
    }
}

impl Provider for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// What each component sees once the app's variables have values.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Component id to variable name to value.
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Component id to its `allowed_outbound_hosts`, templates rendered.
    pub allowed_outbound_hosts: BTreeMap<String, Vec<String>>,
    /// Application variables with a value, by name: what triggers' templates are rendered with.
    pub values: BTreeMap<String, String>,
}

/// Resolves every component's variables, and the templates in its `allowed_outbound_hosts`, with
/// the first provider that has a value.
pub fn resolve(app: &App, providers: &[&dyn Provider]) -> Result<Resolved, String> {
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, variable) in &app.variables {
        let value = providers
            .iter()
            .find_map(|provider| provider.get(name))
            .or_else(|| variable.default.clone());
        match value {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None if variable.required => missing.push(name.clone()),
            None => {}
        }
    }
    if !missing.is_empty() {
        let hint: Vec<String> = missing
            .iter()
            .map(|name| format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()))
            .collect();
        return Err(format!(
            "required variable{} {} not set (set {})",
            if missing.len() == 1 { "" } else { "s" },
            missing
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            hint.join(", ")
        ));
    }
    let mut resolved = Resolved::default();
    for (id, component) in &app.components {
        let mut rendered = BTreeMap::new();
        for (name, template) in &component.variables {
            let value = template::render(template, &values).map_err(|unset| {
                format!(
                    "component `{id}` variable `{name}` uses `{unset}`, which has no value and no default"
                )
            })?;
            rendered.insert(name.clone(), value);
        }
        resolved.variables.insert(id.clone(), rendered);
        let hosts = component
            .allowed_outbound_hosts
            .iter()
            .map(|template| {
                template::render(template, &values).map_err(|unset| {
                    format!(
                        "component `{id}` allowed_outbound_hosts entry `{template}` uses `{unset}`, which has no value and no default"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        resolved.allowed_outbound_hosts.insert(id.clone(), hosts);
    }
    resolved.values = values;
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_provider_reads_spinkube_names() {
        let provider =
            EnvProvider(|key: &str| (key == "SPIN_VARIABLE_API_TOKEN").then(|| "t".to_owned()));
        assert_eq!(provider.get("api_token"), Some("t".to_owned()));
        assert_eq!(provider.get("other"), None);
    }
}
