use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::{http_component, llm, mqtt, mysql, pg, pg3, pg4, redis, variables};

/// Talks to the Redis, PostgreSQL or MQTT server named by the `redis_address` /
/// `postgres_address` / `mqtt_address` / `mysql_address` variables and answers what it saw, one
/// line per step: `/services/redis`, `/services/pg4`, `/services/pg2`, `/services/mysql`,
/// `/services/mqtt?TOPIC` (three messages,
/// one at each QoS, with the `mqtt_user` / `mqtt_password` variables), `/services/llm` (an
/// interface spindle does not serve), or `/services/denied` (a server the manifest does not
/// allow).
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let lines = match req.path() {
        "/services/redis" => redis_steps(&variables::get("redis_address")?),
        "/services/pg4" => pg4_steps(&variables::get("postgres_address")?),
        "/services/pg2" => pg2_steps(&variables::get("postgres_address")?),
        "/services/pg4-types" => pg4_type_steps(&variables::get("postgres_address")?),
        "/services/pg3" => pg3_steps(&variables::get("postgres_address")?),
        "/services/mqtt" => mqtt_steps(
            &variables::get("mqtt_address")?,
            &variables::get("mqtt_user")?,
            &variables::get("mqtt_password")?,
            req.query(),
        ),
        "/services/mysql" => mysql_steps(&variables::get("mysql_address")?),
        "/services/llm" => vec![format!(
            "llm: {:?}",
            llm::infer(llm::InferencingModel::Llama2Chat, "hello").err()
        )],
        "/services/denied" => vec![
            format!("redis: {:?}", redis::Connection::open("redis://127.0.0.1:1").err()),
            format!(
                "pg4: {:?}",
                pg4::Connection::open("host=127.0.0.1 port=1 user=x").err()
            ),
            // An allowed host name, but a `hostaddr` (where tokio-postgres really connects)
            // that the manifest does not allow.
            format!(
                "pg4 hostaddr: {:?}",
                pg4::Connection::open(&format!(
                    "{}?hostaddr=10.255.255.1",
                    variables::get("postgres_address")?
                ))
                .err()
            ),
            format!(
                "mqtt: {:?}",
                mqtt::Connection::open("mqtt://127.0.0.1:1", "user", "secret", 30).err()
            ),
            format!(
                "mysql: {:?}",
                mysql::Connection::open("mysql://root:hunter2@127.0.0.1:1/db").err()
            ),
            // An allowed host and port, but a Unix socket to connect through instead.
            format!(
                "mysql socket: {:?}",
                mysql::Connection::open(&format!(
                    "{}?socket=/run/mysqld/mysqld.sock",
                    variables::get("mysql_address")?
                ))
                .err()
            ),
        ],
        _ => return Ok(Response::new(404, "no such step\n")),
    };
    Ok(Response::new(200, lines.join("\n") + "\n"))
}

fn mqtt_steps(address: &str, user: &str, password: &str, topic: &str) -> Vec<String> {
    let conn = match mqtt::Connection::open(address, user, password, 30) {
        Ok(conn) => conn,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    [
        mqtt::Qos::AtMostOnce,
        mqtt::Qos::AtLeastOnce,
        mqtt::Qos::ExactlyOnce,
    ]
    .into_iter()
    .enumerate()
    .map(|(n, qos)| {
        let payload = format!("message {n} at {qos:?}").into_bytes();
        format!("publish {n}: {:?}", conn.publish(topic, &payload, qos))
    })
    // One byte over the payload spindle sends: refused before it reaches the broker.
    .chain([format!(
        "publish oversized: {:?}",
        conn.publish(topic, &vec![b'x'; (1 << 20) + 1], mqtt::Qos::AtMostOnce)
    )])
    .collect()
}

fn mysql_steps(address: &str) -> Vec<String> {
    use mysql::ParameterValue as P;
    let db = match mysql::Connection::open(address) {
        Ok(db) => db,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    let mut lines = vec![
        format!("drop: {:?}", db.execute("DROP TABLE IF EXISTS pets", &[])),
        format!(
            "create: {:?}",
            db.execute(
                "CREATE TABLE pets (id INT, small TINYINT, big BIGINT UNSIGNED, name VARCHAR(32), \
                 weight DOUBLE, ratio FLOAT, price DECIMAL(8,2), photo BLOB, born DATE, note TEXT)",
                &[]
            )
        ),
        format!(
            "insert: {:?}",
            db.execute(
                "INSERT INTO pets VALUES (?, ?, ?, ?, ?, ?, ?, ?, '2020-02-29', ?)",
                &[
                    P::Int32(1),
                    P::Int8(-5),
                    P::Uint64(u64::MAX),
                    P::Str("Rex".to_owned()),
                    P::Floating64(12.5),
                    P::Floating32(0.25),
                    P::Str("19.99".to_owned()),
                    P::Binary(vec![0, 1, 255]),
                    P::DbNull,
                ]
            )
        ),
    ];
    match db.query("SELECT * FROM pets WHERE id = ?", &[P::Int32(1)]) {
        Ok(rows) => lines.extend(row_set_lines(
            rows.columns.iter().map(|c| (&c.name, &c.data_type)),
            &rows.rows,
        )),
        Err(err) => lines.push(format!("query: {err:?}")),
    }
    // MariaDB's sequence engine gives the rows.
    lines.extend(bound_steps(
        |sql| db.query(sql, &[]).map(|rows| rows.rows.len()),
        "SELECT REPEAT('x', 1048576) FROM seq_1_to_20",
    ));
    lines
}

/// `columns: NAME:TYPE ...`, then a `row: [...]` line per row.
/// A statement that fails, `oversized` (20 rows of 1 MiB, past the 16 MiB spindle hands to a
/// guest), and a statement after them on the same connection, through `query` (row counts).
fn bound_steps<E: std::fmt::Debug>(
    query: impl Fn(&str) -> Result<usize, E>,
    oversized: &str,
) -> Vec<String> {
    vec![
        format!("bad-sql: {:?}", query("SELECT * FROM no_such_table").map(|_| ())),
        format!("oversized: {:?}", query(oversized)),
        format!("after: {:?}", query("SELECT 1")),
    ]
}

fn row_set_lines<'a, T: std::fmt::Debug + 'a, R: std::fmt::Debug>(
    columns: impl Iterator<Item = (&'a String, &'a T)>,
    rows: &[R],
) -> Vec<String> {
    let columns: Vec<String> = columns
        .map(|(name, data_type)| format!("{name}:{data_type:?}"))
        .collect();
    let mut lines = vec![format!("columns: {}", columns.join(" "))];
    lines.extend(rows.iter().map(|row| format!("row: {row:?}")));
    lines
}

fn redis_steps(address: &str) -> Vec<String> {
    let conn = match redis::Connection::open(address) {
        Ok(conn) => conn,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    vec![
        format!("set: {:?}", conn.set("spindle:key", &b"value".to_vec())),
        format!(
            "get: {:?}",
            conn.get("spindle:key")
                .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
        ),
        format!("del-counter: {:?}", conn.del(&["spindle:counter".to_owned()])),
        format!("incr: {:?}", conn.incr("spindle:counter")),
        format!("incr: {:?}", conn.incr("spindle:counter")),
        format!(
            "sadd: {:?}",
            conn.sadd("spindle:set", &["a".to_owned(), "b".to_owned()])
        ),
        format!("smembers: {:?}", conn.smembers("spindle:set").map(sorted)),
        format!("srem: {:?}", conn.srem("spindle:set", &["a".to_owned()])),
        format!("publish: {:?}", conn.publish("spindle:channel", &b"hi".to_vec())),
        format!("execute: {:?}", conn.execute("PING", &[])),
        format!(
            "type-error: {:?}",
            conn.incr("spindle:key").map_err(|e| format!("{e:?}"))
        ),
    ]
}

fn sorted(mut members: Vec<String>) -> Vec<String> {
    members.sort();
    members
}

fn pg4_steps(address: &str) -> Vec<String> {
    let db = match pg4::Connection::open(address) {
        Ok(db) => db,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    let mut lines = vec![
        format!("drop: {:?}", db.execute("DROP TABLE IF EXISTS pets4", &[])),
        format!(
            "create: {:?}",
            db.execute(
                "CREATE TABLE pets4 (id INT4, name TEXT, good BOOL, weight FLOAT8, born DATE, tags TEXT[], meta JSONB, note TEXT)",
                &[]
            )
        ),
        format!(
            "insert: {:?}",
            db.execute(
                "INSERT INTO pets4 VALUES ($1, $2, $3, $4, DATE '2020-02-29', $5, $6, $7)",
                &[
                    1i32.into(),
                    "Rex".to_owned().into(),
                    true.into(),
                    12.5f64.into(),
                    pg4::ParameterValue::ArrayStr(vec![Some("loud".to_owned()), None]),
                    pg4::ParameterValue::Jsonb(br#"{"toy":"ball"}"#.to_vec()),
                    pg4::ParameterValue::DbNull,
                ]
            )
        ),
    ];
    match db.query("SELECT * FROM pets4 WHERE id = $1", &[1i32.into()]) {
        Ok(rows) => lines.extend(row_set_lines(
            rows.columns.iter().map(|c| (&c.name, &c.data_type)),
            &rows.rows,
        )),
        Err(err) => lines.push(format!("query: {err:?}")),
    }
    lines.extend(bound_steps(
        |sql| db.query(sql, &[]).map(|rows| rows.rows.len()),
        "SELECT repeat('x', 1048576) FROM generate_series(1, 20)",
    ));
    lines
}

/// Every type of spin:postgres@4.0.0 beyond the basic ones, as a parameter and back as a column.
fn pg4_type_steps(address: &str) -> Vec<String> {
    use pg4::{ParameterValue as P, RangeBoundKind::*};
    let db = match pg4::Connection::open(address) {
        Ok(db) => db,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    let mut lines = vec![
        format!("drop: {:?}", db.execute("DROP TABLE IF EXISTS kinds4", &[])),
        format!(
            "create: {:?}",
            db.execute(
                "CREATE TABLE kinds4 (price NUMERIC, tiny NUMERIC, born DATE, alarm TIME, \
                 seen TIMESTAMP, stamped TIMESTAMPTZ, wait INTERVAL, ages INT4RANGE, \
                 ids INT8RANGE, band NUMRANGE, prices NUMERIC[])",
                &[]
            )
        ),
        format!(
            "insert: {:?}",
            db.execute(
                "INSERT INTO kinds4 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    P::Decimal("-1234567890.123456789".to_owned()),
                    P::Decimal("0.0005".to_owned()),
                    P::Date((2020, 2, 29)),
                    P::Time((13, 5, 9, 250_000_000)),
                    P::Datetime((1999, 12, 31, 23, 59, 58, 0)),
                    P::Timestamp(1_700_000_000),
                    P::Interval(pg4::Interval { micros: 1_500_000, days: 2, months: 14 }),
                    P::RangeInt32((Some((1, Inclusive)), Some((10, Exclusive)))),
                    P::RangeInt64((Some((5, Exclusive)), None)),
                    P::RangeDecimal((Some(("1.5".to_owned(), Inclusive)), Some(("2.25".to_owned(), Inclusive)))),
                    P::ArrayDecimal(vec![Some("1.10".to_owned()), None, Some("-3".to_owned())]),
                ]
            )
        ),
        format!(
            "bad decimal: {:?}",
            db.execute("INSERT INTO kinds4 (price) VALUES ($1)", &[P::Decimal("12,5".to_owned())])
        ),
        format!(
            "wrong type: {:?}",
            db.execute("INSERT INTO kinds4 (price) VALUES ($1)", &[P::Date((2020, 1, 1))])
        ),
    ];
    match db.query("SELECT * FROM kinds4", &[]) {
        Ok(rows) => {
            let columns: Vec<String> = rows
                .columns
                .iter()
                .map(|c| format!("{}:{:?}", c.name, c.data_type))
                .collect();
            lines.push(format!("columns: {}", columns.join(" ")));
            for row in &rows.rows {
                for value in row {
                    lines.push(format!("value: {value:?}"));
                }
            }
        }
        Err(err) => lines.push(format!("query: {err:?}")),
    }
    lines
}

/// Spin 3's `spin:postgres@3.0.0`: dates and timestamps in, a 4.0.0-only type out.
fn pg3_steps(address: &str) -> Vec<String> {
    use pg3::ParameterValue as P;
    let db = match pg3::Connection::open(address) {
        Ok(db) => db,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    let mut lines = vec![
        format!("drop: {:?}", db.execute("DROP TABLE IF EXISTS pets3", &[])),
        format!(
            "create: {:?}",
            db.execute("CREATE TABLE pets3 (name TEXT, born DATE, seen TIMESTAMPTZ, price NUMERIC)", &[])
        ),
        format!(
            "insert: {:?}",
            db.execute(
                "INSERT INTO pets3 VALUES ($1, $2, $3, 9.5)",
                &[P::Str("Rex".to_owned()), P::Date((2020, 2, 29)), P::Timestamp(1_700_000_000)]
            )
        ),
    ];
    match db.query("SELECT * FROM pets3", &[]) {
        Ok(rows) => lines.extend(row_set_lines(
            rows.columns.iter().map(|c| (&c.name, &c.data_type)),
            &rows.rows,
        )),
        Err(err) => lines.push(format!("query: {err:?}")),
    }
    lines.extend(bound_steps(
        |sql| db.query(sql, &[]).map(|rows| rows.rows.len()),
        "SELECT repeat('x', 1048576) FROM generate_series(1, 20)",
    ));
    lines
}

fn pg2_steps(address: &str) -> Vec<String> {
    let db = match pg::Connection::open(address) {
        Ok(db) => db,
        Err(err) => return vec![format!("open: {err:?}")],
    };
    vec![
        format!("drop: {:?}", db.execute("DROP TABLE IF EXISTS pets2", &[])),
        format!(
            "create: {:?}",
            db.execute("CREATE TABLE pets2 (id INT8, name TEXT)", &[])
        ),
        format!(
            "insert: {:?}",
            db.execute(
                "INSERT INTO pets2 VALUES ($1, $2)",
                &[pg::ParameterValue::Int64(7), pg::ParameterValue::Str("Tom".to_owned())]
            )
        ),
        format!(
            "query: {:?}",
            db.query("SELECT id, name FROM pets2", &[]).map(|rows| rows.rows)
        ),
    ]
}
