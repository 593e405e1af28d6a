//! `fermyon:spin/mysql`: outbound MySQL and MariaDB (`mysql_async`), to servers the component's
//! `allowed_outbound_hosts` names (`mysql://host[:port]`, port 3306 by default), checked before
//! anything else as Spin does. Statements run as prepared statements with positional `?`
//! parameters, so values travel typed; TCP only (a `socket` in the address is refused, and the
//! client never switches to the server's Unix socket).

use std::sync::Arc;

use mysql_async::{
    Column, Conn, Opts, OptsBuilder, Params, Row, Value,
    consts::{ColumnFlags, ColumnType},
    prelude::Queryable,
};
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::{
    MAX_RESULT_BYTES, SpinView,
    bindings::fermyon::spin::{
        mysql::{Host, HostConnection},
        rdbms_types::{Column as DbColumn, DbDataType, DbValue, Error, ParameterValue, RowSet},
    },
    io_deadline, result_too_large,
};
use crate::allow_list::redact;

/// MySQL's number for the `binary` character set: such text columns hold bytes.
const BINARY_CHARSET: u16 = 63;

/// A connection the guest opened; statements on it run one at a time.
pub struct MysqlConnection(Arc<Mutex<Conn>>);

type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl SpinView<'_> {
    /// The connection options of `address`, if the component may open it.
    fn mysql_options(&self, address: &str) -> Result<Opts, Error> {
        let denied = || {
            tracing::warn!(component = %self.component.id, "mysql connection to `{}` denied: not in allowed_outbound_hosts", redact(address));
            Error::ConnectionFailed(format!("address {} is not permitted", redact(address)))
        };
        if super::refused(self, address).is_some() {
            return Err(denied());
        }
        let opts = Opts::from_url(address).map_err(|err| {
            Error::ConnectionFailed(format!("invalid address {}: {err}", redact(address)))
        })?;
        if opts.socket().is_some() {
            return Err(Error::ConnectionFailed(format!(
                "address {}: Unix sockets are not allowed",
                redact(address)
            )));
        }
        // Where the client really connects, as it parsed it.
        let allowed =
            self.component
                .allow
                .allows("mysql", opts.ip_or_hostname(), Some(opts.tcp_port()));
        if !allowed {
            return Err(denied());
        }
        Ok(OptsBuilder::from_opts(opts).prefer_socket(false).into())
    }
}

/// The interface's data type of `column`.
fn data_type(column: &Column) -> DbDataType {
    let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let bytes = column.character_set() == BINARY_CHARSET;
    match column.column_type() {
        ColumnType::MYSQL_TYPE_TINY if unsigned => DbDataType::Uint8,
        ColumnType::MYSQL_TYPE_TINY => DbDataType::Int8,
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR if unsigned => {
            DbDataType::Uint16
        }
        ColumnType::MYSQL_TYPE_SHORT | ColumnType::MYSQL_TYPE_YEAR => DbDataType::Int16,
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG if unsigned => {
            DbDataType::Uint32
        }
        ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG => DbDataType::Int32,
        ColumnType::MYSQL_TYPE_LONGLONG if unsigned => DbDataType::Uint64,
        ColumnType::MYSQL_TYPE_LONGLONG => DbDataType::Int64,
        ColumnType::MYSQL_TYPE_FLOAT => DbDataType::Floating32,
        ColumnType::MYSQL_TYPE_DOUBLE => DbDataType::Floating64,
        // Exact decimals keep every digit as text.
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => DbDataType::Str,
        ColumnType::MYSQL_TYPE_BIT => DbDataType::Binary,
        ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_ENUM
        | ColumnType::MYSQL_TYPE_SET
        | ColumnType::MYSQL_TYPE_JSON => {
            if bytes {
                DbDataType::Binary
            } else {
                DbDataType::Str
            }
        }
        _ => DbDataType::Other,
    }
}

/// `value` of a column of type `data_type`, as the interface carries it.
fn db_value(data_type: DbDataType, value: Value) -> Result<DbValue, Error> {
    fn get<T: mysql_async::prelude::FromValue>(value: Value) -> Result<T, Error> {
        mysql_async::from_value_opt(value)
            .map_err(|err| Error::ValueConversionFailed(err.to_string()))
    }
    if value == Value::NULL {
        return Ok(DbValue::DbNull);
    }
    Ok(match data_type {
        DbDataType::Boolean => DbValue::Boolean(get(value)?),
        DbDataType::Int8 => DbValue::Int8(get(value)?),
        DbDataType::Int16 => DbValue::Int16(get(value)?),
        DbDataType::Int32 => DbValue::Int32(get(value)?),
        DbDataType::Int64 => DbValue::Int64(get(value)?),
        DbDataType::Uint8 => DbValue::Uint8(get(value)?),
        DbDataType::Uint16 => DbValue::Uint16(get(value)?),
        DbDataType::Uint32 => DbValue::Uint32(get(value)?),
        DbDataType::Uint64 => DbValue::Uint64(get(value)?),
        DbDataType::Floating32 => DbValue::Floating32(get(value)?),
        DbDataType::Floating64 => DbValue::Floating64(get(value)?),
        DbDataType::Str => DbValue::Str(get(value)?),
        DbDataType::Binary => DbValue::Binary(get(value)?),
        DbDataType::Other => DbValue::Unsupported,
    })
}

fn parameter(value: ParameterValue) -> Value {
    match value {
        ParameterValue::Boolean(b) => Value::Int(i64::from(b)),
        ParameterValue::Int8(n) => Value::Int(n.into()),
        ParameterValue::Int16(n) => Value::Int(n.into()),
        ParameterValue::Int32(n) => Value::Int(n.into()),
        ParameterValue::Int64(n) => Value::Int(n),
        ParameterValue::Uint8(n) => Value::UInt(n.into()),
        ParameterValue::Uint16(n) => Value::UInt(n.into()),
        ParameterValue::Uint32(n) => Value::UInt(n.into()),
        ParameterValue::Uint64(n) => Value::UInt(n),
        ParameterValue::Floating32(n) => Value::Float(n),
        ParameterValue::Floating64(n) => Value::Double(n),
        ParameterValue::Str(text) => Value::Bytes(text.into_bytes()),
        ParameterValue::Binary(bytes) => Value::Bytes(bytes),
        ParameterValue::DbNull => Value::NULL,
    }
}

fn params(values: Vec<ParameterValue>) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values.into_iter().map(parameter).collect())
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Bytes(bytes) => bytes.len(),
        _ => 8,
    }
}

/// Runs `statement` and reads its rows, within the result cap.
async fn query(conn: &mut Conn, statement: String, values: Params) -> Result<RowSet, Error> {
    let failed = |err: mysql_async::Error| Error::QueryFailed(err.to_string());
    let mut result = conn.exec_iter(statement, values).await.map_err(failed)?;
    let columns: Vec<Column> = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let types: Vec<DbDataType> = columns.iter().map(data_type).collect();
    let mut rows = Vec::new();
    let mut size = 0usize;
    while let Some(row) = result.next().await.map_err(failed)? {
        let row: Row = row;
        let values = row.unwrap();
        size += values.iter().map(value_size).sum::<usize>();
        if size > MAX_RESULT_BYTES {
            return Err(Error::Other(result_too_large()));
        }
        rows.push(
            values
                .into_iter()
                .zip(&types)
                .map(|(value, data_type)| db_value(*data_type, value))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(RowSet {
        columns: columns
            .iter()
            .zip(types)
            .map(|(column, data_type)| DbColumn {
                name: column.name_str().into_owned(),
                data_type,
            })
            .collect(),
        rows,
    })
}

impl HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Answer<Resource<MysqlConnection>> {
        let opts = match self.mysql_options(&address) {
            Ok(opts) => opts,
            Err(err) => return Ok(Err(err)),
        };
        Ok(match io_deadline(Conn::new(opts)).await {
            Ok(Ok(conn)) => Ok(self
                .table
                .push(MysqlConnection(Arc::new(Mutex::new(conn))))?),
            Ok(Err(err)) => Err(Error::ConnectionFailed(err.to_string())),
            Err(elapsed) => Err(Error::ConnectionFailed(elapsed.to_string())),
        })
    }

    async fn query(
        &mut self,
        c: Resource<MysqlConnection>,
        statement: String,
        values: Vec<ParameterValue>,
    ) -> Answer<RowSet> {
        let conn = self.table.get(&c)?.0.clone();
        Ok(io_deadline(
            async move { query(&mut *conn.lock().await, statement, params(values)).await },
        )
        .await
        .unwrap_or_else(|elapsed| Err(Error::Other(elapsed.to_string()))))
    }

    async fn execute(
        &mut self,
        c: Resource<MysqlConnection>,
        statement: String,
        values: Vec<ParameterValue>,
    ) -> Answer<()> {
        let conn = self.table.get(&c)?.0.clone();
        Ok(io_deadline(async move {
            conn.lock()
                .await
                .exec_drop(statement, params(values))
                .await
                .map_err(|err| Error::QueryFailed(err.to_string()))
        })
        .await
        .unwrap_or_else(|elapsed| Err(Error::Other(elapsed.to_string()))))
    }

    async fn drop(&mut self, c: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

impl Host for SpinView<'_> {}

impl super::bindings::fermyon::spin::rdbms_types::Host for SpinView<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_their_column_type() {
        assert!(matches!(
            db_value(DbDataType::Int32, Value::Int(7)),
            Ok(DbValue::Int32(7))
        ));
        assert!(matches!(
            db_value(DbDataType::Str, Value::Bytes(b"12.50".to_vec())),
            Ok(DbValue::Str(text)) if text == "12.50"
        ));
        assert!(matches!(
            db_value(DbDataType::Int8, Value::Int(300)),
            Err(Error::ValueConversionFailed(_))
        ));
        assert!(matches!(
            db_value(DbDataType::Other, Value::Date(2020, 2, 29, 0, 0, 0, 0)),
            Ok(DbValue::Unsupported)
        ));
        assert!(matches!(
            db_value(DbDataType::Int64, Value::NULL),
            Ok(DbValue::DbNull)
        ));
    }
}
