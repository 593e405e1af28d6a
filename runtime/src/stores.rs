//! Backing stores of key-value stores and SQLite databases: SQLite files (Spin's default) or
//! memory, chosen by label through Spin's `runtime-config.toml`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::{Context as _, Result, bail};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Deserialize;

/// Where unconfigured stores live: a folder (Spin's `.spin/`), or nowhere (memory only).
#[derive(Debug, Clone)]
pub enum StateDir {
    /// Stores are SQLite files in this folder.
    Folder(PathBuf),
    /// Stores are in memory, gone when the app stops.
    Ephemeral,
}

/// Spin's runtime config file: the parts spindle reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeConfig {
    /// `[key_value_store.LABEL]`: how each key-value store label is backed.
    #[serde(default)]
    pub key_value_store: BTreeMap<String, StoreConfig>,
    /// `[sqlite_database.LABEL]`: how each SQLite database label is backed.
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, StoreConfig>,
    /// Everything else (variables providers, llm, ...) is accepted and ignored.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// One `[key_value_store.LABEL]` or `[sqlite_database.LABEL]` table of the runtime config.
#[derive(Debug, Clone, Deserialize)]
pub struct StoreConfig {
    /// `type`: the kind of backing store; spindle supports `spin`, a local SQLite file.
    #[serde(rename = "type")]
    pub kind: String,
    /// `path`: the SQLite file, relative to the runtime config's folder; when absent, a file in
    /// the state folder, or memory when the state is ephemeral.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The table's other keys, used by store types spindle does not support (e.g. `url`).
    #[serde(flatten)]
    pub options: BTreeMap<String, toml::Value>,
}

impl RuntimeConfig {
    /// Reads a runtime config file; relative store paths are taken from its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let mut config: RuntimeConfig = toml::from_str(&text)
            .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.message()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for store in config
            .key_value_store
            .values_mut()
            .chain(config.sqlite_database.values_mut())
        {
            if let Some(file) = &store.path
                && file.is_relative()
            {
                store.path = Some(dir.join(file));
            }
        }
        Ok(config)
    }
}

/// One SQLite database, shared by the requests that use it.
pub struct Database(Mutex<Connection>);

impl Database {
    fn open(file: Option<&Path>) -> Result<Self> {
        let connection = match file {
            Some(file) => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Connection::open(file).with_context(|| format!("cannot open {}", file.display()))?
            }
            None => Connection::open_in_memory()?,
        };
        Ok(Database(Mutex::new(connection)))
    }

    /// Runs `work` with the connection.
    pub fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        let connection = self
            .0
            .lock()
            .map_err(|_| "the database lock is poisoned".to_owned())?;
        work(&connection).map_err(|err| err.to_string())
    }
}

/// A key-value store: a label's share of a SQLite database, in Spin's own table layout.
pub struct KeyValueStore {
    database: Arc<Database>,
    label: String,
}

impl KeyValueStore {
    fn new(database: Arc<Database>, label: &str) -> Result<Self> {
        database
            .with(|db| {
                db.execute(
                    "CREATE TABLE IF NOT EXISTS spin_key_value (
                        store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                        PRIMARY KEY (store, key))",
                    [],
                )
            })
            .map_err(anyhow::Error::msg)?;
        Ok(KeyValueStore {
            database,
            label: label.to_owned(),
        })
    }

    /// The value stored under `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.database.with(|db| {
            db.query_row(
                "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                params![self.label, key],
                |row| row.get(0),
            )
            .optional()
        })
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.database.with(|db| {
            db.execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
                params![self.label, key, value],
            )
            .map(drop)
        })
    }

    /// Removes `key` and its value; removing a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.database.with(|db| {
            db.execute(
                "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                params![self.label, key],
            )
            .map(drop)
        })
    }

    /// Whether a value is stored under `key`.
    pub fn exists(&self, key: &str) -> Result<bool, String> {
        self.get(key).map(|value| value.is_some())
    }

    /// Every key in the store, in sorted order.
    pub fn keys(&self) -> Result<Vec<String>, String> {
        self.database.with(|db| {
            let mut statement =
                db.prepare("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            statement
                .query_map(params![self.label], |row| row.get(0))?
                .collect()
        })
    }
}

/// The stores and databases of one app, by label.
#[derive(Default)]
pub struct Stores {
    /// Key-value stores, by label.
    pub key_value: BTreeMap<String, Arc<KeyValueStore>>,
    /// SQLite databases, by label.
    pub sqlite: BTreeMap<String, Arc<Database>>,
}

impl Stores {
    /// Opens every store and database the app's components use: `default` from `state` unless
    /// the runtime config says otherwise, any other label from the runtime config.
    pub fn open<'a>(
        config: &RuntimeConfig,
        state: &StateDir,
        key_value_labels: impl IntoIterator<Item = &'a String>,
        sqlite_labels: impl IntoIterator<Item = &'a String>,
    ) -> Result<Self> {
        let mut stores = Stores::default();
        let mut files: BTreeMap<Option<PathBuf>, Arc<Database>> = BTreeMap::new();
        let mut database = |file: Option<PathBuf>| -> Result<Arc<Database>> {
            if file.is_none() {
                // Each in-memory store is its own database.
                return Ok(Arc::new(Database::open(None)?));
            }
            if let Some(open) = files.get(&file) {
                return Ok(open.clone());
            }
            let opened = Arc::new(Database::open(file.as_deref())?);
            files.insert(file, opened.clone());
            Ok(opened)
        };
        let default_file = |name: &str| match state {
            StateDir::Folder(dir) => Some(dir.join(name)),
            StateDir::Ephemeral => None,
        };
        for label in key_value_labels {
            if stores.key_value.contains_key(label) {
                continue;
            }
            let file = match (config.key_value_store.get(label), label.as_str()) {
                (Some(store), _) => store_file(store, "key_value_store", label, state)?,
                (None, "default") => default_file("sqlite_key_value.db"),
                (None, _) => bail!(
                    "unknown key_value_stores label `{label}`: define [key_value_store.{label}] in the runtime config"
                ),
            };
            let store = KeyValueStore::new(database(file)?, label)?;
            stores.key_value.insert(label.clone(), Arc::new(store));
        }
        for label in sqlite_labels {
            if stores.sqlite.contains_key(label) {
                continue;
            }
            let file = match (config.sqlite_database.get(label), label.as_str()) {
                (Some(store), _) => store_file(store, "sqlite_database", label, state)?,
                (None, "default") => default_file("sqlite_db.db"),
                (None, _) => bail!(
                    "unknown sqlite_databases label `{label}`: define [sqlite_database.{label}] in the runtime config"
                ),
            };
            stores.sqlite.insert(label.clone(), database(file)?);
        }
        Ok(stores)
    }
}

fn store_file(
    store: &StoreConfig,
    section: &str,
    label: &str,
    state: &StateDir,
) -> Result<Option<PathBuf>> {
    match store.kind.as_str() {
        "spin" => Ok(match (&store.path, state) {
            (Some(path), _) => Some(path.clone()),
            (None, StateDir::Ephemeral) => None,
            (None, StateDir::Folder(dir)) => Some(dir.join(format!("{section}_{label}.db"))),
        }),
        other => bail!(
            "[{section}.{label}] has type `{other}`, which spindle does not support yet (supported: `spin`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_share_a_file_but_not_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let config: RuntimeConfig = toml::from_str(&format!(
            "[key_value_store.other]\ntype = \"spin\"\npath = \"{}\"\n",
            dir.path().join("sqlite_key_value.db").display()
        ))
        .unwrap();
        let labels = ["default".to_owned(), "other".to_owned()];
        let stores =
            Stores::open(&config, &StateDir::Folder(dir.path().into()), &labels, &[]).unwrap();
        let (default, other) = (&stores.key_value["default"], &stores.key_value["other"]);
        default.set("k", b"1").unwrap();
        assert_eq!(default.get("k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(other.get("k").unwrap(), None);
        default.set("k", b"2").unwrap();
        assert_eq!(default.keys().unwrap(), ["k"]);
        default.delete("k").unwrap();
        assert!(!default.exists("k").unwrap());

        // A store survives a restart.
        default.set("kept", b"yes").unwrap();
        drop(stores);
        let again =
            Stores::open(&config, &StateDir::Folder(dir.path().into()), &labels, &[]).unwrap();
        assert_eq!(
            again.key_value["default"].get("kept").unwrap(),
            Some(b"yes".to_vec())
        );

        let unknown = Stores::open(&config, &StateDir::Ephemeral, &["missing".to_owned()], &[]);
        assert!(
            unknown
                .err()
                .unwrap()
                .to_string()
                .contains("unknown key_value_stores label `missing`")
        );
    }
}
