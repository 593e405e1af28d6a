//! `fermyon:spin/sqlite`: the databases a component declared in `sqlite_databases`.

use std::sync::Arc;

use rusqlite::types::{Value as Sql, ValueRef};
use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::fermyon::spin::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value},
};
use crate::stores::Database;

/// A database the guest opened.
pub struct OpenDatabase(Arc<Database>);

impl HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenDatabase>, Error>> {
        let Some(found) = self.component.sqlite.get(&database) else {
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(OpenDatabase(found.clone()))?))
    }

    async fn execute(
        &mut self,
        connection: Resource<OpenDatabase>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let database = self.table.get(&connection)?.0.clone();
        let parameters: Vec<Sql> = parameters.into_iter().map(to_sql).collect();
        let deadline = self.deadline;
        // SQLite blocks: off the async workers, and interrupted at the request's deadline.
        let executed = tokio::task::spawn_blocking(move || {
            database.with_deadline(deadline, |db| query(db, &statement, parameters))
        })
        .await?;
        Ok(executed.map_err(Error::Io))
    }

    async fn drop(&mut self, connection: Resource<OpenDatabase>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl Host for SpinView<'_> {}

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
