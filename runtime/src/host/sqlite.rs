//! `fermyon:spin/sqlite` and Spin 3's `spin:sqlite@3.0.0`: the databases a component declared
//! in `sqlite_databases`.

use std::sync::{Arc, Mutex};

use rusqlite::types::{Value as Sql, ValueRef};
use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::{
        fermyon::spin::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value},
        spin::sqlite::sqlite as v3,
    },
};
use crate::stores::Database;

/// A database the guest opened, with what its last statement did (for Spin 3's
/// `last-insert-rowid` and `changes`: the database is shared, so they are read under the same
/// lock as the statement ran).
pub struct OpenDatabase {
    database: Arc<Database>,
    last: Arc<Mutex<(i64, u64)>>,
}

impl SpinView<'_> {
    fn open_database(&mut self, label: &str) -> wasmtime::Result<Option<Resource<OpenDatabase>>> {
        let Some(found) = self.component.sqlite.get(label) else {
            return Ok(None);
        };
        Ok(Some(self.table.push(OpenDatabase {
            database: found.clone(),
            last: Arc::default(),
        })?))
    }

    /// Runs `statement` on the database of `connection`: off the async workers (SQLite
    /// blocks), and interrupted at the request's deadline.
    async fn run_statement(
        &mut self,
        connection: &Resource<OpenDatabase>,
        statement: String,
        parameters: Vec<Sql>,
    ) -> wasmtime::Result<Result<QueryResult, String>> {
        let open = self.table.get(connection)?;
        let (database, last) = (open.database.clone(), open.last.clone());
        let deadline = self.deadline;
        Ok(tokio::task::spawn_blocking(move || {
            database.with_deadline(deadline, |db| {
                let result = query(db, &statement, parameters)?;
                *last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    (db.last_insert_rowid(), db.changes());
                Ok(result)
            })
        })
        .await?)
    }
}

impl HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenDatabase>, Error>> {
        Ok(self.open_database(&database)?.ok_or(Error::AccessDenied))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenDatabase>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let parameters: Vec<Sql> = parameters.into_iter().map(to_sql).collect();
        let executed = self
            .run_statement(&connection, statement, parameters)
            .await?;
        Ok(executed.map_err(Error::Io))
    }

    async fn drop(&mut self, connection: Resource<OpenDatabase>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl Host for SpinView<'_> {}

impl v3::HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenDatabase>, v3::Error>> {
        Ok(self
            .open_database(&database)?
            .ok_or(v3::Error::AccessDenied))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenDatabase>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> wasmtime::Result<Result<v3::QueryResult, v3::Error>> {
        let parameters: Vec<Sql> = parameters
            .into_iter()
            .map(|value| match value {
                v3::Value::Integer(i) => Sql::Integer(i),
                v3::Value::Real(r) => Sql::Real(r),
                v3::Value::Text(t) => Sql::Text(t),
                v3::Value::Blob(b) => Sql::Blob(b),
                v3::Value::Null => Sql::Null,
            })
            .collect();
        let executed = self
            .run_statement(&connection, statement, parameters)
            .await?;
        Ok(executed
            .map(|result| v3::QueryResult {
                columns: result.columns,
                rows: result
                    .rows
                    .into_iter()
                    .map(|row| v3::RowResult {
                        values: row
                            .values
                            .into_iter()
                            .map(|value| match value {
                                Value::Integer(i) => v3::Value::Integer(i),
                                Value::Real(r) => v3::Value::Real(r),
                                Value::Text(t) => v3::Value::Text(t),
                                Value::Blob(b) => v3::Value::Blob(b),
                                Value::Null => v3::Value::Null,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .map_err(v3::Error::Io))
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<OpenDatabase>,
    ) -> wasmtime::Result<i64> {
        let last = self.table.get(&connection)?.last.clone();
        Ok(last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0)
    }

    async fn changes(&mut self, connection: Resource<OpenDatabase>) -> wasmtime::Result<u64> {
        let last = self.table.get(&connection)?.last.clone();
        Ok(last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .1)
    }

    async fn drop(&mut self, connection: Resource<OpenDatabase>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl v3::Host for SpinView<'_> {}

/// The most a query's rows may hold, roughly, in bytes: beyond it the query fails instead of
/// growing the host's memory without a bound.
const MAX_RESULT_BYTES: usize = 64 << 20;

/// Runs `statement` and collects its rows, up to [`MAX_RESULT_BYTES`].
fn query(
    db: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Sql>,
) -> rusqlite::Result<QueryResult> {
    let mut prepared = db.prepare(statement)?;
    let columns: Vec<String> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut rows = prepared.query(rusqlite::params_from_iter(parameters))?;
    let mut out = Vec::new();
    let mut bytes = 0;
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(from_sql))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        bytes += values.iter().map(size).sum::<usize>();
        if bytes > MAX_RESULT_BYTES {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("the result is larger than {} MiB", MAX_RESULT_BYTES >> 20).into(),
            ));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

/// About how much memory a value takes.
fn size(value: &Value) -> usize {
    match value {
        Value::Text(text) => text.len() + 16,
        Value::Blob(blob) => blob.len() + 16,
        _ => 16,
    }
}

fn to_sql(value: Value) -> Sql {
    match value {
        Value::Integer(i) => Sql::Integer(i),
        Value::Real(r) => Sql::Real(r),
        Value::Text(t) => Sql::Text(t),
        Value::Blob(b) => Sql::Blob(b),
        Value::Null => Sql::Null,
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Null => Value::Null,
    }
}
