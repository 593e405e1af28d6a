//! Spin variables: application variables get their values from providers (explicit values,
//! `SPIN_VARIABLE_<NAME>` in the environment, as SpinKube sets them) or their defaults; components
//! see their own variables, rendered from templates like `"{{ greeting }}, world"`.
//!
//! Everything is resolved when the app starts: a missing required variable stops the start, not
//! the first request.

use std::collections::BTreeMap;

use crate::app::App;

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
            let value = render(template, &values).map_err(|unset| {
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
                render(template, &values).map_err(|unset| {
                    format!(
                        "component `{id}` allowed_outbound_hosts entry `{template}` uses `{unset}`, which has no value and no default"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        resolved.allowed_outbound_hosts.insert(id.clone(), hosts);
    }
    Ok(resolved)
}

/// The application variables a template refers to.
pub fn references(template: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for_each_part(template, &mut |part| {
        if let Part::Reference(name) = part {
            found.push(name.to_owned());
        }
        Ok(())
    })?;
    Ok(found)
}

/// `template` with each `{{ name }}` replaced; `Err(name)` for a reference with no value.
fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for_each_part(template, &mut |part| {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Reference(name) => out.push_str(values.get(name).ok_or_else(|| name.to_owned())?),
        }
        Ok(())
    })?;
    Ok(out)
}

enum Part<'a> {
    Text(&'a str),
    Reference(&'a str),
}

fn for_each_part<'a>(
    template: &'a str,
    each: &mut dyn FnMut(Part<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        each(Part::Text(&rest[..start]))?;
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in `{template}`"))?;
        let name = after[..end].trim();
        if !crate::app::is_variable_name(name) {
            return Err(format!("`{{{{ {name} }}}}` does not name a variable"));
        }
        each(Part::Reference(name))?;
        rest = &after[end + 2..];
    }
    each(Part::Text(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_name_what_they_use() {
        let values = BTreeMap::from([("greeting".to_owned(), "Hi".to_owned())]);
        assert_eq!(
            render("{{ greeting }}, {{greeting}}!", &values).unwrap(),
            "Hi, Hi!"
        );
        assert_eq!(render("plain", &values).unwrap(), "plain");
        assert_eq!(render("{{ other }}", &values), Err("other".to_owned()));
        assert_eq!(references("a {{ x }} b {{ y_2 }}").unwrap(), ["x", "y_2"]);
        assert!(references("{{ x").is_err());
        assert!(references("{{ Bad }}").is_err());
    }

    #[test]
    fn the_environment_provider_reads_spinkube_names() {
        let provider =
            EnvProvider(|key: &str| (key == "SPIN_VARIABLE_API_TOKEN").then(|| "t".to_owned()));
        assert_eq!(provider.get("api_token"), Some("t".to_owned()));
        assert_eq!(provider.get("other"), None);
    }
}
