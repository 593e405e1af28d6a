//! A Redis trigger's handler, built with spin-sdk's `#[redis_component]`: records each message
//! in the ledger.

use spin_sdk::redis_component;

#[redis_component]
fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    ledger::record("redis", &message).map_err(anyhow::Error::msg)
}
