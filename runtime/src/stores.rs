//! Backing stores of key-value stores and SQLite databases: SQLite files (Spin's default) or
//! memory, chosen by label through Spin's `runtime-config.toml`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Instant,
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
///
/// Guests send it SQL, so it is opened bounded: no other database can be attached (which also
/// stops `VACUUM INTO` from writing a file anywhere, and plain `VACUUM`), no URI file names, no
/// extension loading, and an authorizer refuses the pragmas that rewrite the schema or point
/// SQLite at other files.
pub struct Database(Mutex<Connection>);

/// Pragmas a guest may not run: they write the schema, or point SQLite at other files.
const DENIED_PRAGMAS: [&str; 8] = [
    "writable_schema",
    "schema_version",
    "trusted_schema",
    "temp_store_directory",
    "data_store_directory",
    "legacy_file_format",
    "mmap_size",
    "locking_mode",
];

/// How many SQLite virtual machine steps pass between two looks at the deadline.
const PROGRESS_STEPS: i32 = 1000;

impl Database {
    fn open(file: Option<&Path>) -> Result<Self> {
        use rusqlite::OpenFlags;
        // The defaults without SQLITE_OPEN_URI.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = match file {
            Some(file) => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Connection::open_with_flags(file, flags)
                    .with_context(|| format!("cannot open {}", file.display()))?
            }
            None => Connection::open_in_memory_with_flags(flags)?,
        };
        connection.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        connection.authorizer(Some(authorize));
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

    /// Runs `work` with the connection, interrupting it when `deadline` passes. Blocks: call it
    /// off the async workers.
    pub fn with_deadline<T>(
        &self,
        deadline: Instant,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        self.with(|connection| {
            connection.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline));
            let done = work(connection);
            connection.progress_handler(0, None::<fn() -> bool>);
            done.map_err(|err| match err {
                rusqlite::Error::SqliteFailure(code, _)
                    if code.code == rusqlite::ErrorCode::OperationInterrupted =>
                {
                    rusqlite::Error::SqliteFailure(
                        code,
                        Some("interrupted: the request's deadline passed".to_owned()),
                    )
                }
                other => other,
            })
        })
    }
}

/// SQLite's authorizer for guests' statements: see [`Database`].
fn authorize(context: rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization {
    use rusqlite::hooks::{AuthAction, Authorization};
    match context.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. }
            if DENIED_PRAGMAS.contains(&pragma_name.to_ascii_lowercase().as_str()) =>
        {
            Authorization::Deny
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
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
        self.database.with(|db| self.read(db, key))
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.database.with(|db| self.write(db, key, value))
    }

    fn read(&self, db: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        db.query_row(
            "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
            params![self.label, key],
            |row| row.get(0),
        )
        .optional()
    }

    fn write(&self, db: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
        db.execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
            params![self.label, key, value],
        )
        .map(drop)
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

    /// Adds `delta` to the integer under `key` (0 when missing) and returns the sum, atomically.
    /// The integer is kept as 8 little-endian bytes; any other value there is an error.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.database.with(|db| {
            let transaction = db.unchecked_transaction()?;
            let current = match self.read(&transaction, key)? {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(bytes) => i64::from_le_bytes(bytes),
                    Err(_) => {
                        return Err(rusqlite::Error::InvalidParameterName(format!(
                            "the value of `{key}` is not an integer (8 little-endian bytes)"
                        )));
                    }
                },
            };
            let sum = current.checked_add(delta).ok_or_else(|| {
                rusqlite::Error::InvalidParameterName(format!("`{key}` would overflow"))
            })?;
            self.write(&transaction, key, &sum.to_le_bytes())?;
            transaction.commit()?;
            Ok(sum)
        })
    }

    /// Stores `value` under `key` if the value there is still `expected` (`None`: no value);
    /// whether it did, atomically.
    pub fn swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, String> {
        self.database.with(|db| {
            let transaction = db.unchecked_transaction()?;
            if self.read(&transaction, key)?.as_deref() != expected {
                return Ok(false);
            }
            self.write(&transaction, key, value)?;
            transaction.commit()?;
            Ok(true)
        })
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
    use std::time::Duration;

    #[test]
    fn guests_cannot_attach_vacuum_into_or_rewrite_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(Some(&dir.path().join("app.db"))).unwrap();
        let outside = dir.path().join("outside.db");
        let run = |sql: &str| database.with(|db| db.execute_batch(sql));
        run("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        for attack in [
            format!("ATTACH '{}' AS other", outside.display()),
            format!("ATTACH 'file:{}?mode=rwc' AS other", outside.display()),
            format!("VACUUM INTO '{}'", outside.display()),
            "PRAGMA writable_schema = ON".to_owned(),
            "PRAGMA schema_version = 1".to_owned(),
            "SELECT load_extension('/tmp/x.so')".to_owned(),
        ] {
            assert!(run(&attack).is_err(), "{attack} was allowed");
        }
        assert!(
            !outside.exists(),
            "a file was created outside the app's state"
        );
        // Ordinary work, pragmas that read included, is untouched.
        run("PRAGMA table_info(t); PRAGMA foreign_keys = ON; UPDATE t SET x = 2;").unwrap();
    }

    #[test]
    fn a_runaway_query_stops_at_its_deadline() {
        let database = Database::open(None).unwrap();
        let started = Instant::now();
        let forever = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT count(*) FROM n";
        let err = database
            .with_deadline(Instant::now() + Duration::from_millis(200), |db| {
                db.query_row(forever, [], |row| row.get::<_, i64>(0))
            })
            .unwrap_err();
        assert!(err.contains("deadline"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // The database is usable afterwards, with no deadline left behind.
        let one: i64 = database
            .with(|db| db.query_row("SELECT 1", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(one, 1);
    }

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
