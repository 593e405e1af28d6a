//! A cron trigger's handler, on the cron trigger plugin's `spin-cron` world (bindings generated
//! from its WIT, as its SDK does): records each tick in the ledger under its timestamp, so a
//! tick fired twice shows as a count of 2.

spin_sdk::wit_bindgen::generate!({
    world: "spin-cron",
    path: "wit",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
});


struct Handler;

impl Guest for Handler {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        ledger::record("cron", metadata.timestamp.to_string().as_bytes()).map_err(Error::Other)
    }
}

export!(Handler);
