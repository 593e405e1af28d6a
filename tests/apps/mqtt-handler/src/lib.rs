//! An MQTT trigger's handler, on the MQTT trigger plugin's `spin-mqtt` world (bindings generated
//! from its WIT, as its SDK does): records each message in the ledger under its topic.

spin_sdk::wit_bindgen::generate!({
    world: "spin-mqtt",
    path: "wit",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
});


struct Handler;

impl Guest for Handler {
    fn handle_message(message: Vec<u8>, metadata: Metadata) -> Result<(), Error> {
        ledger::record(&format!("mqtt:{}", metadata.topic), &message).map_err(Error::Other)
    }
}

export!(Handler);
