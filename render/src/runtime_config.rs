//! Spin's `runtime-config.toml` for an app, carried in a Secret named after its content.
//!
//! The name changes with the content, so a change rolls the app's pods (the pod template names the
//! Secret) and the old Secret is pruned by the inventory once nothing renders it.

use base64::Engine as _;
use serde_json::json;
use spindle_schema::{KeyValueStore, RuntimeConfig, SqliteDatabase};
use toml::{Table, Value};

use super::{AppInputs, Context, Object, Owner, short_hash};

/// The key of the Secret that holds the file, and the file's name in the pod.
pub const FILE_NAME: &str = "runtime-config.toml";

/// The Secret holding the app's runtime config, or `None` when the app configures nothing.
pub fn secret(context: &Context, inputs: &AppInputs) -> Option<Object> {
    let text = toml_text(inputs.app.runtime_config.as_ref()?)?;
    let name = format!(
        "{}-runtime-config-{}",
        inputs.name,
        short_hash(text.as_bytes(), 10)
    );
    Some(Object::new(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": context.metadata(Owner::App(inputs.name), &name, Some(&inputs.app.namespace), None),
        "immutable": true,
        "type": "Opaque",
        "data": { FILE_NAME: base64::engine::general_purpose::STANDARD.encode(&text) },
    })))
}

/// The file's text, as Spin reads it; `None` when there is nothing to configure.
pub fn toml_text(config: &RuntimeConfig) -> Option<String> {
    let mut root = Table::new();
    let mut stores = Table::new();
    for (name, store) in &config.key_value_stores {
        let table = match store {
            KeyValueStore::Spin { path } => spin_table(path.as_deref()),
            KeyValueStore::Redis { url } => table([("type", "redis"), ("url", url)]),
        };
        stores.insert(name.clone(), Value::Table(table));
    }
    let mut databases = Table::new();
    for (name, database) in &config.sqlite_databases {
        let table = match database {
            SqliteDatabase::Spin { path } => spin_table(path.as_deref()),
            SqliteDatabase::Libsql { url, token } => {
                table([("type", "libsql"), ("url", url), ("token", token)])
            }
        };
        databases.insert(name.clone(), Value::Table(table));
    }
    if !stores.is_empty() {
        root.insert("key_value_store".into(), Value::Table(stores));
    }
    if !databases.is_empty() {
        root.insert("sqlite_database".into(), Value::Table(databases));
    }
    (!root.is_empty()).then(|| toml::to_string(&root).expect("a table of strings serialises"))
}

fn spin_table(path: Option<&str>) -> Table {
    let mut table = table([("type", "spin")]);
    if let Some(path) = path {
        table.insert("path".into(), Value::String(path.to_owned()));
    }
    table
}

fn table<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Table {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), Value::String(value.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn writes_spin_runtime_config_sections() {
        let config = RuntimeConfig {
            key_value_stores: BTreeMap::from([
                (
                    "default".to_owned(),
                    KeyValueStore::Spin {
                        path: Some("/data/kv.db".into()),
                    },
                ),
                (
                    "cache".to_owned(),
                    KeyValueStore::Redis {
                        url: "redis://cache:6379".into(),
                    },
                ),
            ]),
            sqlite_databases: BTreeMap::from([(
                "default".to_owned(),
                SqliteDatabase::Libsql {
                    url: "https://db.example".into(),
                    token: "t\"k".into(),
                },
            )]),
        };
        let text = toml_text(&config).expect("something configured");
        let parsed: Table = text.parse().expect("valid TOML");
        assert_eq!(
            parsed["key_value_store"]["default"]["type"].as_str(),
            Some("spin")
        );
        assert_eq!(
            parsed["key_value_store"]["default"]["path"].as_str(),
            Some("/data/kv.db")
        );
        assert_eq!(
            parsed["key_value_store"]["cache"]["url"].as_str(),
            Some("redis://cache:6379")
        );
        assert_eq!(
            parsed["sqlite_database"]["default"]["token"].as_str(),
            Some("t\"k")
        );
        assert_eq!(toml_text(&RuntimeConfig::default()), None);
    }
}
