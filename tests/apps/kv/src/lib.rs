use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

/// `/kv/count` increments a counter in the default store; `/kv/open/LABEL` opens another store
/// and says how that went.
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.path().to_owned();
    if let Some(label) = path.strip_prefix("/kv/open/") {
        let outcome = match Store::open(label) {
            Ok(_) => "opened".to_owned(),
            Err(err) => format!("error: {err:?}"),
        };
        return Ok(Response::new(200, outcome));
    }
    let store = Store::open_default()?;
    let count = store
        .get("count")?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.set("count", count.to_string().as_bytes())?;
    Ok(Response::new(200, format!("count: {count}")))
}
