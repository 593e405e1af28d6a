//! `fermyon:spin/mqtt`: outbound MQTT 3.1.1 (rumqttc), to brokers the component's
//! `allowed_outbound_hosts` names (`mqtt://host[:port]`, port 1883 by default), checked before
//! anything else as Spin does. `open` only prepares the client (as in Spin, a broker is first
//! reached by `publish`); `publish` returns once the broker has the message: sent for QoS 0,
//! acknowledged for QoS 1 (PUBACK) and 2 (PUBCOMP).

use std::{sync::Arc, time::Duration};

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS,
};
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::{
    SpinView,
    bindings::fermyon::spin::mqtt::{Error, Host, HostConnection, Qos},
    io_deadline,
};
use crate::allow_list::redact;

/// The largest message a guest may publish (Mosquitto's default limit is larger; this bounds
/// what spindle holds for a guest).
const MAX_PAYLOAD: usize = 1 << 20;

/// A client the guest opened: rumqttc's handle and its event loop, driven by `publish`.
pub struct MqttConnection {
    client: AsyncClient,
    events: Arc<Mutex<EventLoop>>,
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Answer<Resource<MqttConnection>> {
        if let Some(refusal) = super::refused(self, &address) {
            tracing::warn!(component = %self.component.id, "mqtt connection to `{}` denied: not in allowed_outbound_hosts", redact(&address));
            return Ok(Err(Error::ConnectionFailed(refusal)));
        }
        let (host, port) = match crate::trigger::mqtt::broker(&address) {
            Ok(broker) => broker,
            Err(_) => return Ok(Err(Error::InvalidAddress)),
        };
        let client_id = format!(
            "spindle-{}-{:016x}",
            self.component.id,
            rand::random::<u64>()
        );
        let mut options = MqttOptions::new(client_id, host, port);
        let keep_alive = keep_alive_interval_in_secs.min(u64::from(u16::MAX));
        options
            .set_keep_alive(Duration::from_secs(keep_alive))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PAYLOAD + 64 * 1024, MAX_PAYLOAD + 64 * 1024);
        if !username.is_empty() {
            options.set_credentials(username, password);
        }
        let (client, events) = AsyncClient::new(options, 16);
        Ok(Ok(self.table.push(MqttConnection {
            client,
            events: Arc::new(Mutex::new(events)),
        })?))
    }

    async fn publish(
        &mut self,
        c: Resource<MqttConnection>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Answer<()> {
        if payload.len() > MAX_PAYLOAD {
            return Ok(Err(Error::Other(format!(
                "the payload is {} bytes, more than the {MAX_PAYLOAD} spindle sends",
                payload.len()
            ))));
        }
        let connection = self.table.get(&c)?;
        let (client, events) = (connection.client.clone(), connection.events.clone());
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        let published = io_deadline(async move {
            // One publish at a time per connection: each waits for its own completion.
            let mut events = events.lock().await;
            client
                .publish(topic, qos, false, payload)
                .await
                .map_err(|err| Error::Other(err.to_string()))?;
            loop {
                let event = events
                    .poll()
                    .await
                    .map_err(|err| Error::ConnectionFailed(err.to_string()))?;
                match event {
                    Event::Incoming(Packet::ConnAck(ack))
                        if ack.code != ConnectReturnCode::Success =>
                    {
                        return Err(Error::ConnectionFailed(format!(
                            "the broker refused the connection: {:?}",
                            ack.code
                        )));
                    }
                    Event::Outgoing(Outgoing::Publish(_)) if qos == QoS::AtMostOnce => {
                        return Ok(());
                    }
                    Event::Incoming(Packet::PubAck(_)) if qos == QoS::AtLeastOnce => {
                        return Ok(());
                    }
                    Event::Incoming(Packet::PubComp(_)) if qos == QoS::ExactlyOnce => {
                        return Ok(());
                    }
                    _ => {}
                }
            }
        })
        .await;
        Ok(match published {
            Ok(result) => result,
            Err(elapsed) => Err(Error::Other(format!("publish: {elapsed}"))),
        })
    }

    async fn drop(&mut self, c: Resource<MqttConnection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(c)?;
        let _ = connection.client.try_disconnect();
        Ok(())
    }
}

impl Host for SpinView<'_> {}
