//! The ledger of the trigger test app: message handlers `record` what they handled in the default
//! key-value store (`ledger-http` lists it).

use spin_sdk::key_value::Store;

/// Handles one message of `kind`: `trap` panics, `fail` returns an error, `slow:MS` waits MS
/// milliseconds first; otherwise (and after the wait) `KIND:PAYLOAD` is counted once more.
pub fn record(kind: &str, payload: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(payload).into_owned();
    if text == "trap" {
        panic!("this handler traps on purpose");
    }
    if text == "fail" {
        return Err("this handler fails on purpose".to_owned());
    }
    if let Some(ms) = text.strip_prefix("slow:") {
        let ms: u64 = ms.parse().map_err(|_| "slow:MS needs a number".to_owned())?;
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let store = Store::open_default().map_err(|err| format!("{err:?}"))?;
    let key = format!("{kind}:{text}");
    let count = store
        .get(&key)
        .map_err(|err| format!("{err:?}"))?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|count| count.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store
        .set(&key, count.to_string().as_bytes())
        .map_err(|err| format!("{err:?}"))
}
