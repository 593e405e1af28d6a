//! Triggers in Spin's locked app (what a Spin OCI artifact carries), in the shapes Spin and the
//! trigger plugins write: `trigger_config` holds `component` and the per-trigger fields of the
//! manifest (`channel` and `address`; `topic` and `qos`; `cron_expression`), and the MQTT broker
//! sits in `metadata.triggers.mqtt` like `[application.trigger.mqtt]`. Templates stay unrendered.

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};

use super::{MqttSession, Trigger, TriggerKind};
use crate::artifact::locked;

/// The locked app's triggers for `triggers`, and its `metadata.triggers` entries.
pub(crate) fn to_locked(triggers: &[Trigger]) -> (Vec<locked::Trigger>, BTreeMap<String, Value>) {
    let mut metadata = BTreeMap::new();
    let locked = triggers
        .iter()
        .map(|trigger| {
            let config = match &trigger.kind {
                TriggerKind::Redis { address, channel } => {
                    json!({"component": trigger.component, "channel": channel, "address": address})
                }
                TriggerKind::Mqtt {
                    session,
                    topic,
                    qos,
                } => {
                    metadata.insert(
                        "mqtt".to_owned(),
                        json!({
                            "address": session.address,
                            "username": session.username,
                            "password": session.password,
                            "keep_alive_interval": session.keep_alive.as_secs().to_string(),
                        }),
                    );
                    json!({"component": trigger.component, "topic": topic, "qos": qos.to_string()})
                }
                TriggerKind::Cron { expression } => {
                    json!({"component": trigger.component, "cron_expression": expression})
                }
                TriggerKind::Command => json!({"component": trigger.component}),
            };
            locked::Trigger {
                id: trigger.id.clone(),
                trigger_type: trigger.kind.name().to_owned(),
                trigger_config: config,
            }
        })
        .collect();
    (locked, metadata)
}

/// The trigger a locked app's non-HTTP `trigger` describes, its component not yet checked.
pub(crate) fn from_locked(
    trigger: &locked::Trigger,
    metadata: &BTreeMap<String, Value>,
) -> Result<Trigger, String> {
    let config = &trigger.trigger_config;
    let field = |object: &Value, name: &str| -> Result<String, String> {
        object
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("trigger `{}` has no `{name}`", trigger.id))
    };
    let kind = match trigger.trigger_type.as_str() {
        "redis" => {
            let address = match config.get("address").and_then(Value::as_str) {
                Some(address) => address.to_owned(),
                None => metadata
                    .get("redis")
                    .map(|redis| field(redis, "address"))
                    .transpose()?
                    .ok_or_else(|| format!("trigger `{}` has no Redis address", trigger.id))?,
            };
            TriggerKind::Redis {
                address,
                channel: field(config, "channel")?,
            }
        }
        "mqtt" => {
            let broker = metadata.get("mqtt").ok_or_else(|| {
                format!(
                    "trigger `{}` has no MQTT broker (metadata.triggers.mqtt)",
                    trigger.id
                )
            })?;
            let optional = |name: &str| field(broker, name).unwrap_or_default();
            let keep_alive = optional("keep_alive_interval").parse::<u64>().unwrap_or(30);
            let qos = field(config, "qos")?;
            TriggerKind::Mqtt {
                session: MqttSession {
                    address: field(broker, "address")?,
                    username: optional("username"),
                    password: optional("password"),
                    keep_alive: Duration::from_secs(keep_alive.clamp(1, 65_535)),
                },
                topic: field(config, "topic")?,
                qos: match qos.trim() {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    other => {
                        return Err(format!(
                            "trigger `{}`: qos `{other}` is not 0, 1 or 2",
                            trigger.id
                        ));
                    }
                },
            }
        }
        "cron" => {
            let expression = field(config, "cron_expression")?;
            super::cron::schedule(&expression)
                .map_err(|err| format!("trigger `{}`: {err}", trigger.id))?;
            TriggerKind::Cron { expression }
        }
        "command" => TriggerKind::Command,
        other => {
            return Err(format!(
                "trigger type `{other}` is not supported: spindle runs http, redis, mqtt, cron \
                 and command triggers"
            ));
        }
    };
    Ok(Trigger {
        id: trigger.id.clone(),
        component: field(config, "component")?,
        kind,
    })
}
