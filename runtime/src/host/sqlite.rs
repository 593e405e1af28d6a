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
        Ok(database
            .with(|db| {
                let mut prepared = db.prepare(&statement)?;
                let columns: Vec<String> = prepared
                    .column_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let mut rows = prepared.query(rusqlite::params_from_iter(parameters))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..columns.len())
                        .map(|i| row.get_ref(i).map(from_sql))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    out.push(RowResult { values });
                }
                Ok(QueryResult { columns, rows: out })
            })
            .map_err(Error::Io))
    }

    async fn drop(&mut self, connection: Resource<OpenDatabase>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl Host for SpinView<'_> {}

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
