//! Spin 3's WASI interfaces, as newer SDKs call them: `wasi:keyvalue` (store, atomics, batch) on
//! the default store and `wasi:config` for variables. `/spin3/set/KEY?VALUE`, `/spin3/get/KEY`,
//! `/spin3/increment/KEY?DELTA`, `/spin3/cas/KEY?VALUE` (a compare-and-swap, then a swap that
//! must fail as the value changed in between), `/spin3/batch`, `/spin3/config/NAME`,
//! `/spin3/open/LABEL`; and `spin:sqlite@3.0.0` on the default database: `/spin3/sqlite`.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::config::store as config;
use spin_sdk::wit::sqlite3;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.path().trim_start_matches("/spin3/").to_owned();
    let query = req.query().to_owned();
    let (step, arg) = path.split_once('/').unwrap_or((path.as_str(), ""));
    let answer = match step {
        "open" => format!("{:?}", store::open(arg).map(drop)),
        "config" => format!("{:?}", config::get(arg)),
        "sqlite" => sqlite_steps(),
        _ => {
            let bucket = store::open("default").map_err(|e| anyhow::anyhow!("{e:?}"))?;
            match step {
                "set" => format!("{:?}", bucket.set(arg, query.as_bytes())),
                "get" => format!(
                    "{:?}",
                    bucket
                        .get(arg)
                        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                ),
                "increment" => format!(
                    "{:?}",
                    atomics::increment(&bucket, arg, query.parse().unwrap_or(1))
                ),
                "cas" => {
                    let first = atomics::Cas::new(&bucket, arg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    let stale = atomics::Cas::new(&bucket, arg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    let swapped = atomics::swap(first, query.as_bytes()).map_err(|e| format!("{e:?}"));
                    let again = match atomics::swap(stale, b"stale") {
                        Ok(()) => "stale swap: Ok".to_owned(),
                        Err(atomics::CasError::CasFailed(_)) => "stale swap: CasFailed".to_owned(),
                        Err(err) => format!("stale swap: {err:?}"),
                    };
                    format!("swap: {swapped:?}; {again}")
                }
                "batch" => {
                    let set = batch::set_many(
                        &bucket,
                        &[("b1".to_owned(), b"one".to_vec()), ("b2".to_owned(), b"two".to_vec())],
                    );
                    let got = batch::get_many(&bucket, &["b1".to_owned(), "b2".to_owned(), "b3".to_owned()]);
                    let deleted = batch::delete_many(&bucket, &["b1".to_owned()]);
                    let keys = bucket.list_keys(None).map(|r| r.keys);
                    format!("set: {set:?}; get: {got:?}; delete: {deleted:?}; keys: {keys:?}")
                }
                _ => return Ok(Response::new(404, "no such step\n")),
            }
        }
    };
    Ok(Response::new(200, answer + "\n"))
}

fn sqlite_steps() -> String {
    use sqlite3::Value as V;
    let db = match sqlite3::Connection::open("default") {
        Ok(db) => db,
        Err(err) => return format!("open: {err:?}"),
    };
    let mut steps = vec![
        format!(
            "create: {:?}",
            db.execute("CREATE TABLE IF NOT EXISTS pets (name TEXT, age INTEGER)", &[])
                .map(drop)
        ),
        format!(
            "insert: {:?}",
            db.execute(
                "INSERT INTO pets VALUES (?, ?), (?, ?)",
                &[V::Text("Rex".into()), V::Integer(3), V::Text("Tom".into()), V::Null]
            )
            .map(drop)
        ),
    ];
    steps.push(format!("changes: {}", db.changes()));
    steps.push(format!("last-insert-rowid: {}", db.last_insert_rowid()));
    steps.push(format!(
        "select: {:?}",
        db.execute("SELECT name, age FROM pets ORDER BY rowid", &[])
            .map(|r| (r.columns, r.rows.into_iter().map(|row| row.values).collect::<Vec<_>>()))
    ));
    steps.push(format!(
        "undeclared: {:?}",
        sqlite3::Connection::open("other").map(drop)
    ));
    steps.join("; ")
}
