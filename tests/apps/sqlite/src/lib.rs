use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite::{Connection, Value};

/// Adds a row named by the query string, then lists every row. A POST runs its body as one
/// statement and answers `ok N rows` or `error: ...` (what a hostile guest could send).
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let db = Connection::open_default()?;
    if req.method() == &spin_sdk::http::Method::Post {
        let statement = String::from_utf8_lossy(req.body()).into_owned();
        return Ok(Response::new(
            200,
            match db.execute(&statement, &[]) {
                Ok(rows) => format!("ok {} rows", rows.rows().count()),
                Err(err) => format!("error: {err}"),
            },
        ));
    }
    db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)", &[])?;
    db.execute("INSERT INTO notes (text) VALUES (?)", &[Value::Text(req.query().to_owned())])?;
    let rows = db.execute("SELECT id, text FROM notes ORDER BY id", &[])?;
    let lines: Vec<String> = rows
        .rows()
        .map(|row| format!("{} {}", row.get::<i64>("id").unwrap_or(-1), row.get::<&str>("text").unwrap_or("?")))
        .collect();
    Ok(Response::new(200, lines.join("\n")))
}
