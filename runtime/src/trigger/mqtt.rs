//! The MQTT trigger plugin's `[[trigger.mqtt]]`: subscribe to a topic and run the component's
//! `handle-message` for each message, with the topic in its metadata.
//!
//! One connection per trigger (as the plugin has), with a client id of its own so that replicas
//! do not take each other's sessions, and a clean session. QoS 1 and 2 messages are acknowledged
//! after their handler ended (whatever its outcome: a failed handler is logged, not retried), so
//! the broker's in-flight window bounds what waits here; a QoS 0 message is read only when a
//! handler slot is free, so a burst waits in the socket. Subscriptions are made again on every
//! reconnection, with backoff between attempts.

use std::{sync::Arc, time::Duration};

use anyhow::{Result, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::watch;

use super::{
    MqttSession, TriggerKind,
    delivery::{Backoff, Delivery, stopped},
};
use crate::{allow_list::redact, handler::Handler, runtime::Runtime, trigger::Trigger};

/// The largest message handed to a handler.
const MAX_MESSAGE: usize = 32 << 20;

/// Runs `trigger` until `stop`.
pub(super) async fn listen(
    runtime: Arc<Runtime>,
    trigger: Trigger,
    mut stop: watch::Receiver<bool>,
) {
    let TriggerKind::Mqtt {
        session,
        topic,
        qos,
    } = trigger.kind.clone()
    else {
        return;
    };
    let id = trigger.id.clone();
    let shown = redact(&session.address);
    let options = match options(&runtime.app.name, &id, &session) {
        Ok(options) => options,
        Err(err) => {
            tracing::error!(trigger = %id, "cannot use the broker {shown}: {err:#}");
            return;
        }
    };
    let qos = match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let delivery = Delivery::new(runtime.clone(), trigger);
    let (client, mut events) = AsyncClient::new(options, 64);
    let mut backoff = Backoff::new();
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            () = stopped(&mut stop) => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                if let Err(err) = client.try_subscribe(topic.clone(), qos) {
                    tracing::warn!(trigger = %id, "cannot subscribe to `{topic}`: {err}");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let granted = ack
                    .return_codes
                    .iter()
                    .all(|code| matches!(code, SubscribeReasonCode::Success(_)));
                if granted {
                    runtime.health.set_ready(&id, true);
                    tracing::info!(trigger = %id, "subscribed to `{topic}` on {shown}");
                } else {
                    tracing::warn!(trigger = %id, "the broker {shown} refused the subscription to `{topic}`");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let room = tokio::select! {
                    room = delivery.room() => room,
                    () = stopped(&mut stop) => break,
                };
                let acknowledge = client.clone();
                let acknowledged = publish.clone();
                let message_topic = publish.topic.clone();
                let payload = publish.payload.to_vec();
                delivery.start(
                    room,
                    Box::new(move |store, handler| {
                        Box::pin(async move {
                            let Handler::Mqtt(pre) = handler else {
                                wasmtime::bail!("the component is not an MQTT handler");
                            };
                            use crate::handler::mqtt::spin::mqtt_trigger::spin_mqtt_types::{
                                Error, Metadata,
                            };
                            let instance = pre.instantiate_async(&mut *store).await?;
                            let metadata = Metadata {
                                topic: message_topic,
                            };
                            let answer = instance
                                .call_handle_message(&mut *store, &payload, &metadata)
                                .await?;
                            Ok(answer.map_err(|Error::Other(message)| message))
                        })
                    }),
                    move |_| {
                        // Never dropped: an unacknowledged message holds a slot of the broker's
                        // in-flight window for good, and a full window stops delivery.
                        if acknowledged.qos != QoS::AtMostOnce {
                            tokio::spawn(async move {
                                let _ = acknowledge.ack(&acknowledged).await;
                            });
                        }
                    },
                );
            }
            Ok(_) => {}
            Err(err) => {
                runtime.health.set_ready(&id, false);
                tracing::warn!(
                    trigger = %id,
                    "the connection to {shown} failed: {err}; connecting again in {:?}",
                    backoff.delay()
                );
                if !backoff.wait(&mut stop).await {
                    break;
                }
            }
        }
    }
    runtime.health.set_ready(&id, false);
    let _ = client.try_unsubscribe(topic);
    let _ = client.try_disconnect();
    // Sends the unsubscribe and the disconnect, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while events.poll().await.is_ok() {}
    })
    .await;
    delivery.finish().await;
}

/// How to reach the broker of `session`.
fn options(app: &str, trigger: &str, session: &MqttSession) -> Result<MqttOptions> {
    let (host, port) = broker(&session.address)?;
    let client_id = format!("spindle-{app}-{trigger}-{:08x}", rand::random::<u32>());
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(session.keep_alive.max(Duration::from_secs(1)))
        .set_clean_session(true)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_MESSAGE, MAX_MESSAGE);
    if !session.username.is_empty() {
        options.set_credentials(session.username.clone(), session.password.clone());
    }
    Ok(options)
}

/// The host and port of `mqtt://host[:port]` (port 1883 by default), for triggers and for
/// outbound MQTT.
pub(crate) fn broker(address: &str) -> Result<(String, u16)> {
    let Some(rest) = address
        .strip_prefix("mqtt://")
        .or_else(|| address.strip_prefix("tcp://"))
    else {
        if address.starts_with("mqtts://") || address.starts_with("ssl://") {
            bail!("TLS brokers (mqtts://) are not supported for triggers yet");
        }
        bail!("`{}` is not an mqtt://host[:port] address", redact(address));
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            match port.parse::<u16>() {
                Ok(port) => (host, port),
                Err(_) if authority.starts_with('[') && authority.ends_with(']') => {
                    (authority, 1883)
                }
                Err(_) => bail!("`{}` has a bad port", redact(address)),
            }
        }
        _ => (authority, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        bail!("`{}` is not an mqtt://host[:port] address", redact(address));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::broker;

    #[test]
    fn broker_addresses() {
        assert_eq!(
            broker("mqtt://localhost").unwrap(),
            ("localhost".into(), 1883)
        );
        assert_eq!(
            broker("mqtt://127.0.0.1:18830").unwrap(),
            ("127.0.0.1".into(), 18830)
        );
        assert_eq!(broker("tcp://[::1]:1884").unwrap(), ("::1".into(), 1884));
        assert!(
            broker("mqtts://broker:8883")
                .unwrap_err()
                .to_string()
                .contains("TLS")
        );
        assert!(broker("http://broker").is_err());
        assert!(broker("mqtt://user:pw@broker").is_err());
        assert!(broker("mqtt://broker:x").is_err());
    }
}
