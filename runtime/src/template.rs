//! Spin's templates, as in `"{{ greeting }}, world"` and `allowed_outbound_hosts` entries:
//! text with `{{ name }}` references to application variables.

use std::collections::BTreeMap;

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
pub fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
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
        if !is_variable_name(name) {
            return Err(format!("`{{{{ {name} }}}}` does not name a variable"));
        }
        each(Part::Reference(name))?;
        rest = &after[end + 2..];
    }
    each(Part::Text(rest))
}

/// Spin's rule for variable names: lower-case letters, digits and single `_` between them,
/// starting with a letter.
pub fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('_').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
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
}
