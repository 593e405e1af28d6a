//! containerd's configuration, edited by parsing it (`toml_edit` keeps the user's comments,
//! order and formatting), never by appending text or matching substrings.
//!
//! Where a runtime goes depends on the config's schema version:
//! - `version = 3` (containerd 2.x): `plugins."io.containerd.cri.v1.runtime".containerd.runtimes.NAME`
//! - `version = 2` (containerd 1.x): `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME`
//! - no version, or `version = 1` (containerd 1.x's first schema): `plugins.cri.containerd.runtimes.NAME`
//!
//! An empty config gets `version = 2` and the runtime.

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Item, Table, value};

/// What to register.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeEntry {
    /// The handler name pods' RuntimeClass uses: the key under `runtimes`.
    pub handler: String,
    /// `io.containerd.spindle.v1`.
    pub runtime_type: String,
    /// The shim binary, when containerd should not look for it on its `PATH`.
    pub runtime_path: Option<String>,
    /// Written under the runtime's `options` table.
    pub options: BTreeMap<String, serde_json::Value>,
}

/// Why a config was left alone.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// The config does not parse as TOML; the parser's message.
    #[error("the config is not valid TOML: {0}")]
    Parse(String),
    /// The config's schema `version` is not 1, 2 or 3.
    #[error("the config's `version` is {0}; spindle knows versions 1, 2 and 3")]
    UnknownVersion(i64),
    /// A key on the path to the `runtimes` table is not a table; the key's dotted path.
    #[error("`{0}` is not a table in the config")]
    NotATable(String),
    /// A runtime option has no TOML form: the option's name and why.
    #[error("option `{0}`: {1}")]
    Option(String, String),
    /// The handler names a runtime spindle did not install (`runc`, say); its name.
    #[error(
        "containerd already has a runtime `{0}` that spindle did not install: refusing to change \
         it (give the spindle runtime another handler)"
    )]
    Foreign(String),
}

/// Whether a runtime table is one spindle wrote: its type is spindle's, or its path is a
/// spindle shim. Anything else (`runc`, `nvidia`, `kata`) is never rewritten or removed.
fn is_spindle(table: &Table) -> bool {
    let text = |key: &str| table.get(key).and_then(Item::as_str).unwrap_or_default();
    text("runtime_type").starts_with("io.containerd.spindle.")
        || text("runtime_path").contains("containerd-shim-spindle-v1")
}

/// The path of the `runtimes` table for a config schema version.
fn runtimes_path(version: i64) -> Result<&'static [&'static str], ConfigError> {
    Ok(match version {
        1 => &["plugins", "cri", "containerd", "runtimes"],
        2 => &[
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "runtimes",
        ],
        3 => &[
            "plugins",
            "io.containerd.cri.v1.runtime",
            "containerd",
            "runtimes",
        ],
        other => return Err(ConfigError::UnknownVersion(other)),
    })
}

fn parse(text: &str) -> Result<(DocumentMut, i64), ConfigError> {
    let mut document: DocumentMut = text
        .parse()
        .map_err(|err: toml_edit::TomlError| ConfigError::Parse(err.to_string()))?;
    let version = match document.get("version").and_then(Item::as_integer) {
        Some(version) => version,
        None if document.is_empty() => {
            document["version"] = value(2);
            2
        }
        None => 1,
    };
    Ok((document, version))
}

/// The table at `path`, created (implicit, so no empty headers appear) where missing.
fn table_at<'a>(
    document: &'a mut DocumentMut,
    path: &[&str],
) -> Result<&'a mut Table, ConfigError> {
    let mut table = document.as_table_mut();
    for (depth, key) in path.iter().enumerate() {
        let entry = table.entry(key).or_insert_with(|| {
            let mut new = Table::new();
            new.set_implicit(true);
            Item::Table(new)
        });
        table = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::NotATable(path[..=depth].join(".")))?;
    }
    Ok(table)
}

fn toml_value(name: &str, json: &serde_json::Value) -> Result<toml_edit::Value, ConfigError> {
    Ok(match json {
        serde_json::Value::Bool(b) => (*b).into(),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            _ => {
                return Err(ConfigError::Option(
                    name.to_owned(),
                    "number out of range".to_owned(),
                ));
            }
        },
        serde_json::Value::String(s) => s.as_str().into(),
        serde_json::Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(toml_value(name, item)?);
            }
            array.into()
        }
        serde_json::Value::Null | serde_json::Value::Object(_) => {
            return Err(ConfigError::Option(
                name.to_owned(),
                "only strings, numbers, booleans and lists can be runtime options".to_owned(),
            ));
        }
    })
}

/// The runtime's table as it should be.
fn runtime_table(entry: &RuntimeEntry) -> Result<Table, ConfigError> {
    let mut table = Table::new();
    table["runtime_type"] = value(entry.runtime_type.as_str());
    if let Some(path) = &entry.runtime_path {
        table["runtime_path"] = value(path.as_str());
    }
    if !entry.options.is_empty() {
        let mut options = Table::new();
        for (name, json) in &entry.options {
            options[name.as_str()] = Item::Value(toml_value(name, json)?);
        }
        table["options"] = Item::Table(options);
    }
    Ok(table)
}

/// Compares tables by content (keys and values, subtables included), not formatting.
fn same(a: &Table, b: &Table) -> bool {
    same_entries(a.iter(), b.iter())
}

fn same_entries<'a>(
    a: impl Iterator<Item = (&'a str, &'a Item)>,
    b: impl Iterator<Item = (&'a str, &'a Item)>,
) -> bool {
    let a: BTreeMap<&str, &Item> = a.collect();
    let b: BTreeMap<&str, &Item> = b.collect();
    a.len() == b.len()
        && a.iter()
            .all(|(key, item)| b.get(key).is_some_and(|other| same_item(item, other)))
}

fn same_item(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Table(a), Item::Table(b)) => same(a, b),
        (Item::Value(a), Item::Value(b)) => same_value(a, b),
        // A table written inline is rewritten as a table: a change, though not in meaning.
        _ => false,
    }
}

fn same_value(a: &toml_edit::Value, b: &toml_edit::Value) -> bool {
    use toml_edit::Value as V;
    match (a, b) {
        (V::Array(a), V::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same_value(a, b))
        }
        (V::InlineTable(a), V::InlineTable(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, value)| b.get(key).is_some_and(|other| same_value(value, other)))
        }
        _ => {
            let bare = |value: &V| {
                let mut value = value.clone();
                value.decor_mut().clear();
                value.to_string()
            };
            bare(a) == bare(b)
        }
    }
}

/// `text` with the runtime registered; `None` when it already is, exactly.
pub fn add(text: &str, entry: &RuntimeEntry) -> Result<Option<String>, ConfigError> {
    let (mut document, version) = parse(text)?;
    let runtimes = table_at(&mut document, runtimes_path(version)?)?;
    let wanted = runtime_table(entry)?;
    match runtimes
        .get_mut(&entry.handler)
        .and_then(Item::as_table_mut)
    {
        Some(existing) if same(existing, &wanted) => return Ok(None),
        Some(existing) if !is_spindle(existing) => {
            return Err(ConfigError::Foreign(entry.handler.clone()));
        }
        // Rewritten in place, so the comments around its header stay.
        Some(existing) => {
            existing.clear();
            for (key, item) in wanted.iter() {
                existing.insert(key, item.clone());
            }
        }
        None => {
            runtimes.insert(&entry.handler, Item::Table(wanted));
        }
    }
    Ok(Some(document.to_string()))
}

/// `text` without the runtime; `None` when it is not there, or is not spindle's.
pub fn remove(text: &str, handler: &str) -> Result<Option<String>, ConfigError> {
    let (mut document, version) = parse(text)?;
    let path = runtimes_path(version)?;
    let mut table = document.as_table_mut();
    for key in path {
        match table.get_mut(key).and_then(Item::as_table_mut) {
            Some(next) => table = next,
            None => return Ok(None),
        }
    }
    if !table
        .get(handler)
        .and_then(Item::as_table)
        .is_some_and(is_spindle)
    {
        return Ok(None);
    }
    table.remove(handler);
    Ok(Some(document.to_string()))
}

/// Whether `text` registers `handler`, for verifying a config.
pub fn has_runtime(text: &str, handler: &str) -> Result<bool, ConfigError> {
    let (document, version) = parse(text)?;
    let mut item = document.as_item();
    for key in runtimes_path(version)? {
        match item.get(key) {
            Some(next) => item = next,
            None => return Ok(false),
        }
    }
    Ok(item.get(handler).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> RuntimeEntry {
        RuntimeEntry {
            handler: "spindle".into(),
            runtime_type: "io.containerd.spindle.v1".into(),
            runtime_path: None,
            options: BTreeMap::new(),
        }
    }

    #[test]
    fn unparsable_and_unknown_configs_are_left_alone() {
        assert!(matches!(
            add("version = [", &entry()),
            Err(ConfigError::Parse(_))
        ));
        assert_eq!(
            add("version = 4\n", &entry()),
            Err(ConfigError::UnknownVersion(4))
        );
        assert_eq!(
            add("version = 2\nplugins = 3\n", &entry()),
            Err(ConfigError::NotATable("plugins".into()))
        );
    }

    #[test]
    fn adding_twice_changes_nothing_and_removing_restores() {
        let original = "version = 2\n# keep me\n[grpc]\n  address = \"/run/containerd.sock\"\n";
        let added = add(original, &entry()).unwrap().expect("a change");
        assert!(has_runtime(&added, "spindle").unwrap());
        assert_eq!(add(&added, &entry()).unwrap(), None);
        let removed = remove(&added, "spindle").unwrap().expect("a change");
        assert!(!has_runtime(&removed, "spindle").unwrap());
        assert!(removed.contains("# keep me"));
        assert_eq!(remove(&removed, "spindle").unwrap(), None);
    }

    #[test]
    fn changed_options_are_a_change() {
        let mut with_options = entry();
        with_options
            .options
            .insert("Debug".into(), serde_json::json!(true));
        let plain = add("version = 2\n", &entry()).unwrap().unwrap();
        let optioned = add(&plain, &with_options)
            .unwrap()
            .expect("options are new");
        assert!(optioned.contains("Debug = true"));
        assert_eq!(add(&optioned, &with_options).unwrap(), None);
        with_options
            .options
            .insert("Debug".into(), serde_json::json!(false));
        assert!(
            add(&optioned, &with_options).unwrap().is_some(),
            "a changed value"
        );
    }

    #[test]
    fn runtimes_spindle_did_not_install_are_never_touched() {
        let config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n";
        let mut takeover = entry();
        takeover.handler = "runc".into();
        assert!(matches!(
            add(config, &takeover),
            Err(ConfigError::Foreign(handler)) if handler == "runc"
        ));
        assert_eq!(remove(config, "runc").unwrap(), None);
    }

    #[test]
    fn a_changed_runtime_type_is_rewritten() {
        let old = add("version = 2\n", &entry()).unwrap().unwrap();
        let mut newer = entry();
        newer.runtime_type = "io.containerd.spindle.v2".into();
        let rewritten = add(&old, &newer).unwrap().expect("a change");
        assert!(rewritten.contains("io.containerd.spindle.v2"));
        assert!(!rewritten.contains("io.containerd.spindle.v1"));
    }
}
