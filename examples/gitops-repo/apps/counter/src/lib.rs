use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

/// Counts visits in the default key-value store.
#[http_component]
fn handle(_req: Request) -> anyhow::Result<impl IntoResponse> {
    let store = Store::open_default()?;
    let count = store
        .get("visits")?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.set("visits", count.to_string().as_bytes())?;
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(format!("visits: {count}\n"))
        .build())
}
