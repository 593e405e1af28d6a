//! Outbound PostgreSQL: `spin:postgres/postgres@4.0.0` (what `spin_sdk::pg4` imports), its
//! subset `spin:postgres@3.0.0` (`spin_sdk::pg3`) and the older `fermyon:spin/postgres@2.0.0`, to servers the component's `allowed_outbound_hosts` names
//! (`postgres://host[:port]`, port 5432 by default). Plain TCP, without TLS.
//!
//! Values cross as Spin converts them (4.0.0's numeric, date and time, interval and range types
//! through [`super::pg_wire`]); column types neither interface can carry come back as
//! `unsupported` (with their binary form, in 4.0.0) rather than failing the query.

// The error type is the interface's own, large because 4.0.0 carries a database error's fields.
#![allow(clippy::result_large_err)]

use std::{error::Error as StdError, sync::Arc};

use bytes::BytesMut;
use tokio_postgres::{
    Client, NoTls, Row,
    types::{FromSql, IsNull, ToSql, Type, to_sql_checked},
};
use wasmtime::component::Resource;

use crate::allow_list::redact;

use super::{
    MAX_RESULT_BYTES, SpinView,
    bindings::spin::{postgres3_0_0::postgres as v3, postgres4_0_0::postgres as v4},
    bindings::{fermyon::spin::postgres as v2, fermyon::spin::rdbms_types as v2_types},
    io_deadline,
    pg_wire::{self, Numeric},
    result_too_large,
};

/// A connection opened through `spin:postgres@4.0.0`.
pub struct PgConnection(Arc<Client>);
/// A connection opened through `fermyon:spin/postgres@2.0.0`.
pub struct LegacyPgConnection(Arc<Client>);

type Parameter = Box<dyn ToSql + Sync + Send>;

impl SpinView<'_> {
    /// Whether the manifest allows every address `config` may connect to: each `host` and, since
    /// tokio-postgres connects to `hostaddr` when it is given, each `hostaddr` too.
    fn pg_allowed(&self, config: &tokio_postgres::Config) -> bool {
        let ports = config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied();
        let hosts = config.get_hosts();
        let allows = |host: &str, i: usize| self.component.allow.allows("postgres", host, port(i));
        !hosts.is_empty()
            && hosts.iter().enumerate().all(|(i, host)| match host {
                tokio_postgres::config::Host::Tcp(name) => allows(name, i),
                _ => false,
            })
            && config
                .get_hostaddrs()
                .iter()
                .enumerate()
                .all(|(i, address)| allows(&address.to_string(), i))
    }

    /// Connects to the server at `address` if the manifest allows it.
    fn pg_connect(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Arc<Client>, String>> + Send + 'static {
        let component = self.component.id.clone();
        let config = address
            .parse::<tokio_postgres::Config>()
            .map_err(|err| format!("invalid address `{address}`: {err}"))
            .and_then(|config| {
                if self.pg_allowed(&config) {
                    Ok(config)
                } else {
                    tracing::warn!(%component, "postgres connection to `{}` denied: not in allowed_outbound_hosts", redact(address));
                    Err(format!("address {address} is not permitted"))
                }
            });
        async move {
            let (client, connection) = io_deadline(config?.connect(NoTls))
                .await
                .map_err(|elapsed| elapsed.to_string())?
                .map_err(|err| err.to_string())?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%component, "postgres connection ended: {err}");
                }
            });
            Ok(Arc::new(client))
        }
    }
}

/// Why a statement did not run.
enum Failure {
    Database(tokio_postgres::Error),
    TimedOut(tokio::time::error::Elapsed),
    /// Its rows came to more than [`MAX_RESULT_BYTES`].
    TooLarge,
}

fn refs(parameters: &[Parameter]) -> Vec<&(dyn ToSql + Sync)> {
    parameters
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Prepares `statement` (which gives the columns' types) and runs it with `parameters`,
/// reading rows as they come until they pass [`MAX_RESULT_BYTES`].
async fn query(
    client: &Client,
    statement: &str,
    parameters: &[Parameter],
) -> Result<(tokio_postgres::Statement, Vec<Row>), Failure> {
    use futures::TryStreamExt as _;

    let work = async {
        let prepared = client.prepare(statement).await.map_err(Failure::Database)?;
        let stream = client
            .query_raw(&prepared, refs(parameters))
            .await
            .map_err(Failure::Database)?;
        let mut stream = std::pin::pin!(stream);
        let mut rows = Vec::new();
        let mut size = 0;
        while let Some(row) = stream.try_next().await.map_err(Failure::Database)? {
            size += (0..row.len())
                .map(|i| row.try_get::<_, Length>(i).map_or(0, |length| length.0))
                .sum::<usize>();
            if size > MAX_RESULT_BYTES {
                // The rows still coming are dropped by the connection, which stays usable.
                return Err(Failure::TooLarge);
            }
            rows.push(row);
        }
        Ok((prepared, rows))
    };
    io_deadline(work).await.map_err(Failure::TimedOut)?
}

/// How many bytes a value of any type took on the wire (NULL: none).
struct Length(usize);

impl<'a> FromSql<'a> for Length {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Length(raw.len()))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Length(0))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Runs `statement` with `parameters` as a command: the number of rows it affected.
async fn execute(
    client: &Client,
    statement: &str,
    parameters: &[Parameter],
) -> Result<u64, Failure> {
    io_deadline(client.execute(statement, &refs(parameters)))
        .await
        .map_err(Failure::TimedOut)?
        .map_err(Failure::Database)
}

/// SQL NULL, for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// A value of any type, in its binary wire form.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Days since 2000-01-01 (PostgreSQL's epoch) as a (year, month, day) date.
fn date_from_days(days: i32) -> (i32, u8, u8) {
    // Howard Hinnant's civil-from-days, shifted from 1970 to 2000 (10,957 days).
    let z = i64::from(days) + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// Microseconds since midnight as (hour, minute, second, nanosecond).
fn time_from_micros(micros: i64) -> (u8, u8, u8, u32) {
    let seconds = micros.div_euclid(1_000_000);
    let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
    (
        (seconds / 3600) as u8,
        (seconds / 60 % 60) as u8,
        (seconds % 60) as u8,
        nanos,
    )
}

fn be_i32(raw: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(raw.try_into().ok()?))
}

fn be_i64(raw: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(raw.try_into().ok()?))
}

/// Reads column `i` of `row` as `T`, `None` for NULL.
fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<Option<T>, String> {
    row.try_get(i).map_err(|err| err.to_string())
}

// spin:postgres@4.0.0

/// A parameter that cannot be encoded, as the interface's error.
fn bad<T>(encoded: Result<T, Box<dyn StdError + Sync + Send>>) -> Result<T, v4::Error> {
    encoded.map_err(|err| v4::Error::BadParameter(err.to_string()))
}

/// A numeric parameter, checked before the statement binds it (where an error loses its words).
fn decimal(text: String) -> Result<Numeric, v4::Error> {
    bad(pg_wire::encode_numeric(&text))?;
    Ok(Numeric(text))
}

fn inclusive(kind: v4::RangeBoundKind) -> bool {
    kind == v4::RangeBoundKind::Inclusive
}

fn bound_kind(inclusive: bool) -> v4::RangeBoundKind {
    if inclusive {
        v4::RangeBoundKind::Inclusive
    } else {
        v4::RangeBoundKind::Exclusive
    }
}

/// The two ends of a range as the interface carries them.
type Range<T> = (
    Option<(T, v4::RangeBoundKind)>,
    Option<(T, v4::RangeBoundKind)>,
);

/// A range column's bounds, each decoded by `value`.
fn range_value<T>(raw: &[u8], value: impl Fn(&[u8]) -> Option<T>) -> Result<Range<T>, String> {
    let (lower, upper) = pg_wire::decode_range(raw).ok_or("malformed range")?;
    let decode = |bound: pg_wire::Bound| -> Result<_, String> {
        bound
            .map(|(bytes, included)| {
                value(&bytes)
                    .map(|v| (v, bound_kind(included)))
                    .ok_or_else(|| "malformed range bound".to_owned())
            })
            .transpose()
    };
    Ok((decode(lower)?, decode(upper)?))
}

fn v4_parameter(value: v4::ParameterValue) -> Result<Parameter, v4::Error> {
    use v4::ParameterValue as P;
    Ok(match value {
        P::Boolean(v) => Box::new(v),
        P::Int8(v) => Box::new(v),
        P::Int16(v) => Box::new(v),
        P::Int32(v) => Box::new(v),
        P::Int64(v) => Box::new(v),
        P::Floating32(v) => Box::new(v),
        P::Floating64(v) => Box::new(v),
        P::Str(v) => Box::new(v),
        P::Binary(v) => Box::new(v),
        P::Uuid(text) => Box::new(
            uuid::Uuid::parse_str(&text)
                .map_err(|err| v4::Error::BadParameter(format!("uuid `{text}`: {err}")))?,
        ),
        P::Jsonb(bytes) => Box::new(
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|err| v4::Error::BadParameter(format!("jsonb: {err}")))?,
        ),
        P::ArrayInt32(v) => Box::new(v),
        P::ArrayInt64(v) => Box::new(v),
        P::ArrayStr(v) => Box::new(v),
        P::DbNull => Box::new(Null),
        P::Decimal(text) => Box::new(decimal(text)?),
        P::ArrayDecimal(v) => Box::new(
            v.into_iter()
                .map(|text| text.map(decimal).transpose())
                .collect::<Result<Vec<_>, _>>()?,
        ),
        P::Date((year, month, day)) => Box::new(bad(pg_wire::date(year, month, day))?),
        P::Time((hour, minute, second, nanos)) => {
            Box::new(bad(pg_wire::time(hour, minute, second, nanos))?)
        }
        P::Datetime(value) => Box::new(bad(pg_wire::datetime(value))?),
        P::Timestamp(seconds) => Box::new(bad(pg_wire::timestamp(seconds))?),
        P::Interval(v4::Interval {
            micros,
            days,
            months,
        }) => Box::new(pg_wire::interval(micros, days, months)),
        P::RangeInt32((lower, upper)) => {
            let bound = |b: Option<(i32, v4::RangeBoundKind)>| {
                b.map(|(n, kind)| (n.to_be_bytes().to_vec(), inclusive(kind)))
            };
            Box::new(pg_wire::range(Type::INT4_RANGE, bound(lower), bound(upper)))
        }
        P::RangeInt64((lower, upper)) => {
            let bound = |b: Option<(i64, v4::RangeBoundKind)>| {
                b.map(|(n, kind)| (n.to_be_bytes().to_vec(), inclusive(kind)))
            };
            Box::new(pg_wire::range(Type::INT8_RANGE, bound(lower), bound(upper)))
        }
        P::RangeDecimal((lower, upper)) => {
            let bound = |b: Option<(String, v4::RangeBoundKind)>| -> Result<_, v4::Error> {
                b.map(|(text, kind)| Ok((bad(pg_wire::encode_numeric(&text))?, inclusive(kind))))
                    .transpose()
            };
            Box::new(pg_wire::range(
                Type::NUM_RANGE,
                bound(lower)?,
                bound(upper)?,
            ))
        }
    })
}

fn v4_data_type(ty: &Type) -> v4::DbDataType {
    use v4::DbDataType as D;
    match *ty {
        Type::BOOL => D::Boolean,
        Type::CHAR => D::Int8,
        Type::INT2 => D::Int16,
        Type::INT4 => D::Int32,
        Type::INT8 => D::Int64,
        Type::FLOAT4 => D::Floating32,
        Type::FLOAT8 => D::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => D::Str,
        Type::BYTEA => D::Binary,
        Type::DATE => D::Date,
        Type::TIME => D::Time,
        Type::TIMESTAMP => D::Datetime,
        Type::UUID => D::Uuid,
        Type::JSONB | Type::JSON => D::Jsonb,
        Type::INT4_ARRAY => D::ArrayInt32,
        Type::INT8_ARRAY => D::ArrayInt64,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => D::ArrayStr,
        Type::NUMERIC => D::Decimal,
        Type::NUMERIC_ARRAY => D::ArrayDecimal,
        Type::TIMESTAMPTZ => D::Timestamp,
        Type::INTERVAL => D::Interval,
        Type::INT4_RANGE => D::RangeInt32,
        Type::INT8_RANGE => D::RangeInt64,
        Type::NUM_RANGE => D::RangeDecimal,
        _ => D::Other(ty.name().to_owned()),
    }
}

fn v4_value(row: &Row, i: usize) -> Result<v4::DbValue, String> {
    use v4::DbValue as V;
    fn or_null<T>(value: Option<T>, wrap: impl FnOnce(T) -> V) -> V {
        value.map_or(V::DbNull, wrap)
    }
    let ty = row.columns()[i].type_();
    Ok(match *ty {
        Type::BOOL => or_null(get(row, i)?, V::Boolean),
        Type::CHAR => or_null(get(row, i)?, V::Int8),
        Type::INT2 => or_null(get(row, i)?, V::Int16),
        Type::INT4 => or_null(get(row, i)?, V::Int32),
        Type::INT8 => or_null(get(row, i)?, V::Int64),
        Type::FLOAT4 => or_null(get(row, i)?, V::Floating32),
        Type::FLOAT8 => or_null(get(row, i)?, V::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => or_null(get(row, i)?, V::Str),
        Type::BYTEA => or_null(get(row, i)?, V::Binary),
        Type::UUID => or_null(get::<uuid::Uuid>(row, i)?, |u| V::Uuid(u.to_string())),
        Type::JSONB | Type::JSON => or_null(get::<serde_json::Value>(row, i)?, |json| {
            V::Jsonb(json.to_string().into_bytes())
        }),
        Type::INT4_ARRAY => or_null(get(row, i)?, V::ArrayInt32),
        Type::INT8_ARRAY => or_null(get(row, i)?, V::ArrayInt64),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => or_null(get(row, i)?, V::ArrayStr),
        Type::DATE => match get::<Raw>(row, i)?.map(|r| be_i32(&r.0)) {
            None => V::DbNull,
            Some(Some(days)) => V::Date(date_from_days(days)),
            Some(None) => return Err("malformed date".to_owned()),
        },
        Type::TIME => match get::<Raw>(row, i)?.map(|r| be_i64(&r.0)) {
            None => V::DbNull,
            Some(Some(micros)) => V::Time(time_from_micros(micros)),
            Some(None) => return Err("malformed time".to_owned()),
        },
        Type::TIMESTAMP => match get::<Raw>(row, i)?.map(|r| be_i64(&r.0)) {
            None => V::DbNull,
            Some(Some(micros)) => {
                let (year, month, day) = date_from_days(micros.div_euclid(86_400_000_000) as i32);
                let (hour, minute, second, nanos) =
                    time_from_micros(micros.rem_euclid(86_400_000_000));
                V::Datetime((year, month, day, hour, minute, second, nanos))
            }
            Some(None) => return Err("malformed timestamp".to_owned()),
        },
        Type::NUMERIC => or_null(get::<Numeric>(row, i)?, |n| V::Decimal(n.0)),
        Type::NUMERIC_ARRAY => or_null(get::<Vec<Option<Numeric>>>(row, i)?, |v| {
            V::ArrayDecimal(v.into_iter().map(|n| n.map(|n| n.0)).collect())
        }),
        Type::TIMESTAMPTZ => match get::<Raw>(row, i)?.map(|r| pg_wire::unix_seconds(&r.0)) {
            None => V::DbNull,
            Some(Some(seconds)) => V::Timestamp(seconds),
            Some(None) => return Err("malformed timestamptz".to_owned()),
        },
        Type::INTERVAL => match get::<Raw>(row, i)?.map(|r| pg_wire::decode_interval(&r.0)) {
            None => V::DbNull,
            Some(Some((micros, days, months))) => V::Interval(v4::Interval {
                micros,
                days,
                months,
            }),
            Some(None) => return Err("malformed interval".to_owned()),
        },
        Type::INT4_RANGE => match get::<Raw>(row, i)? {
            None => V::DbNull,
            Some(raw) => V::RangeInt32(range_value(&raw.0, be_i32)?),
        },
        Type::INT8_RANGE => match get::<Raw>(row, i)? {
            None => V::DbNull,
            Some(raw) => V::RangeInt64(range_value(&raw.0, be_i64)?),
        },
        Type::NUM_RANGE => match get::<Raw>(row, i)? {
            None => V::DbNull,
            Some(raw) => V::RangeDecimal(range_value(&raw.0, |bytes| {
                pg_wire::decode_numeric(bytes).ok()
            })?),
        },
        _ => or_null(get::<Raw>(row, i)?, |raw| V::Unsupported(raw.0)),
    })
}

fn v4_rows(rows: &[Row], statement: &tokio_postgres::Statement) -> Result<v4::RowSet, v4::Error> {
    let columns = statement
        .columns()
        .iter()
        .map(|column| v4::Column {
            name: column.name().to_owned(),
            data_type: v4_data_type(column.type_()),
        })
        .collect();
    let rows = rows
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| v4_value(row, i))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .map_err(v4::Error::ValueConversionFailed)?;
    Ok(v4::RowSet { columns, rows })
}

fn v4_failure(failure: Failure) -> v4::Error {
    let err = match failure {
        Failure::Database(err) => err,
        Failure::TimedOut(elapsed) => return v4::Error::Other(elapsed.to_string()),
        Failure::TooLarge => return v4::Error::Other(result_too_large()),
    };
    let Some(db) = err.as_db_error() else {
        // A parameter the client could not send says why in its source.
        let text = match err.source() {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        };
        return v4::Error::QueryFailed(v4::QueryError::Text(text));
    };
    let mut extras = Vec::new();
    if let Some(hint) = db.hint() {
        extras.push(("hint".to_owned(), hint.to_owned()));
    }
    v4::Error::QueryFailed(v4::QueryError::DbError(v4::DbError {
        as_text: db.to_string(),
        severity: db.severity().to_owned(),
        code: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        extras,
    }))
}

impl v4::HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, v4::Error>> {
        Ok(match self.pg_connect(&address).await {
            Ok(client) => Ok(self.table.push(PgConnection(client))?),
            Err(err) => Err(v4::Error::ConnectionFailed(err)),
        })
    }

    async fn query(
        &mut self,
        c: Resource<PgConnection>,
        statement: String,
        params: Vec<v4::ParameterValue>,
    ) -> wasmtime::Result<Result<v4::RowSet, v4::Error>> {
        let client = self.table.get(&c)?.0.clone();
        let params = match params
            .into_iter()
            .map(v4_parameter)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(params) => params,
            Err(err) => return Ok(Err(err)),
        };
        Ok(match query(&client, &statement, &params).await {
            Ok((prepared, rows)) => v4_rows(&rows, &prepared),
            Err(failure) => Err(v4_failure(failure)),
        })
    }

    async fn execute(
        &mut self,
        c: Resource<PgConnection>,
        statement: String,
        params: Vec<v4::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, v4::Error>> {
        let client = self.table.get(&c)?.0.clone();
        let params = match params
            .into_iter()
            .map(v4_parameter)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(params) => params,
            Err(err) => return Ok(Err(err)),
        };
        Ok(execute(&client, &statement, &params)
            .await
            .map_err(v4_failure))
    }

    async fn drop(&mut self, c: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

impl v4::Host for SpinView<'_> {}

// fermyon:spin/postgres@2.0.0

fn v2_parameter(value: v2_types::ParameterValue) -> Result<Parameter, v2_types::Error> {
    use v2_types::ParameterValue as P;
    Ok(match value {
        P::Boolean(v) => Box::new(v),
        P::Int8(v) => Box::new(v),
        P::Int16(v) => Box::new(v),
        P::Int32(v) => Box::new(v),
        P::Int64(v) => Box::new(v),
        P::Floating32(v) => Box::new(v),
        P::Floating64(v) => Box::new(v),
        P::Str(v) => Box::new(v),
        P::Binary(v) => Box::new(v),
        P::DbNull => Box::new(Null),
        P::Uint8(_) | P::Uint16(_) | P::Uint32(_) | P::Uint64(_) => {
            return Err(v2_types::Error::BadParameter(
                "Postgres does not support unsigned integers".to_owned(),
            ));
        }
    })
}

fn v2_data_type(ty: &Type) -> v2_types::DbDataType {
    use v2_types::DbDataType as D;
    match *ty {
        Type::BOOL => D::Boolean,
        Type::CHAR => D::Int8,
        Type::INT2 => D::Int16,
        Type::INT4 => D::Int32,
        Type::INT8 => D::Int64,
        Type::FLOAT4 => D::Floating32,
        Type::FLOAT8 => D::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => D::Str,
        Type::BYTEA => D::Binary,
        _ => D::Other,
    }
}

fn v2_value(row: &Row, i: usize) -> Result<v2_types::DbValue, String> {
    use v2_types::DbValue as V;
    fn or_null<T>(value: Option<T>, wrap: impl FnOnce(T) -> V) -> V {
        value.map_or(V::DbNull, wrap)
    }
    Ok(match *row.columns()[i].type_() {
        Type::BOOL => or_null(get(row, i)?, V::Boolean),
        Type::CHAR => or_null(get(row, i)?, V::Int8),
        Type::INT2 => or_null(get(row, i)?, V::Int16),
        Type::INT4 => or_null(get(row, i)?, V::Int32),
        Type::INT8 => or_null(get(row, i)?, V::Int64),
        Type::FLOAT4 => or_null(get(row, i)?, V::Floating32),
        Type::FLOAT8 => or_null(get(row, i)?, V::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => or_null(get(row, i)?, V::Str),
        Type::BYTEA => or_null(get(row, i)?, V::Binary),
        _ => or_null(get::<Raw>(row, i)?, |_| V::Unsupported),
    })
}

fn v2_failure(failure: Failure) -> v2_types::Error {
    v2_types::Error::QueryFailed(match failure {
        Failure::Database(err) => err.to_string(),
        Failure::TimedOut(elapsed) => elapsed.to_string(),
        Failure::TooLarge => result_too_large(),
    })
}

impl v2::HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<LegacyPgConnection>, v2_types::Error>> {
        Ok(match self.pg_connect(&address).await {
            Ok(client) => Ok(self.table.push(LegacyPgConnection(client))?),
            Err(err) => Err(v2_types::Error::ConnectionFailed(err)),
        })
    }

    async fn query(
        &mut self,
        c: Resource<LegacyPgConnection>,
        statement: String,
        params: Vec<v2_types::ParameterValue>,
    ) -> wasmtime::Result<Result<v2_types::RowSet, v2_types::Error>> {
        let client = self.table.get(&c)?.0.clone();
        let params = match params
            .into_iter()
            .map(v2_parameter)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(params) => params,
            Err(err) => return Ok(Err(err)),
        };
        let (prepared, rows) = match query(&client, &statement, &params).await {
            Ok(answer) => answer,
            Err(failure) => return Ok(Err(v2_failure(failure))),
        };
        let columns = prepared
            .columns()
            .iter()
            .map(|column| v2_types::Column {
                name: column.name().to_owned(),
                data_type: v2_data_type(column.type_()),
            })
            .collect();
        Ok(rows
            .iter()
            .map(|row| (0..row.len()).map(|i| v2_value(row, i)).collect())
            .collect::<Result<_, _>>()
            .map(|rows| v2_types::RowSet { columns, rows })
            .map_err(v2_types::Error::ValueConversionFailed))
    }

    async fn execute(
        &mut self,
        c: Resource<LegacyPgConnection>,
        statement: String,
        params: Vec<v2_types::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, v2_types::Error>> {
        let client = self.table.get(&c)?.0.clone();
        let params = match params
            .into_iter()
            .map(v2_parameter)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(params) => params,
            Err(err) => return Ok(Err(err)),
        };
        Ok(execute(&client, &statement, &params)
            .await
            .map_err(v2_failure))
    }

    async fn drop(&mut self, c: Resource<LegacyPgConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

impl v2::Host for SpinView<'_> {}

// spin:postgres@3.0.0: 4.0.0's subset, on the same connections and conversions.

fn v3_parameter(value: v3::ParameterValue) -> v4::ParameterValue {
    use {v3::ParameterValue as P3, v4::ParameterValue as P4};
    match value {
        P3::Boolean(v) => P4::Boolean(v),
        P3::Int8(v) => P4::Int8(v),
        P3::Int16(v) => P4::Int16(v),
        P3::Int32(v) => P4::Int32(v),
        P3::Int64(v) => P4::Int64(v),
        P3::Floating32(v) => P4::Floating32(v),
        P3::Floating64(v) => P4::Floating64(v),
        P3::Str(v) => P4::Str(v),
        P3::Binary(v) => P4::Binary(v),
        P3::Date(v) => P4::Date(v),
        P3::Time(v) => P4::Time(v),
        P3::Datetime(v) => P4::Datetime(v),
        P3::Timestamp(v) => P4::Timestamp(v),
        P3::DbNull => P4::DbNull,
    }
}

fn v3_data_type(data_type: v4::DbDataType) -> v3::DbDataType {
    use {v3::DbDataType as D3, v4::DbDataType as D4};
    match data_type {
        D4::Boolean => D3::Boolean,
        D4::Int8 => D3::Int8,
        D4::Int16 => D3::Int16,
        D4::Int32 => D3::Int32,
        D4::Int64 => D3::Int64,
        D4::Floating32 => D3::Floating32,
        D4::Floating64 => D3::Floating64,
        D4::Str => D3::Str,
        D4::Binary => D3::Binary,
        D4::Date => D3::Date,
        D4::Time => D3::Time,
        D4::Datetime => D3::Datetime,
        D4::Timestamp => D3::Timestamp,
        _ => D3::Other,
    }
}

fn v3_value(value: v4::DbValue) -> v3::DbValue {
    use {v3::DbValue as V3, v4::DbValue as V4};
    match value {
        V4::Boolean(v) => V3::Boolean(v),
        V4::Int8(v) => V3::Int8(v),
        V4::Int16(v) => V3::Int16(v),
        V4::Int32(v) => V3::Int32(v),
        V4::Int64(v) => V3::Int64(v),
        V4::Floating32(v) => V3::Floating32(v),
        V4::Floating64(v) => V3::Floating64(v),
        V4::Str(v) => V3::Str(v),
        V4::Binary(v) => V3::Binary(v),
        V4::Date(v) => V3::Date(v),
        V4::Time(v) => V3::Time(v),
        V4::Datetime(v) => V3::Datetime(v),
        V4::Timestamp(v) => V3::Timestamp(v),
        V4::DbNull => V3::DbNull,
        _ => V3::Unsupported,
    }
}

fn v3_error(error: v4::Error) -> v3::Error {
    match error {
        v4::Error::ConnectionFailed(text) => v3::Error::ConnectionFailed(text),
        v4::Error::BadParameter(text) => v3::Error::BadParameter(text),
        v4::Error::QueryFailed(v4::QueryError::Text(text)) => v3::Error::QueryFailed(text),
        v4::Error::QueryFailed(v4::QueryError::DbError(db)) => v3::Error::QueryFailed(db.as_text),
        v4::Error::ValueConversionFailed(text) => v3::Error::ValueConversionFailed(text),
        v4::Error::Other(text) => v3::Error::Other(text),
    }
}

impl v3::HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, v3::Error>> {
        Ok(v4::HostConnection::open(self, address)
            .await?
            .map_err(v3_error))
    }

    async fn query(
        &mut self,
        c: Resource<PgConnection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> wasmtime::Result<Result<v3::RowSet, v3::Error>> {
        let params = params.into_iter().map(v3_parameter).collect();
        let rows = v4::HostConnection::query(self, c, statement, params).await?;
        Ok(rows
            .map(|rows| v3::RowSet {
                columns: rows
                    .columns
                    .into_iter()
                    .map(|column| v3::Column {
                        name: column.name,
                        data_type: v3_data_type(column.data_type),
                    })
                    .collect(),
                rows: rows
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(v3_value).collect())
                    .collect(),
            })
            .map_err(v3_error))
    }

    async fn execute(
        &mut self,
        c: Resource<PgConnection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> wasmtime::Result<Result<u64, v3::Error>> {
        let params = params.into_iter().map(v3_parameter).collect();
        Ok(v4::HostConnection::execute(self, c, statement, params)
            .await?
            .map_err(v3_error))
    }

    async fn drop(&mut self, c: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

impl v3::Host for SpinView<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_decode_from_postgres_epoch() {
        assert_eq!(date_from_days(0), (2000, 1, 1));
        assert_eq!(date_from_days(-1), (1999, 12, 31));
        assert_eq!(date_from_days(60), (2000, 3, 1), "2000 is a leap year");
        assert_eq!(date_from_days(9_825), (2026, 11, 25));
        assert_eq!(time_from_micros(0), (0, 0, 0, 0));
        assert_eq!(
            time_from_micros(((13 * 60 + 5) * 60 + 9) * 1_000_000 + 250),
            (13, 5, 9, 250_000)
        );
    }
}
