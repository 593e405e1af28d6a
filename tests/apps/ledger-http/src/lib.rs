//! `GET /ledger`: what the trigger test app's handlers recorded, one `KEY=COUNT` line per key,
//! sorted; `GET /ledger?key=KEY`: that key's line alone (one key-value read).

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let store = Store::open_default()?;
    let keys = match req.query().strip_prefix("key=") {
        Some(key) => vec![key.to_owned()],
        None => {
            let mut keys = store.get_keys()?;
            keys.sort();
            keys
        }
    };
    let mut body = String::new();
    for key in keys {
        let value = store.get(&key)?.unwrap_or_default();
        body.push_str(&format!("{key}={}\n", String::from_utf8_lossy(&value)));
    }
    Ok(Response::new(200, body))
}
